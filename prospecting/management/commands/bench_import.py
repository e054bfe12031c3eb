"""Benchmark of a people import (prints figures, writes nothing that stays): a generated Waalaxy export of --rows
rows, --match percent of them existing clients of the configured database, previewed, applied, then undone.

The apply prints the time of each of its phases. Beside it, when django-import-export is installed (a
benchmark-only dependency), the same rows go through a ModelResource into Client inside a transaction that is rolled
back, and the ratio of the two apply times is printed, for each configuration named by --compare: ``fast`` (its
documented advice for large files: bulk mode, CachedInstanceLoader, no diff) and ``skip-unchanged`` (the same, but
leaving unchanged rows alone as this import does). --profile writes a cProfile of the apply.

The database must be migrated (the command refuses otherwise: the undo would fail and leave the rows behind).
"""

from __future__ import annotations

import cProfile
import csv
import io
import logging
import resource
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from crm.models import Client, ClientChange
from prospecting import imports
from prospecting.models import ImportJob, ImportStatus

HEADER = [
    "firstName",
    "lastName",
    "linkedinUrl",
    "proEmail",
    "company_name",
    "job_title",
    "location",
    "prospectList",
    "connectionRequestDate",
    "connectedAt",
    "messageReplied",
]
# The client fields of the file, imported by django-import-export under the names of the model.
COMPARED_FIELDS = ("email", "first_name", "last_name", "company", "job_title", "linkedin_url", "source")


class Command(BaseCommand):
    help = "Time the preview, apply and undo of a generated Waalaxy import; compare with django-import-export."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--match", type=int, default=30, help="percent of rows matching existing clients")
        parser.add_argument(
            "--compare-rows",
            type=int,
            default=0,
            help="rows to run through django-import-export (default: all); fewer are timed and scaled up linearly",
        )
        parser.add_argument("--profile", default="", help="write a cProfile of the apply to this file")
        parser.add_argument(
            "--compare",
            default="fast",
            help="django-import-export configurations to time, comma separated: fast, skip-unchanged (or none)",
        )

    def handle(self, *args, rows, match, compare_rows, profile, compare, **options):
        _refuse_unapplied_migrations()
        matched = rows * match // 100
        existing = list(
            Client.objects.exclude(email="").order_by("pk").values_list("email", "first_name", "last_name")[:matched]
        )
        if len(existing) < matched:
            raise CommandError(f"the database has {len(existing)} clients with an email, {matched} are needed")
        data, records = _waalaxy_file(existing, rows)
        self.stdout.write(f"file: {rows} rows ({matched} existing clients), {len(data) / 1e6:.1f} MB")
        bench_started = timezone.now()
        job = imports.import_create(data=data, filename="bench.csv", kind="people", user=None)
        started = time.monotonic()
        outcome = imports.import_preview(job=job)
        preview = time.monotonic() - started
        self.stdout.write(f"preview: {preview:.1f} s {outcome.as_dict()}")
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
        # The apply logs the time of each of its phases.
        handler = logging.StreamHandler(self.stdout)
        handler.setFormatter(logging.Formatter("  %(message)s"))
        phases = logging.getLogger(imports.__name__)
        phases.addHandler(handler)
        phases.setLevel(logging.INFO)
        phases.propagate = False
        profiler = cProfile.Profile() if profile else None
        started = time.monotonic()
        if profiler:
            profiler.enable()
        job = imports.import_apply(job_id=job.pk)
        apply = time.monotonic() - started
        phases.removeHandler(handler)
        phases.propagate = True
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        self.stdout.write(f"apply: {apply:.1f} s, status {job.status} {job.error}")
        started = time.monotonic()
        if job.status == ImportStatus.APPLIED:
            imports.import_undo(job_id=job.pk, user=None)
        self.stdout.write(f"undo: {time.monotonic() - started:.1f} s")
        job.delete()
        # The history rows of the apply and of the undo on existing clients go too: the portfolio is left as found.
        emails = [email for email, _first, _last in existing]
        for start in range(0, len(emails), 5000):
            ClientChange.objects.filter(
                client__email__in=emails[start : start + 5000],
                user=None,
                changed_at__gte=bench_started,
                field__in=imports.UPDATABLE_FIELDS,
            ).delete()
        self.stdout.write(f"memory (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        configs = [name for name in compare.split(",") if name and name != "none"]
        if configs:
            self._compare(records, apply, compare_rows, configs)

    def _compare(self, records: list[dict], apply: float, compare_rows: int, configs: list[str]) -> None:
        try:
            from import_export import instance_loaders, resources
        except ImportError:
            self.stdout.write(
                "django-import-export is not installed: pip install django-import-export==4.4.3 to compare"
            )
            return
        import tablib

        # Its documentation's advice for large files (bulk_import.rst, options.py): bulk mode, one query for the
        # existing rows (CachedInstanceLoader), no diff of each row. The fastest honest configuration, so the ratio
        # printed first is the least flattering one.
        class FastClientResource(resources.ModelResource):
            class Meta:
                model = Client
                import_id_fields = ("email",)
                fields = COMPARED_FIELDS
                use_bulk = True
                batch_size = 2000
                skip_diff = True
                skip_html_diff = True
                instance_loader_class = instance_loaders.CachedInstanceLoader

        # The same, skipping unchanged rows as this import does (which needs the diff of each row).
        class SkipUnchangedClientResource(resources.ModelResource):
            class Meta:
                model = Client
                import_id_fields = ("email",)
                fields = COMPARED_FIELDS
                use_bulk = True
                batch_size = 2000
                skip_unchanged = True
                skip_html_diff = True
                instance_loader_class = instance_loaders.CachedInstanceLoader

        resources_by_name = {"fast": FastClientResource, "skip-unchanged": SkipUnchangedClientResource}
        # A subset keeps the same share of existing clients as the whole file (they come first in it).
        subset = records
        if 0 < compare_rows < len(records):
            step = len(records) / compare_rows
            subset = [records[int(index * step)] for index in range(compare_rows)]
        dataset = tablib.Dataset(headers=list(records[0]))
        for record in subset:
            dataset.append(list(record.values()))
        for name in configs:
            started = time.monotonic()
            with transaction.atomic():
                result = resources_by_name[name]().import_data(dataset, dry_run=False, use_transactions=False)
                transaction.set_rollback(True)
            measured = time.monotonic() - started
            totals = dict(result.totals)
            if len(subset) == len(records):
                self.stdout.write(
                    f"django-import-export ({name}): {measured:.1f} s ({totals}), rolled back; "
                    f"ratio {measured / apply:.1f}x"
                )
                continue
            other = measured * len(records) / len(subset)
            self.stdout.write(
                f"django-import-export ({name}): {measured:.1f} s for {len(subset)} of the {len(records)} rows "
                f"({totals}), rolled back; extrapolated to {len(records)} rows: {other:.0f} s; "
                f"ratio {other / apply:.1f}x"
            )


def _refuse_unapplied_migrations() -> None:
    # The undo deletes clients through every relation the code knows: a table missing from the database would make
    # it fail, leaving the benchmark's rows behind.
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _backwards in pending)
        raise CommandError(f"the database has unapplied migrations ({names}): run migrate first")


def _waalaxy_file(existing: list[tuple[str, str, str]], rows: int) -> tuple[bytes, list[dict]]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    records = []
    for index in range(rows):
        if index < len(existing):
            email, first, last = existing[index]
        else:
            email, first, last = f"bench{index}@bench.invalid", f"First{index}", f"Last{index}"
        slug = f"bench-{index}"
        writer.writerow(
            [first, last, f"https://www.linkedin.com/in/{slug}", email, f"Company {index % 5000}", "Buyer"]
            + ["Lyon, Auvergne-Rhône-Alpes, France", "Bench list", "2024-03-01", f"2024-03-0{2 + index % 7}"]
            + ["true" if index % 3 == 0 else "false"]
        )
        records.append(
            {
                "email": email,
                "first_name": first,
                "last_name": last,
                "company": f"Company {index % 5000}",
                "job_title": "Buyer",
                "linkedin_url": f"https://www.linkedin.com/in/{slug}",
                "source": "social_selling",
            }
        )
    return out.getvalue().encode(), records
