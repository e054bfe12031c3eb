"""The prospecting pages: campaigns, offers, ambassadors, events, and the public unsubscribe page.

Everyone with a role reads them; managers and admins write. Views parse, authorise, call a service, render.
"""

from __future__ import annotations


def rfm_segment_choices() -> list[tuple[str, str]]:
    from scoring.rfm import SEGMENTS

    return [("", "—"), *((key, segment.label) for key, segment in SEGMENTS.items())]
