"""Counting rows without a second pass: a Spark ``Observation`` on a frame a write consumes.

A job that writes a table and then counts it pays for two passes; observed metrics are computed
by the write itself. Two rules keep them exact: the observed frame must be consumed whole, once,
by the action that reports it (not, say, both sides of a self-join), and not from inside a
cached plan (Spark does not report metrics observed there). ``figures`` waits for that action.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F


class Counted:
    """``frame`` with its rows (and any other aggregate ``measures``) observed.

    Use ``frame`` in the plan that is written; read ``rows`` or ``figures`` after the write.
    """

    def __init__(self, frame: DataFrame, *measures: Column) -> None:
        self.observation = Observation()
        measures = measures or (F.count(F.lit(1)).alias("rows"),)
        self.frame = frame.observe(self.observation, *measures)

    @property
    def figures(self) -> dict:
        return self.observation.get

    @property
    def rows(self) -> int:
        return int(self.figures["rows"])
