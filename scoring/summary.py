"""Per-client summaries built from raw orders: the inputs of the RFM and CLV computations.

Pure functions: a DataFrame of orders in (``client_id``, ``date``, ``amount``), one row per client out. Amounts may
be ``Decimal`` (as read from the database); they are converted to float. Dates may be ``datetime.date`` objects or
datetimes, of which only the calendar day counts.
"""

from datetime import date

import numpy as np
import pandas as pd

ORDER_COLUMNS = ["client_id", "date", "amount"]
RFM_SUMMARY_COLUMNS = ["client_id", "first_purchase", "last_purchase", "orders", "revenue"]
MODEL_SUMMARY_COLUMNS = ["client_id", "frequency", "recency", "T", "monetary"]


def _clean_orders(orders: pd.DataFrame) -> pd.DataFrame:
    missing = set(ORDER_COLUMNS) - set(orders.columns)
    if missing:
        raise ValueError(f"orders lacks columns: {sorted(missing)}")
    return pd.DataFrame(
        {
            "client_id": orders["client_id"].to_numpy(),
            "date": pd.to_datetime(orders["date"]).dt.normalize().to_numpy(),
            "amount": orders["amount"].astype(float).to_numpy(),
        }
    )


def rfm_summary_from_orders(orders: pd.DataFrame, *, start: date | None = None, end: date) -> pd.DataFrame:
    """One row per client with at least one order in ``[start, end]`` (both inclusive; no start = all history).

    Returns ``client_id, first_purchase, last_purchase, orders, revenue``: the input of ``compute_rfm`` and
    ``historical_clv``. ``orders`` counts order rows; ``revenue`` is their total. Dates come back as ``datetime64``
    values at midnight.
    """
    clean = _clean_orders(orders)
    in_window = clean["date"] <= pd.Timestamp(end)
    if start is not None:
        in_window &= clean["date"] >= pd.Timestamp(start)
    grouped = clean[in_window].groupby("client_id", sort=True)
    summary = grouped.agg(
        first_purchase=("date", "min"),
        last_purchase=("date", "max"),
        orders=("amount", "size"),
        revenue=("amount", "sum"),
    ).reset_index()
    summary["orders"] = summary["orders"].astype(np.int64)
    return summary[RFM_SUMMARY_COLUMNS]


def summary_from_orders(orders: pd.DataFrame, *, cutoff: date, unit_days: float) -> pd.DataFrame:
    """The (frequency, recency, T, monetary) summary of the BG/NBD and Gamma-Gamma models.

    Orders after ``cutoff`` are ignored and orders on the same day are merged into one purchase (amounts summed),
    as in Fader, Hardie & Lee's CDNOW analysis. Per client, with times in units of ``unit_days`` days
    (7 for weeks, 1 for days):

    - ``frequency`` (x): repeat purchases, i.e. purchase days after the first;
    - ``recency`` (t_x): time from the first to the last purchase (0 when x = 0);
    - ``T``: time from the first purchase to ``cutoff``;
    - ``monetary``: mean value of the repeat purchases, the first excluded (0 when x = 0).
    """
    if unit_days <= 0:
        raise ValueError("unit_days must be positive")
    clean = _clean_orders(orders)
    clean = clean[clean["date"] <= pd.Timestamp(cutoff)]
    days = clean.groupby(["client_id", "date"], sort=True)["amount"].sum().reset_index()
    first_rows = ~days["client_id"].duplicated()
    per_client = days.groupby("client_id", sort=True).agg(
        first=("date", "min"), last=("date", "max"), purchases=("date", "size"), total=("amount", "sum")
    )
    first_amount = days.loc[first_rows.to_numpy(), ["client_id", "amount"]].set_index("client_id")["amount"]
    frequency = per_client["purchases"].to_numpy(np.int64) - 1
    repeat_total = per_client["total"].to_numpy() - first_amount.reindex(per_client.index).to_numpy()
    unit = pd.Timedelta(days=unit_days)
    return pd.DataFrame(
        {
            "client_id": per_client.index.to_numpy(),
            "frequency": frequency,
            "recency": ((per_client["last"] - per_client["first"]) / unit).to_numpy(float),
            "T": ((pd.Timestamp(cutoff) - per_client["first"]) / unit).to_numpy(float),
            "monetary": np.divide(repeat_total, frequency, out=np.zeros(len(frequency)), where=frequency > 0),
        }
    )
