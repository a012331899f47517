"""Choosing which rows carry which defect, and editing CSV rows in place or by copy.

Each defective row carries exactly one defect: in-place kinds are drawn as disjoint sets from
the rows eligible to be broken (new rows), and copy kinds (duplicates) copy rows that carry no
defect at all, so a row never trips two rules.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medallion.generate.spec import COLUMNS, COPY_KINDS, DEFECT_RATES


def count_for(rate: float, rows: int) -> int:
    """The exact number of defects of one kind for a day: round(rate x rows), halves up."""
    return math.floor(rate * rows + 0.5)


def counts_for(table: str, rows: int, *, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Per-kind counts for ``table`` at its documented rates, for a day of ``rows`` rows."""
    return {
        kind: count_for(rate, rows)
        for kind, rate in DEFECT_RATES[table].items()
        if kind not in skip
    }


def in_place(counts: dict[str, int]) -> dict[str, int]:
    return {kind: n for kind, n in counts.items() if kind not in COPY_KINDS}


def pick_disjoint(
    rng: np.random.Generator, pool: np.ndarray, counts: dict[str, int]
) -> dict[str, np.ndarray]:
    """Disjoint, sorted subsets of ``pool`` with the requested sizes (clipped to what the pool
    holds, in the order given)."""
    shuffled = rng.permutation(np.asarray(pool, dtype=np.int64))
    picked: dict[str, np.ndarray] = {}
    start = 0
    for kind, wanted in counts.items():
        take = max(0, min(wanted, len(shuffled) - start))
        picked[kind] = np.sort(shuffled[start : start + take])
        start += take
    return picked


def union(picked: dict[str, np.ndarray], size: int) -> np.ndarray:
    """A boolean mask over ``size`` rows marking every row in ``picked``."""
    mask = np.zeros(size, dtype=bool)
    for rows in picked.values():
        mask[rows] = True
    return mask


class CsvBatch:
    """One day's rows of a CSV table as columns of ready-to-write (escaped) field text."""

    def __init__(self, table: str, fields: dict[str, pa.Array]) -> None:
        self.table = table
        self.columns = COLUMNS[table]
        self.fields = {name: pc.fill_null(fields[name], "") for name in self.columns}
        lengths = {len(values) for values in self.fields.values()}
        if len(lengths) != 1:
            raise ValueError(f"{table}: columns of unequal length {sorted(lengths)}")
        self.size = lengths.pop()

    def __len__(self) -> int:
        return self.size

    def set(self, column: str, rows: np.ndarray, values: pa.Array | str) -> None:
        """Overwrite ``column`` at ``rows`` with field text (already escaped, or deliberately
        raw for a malformed row)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        mask = np.zeros(self.size, dtype=bool)
        mask[rows] = True
        if isinstance(values, str):
            self.fields[column] = pc.if_else(pa.array(mask), values, self.fields[column])
            return
        order = np.argsort(rows, kind="stable")
        self.fields[column] = pc.replace_with_mask(
            self.fields[column], pa.array(mask), values.take(pa.array(order))
        )

    def append_copies(self, rows: np.ndarray) -> np.ndarray:
        """Append copies of ``rows``; returns the indices of the copies."""
        rows = np.asarray(rows, dtype=np.int64)
        taken = pa.array(rows)
        for name in self.columns:
            self.fields[name] = pa.concat_arrays([self.fields[name], self.fields[name].take(taken)])
        start = self.size
        self.size += len(rows)
        return np.arange(start, self.size, dtype=np.int64)

    def records(self) -> pa.Array:
        """The CSV records, without line ends."""
        return pc.binary_join_element_wise(*(self.fields[c] for c in self.columns), ",")
