"""``generate_landing``: check the arguments, generate every table day by day, write the manifest.

The extract is written into a staging folder beside the landing root and moved into place only
when complete, so a failed run never leaves a half-written landing zone behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from medallion.errors import UsageError
from medallion.generate import crm, fault_days, fx, kafka, redshift, snowflake
from medallion.generate.context import Day, Run, TableDay
from medallion.generate.faults import RUNAWAY_QUOTE, Fault, FaultPlan
from medallion.generate.manifest import build_manifest, write_manifest
from medallion.generate.spec import CUSTOMERS, ORDERS
from medallion.generate.vocab import ORDER_STATUSES

log = logging.getLogger(__name__)

MIN_SCALE, MAX_SCALE = 0.001, 100.0
MAX_DAYS = 366
EARLIEST_START, LATEST_START = dt.date(1990, 1, 1), dt.date(2100, 12, 31)


def generate_landing(
    landing_root: Path,
    *,
    scale: float = 1.0,
    days: int = 3,
    start_date: dt.date = dt.date(2025, 1, 13),
    seed: int = 42,
    force: bool = False,
    faults: Iterable[Fault | str] = (),
) -> dict[str, Any]:
    """Write ``days`` daily extracts of all nine source tables under ``landing_root`` and
    return the manifest (also written to ``landing_root/_manifest.json``).

    Day 1 is the full extract at the seed volumes x ``scale``; later days are increments.
    ``faults`` (``Fault`` objects or ``DAY:KIND[:TABLE,...]`` strings; see
    :mod:`medallion.generate.faults`) make chosen days the deliveries real sources sometimes
    send; the days before the first fault are the same as without it. The same arguments always
    produce byte-identical files. Raises ``UsageError`` for bad arguments, or when
    ``landing_root`` already holds files and ``force`` is not set (with ``force`` its contents
    are replaced).
    """
    scale, days, start_date, seed = _check_arguments(scale, days, start_date, seed)
    plan = FaultPlan.of(faults, days)
    landing_root = Path(landing_root)
    _check_target(landing_root, force)

    staging = landing_root.parent / f".{landing_root.name}.generating"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        manifest = _generate(staging, scale, days, start_date, seed, plan)
        _move_into_place(staging, landing_root)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _check_arguments(
    scale: Any, days: Any, start_date: Any, seed: Any
) -> tuple[float, int, dt.date, int]:
    if (
        isinstance(scale, bool)
        or not isinstance(scale, int | float)
        or not math.isfinite(scale)
        or not MIN_SCALE <= scale <= MAX_SCALE
    ):
        raise UsageError(
            f"--scale must be a number from {MIN_SCALE} to {MAX_SCALE:g} (got {scale!r})"
        )
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise UsageError(f"--days must be a whole number from 1 to {MAX_DAYS} (got {days!r})")
    if isinstance(start_date, str):
        try:
            start_date = dt.date.fromisoformat(start_date)
        except ValueError:
            raise UsageError(
                f"--start-date must be a date like 2025-01-13 (got {start_date!r})"
            ) from None
    if isinstance(start_date, dt.datetime) or not isinstance(start_date, dt.date):
        raise UsageError(f"--start-date must be a date like 2025-01-13 (got {start_date!r})")
    if not EARLIEST_START <= start_date <= LATEST_START:
        raise UsageError(
            f"--start-date must be between {EARLIEST_START} and {LATEST_START} (got {start_date})"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UsageError(f"--seed must be a non-negative whole number (got {seed!r})")
    return float(scale), days, start_date, seed


def _check_target(landing_root: Path, force: bool) -> None:
    if landing_root.resolve() in (Path("/"), Path.home().resolve()):
        raise UsageError(f"refusing to generate into {landing_root}; choose a lake folder")
    if landing_root.exists() and not landing_root.is_dir():
        raise UsageError(f"the landing folder {landing_root} is a file, not a folder")
    if landing_root.is_dir() and any(landing_root.iterdir()) and not force:
        raise UsageError(
            f"the landing folder {landing_root} already holds data; pass --force to replace it"
        )


def _move_into_place(staging: Path, landing_root: Path) -> None:
    """Replace the landing root's contents with the staged extract."""
    landing_root.mkdir(parents=True, exist_ok=True)
    for old in sorted(landing_root.iterdir()):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    for new in sorted(staging.iterdir()):
        new.rename(landing_root / new.name)


@dataclass
class _States:
    """Everything a later day builds on: entities so far, the FX series, Kafka offsets."""

    fx: fx.FxState = field(default_factory=fx.FxState)
    snowflake: snowflake.SnowflakeState = field(default_factory=snowflake.SnowflakeState)
    crm: crm.CrmState = field(default_factory=crm.CrmState)
    behavior: redshift.BehaviorState = field(default_factory=redshift.BehaviorState)
    kafka: kafka.KafkaState = field(default_factory=kafka.KafkaState)


def _generate_day(run: Run, day: Day, s: _States) -> dict[str, TableDay]:
    """One extract date, tables in dependency order (FX prices orders, customers before the
    accounts that link to them, orders before their events)."""
    steps: list[tuple[Callable[..., TableDay], tuple]] = [
        (fx.generate_fx_day, (s.fx,)),
        (snowflake.generate_products_day, (s.snowflake,)),
        (snowflake.generate_customers_day, (s.snowflake,)),
        (snowflake.generate_orders_day, (s.snowflake, s.fx)),
        (crm.generate_accounts_day, (s.snowflake, s.crm)),
        (crm.generate_contacts_day, (s.crm,)),
        (crm.generate_opportunities_day, (s.crm,)),
        (redshift.generate_behavior_day, (s.snowflake, s.behavior)),
        (kafka.generate_events_day, (s.snowflake, s.kafka)),
    ]
    tables: dict[str, TableDay] = {}
    for generate_table, states in steps:
        started = time.perf_counter()
        result = generate_table(run, day, *states)
        if run.faults.has(day.index, RUNAWAY_QUOTE, result.table):
            result = fault_days.break_a_quote(run, day, result)
        tables[result.table] = result
        pa.default_memory_pool().release_unused()  # keep the peak one table's worth
        log.info(
            "generated %s for %s: %d rows in %d file(s), %d defects, %.2fs",
            result.table,
            day.label,
            result.rows_written,
            result.files,
            sum(result.defects.values()),
            time.perf_counter() - started,
        )
    return tables


def _generate(
    root: Path, scale: float, days: int, start_date: dt.date, seed: int, plan: FaultPlan
) -> dict[str, Any]:
    run = Run(landing_root=root, scale=scale, seed=seed, faults=plan)
    states = _States()
    results: dict[str, dict[str, TableDay]] = {}
    for index in range(days):
        day = Day(index, start_date + dt.timedelta(days=index))
        if plan.nothing_new(index):
            previous = Day(index - 1, day.date - dt.timedelta(days=1))
            results[day.label] = fault_days.nothing_new_day(
                run, day, previous, results[previous.label], states.kafka
            )
            continue
        results[day.label] = _generate_day(run, day, states)

    orders = states.snowflake.orders
    changed = sorted(
        {
            order_id
            for tables in results.values()
            for order_id in tables[ORDERS].changes.get("status_changed_ids", [])
        }
    )
    final_status = {
        order_id: ORDER_STATUSES[orders["status"][int(order_id[1:]) - 1]] for order_id in changed
    }
    tracked = sorted(
        {
            customer_id
            for tables in results.values()
            for customer_id in tables[CUSTOMERS].changes.get("tracked_change_times", {})
        }
    )
    manifest = build_manifest(
        scale=scale,
        days=days,
        start_date=start_date,
        seed=seed,
        results=results,
        ambiguous_links=states.crm.ambiguous,
        final_order_status=final_status,
        current_customers=snowflake.current_tracked(states.snowflake.customers, tracked),
        faults=plan.to_manifest(lambda n: (start_date + dt.timedelta(days=n - 1)).isoformat()),
    )
    write_manifest(root, manifest)
    return manifest
