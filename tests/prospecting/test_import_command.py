"""The import_file command: one JSON object on stdout, a non-zero exit with the reason for a rejected file."""

import json

import pytest
from django.core.management import CommandError, call_command

from crm.models import Client
from prospecting.models import ImportJob


def _run(*args):
    from io import StringIO

    out = StringIO()
    call_command("import_file", *args, stdout=out)
    return json.loads(out.getvalue())


def test_dry_run_prints_counts_and_writes_nothing(tmp_path, db):
    path = tmp_path / "list.csv"
    path.write_text("email,first name\nann@x.com,Ann\nANN@x.com,Ann\nbad,Bob\n")
    result = _run(str(path), "--kind", "people", "--dry-run")
    assert (result["created"], result["updated"], result["unchanged"]) == (1, 0, 0)
    assert [error["line"] for error in result["errors"]] == [3, 4]
    assert result["errors"][0]["reason"] == "duplicate of line 2"
    assert not Client.objects.exists()


def test_apply_with_owner_then_again(tmp_path, rep):
    path = tmp_path / "list.csv"
    path.write_text("email,first name\nann@x.com,Ann\n")
    assert _run(str(path), "--kind", "people", "--owner", rep.username)["created"] == 1
    assert Client.objects.get().owner == rep
    assert _run(str(path), "--kind", "people")["unchanged"] == 1


def test_a_rejected_file_exits_non_zero_with_the_message(tmp_path, db):
    path = tmp_path / "list.csv"
    path.write_text("a,b\n1,2,3\n")
    with pytest.raises(CommandError, match="expected 2 fields, got 3"):
        call_command("import_file", str(path), "--kind", "people")


def test_the_command_exits_1_from_the_shell(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portfolio.settings_test"}
    done = subprocess.run(
        [sys.executable, "manage.py", "import_file", str(path), "--kind", "people", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1 and "The file is empty." in done.stderr and done.stdout == ""


def test_match_key_external_id_and_field_policies(tmp_path, db):
    ann = Client.objects.create(email="ann@old.com", external_id="C-1", city="Lyon", phone="0600000000")
    path = tmp_path / "list.csv"
    path.write_text("customer id,email,city,phone\nC-1,ann@new.com,Paris,0612345678\n")
    args = [str(path), "--kind", "people", "--match-key", "external_id", "--policy", "never"]
    result = _run(*args, "--policy", "city=overwrite", "--policy", "email=fill_empty")
    assert (result["created"], result["updated"]) == (0, 1)
    ann.refresh_from_db()
    # city: overwrite; email: filled only when empty (it is not); phone: the file-wide "never".
    assert (ann.email, ann.city, ann.phone) == ("ann@old.com", "Paris", "0600000000")


def test_match_key_email_is_the_default_email_then_linkedin(tmp_path, db):
    Client.objects.create(email="ann@x.com", external_id="")
    path = tmp_path / "list.csv"
    path.write_text("customer id,email\nC-1,ann@x.com\n")
    assert _run(str(path), "--kind", "people", "--match-key", "email")["updated"] == 1
    assert Client.objects.get().external_id == "C-1"


def test_client_key_external_id_creates_unknown_clients(tmp_path, db):
    path = tmp_path / "orders.csv"
    path.write_text("email,customer id,order date,reference,amount\n,C-9,2024-05-02,B-7,30\n")
    report = _run(str(path), "--kind", "purchases", "--client-key", "external_id", "--dry-run")
    assert report["errors"] == [{"line": 2, "reason": "no client has this external id"}]
    result = _run(str(path), "--kind", "purchases", "--client-key", "external_id", "--create-unknown-clients")
    assert result["created"] == 1 and Client.objects.get().external_id == "C-9"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--policy", "city=sometimes"], "“sometimes” is not an update policy"),
        (["--policy", "always"], "“always” is not an update policy"),
        (["--policy", "owner=overwrite"], "“owner” is not a field an import can update."),
        (["--policy", "=never"], "give FIELD=POLICY or POLICY"),
        (["--match-key", "phone"], "invalid choice: 'phone'"),
        (["--client-key", "phone"], "invalid choice: 'phone'"),
    ],
)
def test_bad_options_exit_with_a_clear_message_and_write_nothing(tmp_path, db, option, message):
    path = tmp_path / "list.csv"
    path.write_text("email,city\nann@x.com,Paris\n")
    with pytest.raises(CommandError, match=message):
        call_command("import_file", str(path), "--kind", "people", *option)
    assert not Client.objects.exists()
    assert not ImportJob.objects.exists()


def test_a_bad_policy_exits_1_from_the_shell_with_the_message(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "list.csv"
    path.write_text("email\nann@x.com\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portfolio.settings_test"}
    done = subprocess.run(
        [sys.executable, "manage.py", "import_file", str(path), "--kind", "people", "--policy", "sometimes"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1 and "“sometimes” is not an update policy" in done.stderr and done.stdout == ""
