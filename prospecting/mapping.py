"""Which CRM field each column of an imported file feeds, guessed from its name, and the conversion of one row.

``guess_mapping(header, target="client")`` proposes ``{column: field or None}`` for a contact list,
``target="purchase"`` for a purchase history; the admin reviews it before the import runs. Names are compared in
French or English, without accents, case, punctuation or camelCase (``Prénom``, ``first_name``, ``firstName`` are
one name). A column whose whole name is a known synonym wins over one that merely contains it (``E-mail`` over
``E-mail perso``), a longer synonym wins over a shorter one (``Nom de l'entreprise`` is the company, not the last
name), then the leftmost column. No field is given two columns, so no value silently overwrites another.

``convert_record(record, mapping)`` turns one row into typed field values and a list of :class:`CellError`, using
the parsers of ``prospecting.validation``; a row with errors is reported, never half-imported by this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from django.utils.translation import gettext_lazy as _

from prospecting.validation import (
    CellError,
    InvalidValue,
    fold,
    parse_amount,
    parse_birth_year,
    parse_date,
    parse_email,
    parse_int,
    parse_linkedin_url,
    parse_phone,
    parse_tags,
    parse_text,
)

Target = Literal["client", "purchase"]


@dataclass(frozen=True)
class FieldSpec:
    """A field an import can fill: how to read its cells and the column names that usually hold it.

    ``exact_only`` synonyms are too short or too vague to be recognised inside a longer name (``nom`` is in
    ``nom de l'entreprise``, ``client`` in ``nom du client``).
    """

    name: str
    label: Any
    parse: Callable[[str], Any]
    synonyms: tuple[str, ...]
    exact_only: tuple[str, ...] = ()
    max_length: int | None = None


def _text(max_length: int | None) -> Callable[[str], str | None]:
    return partial(parse_text, max_length=max_length)


# Quantities of one order line above this are typing errors (and beyond a million the line's amount may not fit).
MAX_QUANTITY = 1_000_000

# The client's number in a shop or invoicing tool, in a contact list or a purchase history.
_EXTERNAL_ID_SYNONYMS = (
    "id client",
    "client id",
    "customer id",
    "identifiant client",
    "numero client",
    "numero de client",
    "n client",
    "no client",
    "code client",
    "ref client",
    "reference client",
    "client number",
    "customer number",
    "external id",
    "id externe",
    "identifiant externe",
)

CLIENT_FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec(
            "first_name",
            _("first name"),
            _text(150),
            ("prenom", "first name", "firstname", "given name", "forename"),
            max_length=150,
        ),
        FieldSpec(
            "last_name",
            _("last name"),
            _text(150),
            ("nom de famille", "last name", "lastname", "surname", "family name", "nom patronymique"),
            exact_only=("nom", "nom contact"),
            max_length=150,
        ),
        FieldSpec(
            "email",
            _("email"),
            parse_email,
            ("email", "e mail", "courriel", "adresse email", "adresse e mail", "adresse mail", "email address"),
            exact_only=("mail",),
            max_length=254,
        ),
        FieldSpec(
            "phone",
            _("phone"),
            parse_phone,
            ("telephone", "phone", "mobile", "portable", "phone number", "numero de telephone", "gsm", "cellphone"),
            exact_only=("tel", "tel portable", "tel mobile", "tel fixe"),
            max_length=40,
        ),
        FieldSpec(
            "company",
            _("company"),
            _text(200),
            (
                "societe",
                "entreprise",
                "company",
                "company name",
                "organisation",
                "organization",
                "raison sociale",
                "employeur",
                "employer",
                "nom de l entreprise",
                "nom entreprise",
            ),
            max_length=200,
        ),
        FieldSpec(
            "job_title",
            _("job title"),
            _text(200),
            (
                "poste",
                "fonction",
                "job title",
                "jobtitle",
                "intitule du poste",
                "titre du poste",
                "position",
                "occupation",
            ),
            exact_only=("job", "role", "titre", "title"),
            max_length=200,
        ),
        FieldSpec(
            "sector",
            _("sector"),
            _text(120),
            ("secteur", "secteur d activite", "industry", "sector", "industrie", "activite"),
            max_length=120,
        ),
        FieldSpec("city", _("city"), _text(120), ("ville", "city", "town", "localite", "commune"), max_length=120),
        FieldSpec("country", _("country"), _text(120), ("pays", "country"), max_length=120),
        FieldSpec(
            "linkedin_url",
            _("LinkedIn URL"),
            parse_linkedin_url,
            ("profil linkedin", "linkedin url", "url linkedin", "linkedin profile", "lien linkedin"),
            # Alone, since "Email LinkedIn" holds an email address.
            exact_only=("linkedin",),
            max_length=255,
        ),
        FieldSpec(
            "external_id",
            _("external id (client number)"),
            _text(64),
            _EXTERNAL_ID_SYNONYMS,
            max_length=64,
        ),
        FieldSpec(
            "birth_year",
            _("birth year"),
            parse_birth_year,
            ("annee de naissance", "annee naissance", "birth year", "year of birth", "birthyear"),
        ),
        FieldSpec(
            "notes",
            _("notes"),
            _text(None),
            ("notes", "note", "commentaire", "commentaires", "comment", "comments", "remarque", "remarques"),
        ),
        FieldSpec("tags", _("tags"), parse_tags, ("tags", "tag", "etiquettes", "etiquette", "labels", "label")),
    )
}

PURCHASE_FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec(
            "email",
            _("client email"),
            parse_email,
            ("email", "e mail", "courriel", "email client", "customer email", "adresse email", "adresse e mail"),
            exact_only=("mail",),
            max_length=254,
        ),
        FieldSpec(
            "client_ref",
            _("client external id"),
            _text(64),
            _EXTERNAL_ID_SYNONYMS,
            exact_only=("client", "customer"),
            max_length=64,
        ),
        FieldSpec(
            "order_date",
            _("order date"),
            parse_date,
            ("date", "date de commande", "date commande", "order date", "date d achat", "purchase date"),
        ),
        FieldSpec(
            "reference",
            _("order reference"),
            _text(64),
            (
                "reference",
                "n commande",
                "no commande",
                "num commande",
                "numero de commande",
                "numero commande",
                "order id",
                "order number",
                "order",
                "commande",
                "n facture",
                "numero de facture",
                "invoice",
                "invoice number",
            ),
            exact_only=("ref",),
            max_length=64,
        ),
        FieldSpec(
            "amount",
            _("amount"),
            parse_amount,
            ("montant", "total", "amount", "montant ttc", "total ttc", "order total"),
        ),
        FieldSpec(
            "cost",
            _("cost of goods"),
            parse_amount,
            ("cout", "cost", "prix d achat", "cost of goods", "cout d achat", "cout de revient", "cost price"),
        ),
        FieldSpec(
            "quantity",
            _("quantity"),
            partial(parse_int, minimum=1, maximum=MAX_QUANTITY),
            ("quantite", "quantity", "qty", "qte", "nombre"),
        ),
        FieldSpec(
            "unit_price",
            _("unit price"),
            parse_amount,
            ("prix unitaire", "unit price", "prix", "price", "prix unitaire ttc", "prix unitaire ht"),
            exact_only=("pu",),
        ),
        FieldSpec(
            "product",
            _("product"),
            _text(200),
            ("produit", "article", "product", "designation", "libelle", "item", "nom du produit", "product name"),
            max_length=200,
        ),
        FieldSpec(
            "sku",
            _("product code (SKU)"),
            _text(64),
            ("sku", "reference produit", "ref produit", "code article", "reference article", "code produit", "ean"),
            max_length=64,
        ),
        FieldSpec(
            "category",
            _("category"),
            _text(120),
            ("categorie", "category", "famille", "gamme", "rayon"),
            max_length=120,
        ),
    )
}

FIELDS_BY_TARGET: dict[str, dict[str, FieldSpec]] = {"client": CLIENT_FIELDS, "purchase": PURCHASE_FIELDS}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass
class ConvertedRow:
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[CellError] = field(default_factory=list)


def normalize_column_name(name: str) -> str:
    """``"Prénom"`` -> ``"prenom"``, ``"firstName"`` -> ``"first name"``, ``"N° commande"`` -> ``"n commande"``."""
    return _NON_ALNUM.sub(" ", fold(_CAMEL_BOUNDARY.sub(" ", name))).strip()


def guess_mapping(header: Sequence[str], *, target: Target = "client") -> dict[str, str | None]:
    """``{column: field name or None}`` for every column, each field used at most once."""
    fields = FIELDS_BY_TARGET[target]
    candidates = []
    for position, column in enumerate(header):
        for name, score in _candidates(normalize_column_name(column), fields.values()):
            candidates.append((score, -position, column, name))
    mapping: dict[str, str | None] = dict.fromkeys(header)
    taken: set[str] = set()
    for _score, _position, column, name in sorted(candidates, reverse=True):
        if mapping[column] is None and name not in taken:
            mapping[column] = name
            taken.add(name)
    return mapping


def _candidates(normalized: str, fields: Iterable[FieldSpec]) -> list[tuple[str, tuple[int, int]]]:
    """Fields a column name may mean, scored (whole-name match first, then the length of the synonym found)."""
    if not normalized:
        return []
    compact = normalized.replace(" ", "")
    padded = f" {normalized} "
    found = []
    for spec in fields:
        best: tuple[int, int] | None = None
        for synonym in (*spec.synonyms, *spec.exact_only):
            if compact == synonym.replace(" ", ""):
                score = (2, len(synonym))
            elif synonym in spec.synonyms and f" {synonym} " in padded:
                score = (1, len(synonym))
            else:
                continue
            best = max(best or score, score)
        if best:
            found.append((spec.name, best))
    return found


def convert_record(
    record: Mapping[str, str], mapping: Mapping[str, str | None], *, target: Target = "client"
) -> ConvertedRow:
    """Typed values of the mapped, non-blank cells of one row, and an error for each cell that cannot be read."""
    fields = FIELDS_BY_TARGET[target]
    row = ConvertedRow()
    for column, name in mapping.items():
        if name is None:
            continue
        raw = record.get(column, "")
        try:
            value = fields[name].parse(raw)
        except InvalidValue as exc:
            row.errors.append(CellError(column, raw, str(exc)))
            continue
        if value is not None:
            row.values[name] = value
    return row
