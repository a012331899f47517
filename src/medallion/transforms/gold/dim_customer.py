"""``dim_customer``: a type-2 slowly changing dimension built from the version history in bronze.

The dimension is a function of the versions bronze holds, not of the order in which runs saw
them. A customer's tracked state at a business time ``t`` is

* its customer version in force at ``t`` (the latest with ``updated_at <= t``), which gives
  ``segment``, ``country`` and ``email``;
* the CRM account linked to it at ``t``: among the accounts whose version in force at ``t``
  names the customer (``External_Customer_Id__c``), the oldest (earliest ``created_at``, then the
  smallest id), as silver aligns them; it gives ``crm_account_id`` and ``crm_industry``.

An entity's first delivered version stands for its state since the start of history (nothing
earlier is known about it), so a first load opens one version per customer. The state is
evaluated at every business time at which something could change for the customer (each of its
versions' ``updated_at``, and each version's ``LastModifiedDate`` of an account that ever
named it) and consecutive equal states collapse into one version. So a change whose
``updated_at`` falls between two known versions slots into history, a CRM edit starts at its
own time rather than moving the customer's, and removing a link ends the link when the account
says it was removed.

Versions: the first is valid from ``HISTORY_START`` (orders older than the first extract still
find a version), later ones from the business time of their change; ``valid_to`` is the next
version's ``valid_from`` (``OPEN_END`` for the current one). Keys are deterministic:
``customer_sk = xxhash64(customer_id, valid_from)`` (made positive), where ``valid_from`` is a
UTC instant (the session time zone is UTC and no literal goes through the machine's local time),
so the same history gives the same keys on every machine, run, rerun and rebuild. Descriptive
(type-1) attributes (names) are the customer's current values on every version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import UNKNOWN_ID, UNKNOWN_SK, latest_per_key, utc_timestamp

# Naive values meaning UTC; in Spark always through utc_timestamp(), never F.lit(datetime).
HISTORY_START = dt.datetime(1900, 1, 1)
OPEN_END = dt.datetime(9999, 12, 31)

CUSTOMER_TRACKED = ["segment", "country", "email"]
CRM_TRACKED = ["crm_account_id", "crm_industry"]
TRACKED_ATTRIBUTES = [*CUSTOMER_TRACKED, *CRM_TRACKED]
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

# The business time of a version on the timeline (a version without one counts as the earliest).
_T = "_t"


def surrogate_key(*columns: str | Column) -> Column:
    """A deterministic, positive 63-bit key from the given columns (never -1)."""
    cols = [F.col(c) if isinstance(c, str) else c for c in columns]
    return F.abs(F.xxhash64(*cols)) % F.lit(9_223_372_036_854_775_807)


def attributes_hash() -> Column:
    """Null-safe fingerprint of the tracked attributes (a null differs from an empty string)."""
    return F.sha2(F.to_json(F.struct(*[F.col(c) for c in TRACKED_ATTRIBUTES])), 256)


def unknown_member(spark: SparkSession) -> DataFrame:
    """The row facts point at when their customer is unknown (key -1)."""
    values = {
        c: F.lit(None).cast(T.StringType()) for c in DESCRIPTIVE_ATTRIBUTES + TRACKED_ATTRIBUTES
    }
    values.update(
        customer_sk=F.lit(UNKNOWN_SK).cast(T.LongType()),
        customer_id=F.lit(UNKNOWN_ID),
        attributes_hash=F.lit("unknown"),
        valid_from=utc_timestamp(HISTORY_START),
        valid_to=utc_timestamp(OPEN_END),
        is_current=F.lit(True),
    )
    return spark.range(1).select(*[values[c].alias(c) for c in DIM_CUSTOMER_COLUMNS])


def _timeline_versions(versions: DataFrame, key: str, columns: Sequence[str]) -> DataFrame:
    """One version per (key, business time): of two deliveries of the same time, the later
    delivery (then the record hash) wins, as in silver's version order."""
    timed = versions.select(
        key,
        *columns,
        F.coalesce(F.col("updated_at"), utc_timestamp(HISTORY_START)).alias(_T),
        "_run_date",
        "_record_hash",
    )
    order = [F.col("_run_date").desc_nulls_last(), F.col("_record_hash").desc_nulls_last()]
    return timed.transform(latest_per_key([key, _T], order)).drop("_run_date", "_record_hash")


def _in_force(
    points: DataFrame, versions: DataFrame, key: str, point_keys: Sequence[str]
) -> DataFrame:
    """For each point (``point_keys`` and a time ``_at``), the version of ``key`` in force then:
    the latest at or before ``_at``, or the entity's first version when ``_at`` precedes them all."""
    joined = points.join(versions, on=key, how="inner")
    before = F.col(_T) <= F.col("_at")
    order = [
        before.desc(),
        F.when(before, F.col(_T)).desc_nulls_last(),
        F.col(_T).asc(),
    ]
    window = Window.partitionBy(*point_keys).orderBy(*order)
    return (
        joined.withColumn("_pick", F.row_number().over(window))
        .where(F.col("_pick") == 1)
        .drop("_pick", _T)
    )


def tracked_states(customer_versions: DataFrame, account_versions: DataFrame) -> DataFrame:
    """Per customer and change time ``_at``: the tracked attributes in force at that time.

    ``customer_versions`` are silver-shaped customer versions (``customer_id``, the tracked
    customer columns, ``updated_at``, ``_run_date``, ``_record_hash``); ``account_versions``
    silver-shaped account versions (``account_id``, ``customer_id``, ``industry``,
    ``created_at``, ``updated_at``, lineage), every delivered version of each.
    """
    customers = _timeline_versions(customer_versions, "customer_id", CUSTOMER_TRACKED)
    accounts = _timeline_versions(
        account_versions.select(
            "account_id",
            F.col("customer_id").alias("_link"),
            F.col("industry").alias("_industry"),
            "created_at",
            "updated_at",
            "_run_date",
            "_record_hash",
        ),
        "account_id",
        ["_link", "_industry", "created_at"],
    )
    # Which accounts ever named which customer: their every version may change its CRM state.
    claims = (
        accounts.where(F.col("_link").isNotNull())
        .select("account_id", F.col("_link").alias("customer_id"))
        .distinct()
    )
    points = (
        customers.select("customer_id", F.col(_T).alias("_at"))
        .unionByName(
            claims.join(
                accounts.select("account_id", F.col(_T).alias("_at")), on="account_id"
            ).select("customer_id", "_at")
        )
        .distinct()
    )
    customer_state = _in_force(points, customers, "customer_id", ["customer_id", "_at"])
    account_state = _in_force(
        points.join(claims, on="customer_id"),
        accounts,
        "account_id",
        ["customer_id", "_at", "account_id"],
    ).where(F.col("_link") == F.col("customer_id"))
    oldest = [F.col("created_at").asc_nulls_last(), F.col("account_id").asc()]
    crm_state = account_state.transform(latest_per_key(["customer_id", "_at"], oldest)).select(
        "customer_id",
        "_at",
        F.col("account_id").alias("crm_account_id"),
        F.col("_industry").alias("crm_industry"),
    )
    return customer_state.join(crm_state, on=["customer_id", "_at"], how="left").select(
        "customer_id", "_at", *TRACKED_ATTRIBUTES
    )


def customer_history(
    customer_versions: DataFrame, account_versions: DataFrame, current_customers: DataFrame
) -> DataFrame:
    """The dimension's rows for every customer in ``current_customers`` (silver), without the
    unknown member: its states collapsed into versions with validity windows and keys."""
    by_time = Window.partitionBy("customer_id").orderBy("_at")
    states = tracked_states(customer_versions, account_versions).withColumn(
        "attributes_hash", attributes_hash()
    )
    starts = (
        states.withColumn("_previous", F.lag("attributes_hash").over(by_time))
        .where(~F.col("_previous").eqNullSafe(F.col("attributes_hash")))
        .withColumn("_first", F.row_number().over(by_time) == 1)
    )
    versions = starts.withColumn(
        "valid_from", F.when(F.col("_first"), utc_timestamp(HISTORY_START)).otherwise(F.col("_at"))
    )
    # The first version's valid_from (1900) sorts first as its _at does, so one order serves.
    following = F.lead("valid_from").over(by_time)
    descriptive = current_customers.select("customer_id", *DESCRIPTIVE_ATTRIBUTES)
    return (
        versions.withColumn("valid_to", F.coalesce(following, utc_timestamp(OPEN_END)))
        .withColumn("is_current", following.isNull())
        .join(descriptive, on="customer_id", how="inner")
        .withColumn("customer_sk", surrogate_key("customer_id", "valid_from"))
        .select(*DIM_CUSTOMER_COLUMNS)
    )


def dim_customer(
    customer_versions: DataFrame, account_versions: DataFrame, current_customers: DataFrame
) -> DataFrame:
    """The whole dimension: the unknown member and every customer's history."""
    history = customer_history(customer_versions, account_versions, current_customers)
    return unknown_member(history.sparkSession).unionByName(history)


def opened_by_change_on(run_date: dt.date) -> Column:
    """True for versions opened by a change (not first versions) on ``run_date``."""
    return (F.col("valid_from") > utc_timestamp(HISTORY_START)) & (
        F.to_date(F.col("valid_from")) == F.lit(run_date)
    )
