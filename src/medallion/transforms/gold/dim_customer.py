"""``dim_customer``: a type-2 slowly changing dimension over the customer's tracked attributes.

Each run compares the current silver customers with the dimension's current rows. A customer
whose tracked attributes changed gets its current row closed (``valid_to`` = the new row's
``valid_from``, ``is_current`` = false) and a new current row; an unchanged customer keeps its
row and its key; a new customer gets its first row.

Keys are deterministic: ``customer_sk = xxhash64(customer_id, valid_from)`` (made positive), and
``valid_from`` comes from the data (the first version is valid from ``HISTORY_START`` so orders
older than the first extract still find a version; later versions from the business time of the
change: the later of the customer's and its CRM account's ``updated_at``). The same inputs
therefore give the same keys on every run, rerun and backfill.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

UNKNOWN_SK = -1
UNKNOWN_ID = "UNKNOWN"
HISTORY_START = dt.datetime(1900, 1, 1)
OPEN_END = dt.datetime(9999, 12, 31)
# The key column of the MERGE's staged source: the customer_id of a row to update in place, null
# for a row to insert (see scd2_merge_source).
MERGE_KEY = "_merge_key"

TRACKED_ATTRIBUTES = ["segment", "country", "email", "crm_account_id", "crm_industry"]
DESCRIPTIVE_ATTRIBUTES = ["first_name", "last_name", "crm_account_name"]

DIM_CUSTOMER_COLUMNS = [
    "customer_sk",
    "customer_id",
    *DESCRIPTIVE_ATTRIBUTES,
    *TRACKED_ATTRIBUTES,
    "attributes_hash",
    "valid_from",
    "valid_to",
    "is_current",
]

DIM_CUSTOMER_SCHEMA = T.StructType(
    [
        T.StructField("customer_sk", T.LongType(), False),
        T.StructField("customer_id", T.StringType(), False),
        *[
            T.StructField(c, T.StringType(), True)
            for c in DESCRIPTIVE_ATTRIBUTES + TRACKED_ATTRIBUTES
        ],
        T.StructField("attributes_hash", T.StringType(), False),
        T.StructField("valid_from", T.TimestampType(), False),
        T.StructField("valid_to", T.TimestampType(), False),
        T.StructField("is_current", T.BooleanType(), False),
    ]
)


def surrogate_key(*columns: str | Column) -> Column:
    """A deterministic, positive 63-bit key from the given columns (never -1)."""
    cols = [F.col(c) if isinstance(c, str) else c for c in columns]
    return F.abs(F.xxhash64(*cols)) % F.lit(9_223_372_036_854_775_807)


def attributes_hash() -> Column:
    """Null-safe fingerprint of the tracked attributes (a null differs from an empty string)."""
    return F.sha2(F.to_json(F.struct(*[F.col(c) for c in TRACKED_ATTRIBUTES])), 256)


def customer_snapshot(silver_customers: DataFrame) -> DataFrame:
    """The current silver customers as candidate dimension rows with their change time."""
    change_ts = F.greatest(
        F.col("updated_at"), F.coalesce(F.col("crm_account_updated_at"), F.col("updated_at"))
    )
    return silver_customers.select(
        "customer_id",
        *DESCRIPTIVE_ATTRIBUTES,
        *TRACKED_ATTRIBUTES,
        attributes_hash().alias("attributes_hash"),
        change_ts.alias("change_ts"),
    )


def unknown_member(spark) -> DataFrame:
    row = {c: None for c in DESCRIPTIVE_ATTRIBUTES + TRACKED_ATTRIBUTES}
    row.update(
        customer_sk=UNKNOWN_SK,
        customer_id=UNKNOWN_ID,
        attributes_hash="unknown",
        valid_from=HISTORY_START,
        valid_to=OPEN_END,
        is_current=True,
    )
    return spark.createDataFrame([tuple(row[c] for c in DIM_CUSTOMER_COLUMNS)], DIM_CUSTOMER_SCHEMA)


def scd2_merge(existing: DataFrame | None, snapshot: DataFrame) -> DataFrame:
    """Fold a snapshot of current customers into the dimension's history (the whole table).

    ``existing`` is the dimension so far (None on the first run); the unknown member row is
    carried through unchanged. Applying the same snapshot twice changes nothing. This is the
    specification of the history; the job applies it to the Delta table as a MERGE of
    :func:`scd2_merge_source`, which changes exactly the rows this function changes.
    """
    spark = snapshot.sparkSession
    history = _history(existing if existing is not None else unknown_member(spark))
    closed = history.where(~F.col("is_current"))
    flagged = _flag(history.where(F.col("is_current")), snapshot)

    kept = flagged.where(~F.col("_is_new") & ~F.col("_is_changed")).select(*DIM_CUSTOMER_COLUMNS)
    # Descriptive (type-1) attributes of kept rows follow the latest snapshot.
    refreshed = _refresh_descriptive(kept, snapshot)
    merged = (
        closed.unionByName(_retired(flagged)).unionByName(refreshed).unionByName(_opened(flagged))
    )
    return unknown_member(spark).unionByName(merged).select(*DIM_CUSTOMER_COLUMNS)


def scd2_merge_source(existing: DataFrame | None, snapshot: DataFrame) -> DataFrame:
    """The staged source of the SCD2 MERGE: only the rows the snapshot changes, as final rows.

    Delta's SCD2 pattern: rows keyed by ``customer_id`` (``MERGE_KEY``) update the customer's
    current row in place - a changed customer's version closed (``valid_to`` = the new
    version's ``valid_from``, ``is_current`` = false), an unchanged customer's descriptive
    attributes refreshed - and rows with a null key match nothing, so they insert: the new
    version of a changed customer and the first version of a new one. Unchanged customers whose
    descriptive attributes did not move are not in the source at all, so the MERGE leaves their
    rows (and the files holding them) alone. The values come from the same comparison as
    :func:`scd2_merge`, so keys and validity windows are the same numbers.
    """
    spark = snapshot.sparkSession
    history = _history(existing if existing is not None else unknown_member(spark))
    flagged = _flag(history.where(F.col("is_current")), snapshot)
    descriptive_moved = F.lit(False)
    for c in DESCRIPTIVE_ATTRIBUTES:
        descriptive_moved = descriptive_moved | ~F.col(c).eqNullSafe(F.col(f"_snap_{c}"))
    needs_refresh = (
        ~F.col("_is_new") & ~F.col("_is_changed") & ~F.col("_is_gone") & descriptive_moved
    )
    refreshed = flagged.where(needs_refresh).select(
        *[F.col(f"_snap_{c}").alias(c) if c in DESCRIPTIVE_ATTRIBUTES else F.col(c)
          for c in DIM_CUSTOMER_COLUMNS]
    )  # fmt: skip
    in_place = _retired(flagged).unionByName(refreshed)
    return in_place.select(
        F.col("customer_id").alias(MERGE_KEY), *DIM_CUSTOMER_COLUMNS
    ).unionByName(
        _opened(flagged).select(
            F.lit(None).cast(T.StringType()).alias(MERGE_KEY), *DIM_CUSTOMER_COLUMNS
        )
    )


def _history(existing: DataFrame) -> DataFrame:
    return existing.where(F.col("customer_sk") != UNKNOWN_SK).select(*DIM_CUSTOMER_COLUMNS)


def _flag(current: DataFrame, snapshot: DataFrame) -> DataFrame:
    """Current versions beside the snapshot (full outer join on ``customer_id``): the current
    row's columns, the snapshot's as ``_snap_*``, what happened (``_is_new``, ``_is_changed``,
    ``_is_gone``) and when a new version would start (``_new_from``)."""
    cur = current.alias("cur")
    snap = snapshot.alias("snap")
    compared = cur.join(
        snap, on=F.col("cur.customer_id") == F.col("snap.customer_id"), how="full_outer"
    )
    is_new = F.col("cur.customer_id").isNull()
    is_gone = F.col("snap.customer_id").isNull()
    is_changed = (
        ~is_new & ~is_gone & (F.col("cur.attributes_hash") != F.col("snap.attributes_hash"))
    )
    # A change can never start before the version it replaces.
    new_from = F.when(is_new, F.lit(HISTORY_START)).otherwise(
        F.greatest(F.col("snap.change_ts"), F.col("cur.valid_from") + F.expr("INTERVAL 1 SECOND"))
    )
    return compared.select(
        F.col("cur.*"),
        *[
            F.col(f"snap.{c}").alias(f"_snap_{c}")
            for c in [
                "customer_id",
                *DESCRIPTIVE_ATTRIBUTES,
                *TRACKED_ATTRIBUTES,
                "attributes_hash",
            ]
        ],
        is_new.alias("_is_new"),
        is_changed.alias("_is_changed"),
        is_gone.alias("_is_gone"),
        new_from.alias("_new_from"),
    )


def _retired(flagged: DataFrame) -> DataFrame:
    """The changed customers' current versions, closed where the new version starts."""
    return flagged.where(F.col("_is_changed")).select(
        *[c for c in DIM_CUSTOMER_COLUMNS if c not in ("valid_to", "is_current")],
        F.col("_new_from").alias("valid_to"),
        F.lit(False).alias("is_current"),
    )


def _opened(flagged: DataFrame) -> DataFrame:
    """The new current versions: a changed customer's next one, a new customer's first."""
    return flagged.where(F.col("_is_new") | F.col("_is_changed")).select(
        surrogate_key("_snap_customer_id", "_new_from").alias("customer_sk"),
        F.col("_snap_customer_id").alias("customer_id"),
        *[F.col(f"_snap_{c}").alias(c) for c in DESCRIPTIVE_ATTRIBUTES + TRACKED_ATTRIBUTES],
        F.col("_snap_attributes_hash").alias("attributes_hash"),
        F.col("_new_from").alias("valid_from"),
        F.lit(OPEN_END).cast(T.TimestampType()).alias("valid_to"),
        F.lit(True).alias("is_current"),
    )


def _refresh_descriptive(kept: DataFrame, snapshot: DataFrame) -> DataFrame:
    latest = snapshot.select(
        F.col("customer_id").alias("_id"),
        *[F.col(c).alias(f"_new_{c}") for c in DESCRIPTIVE_ATTRIBUTES],
    )
    joined = kept.join(latest, on=F.col("customer_id") == F.col("_id"), how="left")
    return joined.select(
        *[
            F.when(F.col("_id").isNotNull(), F.col(f"_new_{c}")).otherwise(F.col(c)).alias(c)
            if c in DESCRIPTIVE_ATTRIBUTES
            else F.col(c)
            for c in DIM_CUSTOMER_COLUMNS
        ]
    )


def opened_by_change_on(run_date: dt.date) -> Column:
    """True for versions opened by a change (not first versions) on ``run_date``."""
    return (F.col("valid_from") > F.lit(HISTORY_START)) & (
        F.to_date(F.col("valid_from")) == F.lit(run_date)
    )
