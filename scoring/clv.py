"""Customer lifetime value: a historical estimate from past orders and a predictive one from BG/NBD + Gamma-Gamma.

Historical CLV = average basket x purchases per year x expected lifespan (years) x gross margin.
Purchases per year are the client's orders divided by their tenure (first purchase to ``as_of``), the tenure being
in years of 365.25 days, floored at ``min_tenure_years`` (one year by default) so that a client seen for a few weeks
is not extrapolated from a burst of orders: a client younger than a year has the orders seen so far per year.

Predictive CLV sums, month by month, the expected purchases of the month (BG/NBD, conditional on the client's
history) times their expected order value (Gamma-Gamma) times the gross margin, discounted to today at
``annual_discount_rate`` as if paid at the month's end: month i is divided by (1 + d)^i, d = (1 + annual)^(1/12) - 1,
the monthly rate equivalent to the annual one. A month is 365.25 / 12 days.
"""

from datetime import date

import numpy as np
import pandas as pd

from scoring.bgnbd import BgNbdParams, bgnbd_expected_purchases_if_alive, bgnbd_probability_alive
from scoring.gamma_gamma import GammaGammaParams, gamma_gamma_expected_order_value

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
HORIZONS_MONTHS = (12, 36)


def historical_clv(
    summary: pd.DataFrame, *, as_of: date, lifespan_years: float, gross_margin: float, min_tenure_years: float = 1.0
) -> pd.DataFrame:
    """Historical CLV per client of ``summary`` (``client_id, first_purchase, orders, revenue``), same index.

    Returns ``client_id, average_basket, tenure_years, purchases_per_year, lifespan_years, gross_margin,
    historical_clv``, where ``tenure_years`` is the floored tenure the purchases per year are computed over.
    """
    orders = summary["orders"].to_numpy(float)
    revenue = summary["revenue"].astype(float).to_numpy()
    tenure_days = (pd.Timestamp(as_of) - pd.to_datetime(summary["first_purchase"])).dt.days.to_numpy(float)
    if (tenure_days < 0).any():
        raise ValueError("some clients' first purchase is after as_of")
    average_basket = np.divide(revenue, orders, out=np.zeros_like(revenue), where=orders > 0)
    tenure_years = np.maximum(tenure_days / DAYS_PER_YEAR, min_tenure_years)
    purchases_per_year = orders / tenure_years
    return pd.DataFrame(
        {
            "client_id": summary["client_id"].to_numpy(),
            "average_basket": average_basket,
            "tenure_years": tenure_years,
            "purchases_per_year": purchases_per_year,
            "lifespan_years": float(lifespan_years),
            "gross_margin": float(gross_margin),
            "historical_clv": average_basket * purchases_per_year * lifespan_years * gross_margin,
        },
        index=summary.index,
    )


def monthly_discount_factors(months: int, annual_discount_rate: float) -> np.ndarray:
    """1 / (1 + d)^i for months i = 1..months, d the monthly rate equivalent to ``annual_discount_rate``."""
    monthly_rate = (1.0 + annual_discount_rate) ** (1 / 12) - 1.0
    return (1.0 + monthly_rate) ** -np.arange(1, months + 1)


def predictive_clv(
    summary: pd.DataFrame,
    *,
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    unit_days: float,
    annual_discount_rate: float = 0.10,
    gross_margin: float = 1.0,
    horizons_months: tuple[int, ...] = HORIZONS_MONTHS,
) -> pd.DataFrame:
    """Predicted purchases and discounted CLV per client of ``summary`` (``client_id, frequency, recency, T,
    monetary`` in units of ``unit_days`` days, as from ``summary_from_orders``), same index.

    Returns ``client_id, probability_alive, expected_order_value`` and, for each horizon h in months,
    ``expected_purchases_<h>m`` (undiscounted) and ``clv_<h>m`` (discounted, times ``gross_margin``; with the default
    margin of 1 it is a value of revenue). Parameters that did not converge give meaningless numbers: check
    ``converged`` first.
    """
    x = summary["frequency"].to_numpy(float)
    t_x = summary["recency"].to_numpy(float)
    T = summary["T"].to_numpy(float)
    months = max(horizons_months)
    alive = bgnbd_probability_alive(x, t_x, T, params=bgnbd)
    order_value = gamma_gamma_expected_order_value(x, summary["monetary"].to_numpy(float), params=gamma_gamma)

    # Purchases if alive depend on (x, T) only: evaluate the cumulative curve once per distinct pair, per month end.
    by_pair = pd.DataFrame({"x": x, "T": T}).groupby(["x", "T"], sort=True)
    codes = by_pair.ngroup().to_numpy()
    distinct = by_pair.size().index
    month_ends = np.arange(months + 1) * (DAYS_PER_MONTH / unit_days)
    cumulative = bgnbd_expected_purchases_if_alive(
        month_ends[np.newaxis, :],
        distinct.get_level_values("x").to_numpy(float)[:, np.newaxis],
        distinct.get_level_values("T").to_numpy(float)[:, np.newaxis],
        params=bgnbd,
    )
    discounted = np.cumsum(np.diff(cumulative, axis=1) * monthly_discount_factors(months, annual_discount_rate), axis=1)

    columns = {
        "client_id": summary["client_id"].to_numpy(),
        "probability_alive": alive,
        "expected_order_value": order_value,
    }
    for horizon in horizons_months:
        columns[f"expected_purchases_{horizon}m"] = alive * cumulative[codes, horizon]
    for horizon in horizons_months:
        columns[f"clv_{horizon}m"] = alive * discounted[codes, horizon - 1] * order_value * gross_margin
    return pd.DataFrame(columns, index=summary.index)
