"""``landing/_manifest.json``: the ground truth of what the generator wrote.

Per day and table: files, rows written, the exact count of each injected defect kind, the
changes made, and what the pipeline is expected to do with them (rows per quarantine rule,
bronze rows, silver rows so far). At the top level, ``truth`` gathers what spans days: the
customers whose tracked attributes changed (and how many times), orders whose status changed,
new rows, ambiguous CRM links and the expected valid distinct Kafka events.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from medallion.generate.context import TableDay
from medallion.generate.spec import (
    ACCOUNTS,
    CUSTOMERS,
    DEFECT_RATES,
    FX_RATES,
    GENERATOR_VERSION,
    INCREMENTS,
    ORDER_EVENTS,
    ORDERS,
    RULE_IDS,
    TABLES,
)
from medallion.generate.vocab import CURRENCIES

MANIFEST_NAME = "_manifest.json"


def build_manifest(
    *,
    scale: float,
    days: int,
    start_date: dt.date,
    seed: int,
    results: dict[str, dict[str, TableDay]],
    ambiguous_links: dict[str, list[str]],
    final_order_status: dict[str, str],
    current_customers: dict[str, dict[str, str]] | None = None,
    faults: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    day_entries = {
        label: {table: tables[table].to_manifest() for table in TABLES if table in tables}
        for label, tables in results.items()
    }
    tracked_by_day: dict[str, list[str]] = {}
    times: dict[str, int] = {}
    valid_from: dict[str, set[str]] = {}
    for label, tables in results.items():
        ids = set(tables[CUSTOMERS].changes.get("tracked_changed_ids", []))
        ids |= set(tables[ACCOUNTS].changes.get("industry_changed_customer_ids", []))
        tracked_by_day[label] = sorted(ids)
        for customer_id in ids:
            times[customer_id] = times.get(customer_id, 0) + 1
        for key in ("tracked_change_times", "industry_change_times"):
            source = tables[CUSTOMERS if key.startswith("tracked") else ACCOUNTS]
            for customer_id, stamp in source.changes.get(key, {}).items():
                valid_from.setdefault(customer_id, set()).add(stamp)
    events_by_day = {
        label: tables[ORDER_EVENTS].changes["valid_distinct_events"]
        for label, tables in results.items()
    }
    truth = {
        "customers_tracked_changes": {
            "by_day": tracked_by_day,
            "times_by_customer": dict(sorted(times.items())),
            # Each changed customer's SCD2 versions after the first: when each starts (UTC).
            "valid_from_by_customer": {c: sorted(t) for c, t in sorted(valid_from.items())},
            # The current version's tracked attributes of each customer the days changed.
            "current_by_customer": current_customers or {},
        },
        "orders_status_changes": {
            "by_day": {
                label: tables[ORDERS].changes.get("status_changed", 0)
                for label, tables in results.items()
            },
            "final_status": final_order_status,
        },
        "new_rows": {label: _new_rows(tables) for label, tables in results.items()},
        "crm_ambiguous_links": ambiguous_links,
        "kafka_valid_distinct_events": {
            "by_day": events_by_day,
            "total": sum(events_by_day.values()),
        },
    }
    return {
        "generator": {
            "scale": scale,
            "days": days,
            "start_date": start_date.isoformat(),
            "seed": seed,
            "version": GENERATOR_VERSION,
        },
        "rates": DEFECT_RATES,
        "increments": INCREMENTS,
        "rules": RULE_IDS,
        # The delivery faults asked for (medallion.generate.faults); their tables' entries say
        # what each did ("changes.fault") and what the pipeline must make of it.
        "faults": faults or [],
        "days": day_entries,
        "truth": truth,
    }


def _new_rows(tables: dict[str, TableDay]) -> dict[str, int]:
    """New entities (rows for behavior, events for Kafka, rate lines for FX) per table."""
    out = {}
    for table in TABLES:
        changes = tables[table].changes
        if table == FX_RATES:
            out[table] = changes["new_dates"] * len(CURRENCIES)
        elif table == ORDER_EVENTS:
            out[table] = changes["new_events"]
        else:
            out[table] = changes["new"]
    return out


def write_manifest(landing_root: Path, manifest: dict[str, Any]) -> Path:
    path = landing_root / MANIFEST_NAME
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    return path
