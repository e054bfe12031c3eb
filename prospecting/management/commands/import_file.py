"""Import a file from the command line as the pages do: ``import_file PATH --kind people|purchases [--dry-run]
[--owner USERNAME] [--match-key email_linkedin|name_company|external_id] [--client-key email|external_id]
[--policy overwrite|fill_empty|never] [--policy FIELD=overwrite|fill_empty|never ...]``. Prints one JSON object
(created, updated, unchanged, errors with line and reason); a file that cannot be read, or a bad option, exits
non-zero with the reason on stderr. The apply runs here, in this process, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from prospecting import imports
from prospecting.models import ClientKey, ImportJob, ImportKind, ImportStatus, MatchKey, UnknownClients
from prospecting.readers import ImportFileError

# "email" is short for the default: the email, then the LinkedIn URL.
MATCH_KEY_ALIASES = {"email": MatchKey.EMAIL_LINKEDIN}


class Command(BaseCommand):
    help = "Import prospects, clients or purchases from a CSV or XLSX file; prints the outcome as JSON."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--kind", choices=ImportKind.values, required=True)
        parser.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
        parser.add_argument("--owner", help="username owning the new records")
        parser.add_argument("--create-unknown-clients", action="store_true", help="purchases: create unknown clients")
        parser.add_argument(
            "--match-key",
            choices=[*MatchKey.values, *MATCH_KEY_ALIASES],
            help="people: how existing people are recognised (email = email, then LinkedIn URL)",
        )
        parser.add_argument(
            "--client-key",
            choices=ClientKey.values,
            help="purchases: find the client by email or external id (default: guessed from the columns)",
        )
        parser.add_argument(
            "--policy",
            action="append",
            default=[],
            metavar="[FIELD=]POLICY",
            help="people: update policy (overwrite, fill_empty, never) of every field, or of FIELD; repeatable",
        )

    def handle(self, *args, path, kind, dry_run, owner, create_unknown_clients, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"{path}: no such file")
        if file.stat().st_size > settings.IMPORT_MAX_BYTES:
            raise CommandError(f"{path}: larger than IMPORT_MAX_BYTES ({settings.IMPORT_MAX_BYTES} bytes)")
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"--owner {owner}: no such user")
        job_options = {
            "owner_id": user.pk if user else None,
            "unknown_clients": UnknownClients.CREATE if create_unknown_clients else UnknownClients.REPORT,
            **_policies(options["policy"]),
        }
        if options["match_key"]:
            job_options["match_key"] = MATCH_KEY_ALIASES.get(options["match_key"], options["match_key"])
        if options["client_key"]:
            job_options["client_key"] = options["client_key"]
        try:
            imports.import_options_check(job_options)
        except ValueError as exc:  # an unknown field or policy
            raise CommandError(str(exc)) from exc
        try:
            job = imports.import_create(
                data=file.read_bytes(), filename=file.name, kind=kind, user=user, options=job_options
            )
            imports.import_preview(job=job)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        if not dry_run:
            # Applied here rather than by a worker: the command reports the outcome of the import it ran. Queued as
            # of now, as import_queue does: a recovery pass must not give up a job uploaded long ago (a large file).
            ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED, started_at=timezone.now())
            job = imports.import_apply(job_id=job.pk)
            if job.status != ImportStatus.APPLIED:
                raise CommandError(job.error)
        result = {
            "job": job.pk,
            "dry_run": dry_run,
            "created": job.created_count,
            "updated": job.updated_count,
            "unchanged": job.unchanged_count,
            "errors": [{"line": error["line"], "reason": error["reason"]} for error in job.errors],
        }
        self.stdout.write(json.dumps(result, ensure_ascii=False))


def _policies(values: list[str]) -> dict:
    """``["never", "email=overwrite"]`` -> ``{"policy": "never", "field_policies": {"email": "overwrite"}}``; the
    service checks the fields and policies (``ValueError``)."""
    found: dict = {}
    for value in values:
        name, separator, policy = value.rpartition("=")
        if separator and not name:
            raise CommandError(f"--policy {value}: give FIELD=POLICY or POLICY")
        if name:
            found.setdefault("field_policies", {})[name.strip()] = policy.strip()
        else:
            found["policy"] = policy.strip()
    return found
