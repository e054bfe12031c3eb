"""The French and English catalogs are complete and their compiled files match them."""

import gettext
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[1] / "locale"
ENTRY = re.compile(r'^(msgid|msgstr|msgid_plural|msgstr\[\d+\]|msgctxt|")', re.MULTILINE)


def _entries(po_path: Path) -> list[dict]:
    """Entries of a .po file as dicts of keyword -> text, with a ``fuzzy`` flag (header excluded)."""
    entries, current, key = [], {}, None
    for line in [*po_path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if current:
                entries.append(current)
            current, key = {}, None
        elif line.startswith("#,"):
            current["fuzzy"] = "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            current[key] += _unquote(line)
        else:
            key, _, rest = line.partition(" ")
            current[key] = _unquote(rest)
    return [entry for entry in entries if entry.get("msgid")]


def _unquote(text: str) -> str:
    return text.strip()[1:-1].encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_catalog_is_complete(language):
    entries = _entries(LOCALE / language / "LC_MESSAGES" / "django.po")
    assert len(entries) > 50
    untranslated = [e["msgid"] for e in entries if not any(v for k, v in e.items() if k.startswith("msgstr"))]
    fuzzy = [e["msgid"] for e in entries if e.get("fuzzy")]
    assert untranslated == []
    assert fuzzy == []


@pytest.mark.parametrize("language", ["fr", "en"])
def test_compiled_catalog_matches_the_source(language):
    directory = LOCALE / language / "LC_MESSAGES"
    with open(directory / "django.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    for entry in _entries(directory / "django.po"):
        if "msgid_plural" in entry or "msgctxt" in entry:
            continue
        assert catalog.gettext(entry["msgid"]) == entry["msgstr"], entry["msgid"]


def test_english_catalog_keeps_the_source_text():
    """English is the source language: a guessed translation from a similar string must never stand in it."""
    for entry in _entries(LOCALE / "en" / "LC_MESSAGES" / "django.po"):
        if "msgid_plural" in entry:
            assert (entry["msgstr[0]"], entry["msgstr[1]"]) == (entry["msgid"], entry["msgid_plural"])
        else:
            assert entry["msgstr"] == entry["msgid"]
