"""The CDNOW reference data of Fader, Hardie & Lee (2005), as shipped in the ``lifetimes`` wheel (a test-only
requirement). Its files are read directly: the package itself is never imported."""

import importlib.util
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

CUTOFF = "1997-09-30"


def datasets_dir() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the CDNOW reference data ships in the lifetimes wheel: pip install -r requirements-dev.txt")
    return Path(spec.submodule_search_locations[0]) / "datasets"


@cache
def orders() -> pd.DataFrame:
    """The 6,919 orders of the 2,357 sampled customers: client_id (sample id), date, amount (US dollars)."""
    raw = pd.read_csv(
        datasets_dir() / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "client_id", "date", "cds", "amount"],
        dtype={"date": str},
    )
    return pd.DataFrame(
        {"client_id": raw["client_id"], "date": pd.to_datetime(raw["date"], format="%Y%m%d"), "amount": raw["amount"]}
    )


@cache
def published_summary() -> pd.DataFrame:
    """The published per-customer summary, in weeks: ID, x, t_x, T, zbar (mean repeat purchase value)."""
    return pd.read_csv(datasets_dir() / "cdnow_customers_summary_with_transactions.csv")
