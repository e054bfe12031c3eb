"""``manage.py send_due_reminders``: one reminder pass, run here and now, without Celery.

The same pass as the per-minute task: reminders of the follow-ups that came due are created and sent, each claimed
first, so running it while the workers run sends nothing twice. ``--digests`` also runs the digest pass.
"""

from django.core.management.base import BaseCommand

from crm import reminders


class Command(BaseCommand):
    help = (
        "Create and send the reminders of the follow-ups that are due, once, and print how many were sent and failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--digests", action="store_true", help="also send today's digests when it is time")

    def handle(self, *args, **options):
        result = reminders.reminders_send_due()
        self.stdout.write(
            f"Reminders: {result.sent} sent, {result.failed} failed, {result.retried} to retry, "
            f"{result.cancelled} no longer due."
        )
        if options["digests"]:
            digests = reminders.digests_send_due()
            self.stdout.write(f"Digests: {digests.sent} sent, {digests.failed} failed, {digests.retried} to retry.")
