"""RFM scoring: recency, frequency and monetary quintile scores and the segment they place a client in.

Scoring rule. Each measure is turned into a score from 1 to 5 by the share of clients the client beats, i.e. the
share with a strictly worse value, binned into fifths: ``score = floor(5 * share_beaten) + 1``. "Better" means more
recent (fewer days since the last purchase), more orders, more revenue. Consequences:

- clients with equal values always get equal scores, and the result does not depend on row order;
- with distinct values the scores are exact quintiles (10 clients: two of each score);
- a block of equal values gets the score of the fifth where the block starts: the lowest value always scores 1, so
  one-time buyers get F = 1 however many they are (the grid's "New Customers" and "Promising" need that), and a block
  covering more than the top fifth gets less than 5;
- a measure on which all clients are equal says nothing about them: everyone scores 3 on it (a single client too);
- with fewer than five clients, the best of n scores 1 + floor(5 * (n - 1) / n): two clients score 1 and 3, three
  score 1, 2 and 4, four score 1 to 4.

Scores are computed exactly with integers: ``(5 * beaten) // n + 1``.

Segments come from the recency x frequency grid (``SEGMENT_GRID``); the monetary score does not change the segment.
"""

from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

RFM_COLUMNS = [
    "client_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_sum",
    "rfm_code",
    "segment",
]


class Segment(NamedTuple):
    key: str
    label: Promise
    action: Promise


SEGMENTS: dict[str, Segment] = {
    segment.key: segment
    for segment in (
        Segment(
            "champions",
            _("Champions"),
            _("Reward them: thank-you gift, early access to new offers; ask for referrals and reviews."),
        ),
        Segment(
            "loyal",
            _("Loyal"),
            _("Upsell higher-value products and invite them to the loyalty programme."),
        ),
        Segment(
            "potential_loyalists",
            _("Potential Loyalists"),
            _("Recommend related products and offer a membership or loyalty programme."),
        ),
        Segment(
            "new_customers",
            _("New Customers"),
            _("Welcome them: an onboarding call and a follow-up within a week of the first purchase."),
        ),
        Segment(
            "promising",
            _("Promising"),
            _("Build the relationship: a personal check-in and a trial or sample offer."),
        ),
        Segment(
            "need_attention",
            _("Need Attention"),
            _("Check in with a limited-time offer based on their past purchases."),
        ),
        Segment(
            "about_to_sleep",
            _("About to Sleep"),
            _("Reconnect before they lapse: useful content and a targeted discount."),
        ),
        Segment(
            "at_risk",
            _("At Risk"),
            _("Personal reactivation call with an offer tailored to their history."),
        ),
        Segment(
            "cant_lose_them",
            _("Can't Lose Them"),
            _("Win them back now: a call from their account manager and a strong personal offer."),
        ),
        Segment(
            "hibernating",
            _("Hibernating"),
            _("Send a win-back offer; otherwise lower their contact priority."),
        ),
    )
}

# Rows: R score 1 to 5; columns: F score 1 to 5.
SEGMENT_GRID: tuple[tuple[str, ...], ...] = (
    ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
    ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
    ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    ("promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"),
    ("new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"),
)

_SEGMENT_KEYS = list(SEGMENTS)
_GRID_CODES = np.array([[_SEGMENT_KEYS.index(key) for key in row] for row in SEGMENT_GRID], dtype=np.int8)
_RFM_CODES = [f"{r}{f}{m}" for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """Scores 1-5 by the share of ``values`` each one beats (higher value, higher score); see the module docstring."""
    values = np.asarray(values)
    n = len(values)
    _distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(counts) == 1:
        return np.full(n, 3, dtype=np.int64)
    beaten = np.cumsum(counts) - counts
    return (5 * beaten[inverse]) // n + 1


def rfm_segments(r_score: np.ndarray, f_score: np.ndarray) -> pd.Categorical:
    """Segment keys from the R x F grid, as a categorical over all segment keys."""
    codes = _GRID_CODES[np.asarray(r_score) - 1, np.asarray(f_score) - 1]
    return pd.Categorical.from_codes(codes, categories=_SEGMENT_KEYS)


def compute_rfm(summary: pd.DataFrame, *, as_of: date) -> pd.DataFrame:
    """Score each client of ``summary`` (``client_id, last_purchase, orders, revenue``; one row per client).

    Returns one row per input row, same index, with the columns of ``RFM_COLUMNS``. ``monetary`` is the revenue of
    the summary (its total over the analysis window) and ``frequency`` its number of orders.
    """
    last_purchase = pd.to_datetime(summary["last_purchase"])
    if last_purchase.isna().any():
        raise ValueError("last_purchase has missing values")
    recency_days = (pd.Timestamp(as_of) - last_purchase).dt.days.to_numpy(np.int64)
    if (recency_days < 0).any():
        raise ValueError("some clients purchased after as_of")
    frequency = summary["orders"].to_numpy(np.int64)
    monetary = summary["revenue"].astype(float).to_numpy()
    if np.isnan(monetary).any():
        raise ValueError("revenue has missing values")

    r_score = quintile_scores(-recency_days)
    f_score = quintile_scores(frequency)
    m_score = quintile_scores(monetary)
    return pd.DataFrame(
        {
            "client_id": summary["client_id"].to_numpy(),
            "recency_days": recency_days,
            "frequency": frequency,
            "monetary": monetary,
            "r_score": r_score,
            "f_score": f_score,
            "m_score": m_score,
            "rfm_sum": r_score + f_score + m_score,
            "rfm_code": pd.Categorical.from_codes(25 * (r_score - 1) + 5 * (f_score - 1) + m_score - 1, _RFM_CODES),
            "segment": rfm_segments(r_score, f_score),
        },
        index=summary.index,
    )
