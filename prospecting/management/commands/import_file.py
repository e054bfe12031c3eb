"""Import a file from the command line as the pages do: ``import_file PATH --kind people|purchases [--dry-run]
[--owner USERNAME]``. Prints one JSON object (created, updated, unchanged, errors with line and reason); a file that
cannot be read exits non-zero with the reason on stderr. The apply runs here, in this process, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from prospecting import imports
from prospecting.models import ImportJob, ImportKind, ImportStatus, UnknownClients
from prospecting.readers import ImportFileError


class Command(BaseCommand):
    help = "Import prospects, clients or purchases from a CSV or XLSX file; prints the outcome as JSON."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--kind", choices=ImportKind.values, required=True)
        parser.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
        parser.add_argument("--owner", help="username owning the new records")
        parser.add_argument("--create-unknown-clients", action="store_true", help="purchases: create unknown clients")

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
        unknown = UnknownClients.CREATE if create_unknown_clients else UnknownClients.REPORT
        try:
            job = imports.import_create(
                data=file.read_bytes(),
                filename=file.name,
                kind=kind,
                user=user,
                options={"owner_id": user.pk if user else None, "unknown_clients": unknown},
            )
            imports.import_preview(job=job)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        if not dry_run:
            # Applied here rather than by a worker: the command reports the outcome of the import it ran.
            ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
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
