"""Guessing which CRM field a column feeds, converting a row, and the cell parsers behind it."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crm.models import Category, Client, Product, Purchase, Tag
from prospecting.mapping import (
    CLIENT_FIELDS,
    PURCHASE_FIELDS,
    convert_record,
    guess_mapping,
    normalize_column_name,
)
from prospecting.validation import (
    InvalidValue,
    parse_amount,
    parse_birth_year,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_email,
    parse_int,
    parse_linkedin_url,
    parse_phone,
    parse_tags,
    parse_text,
)

PARIS = ZoneInfo("Europe/Paris")


# Column names


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("Prénom", "prenom"),
        ("firstName", "first name"),
        ("first_name", "first name"),
        (" E-MAIL ", "e mail"),
        ("N° commande", "n commande"),
        ("Nom de l'entreprise", "nom de l entreprise"),
        ("Œuvre", "oeuvre"),
    ],
)
def test_column_names_are_normalized(name, normalized):
    assert normalize_column_name(name) == normalized


@pytest.mark.parametrize(
    ("column", "field"),
    [
        ("Prénom", "first_name"),
        ("first name", "first_name"),
        ("FirstName", "first_name"),
        ("nom", "last_name"),
        ("Nom de famille", "last_name"),
        ("Last Name", "last_name"),
        ("Société", "company"),
        ("entreprise", "company"),
        ("Company", "company"),
        ("Téléphone", "phone"),
        ("Tél.", "phone"),
        ("Mobile", "phone"),
        ("phone", "phone"),
        ("E-mail", "email"),
        ("Courriel", "email"),
        ("EMAIL", "email"),
        ("Ville", "city"),
        ("city", "city"),
        ("Pays", "country"),
        ("Country", "country"),
        ("Poste", "job_title"),
        ("Fonction", "job_title"),
        ("Job title", "job_title"),
        ("Secteur", "sector"),
        ("Industry", "sector"),
        ("LinkedIn", "linkedin_url"),
        ("Profil LinkedIn", "linkedin_url"),
        ("Année de naissance", "birth_year"),
        ("Notes", "notes"),
        ("Commentaire", "notes"),
        ("Tags", "tags"),
        ("Étiquettes", "tags"),
        ("Adresse e-mail professionnelle", "email"),
        ("Nom de l'entreprise", "company"),
        ("Email LinkedIn", "email"),
        ("Téléphone portable", "phone"),
    ],
)
def test_client_columns_are_recognised_in_french_and_english(column, field):
    assert guess_mapping([column]) == {column: field}


@pytest.mark.parametrize(
    ("column", "field"),
    [
        ("Email", "email"),
        ("Code client", "client_ref"),
        ("Customer ID", "client_ref"),
        ("Date", "order_date"),
        ("Date de commande", "order_date"),
        ("Référence", "reference"),
        ("N° commande", "reference"),
        ("Order ID", "reference"),
        ("Montant", "amount"),
        ("Total", "amount"),
        ("Amount", "amount"),
        ("Montant TTC", "amount"),
        ("Quantité", "quantity"),
        ("Qty", "quantity"),
        ("Prix unitaire", "unit_price"),
        ("Unit price", "unit_price"),
        ("Produit", "product"),
        ("Article", "product"),
        ("Catégorie", "category"),
        ("Référence produit", "sku"),
        ("Coût", "cost"),
        ("cout", "cost"),
        ("Cost", "cost"),
        ("Prix d'achat", "cost"),
        ("Cost of goods", "cost"),
    ],
)
def test_purchase_columns_are_recognised(column, field):
    assert guess_mapping([column], target="purchase") == {column: field}


def test_unknown_columns_are_left_unmapped():
    assert guess_mapping(["Code postal", "Nom complet", "ID", ""]) == {
        "Code postal": None,
        "Nom complet": None,
        "ID": None,
        "": None,
    }


def test_no_field_is_given_two_columns_and_the_exact_name_wins():
    mapping = guess_mapping(["Email perso", "Téléphone fixe", "Email", "Téléphone mobile", "Nom", "Prénom"])
    assert mapping == {
        "Email perso": None,
        "Téléphone fixe": "phone",
        "Email": "email",
        "Téléphone mobile": None,
        "Nom": "last_name",
        "Prénom": "first_name",
    }
    fields = [field for field in mapping.values() if field]
    assert len(fields) == len(set(fields))


def test_a_typical_purchase_export_is_mapped():
    header = ["N° commande", "Date de commande", "Email client", "Produit", "Référence produit", "Qté", "Prix unitaire"]
    assert guess_mapping(header + ["Montant HT", "Montant TTC"], target="purchase") == {
        "N° commande": "reference",
        "Date de commande": "order_date",
        "Email client": "email",
        "Produit": "product",
        "Référence produit": "sku",
        "Qté": "quantity",
        "Prix unitaire": "unit_price",
        "Montant HT": None,
        "Montant TTC": "amount",
    }


def test_a_cost_column_beside_a_price_column_feeds_the_cost_of_goods():
    header = ["Prix unitaire", "Prix d'achat", "Montant"]
    assert guess_mapping(header, target="purchase") == {
        "Prix unitaire": "unit_price",
        "Prix d'achat": "cost",
        "Montant": "amount",
    }


@pytest.mark.parametrize(
    ("fields", "model"),
    [(CLIENT_FIELDS, Client), (PURCHASE_FIELDS, Purchase)],
)
def test_length_limits_match_the_database_columns(fields, model):
    model_fields = {field.name: field for field in model._meta.get_fields() if hasattr(field, "max_length")}
    for name, spec in fields.items():
        if name in model_fields and model_fields[name].max_length:
            assert spec.max_length == model_fields[name].max_length, name
    assert PURCHASE_FIELDS["product"].max_length == Product._meta.get_field("name").max_length
    assert PURCHASE_FIELDS["sku"].max_length == Product._meta.get_field("sku").max_length
    assert PURCHASE_FIELDS["category"].max_length == Category._meta.get_field("name").max_length
    assert parse_tags("x" * Tag._meta.get_field("name").max_length)


# Rows


def test_a_row_is_converted_to_typed_values():
    record = {
        "Prénom": " Jean ",
        "Nom": "Dupont",
        "E-mail": "Jean.Dupont@Example.com",
        "Année de naissance": "1985",
        "Tags": "vip; salon",
        "Code postal": "75001",
        "Ville": "",
    }
    row = convert_record(record, guess_mapping(list(record)))
    assert row.errors == []
    assert row.values == {
        "first_name": "Jean",
        "last_name": "Dupont",
        "email": "jean.dupont@example.com",
        "birth_year": 1985,
        "tags": ["vip", "salon"],
    }


def test_each_unreadable_cell_is_reported_with_its_column():
    record = {"E-mail": "pas un email", "Année de naissance": "quatre-vingt", "Nom": "Dupont"}
    row = convert_record(record, guess_mapping(list(record)))
    assert [(error.column, error.value) for error in row.errors] == [
        ("E-mail", "pas un email"),
        ("Année de naissance", "quatre-vingt"),
    ]
    assert row.values == {"last_name": "Dupont"}


def test_a_purchase_row_is_converted():
    record = {
        "Date": "01/03/2024",
        "Email": "a@b.fr",
        "Montant TTC": "1 234,50 €",
        "Quantité": "2",
        "Référence": "C-12",
    }
    row = convert_record(record, guess_mapping(list(record), target="purchase"), target="purchase")
    assert row.errors == []
    assert row.values == {
        "order_date": date(2024, 3, 1),
        "email": "a@b.fr",
        "amount": Decimal("1234.50"),
        "quantity": 2,
        "reference": "C-12",
    }


# Cell parsers: blank is no value


@pytest.mark.parametrize(
    "parse",
    [
        parse_text,
        parse_email,
        parse_phone,
        parse_linkedin_url,
        parse_bool,
        parse_tags,
        parse_amount,
        parse_int,
        parse_date,
    ],
)
def test_a_blank_cell_is_no_value(parse):
    assert parse("") is None
    assert parse("  ") is None


def test_errors_are_value_errors():
    assert issubclass(InvalidValue, ValueError)


# Emails


def test_an_email_is_trimmed_and_lowercased():
    assert parse_email("  Jean.Dupont@Example.COM ") == "jean.dupont@example.com"


@pytest.mark.parametrize("value", ["jean@", "jean.example.com", "a@b.fr; c@d.fr", "jean dupont@x.fr"])
def test_an_invalid_email_says_what_was_expected(value):
    with pytest.raises(InvalidValue, match="expected an email address such as name@example.com, got “"):
        parse_email(value)


# Dates


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01",
        "2024-3-1",
        "2024-03-01 00:00:00",
        "2024-03-01T10:15:30.000Z",
        "01/03/2024",
        "1/3/2024",
        "01/03/24",
        "01-03-2024",
        "01.03.2024",
        "01/03/2024 14:30",
        "2024/03/01",
        "1 mars 2024",
        "1er mars 2024",
        "01-Mar-24",
        "1-mar.-2024",
        "45352",
    ],
)
def test_dates_are_read_day_first_in_every_usual_format(value):
    assert parse_date(value) == date(2024, 3, 1)


def test_two_digit_years_follow_the_usual_pivot():
    assert parse_date("01/03/68") == date(2068, 3, 1)
    assert parse_date("01/03/69") == date(1969, 3, 1)


@pytest.mark.parametrize("value", ["31/02/2024", "13/13/2024", "2024-02-30"])
def test_an_impossible_date_is_refused(value):
    with pytest.raises(InvalidValue, match="is not a real date"):
        parse_date(value)


@pytest.mark.parametrize("value", ["demain", "2024-03-01 garbage", "12345", "03/2024", "1 foo 2024"])
def test_an_unreadable_date_says_what_was_expected(value):
    with pytest.raises(InvalidValue, match="expected a date such as 31/12/2024 or 2024-12-31"):
        parse_date(value)


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2024-03-01T10:15:30.000Z", datetime(2024, 3, 1, 10, 15, 30, tzinfo=UTC)),
        ("2024-03-01T10:15:30+01:00", datetime(2024, 3, 1, 9, 15, 30, tzinfo=UTC)),
        ("2024-03-01 10:15", datetime(2024, 3, 1, 10, 15, tzinfo=PARIS)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=PARIS)),
        ("01/03/2024 10h15", datetime(2024, 3, 1, 10, 15, tzinfo=PARIS)),
        ("01/03/2024", datetime(2024, 3, 1, tzinfo=PARIS)),
    ],
)
def test_moments_are_timezone_aware(value, moment):
    parsed = parse_datetime(value, tz=PARIS)
    assert parsed == moment
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", ["2024-03-01T25:00", "01/03/2024 25:00", "hier"])
def test_an_unreadable_moment_is_refused(value):
    with pytest.raises(InvalidValue):
        parse_datetime(value, tz=PARIS)


# Amounts


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        ("1 234,56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("1\u202f234,56 €", "1234.56"),
        ("1234.56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("1'234.50", "1234.50"),
        ("12,5 €", "12.50"),
        ("€12.50", "12.50"),
        ("EUR 12", "12.00"),
        ("12.50 EUR", "12.50"),
        ("$ 3", "3.00"),
        ("0,5", "0.50"),
        ("0,500", "0.50"),
        ("+7", "7.00"),
        ("12.5000", "12.50"),
        ("1,234", "1234.00"),
        ("1.234", "1234.00"),
        ("0", "0.00"),
    ],
)
def test_amounts_in_french_and_english_formats(value, amount):
    assert parse_amount(value) == Decimal(amount)


@pytest.mark.parametrize("value", ["-", "abc", "12 5", "1,2,3", "12,5 %", "1e3", "€", "12..5"])
def test_an_unreadable_amount_says_what_was_expected(value):
    with pytest.raises(InvalidValue, match="expected an amount such as 1 234,56 or 1234.56"):
        parse_amount(value)


@pytest.mark.parametrize("value", ["-12,50", "−12,50", "-€12.50", "€-12.50"])
def test_negative_amounts_need_the_flag(value):
    with pytest.raises(InvalidValue, match="a negative amount is not allowed here"):
        parse_amount(value)
    assert parse_amount(value, allow_negative=True) == Decimal("-12.50")


def test_an_amount_with_more_decimals_than_money_has_is_refused_not_rounded():
    with pytest.raises(InvalidValue, match="at most 2 decimals"):
        parse_amount("1234.567")


def test_a_thousands_or_decimal_separator_is_ambiguous_when_three_decimals_are_possible():
    with pytest.raises(InvalidValue, match="is ambiguous"):
        parse_amount("1,234", decimals=3)
    assert parse_amount("1,5", decimals=3) == Decimal("1.500")


# Whole numbers, booleans and text


@pytest.mark.parametrize(("value", "number"), [("12", 12), ("12.0", 12), ("-3", -3), ("1 000", 1000), ("1,000", 1000)])
def test_whole_numbers(value, number):
    assert parse_int(value) == number


@pytest.mark.parametrize("value", ["12.5", "1,5", "douze", "1e3"])
def test_a_number_that_is_not_whole_is_refused(value):
    with pytest.raises(InvalidValue, match="expected a whole number"):
        parse_int(value)


def test_numbers_out_of_range_are_refused():
    with pytest.raises(InvalidValue, match="expected a number between 1 and 10, got “11”"):
        parse_int("11", minimum=1, maximum=10)


def test_birth_years_are_plausible_years():
    assert parse_birth_year("1985") == 1985
    with pytest.raises(InvalidValue, match="between 1900 and 2024"):
        parse_birth_year("85", today=date(2024, 6, 1))
    with pytest.raises(InvalidValue, match="between 1900 and 2024"):
        parse_birth_year("2031", today=date(2024, 6, 1))


@pytest.mark.parametrize(
    ("value", "flag"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("Oui", True), ("VRAI", True)]
    + [("false", False), ("0", False), ("No", False), ("non", False), ("Faux", False)],
)
def test_booleans_in_french_and_english(value, flag):
    assert parse_bool(value) is flag


def test_an_unreadable_boolean_says_what_was_expected():
    with pytest.raises(InvalidValue, match=r"expected yes or no \(true/false, oui/non, 1/0\), got “peut-être”"):
        parse_bool("peut-être")


def test_text_longer_than_its_column_is_refused_not_cut():
    assert parse_text("  Dupont  ", max_length=6) == "Dupont"
    with pytest.raises(InvalidValue, match="expected at most 6 characters, got 7"):
        parse_text("Dupont!", max_length=6)


def test_an_overlong_value_is_shortened_in_the_message():
    with pytest.raises(InvalidValue) as caught:
        parse_email("x" * 500)
    assert len(str(caught.value)) < 150


@pytest.mark.parametrize("value", ["+33 6 12 34 56 78", "06.12.34.56.78", "(555) 123-4567 ext. 12", "0612345678"])
def test_phone_numbers_are_kept_as_written(value):
    assert parse_phone(value) == value


@pytest.mark.parametrize("value", ["jean@example.com", "appeler", "12", "+33 6 12 34 56 78 90 12 34 56 78 90 12"])
def test_something_else_in_a_phone_column_is_refused(value):
    with pytest.raises(InvalidValue, match="expected a phone number"):
        parse_phone(value)


def test_linkedin_urls_are_normalized_and_anything_else_refused():
    assert parse_linkedin_url("linkedin.com/in/Jean-Dupont/") == "https://www.linkedin.com/in/jean-dupont"
    with pytest.raises(InvalidValue, match="expected a LinkedIn profile address"):
        parse_linkedin_url("https://example.com/jean")


def test_tags_are_split_trimmed_and_deduplicated():
    assert parse_tags("VIP, salon;vip | Lyon\n") == ["VIP", "salon", "Lyon"]
    with pytest.raises(InvalidValue, match="expected tags of at most 80 characters"):
        parse_tags("ok, " + "x" * 81)
