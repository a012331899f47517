"""Property: after any schedule of deliveries, the state is what the data says.

Hypothesis draws a schedule of deliveries over a few customers and CRM accounts: the next day;
a rerun of an earlier day with a corrected extract (changed values, dropped rows, added rows);
a late version of an old key whose ``updated_at`` falls between two known versions; a day
skipped and caught up later; the same day twice; an older day backfilled after newer ones.
Bronze replaces a date's delivery on each (as its ``replaceWhere`` does). After every delivery
the dimension table is maintained the way the gold job maintains it (one MERGE of the diff into
a Delta table), and at the end of the schedule:

* the incremental table equals the function recomputed from the final bronze (a rebuild);
* both equal the truth of an independent, plain-Python model of the state model: silver's
  current customer (latest ``updated_at``, ties to the later delivery) and each customer's SCD2
  history with its valid-from times.

``MEDALLION_SCHEDULES`` sets the number of schedules (default 8, the fast set ``make test``
runs); ``MEDALLION_SCHEDULE_SEED`` draws other schedules than the fixed default ones
(``make test-extended`` runs 12 with seed 1). A failure shrinks to the shortest schedule that
breaks it, printed step by step.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass

import pytest
from history_versions import ACCOUNT_VERSIONS, CURRENT, CUSTOMER_VERSIONS
from hypothesis import given, note
from hypothesis import strategies as st
from pyspark.sql import functions as F
from schedule_runs import schedule_settings

from medallion.lake import merge_diff, overwrite, read_delta
from medallion.quality.table_contracts import primary_key
from medallion.transforms.common import table_diff
from medallion.transforms.gold.dim_customer import dim_customer

SCHEDULES = int(os.environ.get("MEDALLION_SCHEDULES", "8"))
START = dt.date(2025, 1, 13)
EPOCH = dt.datetime(2025, 1, 13, tzinfo=dt.UTC)
HISTORY_START = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
CUSTOMERS = ("C1", "C2", "C3")
ACCOUNTS = ("A1", "A2")
SEGMENTS = ("consumer", "enterprise", "small_business")
INDUSTRIES = ("Retail", "Banking")
DIM_CUSTOMER_KEY = primary_key("gold", "dim_customer")  # as silver_to_gold merges


# -- deliveries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    customer_id: str
    segment: str
    hour: int  # updated_at = EPOCH + hour

    def row(self, run_date: dt.date) -> tuple:
        updated = EPOCH + dt.timedelta(hours=self.hour)
        digest = f"{self.customer_id}|{self.segment}|{self.hour}"
        return (self.customer_id, "Ann", "Lee", f"{self.customer_id.lower()}@x.io", "DE",
                self.segment, updated, run_date, digest)  # fmt: skip


@dataclass(frozen=True)
class Account:
    account_id: str
    customer_id: str | None
    industry: str
    hour: int

    def row(self, run_date: dt.date) -> tuple:
        created = dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            days=int(self.account_id[1:])
        )
        updated = EPOCH + dt.timedelta(hours=self.hour)
        digest = f"{self.account_id}|{self.customer_id}|{self.industry}|{self.hour}"
        return (self.account_id, self.customer_id, self.industry, created, updated, run_date, digest)  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """One date's extract: what bronze holds for that date after it is loaded."""

    day: int
    customers: tuple[Customer, ...]
    accounts: tuple[Account, ...]
    why: str

    @property
    def run_date(self) -> dt.date:
        return START + dt.timedelta(days=self.day)

    def __str__(self) -> str:
        rows = ", ".join(
            [f"{c.customer_id}={c.segment}@{c.hour}h" for c in self.customers]
            + [f"{a.account_id}->{a.customer_id}/{a.industry}@{a.hour}h" for a in self.accounts]
        )
        return f"day {self.day} ({self.why}): {rows or 'empty'}"


customers_of_day = lambda day: st.lists(  # noqa: E731
    st.builds(
        Customer,
        st.sampled_from(CUSTOMERS),
        st.sampled_from(SEGMENTS),
        # Business times within the day, or (a late version) back into earlier days.
        st.integers(min_value=max(0, 24 * day - 60), max_value=24 * day + 23),
    ),
    max_size=3,
    unique_by=lambda c: c.customer_id,
)
accounts_of_day = lambda day: st.lists(  # noqa: E731
    st.builds(
        Account,
        st.sampled_from(ACCOUNTS),
        st.sampled_from((*CUSTOMERS, None)),
        st.sampled_from(INDUSTRIES),
        st.integers(min_value=max(0, 24 * day - 60), max_value=24 * day + 23),
    ),
    max_size=2,
    unique_by=lambda a: a.account_id,
)


@st.composite
def schedules(draw) -> list[Delivery]:
    """Up to four deliveries: days in order with gaps, reruns and backfills among them."""
    steps: list[Delivery] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        delivered = sorted({d.day for d in steps})
        kind = draw(st.sampled_from(("next", "next", "skip", "rerun", "same", "backfill")))
        if kind == "next" or not delivered:
            day, why = (delivered[-1] + 1 if delivered else 0), "next day"
        elif kind == "skip":
            day, why = delivered[-1] + 2, "a day skipped"
        elif kind == "same":
            previous = next(d for d in reversed(steps))
            steps.append(Delivery(previous.day, previous.customers, previous.accounts, "the same day twice"))  # fmt: skip
            continue
        elif kind == "rerun":
            day, why = draw(st.sampled_from(delivered)), "rerun with a corrected extract"
        else:
            missing = sorted(set(range(max(delivered))) - set(delivered))
            if not missing:
                day, why = delivered[-1] + 1, "next day"
            else:
                day, why = draw(st.sampled_from(missing)), "an older day backfilled"
        customers = tuple(draw(customers_of_day(day)))
        accounts = tuple(draw(accounts_of_day(day)))
        steps.append(Delivery(day, customers, accounts, why))
    return steps


def bronze_after(steps: list[Delivery]) -> dict[int, Delivery]:
    """Bronze's content: each date's latest delivery replaces the earlier ones of that date."""
    state: dict[int, Delivery] = {}
    for step in steps:
        state[step.day] = step
    return state


# -- the truth, in plain Python -------------------------------------------------------------------


def in_force(versions: dict[int, tuple], at: int) -> tuple:
    """The version in force at hour ``at``: the latest at or before it, else the first."""
    before = [hour for hour in versions if hour <= at]
    return versions[max(before)] if before else versions[min(versions)]


def truth(bronze: dict[int, Delivery]) -> dict[str, list[tuple]]:
    """Per current customer, its versions as (segment, crm account, industry, valid_from)."""
    customers: dict[str, dict[int, tuple]] = {}
    accounts: dict[str, dict[int, tuple]] = {}
    for day in sorted(bronze):  # later deliveries win a tie on business time
        for c in bronze[day].customers:
            customers.setdefault(c.customer_id, {})[c.hour] = (c.segment,)
        for a in bronze[day].accounts:
            accounts.setdefault(a.account_id, {})[a.hour] = (a.customer_id, a.industry)
    history = {}
    for cid, versions in customers.items():
        claimants = [aid for aid, vs in accounts.items() if any(v[0] == cid for v in vs.values())]
        times = set(versions) | {hour for aid in claimants for hour in accounts[aid]}
        states = []
        for at in sorted(times):
            linked = sorted(aid for aid in claimants if in_force(accounts[aid], at)[0] == cid)
            # Accounts are created in id order (A1 before A2): the oldest is the smallest id.
            crm = (linked[0], in_force(accounts[linked[0]], at)[1]) if linked else (None, None)
            state = (in_force(versions, at)[0], *crm)
            if not states or states[-1][:3] != state:
                states.append((*state, at))
        history[cid] = [
            (*s[:3], HISTORY_START if i == 0 else EPOCH + dt.timedelta(hours=s[3]))
            for i, s in enumerate(states)
        ]
    return history


# -- the property ---------------------------------------------------------------------------------


def desired(spark, bronze: dict[int, Delivery]):
    customers = [c.row(d.run_date) for d in bronze.values() for c in d.customers]
    accounts = [a.row(d.run_date) for d in bronze.values() for a in d.accounts]
    versions = spark.createDataFrame(customers, CUSTOMER_VERSIONS)
    current = spark.createDataFrame(
        [(cid, "Ann", "Lee", None) for cid in sorted({c[0] for c in customers})], CURRENT
    )
    return dim_customer(versions, spark.createDataFrame(accounts, ACCOUNT_VERSIONS), current)


def as_history(dim) -> dict[str, list[tuple]]:
    rows = dim.where("customer_sk <> -1").select(
        "customer_id", "segment", "crm_account_id", "crm_industry",
        F.unix_micros("valid_from").alias("valid_from"),
    ).collect()  # fmt: skip
    history: dict[str, list[tuple]] = {}
    for r in sorted(rows, key=lambda r: (r.customer_id, r.valid_from)):
        start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=r.valid_from)
        history.setdefault(r.customer_id, []).append((r.segment, r.crm_account_id, r.crm_industry, start))  # fmt: skip
    return history


@pytest.fixture(scope="module")
def table_root(tmp_path_factory):
    return tmp_path_factory.mktemp("schedules")


@schedule_settings(SCHEDULES)
@given(steps=schedules())
def test_any_delivery_schedule_ends_in_the_truth_and_equals_a_rebuild(spark, table_root, steps):
    for i, step in enumerate(steps):
        note(f"delivery {i + 1}: {step}")
    path = str(table_root / f"dim_{uuid.uuid4().hex}")  # a fresh table per example
    delivered: list[Delivery] = []
    for step in steps:
        delivered.append(step)
        # Computed once (the MERGE reads its source twice): the function of bronze as it now is.
        rows = desired(spark, bronze_after(delivered)).localCheckpoint()
        existing = read_delta(spark, path)
        if existing is None:
            overwrite(rows, path, metadata="{}")
        else:
            diff = rows.transform(table_diff(existing, DIM_CUSTOMER_KEY))
            merge_diff(spark, path, diff, DIM_CUSTOMER_KEY, metadata="{}")
    # The last recomputation is the rebuild from the final bronze: the table must equal it.
    incremental = read_delta(spark, path)
    assert sorted(incremental.collect()) == sorted(rows.collect())
    assert as_history(incremental) == truth(bronze_after(steps))
