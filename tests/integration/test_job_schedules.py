"""Property: after any delivery schedule, the jobs' silver and gold equal a rebuild and the truth.

The schedule property of the dimension (tests/unit/transforms/gold/test_delivery_schedules.py)
drives ``dim_customer``'s transform on hand-made rows. This one drives the jobs themselves:
``bronze_to_silver`` (with its change-feed scoping of the keys to recompute) and
``silver_to_gold``, in one Spark session, over every silver and gold table.

A source lake is built once: four generated days through the four batch ingests (the stream and
the publisher add nothing to the state model). A schedule is a sequence of steps drawn from the
next day; a day skipped (caught up later by a backfill or never); an older day backfilled after
newer ones; the same delivery twice; a full rebuild; and a rerun of a delivered day with a
corrected extract, its corrections aimed where an incremental run can go wrong: customers dropped
that orders point at (the orders become orphans), customers added that orders were waiting for
(the flags clear), a changed segment, a late version one minute after a customer's first one,
orders dropped or cancelled, the EUR rates 5% higher, a CRM edit of linked accounts at its own
time. A delivery writes the day's rows of each bronze table (a rerun: of each table it corrects)
into the schedule's lake the way the ingests do (``replaceWhere`` on the run date, change data
feed on); then the two jobs run for that date.

* After every step, silver is the truth computed in plain Python from bronze's rows: each
  customer's current segment (latest ``updated_at``, then the later delivery, then the hash),
  each FX rate (the later delivery), and each order's status, orphan flag and USD amount at the
  rate in force on its date; and ``dim_customer`` holds each current customer's SCD2 history
  as a plain-Python model of the timeline gives it from every customer and CRM account version
  (tracked attributes, valid-from times). Checked at every step: a later rebuild step would hide
  what an incremental run got wrong.
* After the schedule, every silver and gold table equals, by content, a rebuild from the final
  bronze alone in a lake of its own (``--rebuild``, the same run date).

A fixed schedule of every kind of step and every correction (``EVERY_KIND``) always runs first.
A schedule costs about two minutes of driver time on these few hundred rows (each job run is
mostly fixed cost, docs/PERFORMANCE.md), so this suite is in ``make test-extended``:
``MEDALLION_JOB_SCHEDULES`` sets how many are drawn (default 3; 0: the fixed one only),
``MEDALLION_SCHEDULE_SEED`` draws other ones. A failure shrinks to the shortest schedule that
breaks it, printed step by step.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from chain_lake import gold, same_content, settings_for, silver
from hypothesis import example, given, note
from hypothesis import strategies as st
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from schedule_runs import schedule_settings

from medallion.generate import generate_landing
from medallion.jobs import JOB_MAP
from medallion.jobs.bronze import replace_partition
from medallion.jobs.bronze_to_silver import BRONZE_INPUTS
from medallion.lake import CHANGE_FEED, commit_metadata, read_delta
from medallion.quality.table_contracts import table_names
from medallion.runner import run_chain
from medallion.transforms.common import UNKNOWN_SK
from medallion.transforms.gold.catalog import GOLD_TABLES
from medallion.transforms.gold.dim_customer import HISTORY_START
from medallion.transforms.silver import crm
from medallion.transforms.silver.customers import customers_from_bronze

pytestmark = [pytest.mark.integration, pytest.mark.extended]

SCHEDULES = int(os.environ.get("MEDALLION_JOB_SCHEDULES", "3"))
START = dt.date(2025, 1, 13)
DAYS = 4
SCALE = 0.01
INGESTS = [
    JOB_MAP[name]
    for name in ("fx_json_to_bronze", "snowflake_to_bronze", "crm_to_bronze", "redshift_to_bronze")
]
JOBS = [JOB_MAP["bronze_to_silver"], JOB_MAP["silver_to_gold"]]
# Every bronze and silver table but the stream's (its events add nothing to the state model).
BRONZE_TABLES = tuple(table for table in BRONZE_INPUTS if table[0] != "kafka")
SILVER_TABLES = tuple(table for table in table_names("silver") if table != "order_events")
SEGMENTS = ("consumer", "small_business", "enterprise")


def day_of(index: int) -> dt.date:
    return START + dt.timedelta(days=index)


# -- steps ----------------------------------------------------------------------------------------


CORRECTION_KINDS = (
    "segment", "drop_customers", "drop_orders", "add_customers", "status", "fx", "late", "crm_edit",
)  # fmt: skip


@dataclass(frozen=True)
class Correction:
    """One change a re-delivered extract makes to what the source delivered for its date."""

    kind: str  # one of CORRECTION_KINDS
    count: int = 1

    def __str__(self) -> str:
        return f"{self.kind} x{self.count}"


@dataclass(frozen=True)
class Step:
    kind: str  # deliver | rebuild
    day: int = 0
    why: str = ""
    corrections: tuple[Correction, ...] = ()

    def __str__(self) -> str:
        if self.kind == "rebuild":
            return f"a full rebuild (run date day {self.day})"
        fixes = f": {', '.join(map(str, self.corrections))}" if self.corrections else ""
        return f"day {self.day} ({self.why}){fixes}"


corrections = st.lists(
    st.builds(
        Correction,
        st.sampled_from(CORRECTION_KINDS),
        st.integers(min_value=1, max_value=3),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda c: c.kind,
)


@st.composite
def schedules(draw) -> list[Step]:
    """Two to four steps over four days: in order, with gaps, reruns, backfills and rebuilds."""
    steps: list[Step] = []
    for _ in range(draw(st.integers(min_value=2, max_value=4))):
        delivered = sorted({s.day for s in steps if s.kind == "deliver"})
        kind = draw(
            st.sampled_from(("next", "skip", "rerun", "rerun", "same", "backfill", "rebuild"))
        )
        last = delivered[-1] if delivered else -1
        missing = sorted(set(range(last)) - set(delivered))
        if not delivered or kind == "next" or (kind == "backfill" and not missing):
            if last + 1 >= DAYS:
                kind = "rerun"
            else:
                steps.append(Step("deliver", last + 1, "next day"))
                continue
        if kind == "skip" and last + 2 < DAYS:
            steps.append(Step("deliver", last + 2, "a day skipped"))
        elif kind == "same":
            previous = next(s for s in reversed(steps) if s.kind == "deliver")
            steps.append(Step("deliver", previous.day, "the same delivery again", previous.corrections))  # fmt: skip
        elif kind == "backfill" and missing:
            steps.append(Step("deliver", draw(st.sampled_from(missing)), "an older day backfilled"))
        elif kind == "rebuild":
            steps.append(Step("rebuild", steps[-1].day))
        else:
            day = draw(st.sampled_from(delivered))
            steps.append(
                Step("deliver", day, "rerun with a corrected extract", tuple(draw(corrections)))
            )
    return steps


# Every kind of step and every correction at least once, whatever Hypothesis draws.
EVERY_KIND = [
    Step("deliver", 0, "next day"),
    Step("deliver", 2, "a day skipped"),
    Step("deliver", 1, "an older day backfilled"),
    Step(
        "deliver",
        0,
        "rerun with a corrected extract",
        tuple(Correction(k, 2) for k in ("segment", "drop_customers", "add_customers", "late")),
    ),
    Step(
        "deliver",
        1,
        "rerun with a corrected extract",
        (Correction("drop_orders", 2), Correction("status", 2)),
    ),
    Step("deliver", 2, "rerun with a corrected extract", (Correction("crm_edit", 2),)),
    Step("deliver", 0, "rerun with a corrected extract", (Correction("fx"),)),
    Step("deliver", 0, "the same delivery again", (Correction("fx"),)),
    Step("rebuild", 2),
    Step("deliver", 3, "next day"),
]


# -- the source extracts, and their corrections ----------------------------------------------------


@pytest.fixture(scope="module")
def source(spark, tmp_path_factory) -> Path:
    """Four generated days through the batch ingests: every date's extract, in bronze."""
    root = tmp_path_factory.mktemp("schedule_source") / "lake"
    generate_landing(root / "landing", scale=SCALE, days=DAYS, start_date=START, seed=5, force=True)
    records = run_chain(
        INGESTS, [day_of(i) for i in range(DAYS)], settings_for(root), lambda: spark
    )
    assert all(r.status == "succeeded" for r in records), [(r.job, r.error) for r in records]
    return root


def rehash(frame: DataFrame, why: str, hit: Column | None = None) -> DataFrame:
    """A corrected row is another record: it gets another hash (the rows ``hit`` selects)."""
    changed = F.sha2(F.concat_ws("|", "_record_hash", F.lit(why)), 256)
    return frame.withColumn(
        "_record_hash",
        changed if hit is None else F.when(hit, changed).otherwise(F.col("_record_hash")),
    )


def amend(rows: DataFrame, hit: Column, why: str, **values: Column) -> DataFrame:
    """``rows`` with ``values`` set on the rows ``hit`` selects, as another record."""
    for column, value in values.items():
        rows = rows.withColumn(column, F.when(hit, value).otherwise(F.col(column)))
    return rehash(rows, why, hit)


def bronze_of(spark, lake: Path, table: str) -> DataFrame | None:
    return read_delta(spark, str(lake / "bronze" / table))


def first_ids(frame: DataFrame, key: str, count: int) -> list:
    return [r[0] for r in frame.select(key).distinct().orderBy(key).limit(count).collect()]


def extract(spark, source: Path, table: tuple[str, str], day: int) -> DataFrame:
    bronze = bronze_of(spark, source, "/".join(table))
    return bronze.where(F.col("_run_date") == F.lit(day_of(day)))


def customers_to_drop(spark, lake: Path, rows: DataFrame, day: int, count: int) -> list:
    """Customers of the day's extract that orders point at and no other date delivered, first:
    dropping them makes their orders orphans."""
    others = bronze_of(spark, lake, "snowflake/customers")
    orders = bronze_of(spark, lake, "snowflake/orders")
    elsewhere = None if others is None else others.where(F.col("_run_date") != F.lit(day_of(day)))
    ranked = rows.select("customer_id").distinct()
    for flag, frame in (("_elsewhere", elsewhere), ("_ordered", orders)):
        if frame is None:
            ranked = ranked.withColumn(flag, F.lit(None))
        else:
            marks = frame.select("customer_id", F.lit(1).alias(flag)).distinct()
            ranked = ranked.join(marks, "customer_id", "left")
    best = ranked.orderBy(
        F.col("_elsewhere").isNotNull(), F.col("_ordered").isNull(), "customer_id"
    ).limit(count)
    return [r.customer_id for r in best.collect()]


def customers_to_add(spark, lake: Path, rows: DataFrame, day: int, count: int) -> DataFrame:
    """Customers the lake's orders point at but bronze has never delivered (orphans), as rows of
    the day's extract (a source catching up with a customer it had left out)."""
    customers = bronze_of(spark, lake, "snowflake/customers")
    orders = bronze_of(spark, lake, "snowflake/orders")
    template = rows.orderBy("customer_id").limit(1)
    orphans: list = []
    if orders is not None:
        wanted = orders.where(F.col("customer_id").isNotNull()).select("customer_id")
        for known in (customers, rows):
            if known is not None:
                wanted = wanted.join(known.select("customer_id"), "customer_id", "left_anti")
        orphans = first_ids(wanted, "customer_id", count)
    if orphans:
        ids = spark.createDataFrame([(i,) for i in orphans], "new_id string")
        return rehash(
            template.crossJoin(ids)
            .withColumn("customer_id", F.col("new_id"))
            .withColumn("email", F.concat(F.lower("new_id"), F.lit("@fix.example")))
            .drop("new_id"),
            f"added to {day}",
        )
    return rows.limit(0)  # no orphan to heal: the correction adds nothing


def corrected_extract(
    spark, source: Path, lake: Path, table: tuple[str, str], day: int, fixes: tuple[Correction, ...]
) -> DataFrame:
    """The source's extract of ``table`` for ``day`` with ``fixes`` applied, each aimed where it
    hurts an incremental run (orphans made and healed, history slotted into)."""
    rows = extract(spark, source, table, day)
    for fix in fixes:
        if table == ("snowflake", "customers"):
            if fix.kind == "segment":
                hit = F.col("customer_id").isin(first_ids(rows, "customer_id", fix.count))
                rotated = F.when(F.col("segment") == SEGMENTS[0], SEGMENTS[1]).otherwise(
                    SEGMENTS[0]
                )
                rows = amend(rows, hit, "segment", segment=rotated)
            elif fix.kind == "drop_customers":
                dropped = customers_to_drop(spark, lake, rows, day, fix.count)
                rows = rows.where(~F.col("customer_id").isin(dropped))
            elif fix.kind == "add_customers":
                rows = rows.unionByName(customers_to_add(spark, lake, rows, day, fix.count))
            elif fix.kind == "late":
                rows = rows.unionByName(late_versions(spark, lake, day, fix.count))
        elif table == ("snowflake", "orders"):
            if fix.kind == "drop_orders":
                rows = rows.where(~F.col("order_id").isin(first_ids(rows, "order_id", fix.count)))
            elif fix.kind == "status":
                hit = F.col("order_id").isin(first_ids(rows, "order_id", fix.count))
                later = F.col("updated_at") + F.expr("INTERVAL 1 HOUR")
                rows = amend(rows, hit, "status", status=F.lit("cancelled"), updated_at=later)
        elif table == ("crm", "accounts") and fix.kind == "crm_edit":
            # A CRM edit at its own time: a second version of linked accounts, 90 minutes after
            # the delivered one, with another industry (the customer's CRM state changes then).
            linked = rows.where(F.col("External_Customer_Id__c").isNotNull())
            edited = linked.where(F.col("Id").isin(first_ids(linked, "Id", fix.count)))
            other = F.when(F.col("Industry") == "Banking", "Retail").otherwise("Banking")
            later = F.col("LastModifiedDate") + F.expr("INTERVAL 90 MINUTES")
            edit = edited.withColumn("Industry", other).withColumn("LastModifiedDate", later)
            rows = rows.unionByName(rehash(edit, "crm edit"))
        elif table == ("fx", "fx_rates") and fix.kind == "fx":
            eur = F.upper(F.trim(F.col("quote_ccy"))) == "EUR"
            higher = {
                c: (F.col(c) * F.lit(Decimal("1.05"))).cast(rows.schema[c].dataType)
                for c in ("rate", "mid_rate")
            }
            rows = amend(rows, eur, "fx", **higher)
    return rows


def late_versions(spark, lake: Path, day: int, count: int) -> DataFrame:
    """Versions of customers the lake's bronze already holds from other dates, with an
    ``updated_at`` one minute after their earliest known version and another segment: they slot
    in after that version (before the next one, when there is one)."""
    bronze = bronze_of(spark, lake, "snowflake/customers")
    older = bronze.where(F.col("_run_date") != F.lit(day_of(day)))
    first = older.groupBy("customer_id").agg(F.min("updated_at").alias("_first"))
    ids = [r.customer_id for r in first.orderBy("customer_id").limit(count).collect()]
    earliest = (
        older.join(first, "customer_id")
        .where((F.col("updated_at") == F.col("_first")) & F.col("customer_id").isin(ids))
        .dropDuplicates(["customer_id"])
        .drop("_first")
    )
    rotated = F.when(F.col("segment") == SEGMENTS[2], SEGMENTS[1]).otherwise(SEGMENTS[2])
    return rehash(
        earliest.withColumn("segment", rotated)
        .withColumn("updated_at", F.col("updated_at") + F.expr("INTERVAL 1 MINUTE"))
        .withColumn("_run_date", F.lit(day_of(day))),
        f"late on {day}",
    )


# -- a schedule, run ------------------------------------------------------------------------------


def touched_tables(fixes: tuple[Correction, ...]) -> list[tuple[str, str]]:
    """A rerun re-delivers the tables its corrections change; a plain delivery all of them."""
    if not fixes:
        return list(BRONZE_TABLES)
    tables = {
        "segment": ("snowflake", "customers"),
        "drop_customers": ("snowflake", "customers"),
        "add_customers": ("snowflake", "customers"),
        "late": ("snowflake", "customers"),
        "drop_orders": ("snowflake", "orders"),
        "status": ("snowflake", "orders"),
        "fx": ("fx", "fx_rates"),
        "crm_edit": ("crm", "accounts"),
    }
    return sorted({tables[f.kind] for f in fixes})


def run_jobs(spark, root: Path, day: int, options: dict | None = None) -> None:
    records = run_chain(JOBS, [day_of(day)], settings_for(root), lambda: spark, options)
    assert all(r.status == "succeeded" for r in records), [(r.job, r.error) for r in records]


def run_schedule(spark, source: Path, root: Path, steps: list[Step]) -> int:
    """Run ``steps`` in the lake at ``root``; the run date of the last step."""
    for step in steps:
        note(str(step))
        if step.kind == "rebuild":
            run_jobs(spark, root, step.day, {"rebuild": True})
            continue
        metadata = commit_metadata(f"schedule-{uuid.uuid4().hex[:8]}", job="schedule")
        for table in touched_tables(step.corrections):
            rows = corrected_extract(spark, source, root, table, step.day, step.corrections)
            path = str(root / "bronze" / table[0] / table[1])
            replace_partition(rows, path, day_of(step.day), metadata, CHANGE_FEED)
        run_jobs(spark, root, step.day)
        # Silver is the truth after every step, not just at the end (a later rebuild step would
        # hide what an incremental run got wrong).
        expected, actual = truth(spark, root), silver_state(spark, root)
        for name in expected:
            assert actual[name] == expected[name], f"silver/{name} is not the truth after {step}"
        assert dimension_state(spark, root) == history_truth(
            spark, root, set(expected["customers"])
        ), f"gold/dim_customer's history is not the truth after {step}"
    return steps[-1].day


# -- the truth, in plain Python ---------------------------------------------------------------------


def latest(rows, key, order):
    best = {}
    for row in rows:
        k = key(row)
        if k not in best or order(row) > order(best[k]):
            best[k] = row
    return best


def truth(spark, root: Path) -> dict:
    """Silver as the state model defines it, from the final bronze rows alone."""

    def bronze(table):
        frame = bronze_of(spark, root, table)
        return [] if frame is None else frame.collect()

    def order(row):
        return (row.updated_at, row._run_date, row._record_hash or "")

    customers = latest(bronze("snowflake/customers"), lambda r: r.customer_id.strip(), order)
    rates = latest(
        bronze("fx/fx_rates"),
        lambda r: (r.date, r.quote_ccy.strip().upper()),
        lambda r: (r._run_date, r._record_hash or ""),
    )
    orders = latest(bronze("snowflake/orders"), lambda r: r.order_id.strip(), order)
    by_ccy: dict[str, list] = {}
    for (date, ccy), row in sorted(rates.items()):
        by_ccy.setdefault(ccy, []).append((date, Decimal(row.rate)))

    def usd(row) -> Decimal | None:
        currency = row.currency.strip().upper()
        if currency == "USD":
            return Decimal(row.amount).quantize(Decimal("0.01"), ROUND_HALF_UP)
        known = [rate for date, rate in by_ccy.get(currency, []) if date <= row.order_ts.date()]
        if not known:
            return None
        return (Decimal(row.amount) / known[-1]).quantize(Decimal("0.01"), ROUND_HALF_UP)

    return {
        "customers": {k: r.segment for k, r in customers.items()},
        "fx_rates": {(d, c): Decimal(r.rate) for (d, c), r in rates.items()},
        "orders": {
            k: (r.status.strip().lower(), r.customer_id.strip() not in customers, usd(r))
            for k, r in orders.items()
        },
    }


def history_truth(spark, root: Path, current: set[str]) -> dict[str, list[tuple]]:
    """Each current customer's SCD2 history, as (tracked attributes..., valid_from), modelled in
    plain Python on bronze's versions in the silver shape (the projections are the jobs'; the
    timeline is not): the state at every business time a customer or an account that ever named
    it changed, consecutive equal states collapsed, the first valid since ``HISTORY_START``."""
    customers = customers_from_bronze(bronze_of(spark, root, "snowflake/customers")).collect()
    accounts = crm.accounts_from_bronze(bronze_of(spark, root, "crm/accounts")).collect()

    def timeline(rows, key):
        """Per key, per business time: the later delivery (then the hash) wins."""
        best = latest(
            rows,
            lambda r: (r[key], r.updated_at or HISTORY_START),
            lambda r: (r._run_date, r._record_hash or ""),
        )
        versions: dict[str, dict] = {}
        for (k, at), row in best.items():
            versions.setdefault(k, {})[at] = row
        return versions

    def in_force(versions: dict, at):
        before = [t for t in versions if t <= at]
        return versions[max(before)] if before else versions[min(versions)]

    by_customer, by_account = timeline(customers, "customer_id"), timeline(accounts, "account_id")
    history = {}
    for cid in current:
        claimants = [
            aid for aid, vs in by_account.items() if any(v.customer_id == cid for v in vs.values())
        ]
        times = set(by_customer[cid]) | {t for aid in claimants for t in by_account[aid]}
        states: list[tuple] = []
        for at in sorted(times):
            c = in_force(by_customer[cid], at)
            linked = [
                (v.created_at is None, v.created_at or at, aid, v.industry)
                for aid in claimants
                if (v := in_force(by_account[aid], at)).customer_id == cid
            ]
            crm_state = min(linked)[2:] if linked else (None, None)
            state = (c.segment, c.country, c.email, *crm_state)
            if not states or states[-1][:-1] != state:
                states.append((*state, HISTORY_START if not states else at))
        history[cid] = states
    return history


def dimension_state(spark, root: Path) -> dict[str, list[tuple]]:
    rows = gold(spark, root, "dim_customer").collect()
    history: dict[str, list[tuple]] = {}
    for r in sorted(rows, key=lambda r: (r.customer_id, r.valid_from)):
        if r.customer_sk != UNKNOWN_SK:
            state = (r.segment, r.country, r.email, r.crm_account_id, r.crm_industry)
            history.setdefault(r.customer_id, []).append((*state, r.valid_from))
    return history


def silver_state(spark, root: Path) -> dict:
    def table(name):
        return silver(spark, root, name).collect()

    return {
        "customers": {r.customer_id: r.segment for r in table("customers")},
        "fx_rates": {(r.rate_date, r.quote_ccy): Decimal(r.rate) for r in table("fx_rates")},
        "orders": {
            r.order_id: (r.status, r.has_unknown_customer, r.amount_usd) for r in table("orders")
        },
    }


# -- the property ---------------------------------------------------------------------------------


def check_schedule(spark, source: Path, base: Path, steps: list[Step]) -> None:
    lake = base / f"incremental-{uuid.uuid4().hex[:8]}"
    run_date = run_schedule(spark, source, lake, steps)
    rebuilt = base / f"rebuild-{uuid.uuid4().hex[:8]}"
    shutil.copytree(lake / "bronze", rebuilt / "bronze")
    run_jobs(spark, rebuilt, run_date, {"rebuild": True})
    for read, layer, tables in ((silver, "silver", SILVER_TABLES), (gold, "gold", GOLD_TABLES)):
        for table in tables:
            incremental, rebuild = read(spark, lake, table), read(spark, rebuilt, table)
            assert same_content(incremental, rebuild), f"{layer}/{table} differs from a rebuild"
    shutil.rmtree(lake)
    shutil.rmtree(rebuilt)
    # Delta keeps every table's snapshot state cached in the session; the two lakes are gone,
    # so drop their states rather than carry them through the next schedules.
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()


@pytest.fixture(scope="module")
def lakes(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("schedule_lakes")


@schedule_settings(SCHEDULES)
@given(steps=schedules())
@example(steps=EVERY_KIND)
def test_any_schedule_through_the_jobs_ends_in_the_truth_and_equals_a_rebuild(
    spark, source, lakes, steps
):
    check_schedule(spark, source, lakes, steps)
