"""Steps every CSV table shares: splitting a day's rows into defects, and writing the day out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medallion.generate import defects, writers
from medallion.generate.context import Day, Frame, Run
from medallion.generate.defects import CsvBatch
from medallion.generate.spec import COPY_KINDS, EXACT_DUPLICATE, UPDATED_DUPLICATE

DAY_SECONDS = 86_400
YEAR = 365 * DAY_SECONDS
# A day's row versions are stamped before 22:00 UTC so that a second version written later the
# same day (an updated duplicate) still falls inside the day.
CUTOFF = 22 * 3600


@dataclass
class DefectPlan:
    """Which base rows carry which in-place defect, and which clean rows get copied."""

    counts: dict[str, int]
    in_place: dict[str, np.ndarray]
    copies: dict[str, np.ndarray]

    def realised(self) -> dict[str, int]:
        """Counts as drawn (a tiny day may hold fewer eligible rows than the rate asks for)."""
        picked = {**self.in_place, **self.copies}
        return {kind: len(picked[kind]) for kind in self.counts}

    def rows(self, kind: str) -> np.ndarray:
        return self.in_place.get(kind, self.copies.get(kind, np.empty(0, np.int64)))

    def quarantined(self, rule_ids: dict[str, str | None], size: int) -> np.ndarray:
        """Mask of base rows whose in-place defect sends them to quarantine."""
        mask = np.zeros(size, dtype=bool)
        for kind, rows in self.in_place.items():
            if rule_ids[kind] is not None:
                mask[rows] = True
        return mask


def copy_count(counts: dict[str, int]) -> int:
    return sum(n for kind, n in counts.items() if kind in COPY_KINDS)


def first_day_counts(table: str, total: int) -> tuple[dict[str, int], int]:
    """Defect counts for a day-1 extract of ``total`` rows, and how many base rows (distinct
    row versions before copies) make up that total."""
    counts = defects.counts_for(table, total)
    return counts, total - copy_count(counts)


def plan(
    rng: np.random.Generator,
    counts: dict[str, int],
    size: int,
    eligible: np.ndarray,
) -> DefectPlan:
    """Draw in-place defects from ``eligible`` rows, then copy originals from the rows left
    clean: every defective row carries exactly one defect."""
    in_place = defects.pick_disjoint(rng, eligible, defects.in_place(counts))
    clean = np.flatnonzero(~defects.union(in_place, size))
    copy_counts = {k: counts[k] for k in (UPDATED_DUPLICATE, EXACT_DUPLICATE) if k in counts}
    copies = defects.pick_disjoint(rng, clean, copy_counts)
    return DefectPlan(counts, in_place, copies)


def later_stamp(rng: np.random.Generator, updated: np.ndarray) -> np.ndarray:
    """A second version's timestamp: 1 to 90 minutes after the first."""
    return updated + rng.integers(60, 5_400, size=len(updated))


def stamps_in_day(rng: np.random.Generator, day: Day, count: int) -> np.ndarray:
    """Times spread over the day before the cutoff."""
    return day.start + rng.integers(0, CUTOFF, size=count)


def write_batch(run: Run, day: Day, batch: CsvBatch, rng: np.random.Generator) -> int:
    """Shuffle the day's records (an extract has no meaningful order) and write them."""
    order = rng.permutation(len(batch))
    return writers.write_csv(run.landing_root, batch.table, day.date, batch.records(), order)


def sorted_by_created(frame: Frame, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows in ``mask`` ordered by creation time, and those times."""
    positions = np.flatnonzero(mask)
    order = np.argsort(frame["created"][positions], kind="stable")
    positions = positions[order]
    return positions, frame["created"][positions]


def pick_choice(rng: np.random.Generator, values: tuple[str, ...], count: int) -> list[str]:
    """``count`` picks from a handful of literal values (defect text)."""
    return [values[i] for i in rng.integers(0, len(values), size=count)]


def orphan_numbers(base: int, span: int, day: Day, count: int) -> np.ndarray:
    """Distinct numbers in [base, base + span) that no generated entity uses, for orphan keys."""
    return base + (day.index * 100_003 + np.arange(1, count + 1, dtype=np.int64)) % span
