"""Database I/O of a scoring run: the purchases aggregated per client, the clients' lifecycle and pipeline facts, a
run's segments, and the bulk write and delete of its scores.

Everything here reads or writes whole tables in bulk. On PostgreSQL the reads are aggregate queries streamed out
with ``COPY ... TO STDOUT`` straight into pandas, and a run's scores go in with a binary ``COPY ... FROM STDIN``
into a table of their own, attached as the run's partition (migration 0002); deleting a run's scores drops it.
Elsewhere (SQLite) the same frames come from the ORM and the scores go in with batched ``bulk_create``. Both paths
return the same columns, sorted by client id, so the pure computations never know the difference.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Sum

from crm.models import Client, Purchase
from scoring.models import ClientScore

PURCHASE_SUMMARY_COLUMNS = [
    "client_id",
    "orders",
    "revenue",
    "first_purchase",
    "last_purchase",
    "purchase_days",
    "first_day_revenue",
]
CLIENT_COLUMNS = [
    "client_id",
    "owner_id",
    "lifecycle",
    "lifecycle_manual",
    "source",
    "created_on",
    "converted_at",
    "last_interaction_on",
]
SCORE_COLUMNS = [
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
    "historical_clv",
    "p_alive",
    "expected_purchases_12m",
    "expected_order_value",
    "clv_12m",
    "clv_36m",
    "suggested_lifecycle",
]
# Column types for PostgreSQL's binary COPY.
SCORE_TYPES = {
    "run_id": "int8",
    "client_id": "int8",
    "recency_days": "int4",
    "frequency": "int4",
    "monetary": "numeric",
    "r_score": "int2",
    "f_score": "int2",
    "m_score": "int2",
    "rfm_sum": "int2",
    "rfm_code": "text",
    "segment": "text",
    "historical_clv": "numeric",
    "p_alive": "float8",
    "expected_purchases_12m": "float8",
    "expected_order_value": "numeric",
    "clv_12m": "numeric",
    "clv_36m": "numeric",
    "suggested_lifecycle": "text",
}
MONEY_COLUMNS = ["monetary", "historical_clv", "expected_order_value", "clv_12m", "clv_36m"]
SCORE_BATCH_SIZE = 5000  # rows per INSERT where COPY is not available
RUN_START_LOCK = 7_340_001  # PostgreSQL advisory lock key serialising the start of scoring runs

# The first day's revenue travels in the low bits of a key ordered by day: the minimum key per client is the first
# day's, and its low bits are that day's total in cents (offset so that refunds stay positive).
_DAY_SHIFT = 42
_CENTS_OFFSET = 1 << 41


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _copy_out(sql: str, params: Iterable = ()) -> io.BytesIO:
    """Run ``sql`` through ``COPY (...) TO STDOUT`` as CSV with a header and return the bytes, rewound."""
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        query = cursor.mogrify(sql, list(params)).decode()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    return buffer


def _as_days(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[s]")


def purchase_summary(*, start: date | None, end: date) -> pd.DataFrame:
    """One row per client with a purchase in ``[start, end]`` (no start: all history), sorted by client id.

    Columns: ``orders`` (order rows), ``revenue``, ``first_purchase`` and ``last_purchase`` (datetime64 days),
    ``purchase_days`` (distinct days with an order: BG/NBD counts purchases by day) and ``first_day_revenue`` (the
    total of the first such day: Gamma-Gamma averages the later days only).
    """
    frame = _purchase_summary_postgresql(start, end) if is_postgresql() else _purchase_summary_orm(start, end)
    frame = frame.sort_values("client_id", ignore_index=True)
    return frame.astype(
        {
            "client_id": np.int64,
            "orders": np.int64,
            "revenue": float,
            "purchase_days": np.int64,
            "first_day_revenue": float,
        }
    )[PURCHASE_SUMMARY_COLUMNS]


def _purchase_summary_postgresql(start: date | None, end: date) -> pd.DataFrame:
    table = Purchase._meta.db_table
    window = "purchased_on <= %s" + (" AND purchased_on >= %s" if start else "")
    params = [end, start] if start else [end]
    # Table names come from the models and constants from this module; values go as parameters.
    sql = f"""
        SELECT client_id, orders, revenue, first_purchase, last_purchase, purchase_days,
               ((first_day_key & ((1::int8 << {_DAY_SHIFT}) - 1)) - {_CENTS_OFFSET}) / 100.0 AS first_day_revenue
        FROM (
            SELECT client_id, sum(day_orders) AS orders, sum(day_total) AS revenue, min(day) AS first_purchase,
                   max(day) AS last_purchase, count(*) AS purchase_days,
                   min(((day - DATE '2000-01-01')::int8 << {_DAY_SHIFT}) + (day_total * 100)::int8
                       + {_CENTS_OFFSET}) AS first_day_key
            FROM (
                SELECT client_id, purchased_on AS day, count(*) AS day_orders, sum(amount) AS day_total
                FROM {table} WHERE {window}
                GROUP BY client_id, purchased_on
            ) AS days
            GROUP BY client_id
        ) AS clients
    """  # noqa: S608
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Both levels stream over the (client, date) index in order. The planner, which cannot know how few
            # orders share a day, would otherwise pick hash aggregates that spill to disk and take twice as long.
            cursor.execute("SET LOCAL enable_hashagg = off")
            cursor.execute("SET LOCAL jit = off")
        buffer = _copy_out(sql, params)
    return pd.read_csv(buffer, parse_dates=["first_purchase", "last_purchase"], date_format="%Y-%m-%d")


def _purchase_summary_orm(start: date | None, end: date) -> pd.DataFrame:
    purchases = Purchase.objects.filter(purchased_on__lte=end)
    if start:
        purchases = purchases.filter(purchased_on__gte=start)
    days = purchases.values("client_id", "purchased_on").annotate(orders=Count("id"), total=Sum("amount")).order_by()
    frame = pd.DataFrame.from_records(list(days), columns=["client_id", "purchased_on", "orders", "total"])
    return fold_purchase_days(frame)


def fold_purchase_days(days: pd.DataFrame) -> pd.DataFrame:
    """Per-client summary from per-(client, day) rows ``client_id, purchased_on, orders, total`` (pure)."""
    days = days.assign(purchased_on=_as_days(days["purchased_on"]), total=days["total"].astype(float))
    days = days.sort_values(["client_id", "purchased_on"], ignore_index=True)
    grouped = days.groupby("client_id", sort=True)
    return grouped.agg(
        orders=("orders", "sum"),
        revenue=("total", "sum"),
        first_purchase=("purchased_on", "min"),
        last_purchase=("purchased_on", "max"),
        purchase_days=("purchased_on", "size"),
        first_day_revenue=("total", "first"),
    ).reset_index()


def client_facts() -> pd.DataFrame:
    """Every client's lifecycle and pipeline facts, sorted by id; dates are local calendar days (datetime64).

    Columns: ``client_id, owner_id`` (float, NaN without an owner), ``lifecycle, lifecycle_manual, source,
    created_on, converted_at, last_interaction_on`` (NaT when never).
    """
    if is_postgresql():
        sql = f"""
            SELECT id AS client_id, owner_id, lifecycle, lifecycle_manual, source,
                   (created_at AT TIME ZONE %s)::date AS created_on, converted_at,
                   (last_interaction_at AT TIME ZONE %s)::date AS last_interaction_on
            FROM {Client._meta.db_table}
        """  # noqa: S608
        buffer = _copy_out(sql, [settings.TIME_ZONE, settings.TIME_ZONE])
        frame = pd.read_csv(
            buffer,
            dtype={"owner_id": float, "lifecycle": "category", "source": "category", "lifecycle_manual": str},
            parse_dates=["created_on", "converted_at", "last_interaction_on"],
            date_format="%Y-%m-%d",
        )
        frame["lifecycle_manual"] = frame["lifecycle_manual"] == "t"
    else:
        rows = Client.objects.values_list(
            "pk", "owner_id", "lifecycle", "lifecycle_manual", "source", "created_at", "converted_at",
            "last_interaction_at",
        ).order_by()  # fmt: skip
        frame = pd.DataFrame.from_records(list(rows), columns=CLIENT_COLUMNS)
        for column in ("created_on", "last_interaction_on"):
            local = pd.to_datetime(frame[column], utc=True).dt.tz_convert(settings.TIME_ZONE)
            frame[column] = local.dt.tz_localize(None).dt.normalize()
        frame = frame.astype({"owner_id": float, "lifecycle": "category", "source": "category"})
        frame["lifecycle_manual"] = frame["lifecycle_manual"].astype(bool)
        frame["converted_at"] = pd.to_datetime(frame["converted_at"])
    for column in ("created_on", "converted_at", "last_interaction_on"):
        frame[column] = frame[column].astype("datetime64[s]")
    return frame.sort_values("client_id", ignore_index=True)[CLIENT_COLUMNS]


def owner_names(owner_ids: Iterable[int]) -> dict[int, str]:
    """Display names of the given users: full name, else username."""
    users = get_user_model().objects.filter(pk__in=list(owner_ids))
    return {user.pk: user.get_full_name() or user.get_username() for user in users}


def run_segments(run_id: int) -> pd.DataFrame:
    """``client_id, segment`` of every client scored in a run."""
    if is_postgresql():
        sql = f"SELECT client_id, segment FROM {ClientScore._meta.db_table} WHERE run_id = %s"  # noqa: S608
        return pd.read_csv(_copy_out(sql, [run_id]), dtype={"client_id": np.int64, "segment": str})
    rows = ClientScore.objects.filter(run_id=run_id).values_list("client_id", "segment").order_by()
    return pd.DataFrame.from_records(list(rows), columns=["client_id", "segment"])


def scores_write(*, run_id: int, scores: pd.DataFrame) -> int:
    """Insert one ``ClientScore`` row per row of ``scores`` (columns ``SCORE_COLUMNS``); returns how many."""
    scores = scores[SCORE_COLUMNS].copy()
    scores[MONEY_COLUMNS] = scores[MONEY_COLUMNS].round(2)
    if is_postgresql():
        _scores_copy_in(run_id, scores)
    else:
        _scores_bulk_create(run_id, scores)
    return len(scores)


def _partition(run_id: int) -> str:
    return f"{ClientScore._meta.db_table}_run_{int(run_id)}"


def _scores_copy_in(run_id: int, scores: pd.DataFrame) -> None:
    """Load the run's rows into a table of their own, then attach it as the run's partition (migration 0002)."""
    table, partition = ClientScore._meta.db_table, _partition(run_id)
    scores.insert(0, "run_id", run_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (sequence,) = cursor.fetchone()
        cursor.execute(f"CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"ALTER TABLE {partition} ALTER COLUMN id SET DEFAULT nextval(%s::regclass)", [sequence])
        cursor.copy_expert(
            f"COPY {partition} ({', '.join(scores.columns)}) FROM STDIN WITH (FORMAT binary)",
            io.BytesIO(binary_copy_rows(scores, SCORE_TYPES)),
        )
        # With the partition's constraint already checked, attaching skips its own scan of the rows.
        cursor.execute(f"ALTER TABLE {partition} ADD CONSTRAINT {partition}_check CHECK (run_id = %s)", [run_id])
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES IN (%s)", [run_id])


# PostgreSQL's binary COPY format: a header, then per row the number of fields and, per field, its length in bytes
# (-1 for NULL) and its value in network byte order; -1 as the field count ends the data.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
COPY_TRAILER = np.array([-1], dtype=">i2").tobytes()
FIXED_WIDTH_TYPES = {"int8": ">i8", "int4": ">i4", "int2": ">i2", "float8": ">f8"}
# A numeric(p, 2) below 10^12 in base-10000 digits: three for the integer part (weights 2, 1, 0), one for the cents.
NUMERIC_DTYPE = [("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">i2"), ("dscale", ">i2"), ("digits", ">i2", (4,))]


def _numeric_values(values: np.ndarray) -> np.ndarray:
    cents = np.round(np.abs(values) * 100).astype(np.int64)
    units = cents // 100
    encoded = np.zeros(len(values), dtype=NUMERIC_DTYPE)
    encoded["ndigits"], encoded["weight"], encoded["dscale"] = 4, 2, 2
    encoded["sign"] = np.where(values < 0, 0x4000, 0)
    encoded["digits"] = np.column_stack([units // 10**8, units // 10**4 % 10**4, units % 10**4, cents % 100 * 100])
    return encoded


def _encoded_texts(values: np.ndarray) -> np.ndarray:
    """UTF-8 bytes of each value; each distinct value is encoded once (texts here are codes repeated many times)."""
    codes, distinct = pd.factorize(values)
    encoded = np.array([str(value).encode() for value in distinct] or [b""], dtype=bytes)
    return encoded[codes]


def _block(columns: dict[str, tuple[str, np.ndarray]], nulls: set[str], text_lengths: dict[str, int]) -> bytes:
    """Rows that share one layout (the same NULL columns, the same text lengths) as one numpy record array."""
    value_dtypes = {}
    for name, (kind, _values) in columns.items():
        if name in nulls or (kind == "text" and not text_lengths[name]):
            continue  # a NULL or an empty text is its length alone
        value_dtypes[name] = {"text": f"S{text_lengths.get(name)}", "numeric": NUMERIC_DTYPE}.get(
            kind, FIXED_WIDTH_TYPES.get(kind)
        )
    fields = [("field_count", ">i2")]
    for name in columns:
        fields.append((f"{name}__length", ">i4"))
        if name in value_dtypes:
            fields.append((name, value_dtypes[name]))
    rows = len(next(iter(columns.values()))[1])
    block = np.zeros(rows, dtype=fields)
    block["field_count"] = len(columns)
    for name, (kind, values) in columns.items():
        if name in nulls:
            block[f"{name}__length"] = -1
        elif name in value_dtypes:
            block[name] = _numeric_values(values.astype(float)) if kind == "numeric" else values
            block[f"{name}__length"] = block.dtype[name].itemsize
    return block.tobytes()


def binary_copy_rows(frame: pd.DataFrame, types: dict[str, str]) -> bytes:
    """``frame``'s rows in PostgreSQL's binary COPY format, for columns of the given types (pure).

    Types: ``int8, int4, int2, float8``, ``numeric`` (two decimals, below 10^12) and ``text``; NaN or infinite
    numbers are NULL. Numpy lays out at once all the rows that share a layout (same NULLs, same text lengths), so a
    million rows take well under a second, where formatting them as CSV takes several. Rows come out grouped by
    layout, in their order within each group.
    """
    columns = {
        name: (kind, _encoded_texts(frame[name].to_numpy()) if kind == "text" else frame[name].to_numpy())
        for name, kind in types.items()
    }
    layout = pd.DataFrame(
        {
            **{
                f"null {name}": ~np.isfinite(values.astype(float))
                for name, (kind, values) in columns.items()
                if kind in ("float8", "numeric")
            },
            **{f"length {name}": np.char.str_len(values) for name, (kind, values) in columns.items() if kind == "text"},
        }
    )
    chunks = [COPY_HEADER]
    # Without a nullable or text column every row shares one layout (and groupby would find no group at all).
    layouts = (
        layout.groupby(list(layout.columns), sort=True).indices if len(layout.columns) else {(): np.arange(len(frame))}
    )
    for key, positions in layouts.items():
        shape = dict(zip(layout.columns, key if isinstance(key, tuple) else (key,), strict=True))
        chunks.append(
            _block(
                {name: (kind, values[positions]) for name, (kind, values) in columns.items()},
                nulls={name for name in columns if shape.get(f"null {name}")},
                text_lengths={name: int(shape[f"length {name}"]) for name in columns if f"length {name}" in shape},
            )
        )
    chunks.append(COPY_TRAILER)
    return b"".join(chunks)


def _scores_bulk_create(run_id: int, scores: pd.DataFrame) -> None:
    records = scores.astype(object).where(scores.notna(), None).to_dict("records")
    for start in range(0, len(records), SCORE_BATCH_SIZE):
        ClientScore.objects.bulk_create(
            ClientScore(run_id=run_id, **record) for record in records[start : start + SCORE_BATCH_SIZE]
        )


def scores_delete(*, run_ids: Iterable[int]) -> None:
    """Delete the scores of the given runs: their partitions go whole, rows written through the ORM one by one."""
    run_ids = [int(run_id) for run_id in run_ids]
    if not run_ids:
        return
    if is_postgresql():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '10s'")  # dropping a partition waits for readers of the table
            for run_id in run_ids:
                cursor.execute(f"DROP TABLE IF EXISTS {_partition(run_id)}")
    ClientScore.objects.filter(run_id__in=run_ids).delete()


def scores_delete_except(*, run_ids: Iterable[int]) -> None:
    """Delete the scores of every run but the given ones."""
    kept = {int(run_id) for run_id in run_ids}
    if not is_postgresql():
        ClientScore.objects.exclude(run_id__in=kept).delete()
        return
    table = ClientScore._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = %s::regclass",
            [table],
        )
        partitions = [name for (name,) in cursor.fetchall()]
    prefix = _partition(0)[:-1]
    runs = {int(name.removeprefix(prefix)) for name in partitions if name.removeprefix(prefix).isdigit()}
    scores_delete(run_ids=sorted(runs - kept))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}_default WHERE NOT (run_id = ANY(%s))", [sorted(kept)])  # noqa: S608


def lock_run_start() -> None:
    """Serialise the start of runs until the end of the transaction (SQLite's write lock already does)."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RUN_START_LOCK])
