"""Which keys of a silver table a run must recompute, given what changed in bronze.

Silver is a function of bronze (docs/SILVER_GOLD.md): a key's row is the latest of *its own*
bronze versions, joined with lookups into other silver tables. So a key's row can only have
changed since the table was last built when

* one of its own bronze versions was delivered, replaced or removed since then (the bronze
  table's change data feed names these rows, pre- and post-images both), or
* a lookup it depends on answers differently for it. Every lookup is either an existence test
  (is the order's customer known? the event's order? the contact's account?), whose answer for
  a value can only change when a bronze version *with that key* changed, or a value test (the
  FX rate in force on the order's date; the customer's CRM account and its primary contact),
  whose inputs are again bronze versions that the feed names.

The functions here turn the changed bronze rows (projected into the silver shape by the table's
``*_from_bronze``) into the set of keys to recompute: the keys of the changed rows themselves,
plus the keys of every bronze version that links to a changed key. Linking through *all*
versions, not just the current one, is what makes the set safe without reading silver's old
state: a customer an account used to point at is found from the account's older version, which
bronze keeps.

The set is a superset of the keys whose row changed; recomputing a key that did not change
costs a little and changes nothing (the diff drops it). It is never a subset, which is what
:mod:`tests.integration.test_incremental_silver` checks against a rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def changed_keys(changes: DataFrame, keys: Sequence[str]) -> DataFrame:
    """The distinct keys of the changed rows (null keys included: they match nothing)."""
    return changes.select(*keys).distinct()


def linked_keys(
    versions: DataFrame, link: str, changed: DataFrame, keys: Sequence[str]
) -> DataFrame:
    """The keys of the versions whose ``link`` column is one of the values in ``changed`` (a
    one-column frame): e.g. the orders whose customer is a changed customer."""
    values = changed.select(F.col(changed.columns[0]).alias("_changed_value")).distinct()
    return (
        versions.join(values, on=F.col(link) == F.col("_changed_value"), how="left_semi")
        .select(*keys)
        .distinct()
    )


def rate_linked_keys(
    versions: DataFrame,
    rate_changes: DataFrame,
    *,
    currency: str,
    date: str,
    keys: Sequence[str],
) -> DataFrame:
    """The keys of the versions converted with a changed rate.

    A rate for (day, currency) is in force from its day until the currency's next rate (the
    as-of calendar carries it forward), so a change of it can alter the conversion of any row in
    that currency dated on or after that day. Per currency, every row from its earliest changed
    day on is in scope: a little more than needed, never less.
    """
    earliest = rate_changes.groupBy(F.col("quote_ccy").alias("_rate_ccy")).agg(
        F.min("rate_date").alias("_rate_from")
    )
    return (
        versions.join(
            earliest,
            on=(F.col(currency) == F.col("_rate_ccy")) & (F.col(date) >= F.col("_rate_from")),
            how="left_semi",
        )
        .select(*keys)
        .distinct()
    )


def union_keys(*frames: DataFrame) -> DataFrame:
    """The union of key sets (same columns, by name), each key once."""
    first, *rest = frames
    for frame in rest:
        first = first.unionByName(frame)
    return first.distinct()


def within(frame: DataFrame, scope: DataFrame, keys: Sequence[str]) -> DataFrame:
    """The rows of ``frame`` whose key is in ``scope`` (null-safe: a null key part matches a
    null one, as the silver MERGE's condition does)."""
    renamed = scope.select(*[F.col(k).alias(f"_scope_{k}") for k in keys])
    condition = F.lit(True)
    for key in keys:
        condition = condition & F.col(key).eqNullSafe(F.col(f"_scope_{key}"))
    return frame.join(renamed, on=condition, how="left_semi")
