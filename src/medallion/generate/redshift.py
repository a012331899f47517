"""Redshift extract: customer_behavior, one row per (customer_id, event_date).

Day 1 spreads its rows over the 30 days ending on the extract date; each later day holds rows
for the extract date only. Counts are non-negative integers, session_duration_minutes has one
decimal place and revenue two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from medallion.generate import defects, fmt
from medallion.generate.context import Day, Frame, Run, TableDay
from medallion.generate.defects import CsvBatch
from medallion.generate.snowflake import SnowflakeState
from medallion.generate.spec import (
    BAD_DATES,
    BEHAVIOR,
    EXACT_DUPLICATE,
    ORPHAN_CUSTOMERS,
    RULE_IDS,
)
from medallion.generate.tables import (
    DAY_SECONDS,
    first_day_counts,
    orphan_numbers,
    pick_choice,
    plan,
    write_batch,
)

HISTORY_DAYS = 30


@dataclass
class BehaviorState:
    silver_rows: int = 0


def _activity(rng: np.random.Generator, customer: np.ndarray, event_day: np.ndarray) -> Frame:
    count = len(customer)
    logins = 1 + rng.poisson(1.5, count)
    purchases = rng.binomial(logins, 0.15)
    revenue = np.where(
        purchases > 0, (purchases * rng.lognormal(3.8, 0.8, count) * 100).astype(np.int64), 0
    )
    return Frame(
        customer=customer,
        day=event_day,
        logins=logins,
        page_views=logins * (3 + rng.poisson(8, count)),
        minutes=(logins * rng.gamma(2.0, 6.0, count) * 10).astype(np.int64),
        purchases=purchases,
        revenue=revenue,
    )


def _fields(v: Frame) -> dict[str, pa.Array]:
    return {
        "customer_id": fmt.ids("C", v["customer"], 8),
        "event_date": fmt.dates(v["day"]),
        "login_count": fmt.ints(v["logins"]),
        "page_views": fmt.ints(v["page_views"]),
        "session_duration_minutes": fmt.fixed(v["minutes"], 1),
        "purchases": fmt.ints(v["purchases"]),
        "revenue": fmt.fixed(v["revenue"], 2),
    }


def generate_behavior_day(run: Run, day: Day, sf: SnowflakeState, state: BehaviorState) -> TableDay:
    rng = run.rng(BEHAVIOR, day, "rows")
    customers = sf.customers
    if day.is_first:
        counts, n_base = first_day_counts(BEHAVIOR, run.seed_volume(BEHAVIOR))
        first_day = day.number - (HISTORY_DAYS - 1)
        eligible = np.flatnonzero(
            customers["valid"] & (customers["created"] < first_day * DAY_SECONDS)
        )
        cells = rng.choice(len(eligible) * HISTORY_DAYS, size=n_base, replace=False)
        cells.sort()
        customer = customers["num"][eligible[cells // HISTORY_DAYS]]
        event_day = first_day + cells % HISTORY_DAYS
    else:
        eligible = np.flatnonzero(customers["valid"] & (customers["created"] < day.end))
        n_base = min(run.increment(BEHAVIOR, "rows"), len(eligible))
        customer = customers["num"][np.sort(rng.choice(eligible, size=n_base, replace=False))]
        event_day = np.full(n_base, day.number, dtype=np.int64)
        counts = defects.counts_for(BEHAVIOR, n_base)
    rows = _activity(rng, customer, event_day)

    picked = plan(
        run.rng(BEHAVIOR, day, "defects"), counts, n_base, np.arange(n_base, dtype=np.int64)
    )
    edits = run.rng(BEHAVIOR, day, "edits")
    orphans = picked.rows("orphan_customer")
    rows["customer"][orphans] = orphan_numbers(*ORPHAN_CUSTOMERS, day, len(orphans))
    negative = picked.rows("out_of_range")
    rows["page_views"][negative] = -edits.integers(1, 50, size=len(negative))

    batch = CsvBatch(BEHAVIOR, _fields(rows))
    batch.set("customer_id", picked.rows("null_required"), "")
    bad_date = picked.rows("bad_date")
    batch.set("event_date", bad_date, pa.array(pick_choice(edits, BAD_DATES, len(bad_date))))
    malformed = picked.rows("malformed_row")
    batch.set("revenue", malformed, fmt.decimal_comma(rows["revenue"][malformed], 2))
    batch.append_copies(picked.rows(EXACT_DUPLICATE))

    state.silver_rows += n_base - int(picked.quarantined(RULE_IDS[BEHAVIOR], n_base).sum())
    files = write_batch(run, day, batch, run.rng(BEHAVIOR, day, "order"))
    return TableDay(
        BEHAVIOR,
        files=files,
        rows_written=len(batch),
        defects=picked.realised(),
        changes={"new": n_base},
        silver_rows=state.silver_rows,
    )
