"""Normalised keys for matching people: emails and LinkedIn profile URLs."""

import re
from urllib.parse import unquote, urlsplit

# Already in the normalised form (lowercase ASCII slug, nothing to unquote): returned as it is, much faster.
_CANONICAL = re.compile(r"https://www\.linkedin\.com/(?:in|pub|company|sales/lead|sales/people)/[a-z0-9._~-]+")
_LINKEDIN_PATH = re.compile(r"^/(in|pub|company|sales/lead|sales/people)/([^/?#]+)", re.IGNORECASE)


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_linkedin_url(value: str) -> str:
    """``https://www.linkedin.com/in/<slug>`` for any spelling of a profile URL; other text is kept trimmed.

    ``LinkedIn.com/in/Jean-Dupont/``, ``http://fr.linkedin.com/in/jean-dupont?trk=x`` and
    ``https://www.linkedin.com/in/jean-dupont`` are one profile.
    """
    value = value.strip()
    if not value or _CANONICAL.fullmatch(value):
        return value
    candidate = value if "://" in value else f"https://{value}"
    parts = urlsplit(candidate)
    host = (parts.hostname or "").lower()
    if not (host == "linkedin.com" or host.endswith(".linkedin.com")):
        return value
    match = _LINKEDIN_PATH.match(parts.path)
    if not match:
        return f"https://www.linkedin.com{parts.path.rstrip('/')}".lower()
    kind, slug = match.group(1).lower(), unquote(match.group(2)).lower()
    return f"https://www.linkedin.com/{kind}/{slug}"
