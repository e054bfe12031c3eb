"""The archetypes of the synthetic portfolios (``seed_demo`` and ``generate_portfolio``): kinds of clients whose
demographics and buying habits go together, so that the persona builder has real groups to find.

Île-de-France retail managers buy software every two months, Lyon industry directors buy training twice a year,
southern engineers buy maintenance every quarter, and young freelancers are mostly prospects who never bought.
"""

from dataclasses import dataclass

from crm.models import Lifecycle


@dataclass(frozen=True)
class Archetype:
    """A kind of client: who they are and how they buy. ``typical`` is the share of clients drawn true to type on
    each demographic trait (the others get a random value), ``lifecycles`` the weights of their life stages."""

    share: int
    ages: tuple[int, int]
    female: float
    cities: tuple[str, ...]
    sector: str
    job_titles: tuple[str, ...]
    lifecycles: dict[str, int]
    days_between_orders: int  # 0: buys once at most
    category: str  # bought on most lines
    lines: tuple[int, int]  # lines per order
    units: tuple[int, int]  # units per line
    basket: float  # typical amount of an order, in EUR (generate_portfolio draws amounts, not lines)
    typical: float = 0.9
    won_lately: float = 0.25  # share of its clients won lately, who ordered once so far


ARCHETYPES = {
    "idf_retail_managers": Archetype(
        share=30,
        ages=(35, 44),
        female=0.6,
        cities=("Paris", "Paris", "Boulogne-Billancourt"),
        sector="Commerce de détail",
        job_titles=("Responsable de magasin", "Responsable achats", "Cheffe de rayon", "Responsable commerciale"),
        lifecycles={Lifecycle.CLIENT: 90, Lifecycle.TO_REACTIVATE: 6, Lifecycle.LOST: 4},
        days_between_orders=60,
        category="Logiciels",
        basket=100,
        lines=(1, 1),
        units=(1, 2),
    ),
    "lyon_industry_directors": Archetype(
        share=20,
        ages=(45, 54),
        female=0.25,
        cities=("Lyon", "Lyon", "Villeurbanne"),
        sector="Industrie",
        job_titles=("Directeur d'usine", "Directrice générale", "Directeur industriel", "Gérant"),
        lifecycles={Lifecycle.CLIENT: 88, Lifecycle.TO_REACTIVATE: 7, Lifecycle.LOST: 5},
        days_between_orders=180,
        won_lately=0.35,
        category="Formation",
        basket=450,
        lines=(1, 1),
        units=(1, 1),
    ),
    "young_freelancers": Archetype(
        share=36,
        ages=(25, 34),
        female=0.5,
        cities=("Bordeaux", "Nantes"),
        sector="Services aux entreprises",
        job_titles=("Consultant indépendant", "Consultante marketing", "Consultante RH", "Consultant web"),
        lifecycles={Lifecycle.PROSPECT: 78, Lifecycle.LOST: 19, Lifecycle.CLIENT: 3},
        days_between_orders=0,
        category="Matériel",
        basket=150,
        lines=(1, 1),
        units=(1, 1),
    ),
    "southern_engineers": Archetype(
        share=14,
        ages=(55, 64),
        female=0.3,
        cities=("Marseille", "Marseille", "Aix-en-Provence"),
        sector="Informatique",
        job_titles=("Ingénieur système", "Ingénieure réseau", "Ingénieur d'études"),
        lifecycles={Lifecycle.CLIENT: 90, Lifecycle.TO_REACTIVATE: 6, Lifecycle.LOST: 4},
        days_between_orders=90,
        category="Maintenance",
        basket=300,
        lines=(1, 2),
        units=(1, 1),
    ),
}
TRUE_TO_CATEGORY = 0.85  # share of an archetype's lines in its own category; the rest anywhere in the catalogue
