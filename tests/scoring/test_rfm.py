"""RFM scores are tie-respecting quintiles, independent of row order, and map onto the segment grid."""

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from scoring.rfm import RFM_COLUMNS, SEGMENTS, compute_rfm, quintile_scores, rfm_segments
from scoring.summary import rfm_summary_from_orders

AS_OF = date(2025, 6, 30)

# The grid as specified, written independently of the module: rows R score 1-5, columns F score 1-5.
EXPECTED_GRID = """
hibernating     hibernating          at_risk              at_risk    cant_lose_them
hibernating     hibernating          at_risk              at_risk    cant_lose_them
about_to_sleep  about_to_sleep       need_attention       loyal      loyal
promising       potential_loyalists  potential_loyalists  loyal      loyal
new_customers   potential_loyalists  potential_loyalists  champions  champions
"""


def _summary(recency_days, orders, revenue) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "client_id": range(1, len(orders) + 1),
            "last_purchase": [AS_OF - timedelta(days=int(days)) for days in recency_days],
            "orders": orders,
            "revenue": revenue,
        }
    )


def test_distinct_values_are_split_into_exact_quintiles():
    assert quintile_scores(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scores(np.array([50, 10, 40, 20, 30])).tolist() == [5, 1, 4, 2, 3]


@pytest.mark.parametrize(
    ("values", "scores"),
    [
        ([7], [3]),
        ([1, 2], [1, 3]),
        ([1, 2, 3], [1, 2, 4]),
        ([1, 2, 3, 4], [1, 2, 3, 4]),
        ([4, 4, 4, 4], [3, 3, 3, 3]),
        ([], []),
    ],
)
def test_small_and_all_equal_inputs_get_the_documented_scores(values, scores):
    assert quintile_scores(np.array(values)).tolist() == scores


def test_equal_values_always_get_equal_scores():
    # Six one-order clients beat nobody: all score 1. The two-order clients beat 60 % of clients: 4.
    scores = quintile_scores(np.array([1, 1, 1, 1, 1, 1, 2, 2, 3, 9]))
    assert scores.tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_the_most_recent_most_frequent_biggest_spender_scores_555():
    summary = _summary(recency_days=[1, 10, 20, 30, 40], orders=[9, 4, 3, 2, 1], revenue=[900, 400, 300, 200, 100])
    rfm = compute_rfm(summary, as_of=AS_OF)
    assert list(rfm.columns) == RFM_COLUMNS
    first = rfm.iloc[0]
    assert (first.recency_days, first.r_score, first.f_score, first.m_score) == (1, 5, 5, 5)
    assert (first.rfm_sum, first.rfm_code, first.segment) == (15, "555", "champions")
    last = rfm.iloc[-1]
    assert (last.rfm_code, last.rfm_sum, last.segment) == ("111", 3, "hibernating")


def test_scores_do_not_depend_on_row_order():
    rng = np.random.default_rng(7)
    summary = _summary(
        recency_days=rng.integers(0, 60, 500),
        orders=rng.integers(1, 6, 500),
        revenue=rng.choice([10.0, 25.5, 99.9, 250.0], 500),
    )
    expected = compute_rfm(summary, as_of=AS_OF)
    shuffled = compute_rfm(summary.sample(frac=1, random_state=3), as_of=AS_OF)
    pd.testing.assert_frame_equal(
        shuffled.sort_values("client_id").reset_index(drop=True),
        expected.sort_values("client_id").reset_index(drop=True),
    )
    for measure, score in [("recency_days", "r_score"), ("frequency", "f_score"), ("monetary", "m_score")]:
        by_value = expected.groupby(measure)[score]
        assert (by_value.min() == by_value.max()).all()


def test_every_grid_cell_maps_to_its_segment():
    expected = [row.split() for row in EXPECTED_GRID.strip().splitlines()]
    r_scores, f_scores = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    segments = rfm_segments(r_scores.ravel(), f_scores.ravel())
    assert np.asarray(segments).reshape(5, 5).tolist() == expected


def test_compute_rfm_reaches_all_25_cells_end_to_end():
    # Client (i, j) is the i-th least recent group of five and the j-th least frequent within each R group.
    cells = [(i, j) for i in range(5) for j in range(5)]
    summary = _summary(
        recency_days=[100 - (5 * i + j) for i, j in cells],
        orders=[1 + 5 * j + i for i, j in cells],
        revenue=[100.0] * 25,
    )
    rfm = compute_rfm(summary, as_of=AS_OF)
    assert rfm["r_score"].tolist() == [i + 1 for i, _ in cells]
    assert rfm["f_score"].tolist() == [j + 1 for _, j in cells]
    expected = [row.split() for row in EXPECTED_GRID.strip().splitlines()]
    assert rfm["segment"].astype(str).tolist() == [expected[i][j] for i, j in cells]


def test_every_segment_has_a_label_and_an_action():
    for key, segment in SEGMENTS.items():
        assert segment.key == key
        assert str(segment.label) and str(segment.action)
    assert set(SEGMENTS) == set(EXPECTED_GRID.split())


def test_decimal_revenue_and_an_empty_summary_are_accepted():
    summary = _summary(recency_days=[3, 5], orders=[1, 2], revenue=[Decimal("10.50"), Decimal("99.99")])
    assert compute_rfm(summary, as_of=AS_OF)["monetary"].tolist() == [10.5, 99.99]
    empty = compute_rfm(summary.iloc[:0], as_of=AS_OF)
    assert list(empty.columns) == RFM_COLUMNS and empty.empty


def test_a_purchase_after_the_scoring_date_is_refused():
    with pytest.raises(ValueError, match="after as_of"):
        compute_rfm(_summary(recency_days=[-1], orders=[1], revenue=[5.0]), as_of=AS_OF)


def test_rfm_summary_counts_orders_and_revenue_within_the_window():
    orders = pd.DataFrame(
        {
            "client_id": [1, 1, 1, 2, 3],
            "date": [date(2024, 1, 5), date(2025, 3, 1), date(2025, 7, 2), date(2025, 6, 1), date(2023, 1, 1)],
            "amount": [Decimal("10.00"), Decimal("20.00"), Decimal("99.00"), Decimal("5.50"), Decimal("1.00")],
        }
    )
    summary = rfm_summary_from_orders(orders, start=date(2024, 1, 1), end=AS_OF)
    expected = pd.DataFrame(
        {
            "client_id": [1, 2],
            "first_purchase": pd.to_datetime(["2024-01-05", "2025-06-01"]),
            "last_purchase": pd.to_datetime(["2025-03-01", "2025-06-01"]),
            "orders": [2, 1],
            "revenue": [30.0, 5.5],
        }
    )
    pd.testing.assert_frame_equal(summary, expected, check_dtype=False)
