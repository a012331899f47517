"""The run being generated (arguments, random streams, volumes) and one day's result per table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medallion.generate import fmt, streams
from medallion.generate.faults import RUNAWAY_QUOTE, FaultPlan
from medallion.generate.spec import INCREMENTS, NULL_REQUIRED_COLUMN, RULE_IDS, SEED_VOLUMES


@dataclass(frozen=True)
class Day:
    """One extract date: ``index`` 0 is the full extract, later ones are increments."""

    index: int
    date: dt.date

    @property
    def is_first(self) -> bool:
        return self.index == 0

    @property
    def start(self) -> int:
        """Epoch seconds at 00:00:00 UTC."""
        return fmt.day_start(self.date)

    @property
    def end(self) -> int:
        """Epoch seconds at 24:00:00 UTC (exclusive)."""
        return self.start + fmt.DAY_SECONDS

    @property
    def number(self) -> int:
        return fmt.day_number(self.date)

    @property
    def label(self) -> str:
        return self.date.isoformat()


@dataclass(frozen=True)
class Run:
    """Arguments of one ``generate`` run."""

    landing_root: Path
    scale: float
    seed: int
    faults: FaultPlan = field(default_factory=FaultPlan)

    def rng(self, table: str, day: Day, purpose: str = "") -> np.random.Generator:
        return streams.stream(self.seed, table, day.index, purpose)

    def seed_volume(self, table: str) -> int:
        """Day-1 rows of ``table`` at this scale."""
        return max(1, round(SEED_VOLUMES[table] * self.scale))

    def increment(self, table: str, kind: str) -> int:
        """Rows of one increment kind per later day."""
        return round(INCREMENTS[table][kind] * SEED_VOLUMES[table] * self.scale)


@dataclass
class TableDay:
    """What one table's extract for one day holds: the manifest entry."""

    table: str
    files: int = 0
    rows_written: int = 0
    defects: dict[str, int] = field(default_factory=dict)
    changes: dict[str, Any] = field(default_factory=dict)
    silver_rows: int = 0

    def quarantine(self) -> dict[str, int]:
        """Rows each rule id is expected to quarantine."""
        out: dict[str, int] = {}
        for kind, count in self.defects.items():
            rule = RULE_IDS[self.table][kind]
            if rule is not None:
                out[rule] = out.get(rule, 0) + count
        return dict(sorted(out.items()))

    def to_manifest(self) -> dict[str, Any]:
        quarantine = self.quarantine()
        rows_quarantined = sum(quarantine.values())
        entry: dict[str, Any] = {
            "files": self.files,
            "rows_written": self.rows_written,
            "defects": dict(self.defects),
        }
        if self.table in NULL_REQUIRED_COLUMN:
            entry["null_required_column"] = NULL_REQUIRED_COLUMN[self.table]
        entry["changes"] = self.changes
        entry["expected"] = {
            "quarantine": quarantine,
            "rows_quarantined": rows_quarantined,
            "rows_bronze": self.rows_written - rows_quarantined,
            "silver_rows": self.silver_rows,
        }
        if self.changes.get("fault") == RUNAWAY_QUOTE:
            # The records after the quote are absorbed: bronze must refuse the file, not load it.
            entry["expected"]["ingest_fails"] = True
        return entry


class Frame:
    """Equal-length numpy columns: an entity table's state, or one day's row versions."""

    def __init__(self, **columns: np.ndarray) -> None:
        # Copies: two columns built from one array must never share memory.
        self.columns: dict[str, np.ndarray] = {k: np.array(v) for k, v in columns.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self.columns[name] = np.asarray(values)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, rows: np.ndarray) -> Frame:
        return Frame(**{k: v[rows] for k, v in self.columns.items()})

    def extend(self, other: Frame) -> np.ndarray:
        """Append ``other``'s rows; returns their positions."""
        start = len(self)
        for name, values in self.columns.items():
            self.columns[name] = np.concatenate([values, other.columns[name]])
        return np.arange(start, len(self), dtype=np.int64)

    @staticmethod
    def concat(frames: list[Frame]) -> Frame:
        names = frames[0].columns.keys()
        return Frame(**{k: np.concatenate([f.columns[k] for f in frames]) for k in names})
