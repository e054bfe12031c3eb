"""The import_file command: one JSON object on stdout, a non-zero exit with the reason for a rejected file."""

import json

import pytest
from django.core.management import CommandError, call_command

from crm.models import Client


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
