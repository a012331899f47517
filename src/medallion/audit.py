"""The run audit trail: one JSON record per job run, successful or failed.

Records live at ``<lake>/_audit/run_date=YYYY-MM-DD/<run_id>.json`` (a local folder or S3 via
fsspec; the paths come from :class:`medallion.lake.Lake`) and are written atomically
(:func:`medallion.lake.write_text_atomic`: locally to a temporary name then renamed, on S3 by a
single PUT). The pinned fields are those of DESIGN.md section 8; ``details`` carries
job-specific extras (stream watermark, merge counts, orphan counts).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from medallion import __version__
from medallion.lake import Lake, write_text_atomic
from medallion.redact import redact


@dataclass
class TableCount:
    """Row counts for one table in one run; ``rows_in == rows_out + rows_quarantined`` for ingests."""

    name: str
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    # The Delta version each table this entry covers was left at by the run's commit, by table
    # name (``bronze/crm/accounts``, ``quarantine/crm/accounts``); empty when nothing was written.
    versions: dict[str, int] = field(default_factory=dict)


@dataclass
class AuditRecord:
    run_id: str
    job: str
    env: str
    run_date: str
    started_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    status: str = "running"
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    version: str = __version__
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, job: str, env: str, run_date: dt.date, run_id: str | None = None) -> AuditRecord:
        return cls(
            run_id=run_id or str(uuid.uuid4()),
            job=job,
            env=env,
            run_date=run_date.isoformat(),
            started_at=utc_now_iso(),
        )

    def finish(
        self,
        status: str,
        tables: list[TableCount],
        error: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        finished = dt.datetime.now(dt.UTC)
        self.finished_at = finished.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        started = dt.datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        self.duration_s = round((finished - started).total_seconds(), 3)
        self.status = status
        self.tables = [asdict(t) for t in tables]
        self.rows_in = sum(t.rows_in for t in tables)
        self.rows_out = sum(t.rows_out for t in tables)
        self.rows_quarantined = sum(t.rows_quarantined for t in tables)
        self.error = redact(error) if error else None
        self.details = details or {}
        return self

    def to_json(self) -> str:
        return redact(json.dumps(asdict(self), indent=2, sort_keys=False, default=str))


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_path(lake_root: str, record: AuditRecord) -> str:
    lake = Lake.from_root(lake_root)
    return lake.audit_record(dt.date.fromisoformat(record.run_date), record.run_id)


def write_record(lake_root: str, record: AuditRecord) -> str:
    """Write the record atomically (:func:`medallion.lake.write_text_atomic`); return its path."""
    return write_text_atomic(record_path(lake_root, record), record.to_json())


def read_records(
    lake_root: str, run_date: dt.date | None = None, last: int | None = None
) -> list[dict]:
    """Audit records, oldest first (by ``started_at``); optionally one run date, or the last N."""
    import fsspec

    fs, pattern = fsspec.core.url_to_fs(Lake.from_root(lake_root).audit_records(run_date))
    records = []
    for path in fs.glob(pattern):
        with fs.open(path, "r", encoding="utf-8") as handle:
            try:
                records.append(json.load(handle))
            except json.JSONDecodeError:
                continue  # a foreign or damaged file is not a run record
    records.sort(key=lambda r: (r.get("started_at") or "", r.get("run_id") or ""))
    return records[-last:] if last else records
