"""The shortcuts taken for large imports give exactly what the general code gives."""

import unicodedata

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from crm import normalize
from prospecting.validation import InvalidValue, fold, parse_email

ADDRESSES = [
    "ann@x.com",
    "ann.lee+tag@sub.example.co.uk",
    "ann@localhost",
    "ann@[127.0.0.1]",
    "ann@[::1]",
    "ann@-bad.com",
    "ann@bad..com",
    "ann@x",
    "a b@x.com",
    "ann@@x.com",
    '"quoted user"@x.com',
    "ann@xn--bcher-kva.example",
    "ann@bücher.example",
    "@x.com",
    "ann@",
    "x" * 310 + "@example.com",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_parse_email_accepts_exactly_what_djangos_validator_accepts(address):
    try:
        validate_email(address)
        django_accepts = True
    except ValidationError:
        django_accepts = False
    try:
        parse_email(address)
        accepted = True
    except InvalidValue:
        accepted = False
    assert accepted == django_accepts


@pytest.mark.parametrize(
    "url",
    [
        "https://www.linkedin.com/in/jean-dupont",
        "https://www.linkedin.com/in/jean_dupont.1~x",
        "https://www.linkedin.com/sales/lead/abc123",
        "https://www.linkedin.com/in/Jean-Dupont",
        "https://www.linkedin.com/in/jean%C3%A9",
        "https://www.linkedin.com/in/jean-dupont/",
        "https://www.linkedin.com/in/jean?trk=x",
        "https://www.linkedin.com/feed",
    ],
)
def test_a_canonical_linkedin_url_is_returned_as_the_full_normalisation_would(url, monkeypatch):
    fast = normalize.normalize_linkedin_url(url)
    monkeypatch.setattr(normalize, "_CANONICAL", normalize.re.compile(r"(?!)"))  # never matches: the slow path
    assert fast == normalize.normalize_linkedin_url(url)


@pytest.mark.parametrize("text", ["Connected", "NOT_INTERESTED", "Pas intéressé", "Œuvre", "plain text 1"])
def test_fold_of_ascii_text_is_the_full_fold(text):
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("œ", "oe").replace("æ", "ae"))
    assert fold(text) == "".join(char for char in decomposed if not unicodedata.combining(char))
