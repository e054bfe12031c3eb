"""Parsers for one imported cell: text in, a typed value out, or an :class:`InvalidValue` saying what was expected.

Every parser returns ``None`` for a blank cell, so "no value" and "a bad value" never blur, and raises rather than
guesses: an import that stores a wrong amount or date is worse than one that reports the line.

Numbers follow French and English habits. ``1 234,56``, ``1234.56``, ``1,234.56``, ``1.234,56``, ``12,5 €`` and
``€12.50`` are all read. A single separator followed by exactly three digits (``1,234`` or ``1.234``) is a
thousands separator when the value cannot have three decimals (money, whole numbers) and ambiguous otherwise.
Dates are read day first (``01/03/2024`` is 1 March), as written in France.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache

from django.core.validators import validate_email
from django.utils.translation import gettext

from crm.normalize import normalize_email, normalize_linkedin_url

MAX_SHOWN_VALUE = 60
# Excel serial day numbers accepted as dates: 1970-01-01 to 2099-12-31. Outside that range a 5-digit number in a
# date column is far more likely to be something else (a postal code) than a date.
EXCEL_SERIAL_RANGE = (25_569, 73_050)
_EXCEL_EPOCH = date(1899, 12, 30)

_CURRENCY = re.compile(r"^(?:€|\$|£|eur|usd|gbp|chf)\s*|\s*(?:€|\$|£|eur|usd|gbp|chf)$", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"(\d*)(?:([.,])(\d+))?")
_GROUPED_BY_SPACE = re.compile(r"([1-9]\d{0,2}(?:[ \u00a0\u202f']\d{3})+)(?:([.,])(\d+))?")
_GROUPED_BY_COMMA = re.compile(r"([1-9]\d{0,2}(?:,\d{3})+)(?:(\.)(\d+))?")
_GROUPED_BY_DOT = re.compile(r"([1-9]\d{0,2}(?:\.\d{3})+)(?:(,)(\d+))?")
_ISO_DATE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?)?", re.IGNORECASE
)
_ISO_DATE_ONLY = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_YEAR_FIRST_SLASHED = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T]+(\d{1,2})[:h](\d{2})(?::(\d{2}))?)?")
_DAY_MONTH_NAME = re.compile(r"(\d{1,2})(?:er)?[ \-/.]+([a-z]+)\.?[ \-/.]+(\d{4}|\d{2})")
_EXCEL_SERIAL = re.compile(r"\d{5}(?:[.,]\d+)?")
_PHONE = re.compile(r"\+?[\d ().\-/\u00a0]+(?:\s*(?:ext\.?|x|poste|#)\s*\d+)?", re.IGNORECASE)
_TAG_SEPARATORS = re.compile(r"[,;|\n]")
_MONTHS = {
    **dict.fromkeys(["jan", "janv", "janvier", "january"], 1),
    **dict.fromkeys(["feb", "fev", "fevr", "fevrier", "february"], 2),
    **dict.fromkeys(["mar", "mars", "march"], 3),
    **dict.fromkeys(["apr", "avr", "avril", "april"], 4),
    **dict.fromkeys(["may", "mai"], 5),
    **dict.fromkeys(["jun", "juin", "june"], 6),
    **dict.fromkeys(["jul", "juil", "juillet", "july"], 7),
    **dict.fromkeys(["aug", "aou", "aout", "august"], 8),
    **dict.fromkeys(["sep", "sept", "septembre", "september"], 9),
    **dict.fromkeys(["oct", "octobre", "october"], 10),
    **dict.fromkeys(["nov", "novembre", "november"], 11),
    **dict.fromkeys(["dec", "decembre", "december"], 12),
}
# Bound once: the validator's patterns are lazy objects, slow to reach through for every cell.
_EMAIL_USER_MATCH = validate_email.user_regex.match
_TRUE = frozenset(["true", "1", "yes", "y", "oui", "o", "vrai"])
_FALSE = frozenset(["false", "0", "no", "n", "non", "faux"])


class InvalidValue(ValueError):
    """A cell whose text is not the kind of value its column holds; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class CellError:
    """A value that could not be read, with the column it came from, for the import report."""

    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return gettext("column “%(column)s”: %(message)s") % {"column": self.column, "message": self.message}


def shown(text: str) -> str:
    """The value quoted in an error message, cut so that a runaway cell does not flood the report."""
    text = text.strip()
    return f"“{text}”" if len(text) <= MAX_SHOWN_VALUE else f"“{text[:MAX_SHOWN_VALUE]}…”"


def fold(text: str) -> str:
    """Lowercase without accents, for comparing words typed in French or English."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("œ", "oe").replace("æ", "ae"))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def parse_text(text: str, *, max_length: int | None = None) -> str | None:
    value = text.strip()
    if not value:
        return None
    if max_length is not None and len(value) > max_length:
        raise InvalidValue(
            gettext("expected at most %(limit)d characters, got %(length)d")
            % {"limit": max_length, "length": len(value)}
        )
    return value


def parse_email(text: str) -> str | None:
    value = normalize_email(text)
    if not value:
        return None
    if not _valid_email(value):
        raise InvalidValue(
            gettext("expected an email address such as name@example.com, got %(value)s") % {"value": shown(text)}
        )
    return value


def _valid_email(value: str) -> bool:
    """What Django's ``validate_email`` accepts, with the check of each domain done once (a file repeats them)."""
    if "@" not in value or len(value) > 320:
        return False
    user_part, domain_part = value.rsplit("@", 1)
    return _EMAIL_USER_MATCH(user_part) is not None and _valid_email_domain(domain_part)


@lru_cache(maxsize=16_384)
def _valid_email_domain(domain_part: str) -> bool:
    return domain_part in validate_email.domain_allowlist or validate_email.validate_domain_part(domain_part)


def parse_phone(text: str, *, max_length: int = 40) -> str | None:
    value = parse_text(text, max_length=max_length)
    if value is None:
        return None
    digits = sum(char.isdigit() for char in value)
    if not _PHONE.fullmatch(value) or not 3 <= digits <= 20:
        raise InvalidValue(
            gettext("expected a phone number such as +33 6 12 34 56 78, got %(value)s") % {"value": shown(text)}
        )
    return value


def parse_linkedin_url(text: str, *, max_length: int = 255) -> str | None:
    value = normalize_linkedin_url(text)
    if not value:
        return None
    if not value.startswith("https://www.linkedin.com/") or len(value) > max_length:
        raise InvalidValue(
            gettext(
                "expected a LinkedIn profile address such as https://www.linkedin.com/in/jean-dupont, got %(value)s"
            )
            % {"value": shown(text)}
        )
    return value


def parse_bool(text: str) -> bool | None:
    value = fold(text.strip())
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidValue(gettext("expected yes or no (true/false, oui/non, 1/0), got %(value)s") % {"value": shown(text)})


def parse_tags(text: str, *, max_length: int = 80) -> list[str] | None:
    """Tags separated by commas, semicolons, pipes or line breaks; repeats (ignoring case) are dropped."""
    tags: dict[str, str] = {}
    for part in _TAG_SEPARATORS.split(text):
        tag = part.strip()
        if len(tag) > max_length:
            raise InvalidValue(
                gettext("expected tags of at most %(limit)d characters, got %(value)s")
                % {"limit": max_length, "value": shown(tag)}
            )
        if tag:
            tags.setdefault(tag.casefold(), tag)
    return list(tags.values()) or None


# Numbers


# The largest amount the CRM's money columns hold (12 digits, 2 of them decimals).
MAX_AMOUNT = Decimal("9999999999.99")


def parse_amount(
    text: str, *, allow_negative: bool = False, decimals: int = 2, maximum: Decimal | None = MAX_AMOUNT
) -> Decimal | None:
    """A money amount, exact, with at most ``decimals`` decimals and at most ``maximum`` in size; currency signs and
    codes around it are ignored."""
    value = text.strip()
    if not value:
        return None
    expected = gettext("expected an amount such as 1 234,56 or 1234.56, got %(value)s") % {"value": shown(text)}
    negative, digits = _split_sign(value)
    digits = _CURRENCY.sub("", digits)
    if not negative:
        negative, digits = _split_sign(digits)
    number = _parse_decimal(digits, max_decimals=decimals, expected=expected)
    if negative and number:
        if not allow_negative:
            raise InvalidValue(gettext("a negative amount is not allowed here, got %(value)s") % {"value": shown(text)})
        number = -number
    if number != number.quantize(Decimal(1).scaleb(-decimals)):
        raise InvalidValue(
            gettext("expected an amount with at most %(decimals)d decimals, got %(value)s")
            % {"decimals": decimals, "value": shown(text)}
        )
    if maximum is not None and abs(number) > maximum:
        raise InvalidValue(
            gettext("expected an amount of at most %(maximum)s, got %(value)s")
            % {"maximum": maximum, "value": shown(text)}
        )
    return number.quantize(Decimal(1).scaleb(-decimals))


def parse_int(text: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """A whole number; ``12.0`` (a number saved by a spreadsheet) counts as 12, ``12.5`` does not."""
    value = text.strip()
    if not value:
        return None
    expected = gettext("expected a whole number, got %(value)s") % {"value": shown(text)}
    negative, digits = _split_sign(value)
    number = _parse_decimal(digits, max_decimals=0, expected=expected)
    if number != number.to_integral_value():
        raise InvalidValue(expected)
    result = -int(number) if negative else int(number)
    if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
        raise InvalidValue(
            gettext("expected a number between %(minimum)s and %(maximum)s, got %(value)s")
            % {"minimum": minimum, "maximum": maximum, "value": shown(text)}
        )
    return result


def parse_birth_year(text: str, *, today: date | None = None) -> int | None:
    return parse_int(text, minimum=1900, maximum=(today or date.today()).year)


def _split_sign(value: str) -> tuple[bool, str]:
    value = value.strip()
    if value[:1] in ("-", "\u2212"):
        return True, value[1:].strip()
    if value[:1] == "+":
        return False, value[1:].strip()
    return False, value


def _parse_decimal(digits: str, *, max_decimals: int | None, expected: str) -> Decimal:
    """Read digits with French or English separators into an exact Decimal."""
    candidates = []
    for pattern in (_PLAIN_NUMBER, _GROUPED_BY_SPACE, _GROUPED_BY_COMMA, _GROUPED_BY_DOT):
        match = pattern.fullmatch(digits)
        if match and any(char.isdigit() for char in digits):
            whole = "".join(char for char in match.group(1) if char.isdigit()) or "0"
            candidates.append((pattern is _PLAIN_NUMBER, Decimal(f"{whole}.{match.group(3) or '0'}")))
    if not candidates:
        raise InvalidValue(expected)
    values = {value for _, value in candidates}
    if len(values) == 1:
        return candidates[0][1]
    # "1,234" or "1.234": a decimal reading (plain) and a thousands reading (grouped) disagree.
    if max_decimals is not None and max_decimals < 3:
        return next(value for plain, value in candidates if not plain)
    raise InvalidValue(
        gettext("%(value)s is ambiguous: write 1234 for a thousands separator or 1,234 with a decimal part")
        % {"value": shown(digits)}
    )


# Dates


def parse_date(text: str) -> date | None:
    """A calendar date: ISO (with or without a time), dd/mm/yyyy, dd/mm/yy, dd-mm-yyyy, dd.mm.yyyy, "1 mars 2024",
    "01-Mar-24", yyyy/mm/dd, or an Excel serial day number."""
    value = text.strip()
    if not value:
        return None
    parts = _date_parts(fold(value))
    if parts is None:
        raise InvalidValue(
            gettext("expected a date such as 31/12/2024 or 2024-12-31, got %(value)s") % {"value": shown(text)}
        )
    if isinstance(parts, date):
        return parts
    try:
        return date(*parts)
    except ValueError as exc:
        raise InvalidValue(gettext("%(value)s is not a real date") % {"value": shown(text)}) from exc


def parse_datetime(text: str, *, tz: tzinfo = UTC) -> datetime | None:
    """A moment, timezone-aware: ISO 8601 (``Z`` or an offset kept, otherwise read in ``tz``) or dd/mm/yyyy with an
    optional ``HH:MM[:SS]``. A date alone is midnight in ``tz``."""
    value = text.strip()
    if not value:
        return None
    if _ISO_DATE.fullmatch(value) and not _ISO_DATE_ONLY.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value.replace(" ", "T", 1))
        except ValueError as exc:
            raise InvalidValue(
                gettext("expected a date and time such as 2024-12-31T14:30:00Z, got %(value)s") % {"value": shown(text)}
            ) from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    match = _DAY_FIRST.fullmatch(value)
    if match and match.group(5):
        day, month, year = int(match.group(1)), int(match.group(3)), _full_year(match.group(4))
        clock = [int(group or 0) for group in match.group(5, 6, 7)]
        try:
            return datetime(year, month, day, *clock, tzinfo=tz)
        except ValueError as exc:
            raise InvalidValue(gettext("%(value)s is not a real date and time") % {"value": shown(text)}) from exc
    return datetime.combine(parse_date(value), time(0), tzinfo=tz)


def _date_parts(value: str) -> tuple[int, int, int] | date | None:
    if match := _ISO_DATE.fullmatch(value) or _YEAR_FIRST_SLASHED.fullmatch(value):
        return int(match.group(1)), int(match.group(2)), int(match.group(3))
    if match := _DAY_FIRST.fullmatch(value):
        return _full_year(match.group(4)), int(match.group(3)), int(match.group(1))
    if (match := _DAY_MONTH_NAME.fullmatch(value)) and match.group(2) in _MONTHS:
        return _full_year(match.group(3)), _MONTHS[match.group(2)], int(match.group(1))
    if _EXCEL_SERIAL.fullmatch(value):
        serial = int(value.replace(",", ".").split(".")[0])
        if EXCEL_SERIAL_RANGE[0] <= serial <= EXCEL_SERIAL_RANGE[1]:
            return _EXCEL_EPOCH + timedelta(days=serial)
    return None


def _full_year(year: str) -> int:
    """Two-digit years as ``strptime("%y")`` reads them: 00-68 are 2000-2068, 69-99 are 1969-1999."""
    if len(year) == 4:
        return int(year)
    return 2000 + int(year) if int(year) <= 68 else 1900 + int(year)
