"""Independent, deterministic random streams per (table, day, purpose).

Every draw the generator makes comes from a stream keyed by the seed, the table, the day index
and a purpose label, so changing how one table is generated never perturbs another, and day N
of a run does not depend on how many days follow it.
"""

from __future__ import annotations

import zlib

import numpy as np


def _label(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def stream(seed: int, table: str, day: int, purpose: str = "") -> np.random.Generator:
    """A numpy Generator seeded from (seed, table, day, purpose) through a SeedSequence."""
    return np.random.default_rng([seed, _label(table), day, _label(purpose)])


def weighted_choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with replacement in proportion to ``weights`` (vectorised)."""
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    draws = rng.random(size) * cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, draws, side="right"), len(cumulative) - 1)


def sample_without_replacement(
    rng: np.random.Generator, population: np.ndarray, size: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """``size`` distinct items of ``population`` (weighted by Efraimidis-Spirakis keys), sorted."""
    population = np.asarray(population)
    size = min(size, len(population))
    if size <= 0:
        return population[:0]
    if weights is None:
        picked = rng.choice(len(population), size=size, replace=False)
    else:
        keys = np.log(rng.random(len(population))) / np.asarray(weights, dtype=np.float64)
        picked = np.argpartition(-keys, size - 1)[:size]
    return population[np.sort(picked)]


def pick_created_before(
    rng: np.random.Generator,
    created_sorted: np.ndarray,
    at: np.ndarray,
    skew: float = 1.0,
) -> np.ndarray:
    """For each time in ``at``, the index of an entity created before it (entities sorted by
    creation time). ``skew`` > 1 favours older entities (loyal customers, bestsellers). Where no
    entity precedes the time, the oldest one is used."""
    available = np.searchsorted(created_sorted, at, side="left")
    available = np.maximum(available, 1)
    u = rng.random(len(at)) ** skew
    return np.minimum((u * available).astype(np.int64), available - 1)
