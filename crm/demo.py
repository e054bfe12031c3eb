"""A realistic French demo portfolio to try the product with: accounts for each role, clients at every stage of
their life, three years of orders, exchanges, follow-ups due today, personas and saved segments.

Every client is drawn from one of the archetypes of ``crm.archetypes`` (Île-de-France retail managers buying
software every two months, Lyon industry directors buying training twice a year, southern engineers buying
maintenance every quarter, young freelancers who mostly never bought), with some noise, so that a persona study
finds them again.

Everything is drawn from one seed (Faker ``fr_FR`` and ``random.Random``), so a seed gives the same portfolio on the
same day; dates are counted back from today. Rows are written with ``bulk_create`` in batches, then the derived
dates are computed once by ``client_refresh_activity``.
"""

from __future__ import annotations

import random
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from faker import Faker

from crm import roles
from crm.archetypes import ARCHETYPES, TRUE_TO_CATEGORY, Archetype
from crm.generate import CITIES_BY_COUNTRY, COUNTRY_WEIGHTS, JOB_TITLES, SECTORS, SOURCE_WEIGHTS
from crm.models import (
    Category,
    Client,
    FollowUp,
    FollowUpOrigin,
    FollowUpStatus,
    Interaction,
    InteractionKind,
    Lifecycle,
    Persona,
    Product,
    Purchase,
    PurchaseLine,
    Segment,
    Stage,
    Tag,
)
from crm.services import client_refresh_activity

BATCH_SIZE = 1000
HISTORY_DAYS = 3 * 365
# Cost of goods: a share of each purchase's amount, unknown for some purchases.
COST_SHARE_PERCENT = (55, 75)
UNKNOWN_COST_SHARE = 0.15

DEMO_USERS = [
    ("admin", roles.ADMIN, "Hélène", "Marchand"),
    ("manager", roles.MANAGER, "Martine", "Lefèvre"),
    ("rep1", roles.REP, "Julien", "Moreau"),
    ("rep2", roles.REP, "Sophie", "Garnier"),
    ("rep3", roles.REP, "Karim", "Benali"),
]

CATALOGUE = {
    "Conseil": [("Audit commercial", 1800), ("Accompagnement stratégique (jour)", 950), ("Atelier d'idéation", 1200)],
    "Formation": [("Formation prospection", 690), ("Formation négociation", 790), ("Coaching individuel", 350)],
    "Logiciels": [("Licence CRM (mois)", 49), ("Module e-mailing (mois)", 29), ("Pack intégrations", 390)],
    "Matériel": [("Casque sans fil", 129), ("Écran 27 pouces", 289), ("Station d'accueil", 179)],
    "Maintenance": [
        ("Contrat de maintenance annuel", 1490),
        ("Intervention sur site", 320),
        ("Support prioritaire", 90),
    ],
}
TAGS = ["VIP", "Salon 2024", "Newsletter", "Partenaire", "Export", "PME", "Grand compte", "Ambassadeur"]
PERSONAS = [
    {
        "name": "Camille",
        "bio": "Dirige une PME de services de 25 personnes à Lyon, décide seule et vite.",
        "goals": "Faire croître le chiffre d'affaires sans recruter ; garder ses meilleurs clients.",
        "obstacles": "Manque de temps, méfiance envers les outils compliqués, budget serré en fin d'année.",
        "expectations": "Un interlocuteur unique, des résultats mesurables en trois mois, des prix clairs.",
        "demographics": "40-55 ans, dirigeante ou dirigeant, secteur des services.",
        "behaviour": "Lit ses e-mails le soir, répond aux recommandations de pairs, vient aux salons régionaux.",
        "job_titles": {"Gérant", "Directrice générale", "Fondateur", "Associée"},
    },
    {
        "name": "Julien",
        "bio": "DSI d'une ETI industrielle, pilote les projets informatiques et les achats de logiciels.",
        "goals": "Réduire le nombre d'outils, sécuriser les données, livrer les projets dans les délais.",
        "obstacles": "Cycles de validation longs, dette technique, sollicitations commerciales trop nombreuses.",
        "expectations": "Une documentation sérieuse, un essai gratuit, des références dans son secteur.",
        "demographics": "35-50 ans, ingénieur, industrie et informatique.",
        "behaviour": "Actif sur LinkedIn, assiste aux webinaires techniques, compare trois offres minimum.",
        "job_titles": {"DSI", "Chef de projet", "Ingénieur système", "Ingénieure réseau", "Ingénieur d'études"},
    },
    {
        "name": "Nathalie",
        "bio": "Responsable achats dans la distribution, négocie les contrats cadres annuels.",
        "goals": "Obtenir les meilleures conditions, limiter le nombre de fournisseurs, tenir les délais.",
        "obstacles": "Pression sur les prix, validation par la direction financière, appels d'offres rigides.",
        "expectations": "Des remises sur volume, une facturation simple, un suivi réactif des commandes.",
        "demographics": "30-50 ans, achats, commerce et distribution.",
        "behaviour": "Répond au téléphone plutôt qu'aux e-mails, planifie ses achats au trimestre.",
        "job_titles": {"Responsable achats", "Acheteur", "Directrice financière"},
    },
]
SEGMENTS = [
    ("À réactiver", "Clients sans commande depuis plus d'un an.", {"lifecycle": "to_reactivate"}),
    ("Comptes clés actifs", "Clients de rang A qui commandent encore.", {"tier": "A", "lifecycle": "client"}),
    ("Sans contact depuis 90 jours", "Personne ne leur a parlé depuis trois mois.", {"idle_days": "90"}),
    (
        "Prospects en proposition",
        "Prospects à qui une proposition a été faite.",
        {"lifecycle": "prospect", "stage": "proposal"},
    ),
]
# Key accounts, among the clients who ordered more than once, and how many times the usual units they buy.
KEY_ACCOUNT_SHARE = 0.1
KEY_ACCOUNT_UNITS = (2, 4)
PROSPECT_STAGES = {
    Stage.NEW: (30, 0, 1),
    Stage.CONTACTED: (20, 1, 2),
    Stage.CONNECTED: (15, 1, 3),
    Stage.ENGAGED: (15, 2, 4),
    Stage.MEETING: (10, 3, 5),
    Stage.PROPOSAL: (10, 3, 6),
}  # weight, then the fewest and most interactions logged at that stage


INTERACTION_SUBJECTS = {
    InteractionKind.CALL: ["Appel de découverte", "Point d'avancement", "Relance téléphonique", "Appel de suivi"],
    InteractionKind.EMAIL: [
        "Envoi de la proposition",
        "Relance devis",
        "Compte rendu de réunion",
        "Invitation webinaire",
    ],
    InteractionKind.MEETING: ["Rendez-vous de présentation", "Démonstration", "Revue annuelle", "Déjeuner d'affaires"],
    InteractionKind.LINKEDIN: ["Demande de connexion", "Message LinkedIn", "Commentaire sur une publication"],
}
INTERACTION_KIND_WEIGHTS = {
    InteractionKind.EMAIL: 35,
    InteractionKind.CALL: 30,
    InteractionKind.LINKEDIN: 20,
    InteractionKind.MEETING: 15,
}
INTERACTION_NOTES = [
    "Intéressé, attend un devis détaillé avant la fin du mois.",
    "Budget validé pour le prochain trimestre, à relancer en début de mois.",
    "Pas disponible, rappeler la semaine prochaine.",
    "Satisfait de la dernière commande, évoque un besoin en formation.",
    "Compare avec un concurrent, sensible au prix.",
    "Demande une démonstration pour son équipe.",
    "A transmis nos coordonnées à un confrère.",
    "Souhaite revoir les conditions de paiement.",
]
CLIENT_NOTES = [
    "Préfère être contacté le matin.",
    "Décision prise avec l'associé, prévoir deux interlocuteurs.",
    "Clôture budgétaire en septembre.",
    "Rencontré sur un salon, très réceptif.",
    "Exige des factures détaillées par service.",
]
FOLLOW_UP_TITLES = [
    "Relancer pour le devis",
    "Appeler pour une réactivation",
    "Préparer le rendez-vous",
    "Envoyer la proposition commerciale",
    "Prendre des nouvelles",
    "Proposer une démonstration",
]
SOURCE_DETAILS = {
    "networking": ["Salon des entrepreneurs Lyon", "Petit-déjeuner CCI", "Club d'affaires BNI"],
    "webinar": ["Webinaire « Fidéliser ses clients »", "Webinaire « Prospecter sur LinkedIn »"],
    "import": ["Fichier salon 2024", "Annuaire CCI"],
}


@dataclass
class DemoAccount:
    username: str
    role: str
    password: str | None  # None when an existing account kept its password


@dataclass
class _ClientPlan:
    archetype: str
    lifecycle: str
    stage: str
    order_days: list[int] = field(default_factory=list)  # days before today; the first is the last order
    interactions: int = 0
    created_days: int = 0
    key_account: bool = False  # buys for several sites: several times the units of its archetype


def demo_users_ensure(*, password: str | None = None) -> list[DemoAccount]:
    """Create the missing demo accounts with their role; with ``password``, every demo account gets it.

    A new account without ``password`` gets a random one, returned so that it can be shown once.
    """
    user_model = get_user_model()
    groups = {group.name: group for group in Group.objects.filter(name__in=roles.ROLES)}
    accounts = []
    for username, role, first_name, last_name in DEMO_USERS:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"first_name": first_name, "last_name": last_name, "email": f"{username}@example.com"},
        )
        new_password = password or (secrets.token_urlsafe(12) if created else None)
        if new_password:
            user.set_password(new_password)
        if role == roles.ADMIN:
            user.is_staff = True
        user.save()
        user.groups.add(groups[role])
        accounts.append(DemoAccount(username=username, role=role, password=new_password))
    return accounts


@transaction.atomic
def demo_portfolio_seed(*, clients: int, seed: int = 0) -> dict[str, int]:
    """Write the demo portfolio (the demo accounts must exist); returns how many rows of each kind were written."""
    builder = _DemoBuilder(seed=seed, today=timezone.localdate())
    return builder.build(clients)


def demo_client_archetypes(*, clients: int, seed: int = 0) -> list[str]:
    """The archetype each demo client was drawn from, in the order the clients were created (the demo accounts must
    exist): the plans are the first draws of the seed, so they are drawn again the same."""
    builder = _DemoBuilder(seed=seed, today=timezone.localdate())
    return [builder._plan().archetype for _ in range(clients)]


def _weighted(rng: random.Random, weights: dict) -> object:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(char if char.isalnum() else "-" for char in folded).strip("-")


class _DemoBuilder:
    """Draws the whole demo portfolio from one random generator, table by table, each written in bulk."""

    def __init__(self, *, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        # Costs of goods come from their own generator, so adding them changed none of the other draws.
        self.cost_rng = random.Random(f"{seed}-cost")
        self.fake = Faker("fr_FR")
        self.fake.seed_instance(seed)
        self.today = today
        self.now = timezone.now()
        user_model = get_user_model()
        usernames = [username for username, *_ in DEMO_USERS]
        users = {user.username: user for user in user_model.objects.filter(username__in=usernames)}
        self.reps = [users[name] for name in ("rep1", "rep2", "rep3")]
        self.manager = users["manager"]

    def build(self, count: int) -> dict[str, int]:
        products = self._catalogue()
        tags = self._tags()
        personas = self._personas()
        plans = [self._plan() for _ in range(count)]
        clients = self._clients(plans, personas)
        self._client_links(clients, plans, tags, products)
        purchases, lines = self._purchases(clients, plans, products)
        interactions = self._interactions(clients, plans)
        follow_ups = self._follow_ups(clients)
        segments = self._segments()
        client_refresh_activity()
        return {
            "clients": len(clients),
            "purchases": purchases,
            "purchase_lines": lines,
            "interactions": interactions,
            "follow_ups": follow_ups,
            "personas": len(personas),
            "segments": segments,
        }

    # Reference data -------------------------------------------------------------------------------------------------

    def _catalogue(self) -> list[Product]:
        Category.objects.bulk_create([Category(name=name) for name in CATALOGUE], ignore_conflicts=True)
        categories = {category.name: category for category in Category.objects.filter(name__in=CATALOGUE)}
        Product.objects.bulk_create(
            [
                Product(name=name, sku=f"DEMO-{_slug(name)}"[:64], category=categories[category], price=Decimal(price))
                for category, items in CATALOGUE.items()
                for name, price in items
            ],
            ignore_conflicts=True,
        )
        return list(Product.objects.filter(sku__startswith="DEMO-").select_related("category"))

    def _tags(self) -> list[Tag]:
        Tag.objects.bulk_create([Tag(name=name) for name in TAGS], ignore_conflicts=True)
        return list(Tag.objects.filter(name__in=TAGS))

    def _personas(self) -> list[Persona]:
        fields = ("name", "bio", "goals", "obstacles", "expectations", "demographics", "behaviour")
        return Persona.objects.bulk_create(Persona(**{key: persona[key] for key in fields}) for persona in PERSONAS)

    # Clients --------------------------------------------------------------------------------------------------------

    def _plan(self) -> _ClientPlan:
        """Archetype, lifecycle, stage and the days of orders and exchanges of one client, consistent together."""
        rng = self.rng
        name = _weighted(rng, {name: archetype.share for name, archetype in ARCHETYPES.items()})
        archetype = ARCHETYPES[name]
        lifecycle = _weighted(rng, archetype.lifecycles)
        if lifecycle == Lifecycle.PROSPECT:
            stage = _weighted(rng, {stage: weight for stage, (weight, _, _) in PROSPECT_STAGES.items()})
            _, fewest, most = PROSPECT_STAGES[stage]
            return _ClientPlan(
                name, lifecycle, stage, interactions=rng.randint(fewest, most), created_days=rng.randint(3, 700)
            )
        once = archetype.days_between_orders == 0
        if lifecycle == Lifecycle.LOST and rng.random() < (0.9 if once else 0.2):
            # A prospect who said no: never bought.
            return _ClientPlan(
                name, lifecycle, Stage.LOST, interactions=rng.randint(1, 4), created_days=rng.randint(120, 1000)
            )

        if lifecycle == Lifecycle.CLIENT:
            last_days = rng.randint(0, 300 if once else min(300, archetype.days_between_orders + 20))
            interactions = rng.randint(1, 3) if once else rng.randint(2, 10)
        elif lifecycle == Lifecycle.TO_REACTIVATE:
            last_days = rng.randint(400, 700)
            interactions = rng.randint(1, 4)
        else:
            last_days = rng.randint(760, HISTORY_DAYS - 5)
            interactions = rng.randint(1, 3)
        days = [last_days]
        # Some clients were won recently and ordered once so far; lapsed ones had stopped after a while.
        if not once and rng.random() > archetype.won_lately:
            span = HISTORY_DAYS - last_days if lifecycle == Lifecycle.CLIENT else rng.randint(60, 400)
            first_days = min(last_days + rng.randint(span // 2, span), HISTORY_DAYS)
            interval = archetype.days_between_orders * rng.uniform(0.75, 1.3)
            orders = max(2, round((first_days - last_days) / interval) + 1)
            step = (first_days - last_days) / (orders - 1)
            days.append(first_days)
            days += [
                min(max(round(last_days + step * number + rng.randint(-10, 10)), last_days), first_days)
                for number in range(1, orders - 1)
            ]
        stage = Stage.LOST if lifecycle == Lifecycle.LOST else Stage.WON
        return _ClientPlan(
            name,
            lifecycle,
            stage,
            key_account=len(days) > 1 and rng.random() < KEY_ACCOUNT_SHARE,
            order_days=days,
            interactions=interactions,
            created_days=max(days) + rng.randint(10, 90),
        )

    def _clients(self, plans: list[_ClientPlan], personas: list[Persona]) -> list[Client]:
        rng, fake = self.rng, self.fake
        personas_by_title = {
            title: persona for persona, data in zip(personas, PERSONAS, strict=True) for title in data["job_titles"]
        }
        emails: set[str] = set()
        clients = []
        for plan in plans:
            traits = self._demographics(ARCHETYPES[plan.archetype])
            gender, job_title = traits["gender"], traits["job_title"]
            first_name = fake.first_name_male() if gender == "male" else fake.first_name_female()
            last_name = fake.last_name()
            company = fake.company()
            email = f"{_slug(first_name)}.{_slug(last_name)}@{_slug(company)[:30]}.fr"
            while email in emails:
                email = email.replace("@", f"{rng.randint(1, 99)}@", 1)
            emails.add(email)
            source = _weighted(rng, SOURCE_WEIGHTS)
            clients.append(
                Client(
                    first_name=first_name,
                    last_name=last_name,
                    email=email,
                    phone=fake.phone_number(),
                    linkedin_url=(
                        f"https://www.linkedin.com/in/{_slug(first_name)}-{_slug(last_name)}-{rng.randint(100, 999)}"
                        if rng.random() < 0.7
                        else ""
                    ),
                    company=company,
                    **traits,
                    lifecycle=plan.lifecycle,
                    stage=plan.stage,
                    owner=rng.choice(self.reps) if rng.random() < 0.96 else None,
                    tier=self._tier(plan),
                    source=source,
                    source_detail=rng.choice(SOURCE_DETAILS.get(source, [""])),
                    persona=personas_by_title.get(job_title) if rng.random() < 0.7 else None,
                    marketing_consent=rng.random() < 0.6,
                    do_not_contact=rng.random() < 0.03,
                    notes=rng.choice(CLIENT_NOTES) if rng.random() < 0.3 else "",
                    created_at=self._moment(plan.created_days),
                )
            )
        clients = Client.objects.bulk_create(clients, batch_size=BATCH_SIZE)
        referred = []
        for position, client in enumerate(clients[1:], start=1):
            if client.source == "referral":
                client.referred_by = clients[rng.randrange(position)]
                referred.append(client)
        Client.objects.bulk_update(referred, ["referred_by"], batch_size=BATCH_SIZE)
        return clients

    def _demographics(self, archetype: Archetype) -> dict:
        """Gender, job, sector, city, country and birth year: true to the archetype on most traits, random on some."""
        rng = self.rng

        def typical() -> bool:
            return rng.random() < archetype.typical

        female = archetype.female * 0.96
        gender = rng.choices(["female", "male", "other"], weights=[female, 0.96 - female, 0.04])[0]
        if typical():
            country, city = "France", rng.choice(archetype.cities)
        else:
            country = _weighted(rng, COUNTRY_WEIGHTS)
            cities = CITIES_BY_COUNTRY[country]
            city = rng.choices(cities, weights=[1 / rank for rank in range(1, len(cities) + 1)])[0]
        age = rng.randint(*archetype.ages) if typical() else rng.randint(25, 70)
        return {
            "gender": gender,
            "job_title": rng.choice(archetype.job_titles) if typical() else rng.choice(JOB_TITLES),
            "sector": archetype.sector if typical() else _weighted(rng, SECTORS),
            "city": city,
            "country": country,
            "birth_year": self.today.year - age if rng.random() < 0.92 else None,
        }

    def _tier(self, plan: _ClientPlan) -> str:
        orders = len(plan.order_days)
        if plan.key_account:
            return "A"
        if plan.archetype == "southern_engineers" and orders > 1:
            return "A"
        if orders >= 12 or plan.archetype == "lyon_industry_directors" and orders > 1:
            return "B" if self.rng.random() < 0.85 else "A"
        if plan.stage in (Stage.MEETING, Stage.PROPOSAL) and self.rng.random() < 0.5:
            return "B"
        return "C"

    def _client_links(
        self, clients: list[Client], plans: list[_ClientPlan], tags: list[Tag], products: list[Product]
    ) -> None:
        rng = self.rng
        categories = sorted({product.category for product in products}, key=lambda category: category.name)
        tag_links, category_links = [], []
        for client, plan in zip(clients, plans, strict=True):
            for tag in rng.sample(tags, k=rng.choices([0, 1, 2, 3], weights=[40, 35, 18, 7])[0]):
                tag_links.append(Client.tags.through(client_id=client.pk, tag_id=tag.pk))
            own = ARCHETYPES[plan.archetype].category
            wanted = {category for category in categories if category.name == own and rng.random() < 0.6}
            wanted.update(rng.sample(categories, k=rng.choice([0, 0, 1])))
            for category in sorted(wanted, key=lambda category: category.name):
                category_links.append(Client.preferred_categories.through(client_id=client.pk, category_id=category.pk))
        Client.tags.through.objects.bulk_create(tag_links, batch_size=BATCH_SIZE)
        Client.preferred_categories.through.objects.bulk_create(category_links, batch_size=BATCH_SIZE)

    # Activity -------------------------------------------------------------------------------------------------------

    def _purchases(self, clients: list[Client], plans: list[_ClientPlan], products: list[Product]) -> tuple[int, int]:
        rng = self.rng
        purchases, baskets = [], []
        for client, plan in zip(clients, plans, strict=True):
            if not plan.order_days:
                continue
            archetype = ARCHETYPES[plan.archetype]
            for days in plan.order_days:
                basket = [
                    (
                        product,
                        rng.randint(*archetype.units) * (rng.randint(*KEY_ACCOUNT_UNITS) if plan.key_account else 1),
                    )
                    for product in self._basket_products(archetype, products, rng.randint(*archetype.lines))
                ]
                purchased_on = self.today - timedelta(days=days)
                amount = sum((product.price * units for product, units in basket), Decimal("0"))
                purchases.append(
                    Purchase(
                        client=client,
                        purchased_on=purchased_on,
                        amount=amount,
                        cost=self._cost_of_goods(amount),
                        created_at=self._moment(days),
                    )
                )
                baskets.append(basket)
        # Order references follow the dates, as an invoicing system would number them.
        order = sorted(range(len(purchases)), key=lambda index: purchases[index].purchased_on)
        for number, index in enumerate(order, start=1):
            purchases[index].reference = f"CMD-{number:06d}"
        purchases = Purchase.objects.bulk_create(purchases, batch_size=BATCH_SIZE)
        lines = [
            PurchaseLine(purchase=purchase, product=product, quantity=units, unit_price=product.price)
            for purchase, basket in zip(purchases, baskets, strict=True)
            for product, units in basket
        ]
        PurchaseLine.objects.bulk_create(lines, batch_size=BATCH_SIZE)
        return len(purchases), len(lines)

    def _basket_products(self, archetype: Archetype, products: list[Product], count: int) -> list[Product]:
        """Distinct products, mostly in the archetype's category; the cheaper ones more often, so that each product
        brings in about the same revenue."""
        own = [product for product in products if product.category.name == archetype.category]
        chosen: list[Product] = []
        while len(chosen) < count:
            among = own if self.rng.random() < TRUE_TO_CATEGORY else products
            product = self.rng.choices(among, weights=[1 / float(product.price) for product in among])[0]
            if product not in chosen:
                chosen.append(product)
        return chosen

    def _cost_of_goods(self, amount: Decimal) -> Decimal | None:
        """55 to 75 % of the amount; unknown for about one purchase in seven, as when a supplier's invoice is missing."""
        if self.cost_rng.random() < UNKNOWN_COST_SHARE:
            return None
        share = Decimal(self.cost_rng.randint(COST_SHARE_PERCENT[0], COST_SHARE_PERCENT[1])) / 100
        return (amount * share).quantize(Decimal("0.01"))

    def _interactions(self, clients: list[Client], plans: list[_ClientPlan]) -> int:
        rng = self.rng
        interactions = []
        for client, plan in zip(clients, plans, strict=True):
            # Lapsed clients were last contacted around their last order; the others any time since they arrived.
            lapsed = plan.lifecycle in (Lifecycle.TO_REACTIVATE, Lifecycle.LOST) and plan.order_days
            most_recent = max(min(plan.order_days) - 45, 0) if lapsed else 0
            for _ in range(plan.interactions):
                kind = _weighted(rng, INTERACTION_KIND_WEIGHTS)
                days = int(most_recent + (plan.created_days - most_recent) * rng.random() ** 2)
                interactions.append(
                    Interaction(
                        client=client,
                        kind=kind,
                        direction="inbound" if rng.random() < 0.25 else "outbound",
                        occurred_at=self._moment(days),
                        subject=rng.choice(INTERACTION_SUBJECTS[kind]),
                        body=rng.choice(INTERACTION_NOTES),
                        user=client.owner or rng.choice(self.reps),
                        created_at=self._moment(days),
                    )
                )
        Interaction.objects.bulk_create(interactions, batch_size=BATCH_SIZE)
        return len(interactions)

    def _follow_ups(self, clients: list[Client]) -> int:
        """For each rep: follow-ups due today, overdue, coming up, and a few already done."""
        rng = self.rng
        now = timezone.localtime(self.now)
        start_of_today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        follow_ups = []
        for rep in self.reps:
            # Follow-ups go first to the clients worth chasing: proposals, meetings, clients to reactivate.
            owned = [client for client in clients if client.owner_id == rep.pk]
            hot = [client for client in owned if client.stage in (Stage.PROPOSAL, Stage.MEETING)]
            hot += [client for client in owned if client.lifecycle == Lifecycle.TO_REACTIVATE]
            candidates = (hot + owned) or clients
            schedule = (
                [("today", start_of_today + timedelta(hours=rng.randint(8, 18), minutes=rng.choice([0, 30]))) for _ in range(3)]
                + [("overdue", now - timedelta(days=rng.randint(1, 14), hours=rng.randint(0, 8))) for _ in range(3)]
                + [("upcoming", start_of_today + timedelta(days=rng.randint(1, 21), hours=rng.randint(8, 18))) for _ in range(5)]
                + [("done", now - timedelta(days=rng.randint(2, 60))) for _ in range(4)]
            )  # fmt: skip
            for number, (when, due_at) in enumerate(schedule):
                done = when == "done"
                follow_ups.append(
                    FollowUp(
                        client=candidates[number % len(candidates)],
                        assignee=rep,
                        due_at=due_at,
                        title=rng.choice(FOLLOW_UP_TITLES),
                        status=FollowUpStatus.DONE if done else FollowUpStatus.OPEN,
                        origin=FollowUpOrigin.MANUAL,
                        created_by=rep if rng.random() < 0.7 else self.manager,
                        created_at=min(due_at, now) - timedelta(days=rng.randint(1, 10)),
                        completed_at=due_at + timedelta(hours=2) if done else None,
                    )
                )
        FollowUp.objects.bulk_create(follow_ups, batch_size=BATCH_SIZE)
        return len(follow_ups)

    def _segments(self) -> int:
        created = Segment.objects.bulk_create(
            [
                Segment(name=name, description=description, filters=filters, created_by=self.manager)
                for name, description, filters in SEGMENTS
            ],
            ignore_conflicts=True,
        )
        return len(created)

    def _moment(self, days_ago: int) -> datetime:
        """A working-hours moment ``days_ago`` days before today, never in the future."""
        day = self.today - timedelta(days=days_ago)
        moment = timezone.make_aware(
            datetime.combine(day, time(self.rng.randint(8, 18), self.rng.choice([0, 15, 30, 45])))
        )
        return min(moment, self.now - timedelta(minutes=5))
