"""``manage.py seed_demo``: the demo accounts and, on an empty portfolio, a realistic French demo portfolio."""

from django.core.management.base import BaseCommand, CommandError

from crm.demo import demo_portfolio_seed, demo_users_ensure
from crm.models import Client


class Command(BaseCommand):
    help = (
        "Create the demo accounts (admin, manager, rep1, rep2, rep3) and print their passwords, then fill an empty "
        "portfolio with demo clients, orders, exchanges, follow-ups, personas and segments. A portfolio that already "
        "holds clients is left as it is."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password", help="password for every demo account (reset on existing ones); random when omitted"
        )
        parser.add_argument("--clients", type=int, default=2000, help="number of demo clients (default 2000)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same portfolio)")

    def handle(self, *args, **options):
        if options["clients"] < 1:
            raise CommandError("--clients must be at least 1.")
        accounts = demo_users_ensure(password=options["password"])
        self.stdout.write("Demo accounts (username / password):")
        for account in accounts:
            password = account.password or "(existing account, password unchanged)"
            self.stdout.write(f"  {account.username} / {password}  [{account.role}]")

        if Client.objects.exists():
            self.stdout.write("The portfolio already holds clients: no demo data added.")
            return
        counts = demo_portfolio_seed(clients=options["clients"], seed=options["seed"])
        summary = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo portfolio created: {summary}."))
