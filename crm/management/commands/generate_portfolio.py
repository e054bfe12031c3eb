"""``manage.py generate_portfolio``: synthetic clients, orders and interactions at benchmark scale."""

from django.core.management.base import BaseCommand, CommandError

from crm.generate import BATCH_SIZE, INTERACTIONS_PER_CLIENT, portfolio_generate


class Command(BaseCommand):
    help = (
        "Add synthetic clients with skewed orders over three years, interactions and tags, fast enough for "
        "a million clients and ten million orders (COPY on PostgreSQL). Tables are locked during the load."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, required=True, help="number of clients to add")
        parser.add_argument("--orders", type=int, required=True, help="number of orders to spread over them")
        parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same portfolio)")
        parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="rows per COPY or insert batch")
        parser.add_argument(
            "--interactions",
            type=float,
            default=INTERACTIONS_PER_CLIENT,
            help="average number of interactions per client",
        )
        parser.add_argument("--lines", action="store_true", help="also write one purchase line per order")

    def handle(self, *args, **options):
        if options["clients"] < 1 or options["orders"] < 0 or options["batch"] < 1:
            raise CommandError("--clients and --batch must be at least 1, --orders at least 0.")
        report = portfolio_generate(
            clients=options["clients"],
            orders=options["orders"],
            seed=options["seed"],
            batch=options["batch"],
            lines=options["lines"],
            interactions_per_client=options["interactions"],
            log=self.stdout.write,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.clients} clients, {report.orders} orders, {report.lines} purchase lines, "
                f"{report.interactions} interactions, {report.tag_links} tag links "
                f"in {sum(report.timings.values()):.1f} s."
            )
        )
