"""The stored outcome of a validate run: ``<lake>/_quality/run_date=D/results.json``.

No Spark here: ``medallion report`` reads these files, and the next run date's
``row_count_change`` checks compare with the row counts stored in them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from medallion import __version__
from medallion.audit import read_records
from medallion.lake import Lake, run_date_of, write_text_atomic
from medallion.redact import redact

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
RESULTS_FILE = "results.json"


@dataclass
class CheckResult:
    """The outcome of one rule, as stored in results.json and shown in the report."""

    id: str
    layer: str
    table: str
    description: str
    severity: str
    status: str  # passed | failed | skipped
    observed: float | int | None
    threshold: str
    message: str
    unit: str | None = None
    kind: str = ""
    dimension: str | None = None
    # Figures judged against their history (the anomaly gate): the earlier run dates' values,
    # oldest first, as [run_date, value] pairs, and the baseline (their median) they were judged by.
    history: list[list[Any]] | None = None
    baseline: float | None = None

    @property
    def blocking(self) -> bool:
        return self.status == FAILED and self.severity == "error"


@dataclass
class ValidationRun:
    run_date: dt.date
    run_id: str
    env: str
    started_at: str
    finished_at: str = ""
    duration_s: float = 0.0
    suites: list[dict[str, str]] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failed_errors(self) -> list[str]:
        return [r.id for r in self.results if r.blocking]

    @property
    def failed_warnings(self) -> list[str]:
        return [r.id for r in self.results if r.status == FAILED and r.severity == "warn"]

    @property
    def status(self) -> str:
        return FAILED if self.failed_errors else PASSED

    def summary(self) -> dict[str, int]:
        count = lambda status: sum(r.status == status for r in self.results)  # noqa: E731
        return {
            "checks": len(self.results),
            "passed": count(PASSED),
            "failed": count(FAILED),
            "failed_errors": len(self.failed_errors),
            "failed_warnings": len(self.failed_warnings),
            "skipped": count(SKIPPED),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_date": self.run_date.isoformat(),
            "run_id": self.run_id,
            "env": self.env,
            "version": __version__,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "status": self.status,
            "summary": self.summary(),
            "failed_errors": self.failed_errors,
            "failed_warnings": self.failed_warnings,
            "suites": self.suites,
            "row_counts": self.row_counts,
            "checks": [asdict(r) for r in self.results],
        }


# --- results on disk --------------------------------------------------------------------------


def results_path(lake: Lake, run_date: dt.date) -> str:
    return f"{lake.quality_dir(run_date)}/{RESULTS_FILE}"


def write_results(lake: Lake, run: ValidationRun) -> str:
    """Write results.json atomically (:func:`medallion.lake.write_text_atomic`); return its path."""
    payload = redact(json.dumps(run.to_dict(), indent=2, default=str))
    return write_text_atomic(results_path(lake, run.run_date), payload)


def read_results(lake: Lake, run_date: dt.date) -> dict | None:
    """The stored results of a run date, or None when validate has not run for it."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(results_path(lake, run_date))
    if not fs.exists(path):
        return None
    with fs.open(path, "r", encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError:
            return None


def previous_row_counts(
    lake: Lake, run_date: dt.date, records: Sequence[dict[str, Any]] | None = None
) -> dict[str, tuple[str, int]]:
    """For each table (``silver.orders``), its row count on the latest earlier run date.

    Counts come from the stored results of earlier validate runs and, for dates or tables that
    were not validated (a backfill validates only its last date), from the audit trail (the
    ``records`` given, or read here): the silver and gold jobs record every table's size after
    their run. On the same date the validated count wins.
    """
    import fsspec

    day_limit = run_date.isoformat()
    found: dict[str, tuple[str, int, int]] = {}  # table -> (date, source rank, rows)

    def offer(table: str, day: str, rank: int, rows: Any) -> None:
        if day < day_limit and rows is not None and (day, rank) > found.get(table, ("", -1, 0))[:2]:
            found[table] = (day, rank, int(rows))

    for record in read_records(lake.root) if records is None else records:
        if record.get("status") != "succeeded":
            continue
        for table in record.get("tables") or []:
            layer, _, name = str(table.get("name", "")).partition("/")
            if layer in ("silver", "gold") and name:
                offer(f"{layer}.{name}", record.get("run_date", ""), 0, table.get("rows_out"))
    fs, pattern = fsspec.core.url_to_fs(lake.quality_files(RESULTS_FILE))
    for entry in fs.glob(pattern):
        date = run_date_of(entry)
        if date is not None and date.isoformat() < day_limit:
            stored = read_results(lake, date) or {}
            for table, rows in (stored.get("row_counts") or {}).items():
                offer(table, date.isoformat(), 1, rows)
    return {table: (day, rows) for table, (day, _, rows) in found.items()}
