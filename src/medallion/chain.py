"""Where the quality gate sits in the daily chain: one rule for ``--job all`` and the DAG.

Kept free of Spark and Airflow imports: the DAG file reads it at parse time, the CLI at run
time.
"""

from __future__ import annotations

from collections.abc import Sequence

VALIDATE = "validate"
# How a failed gate's message starts (the CLI prints it as its last line, after "medallion:
# error: "): the DAG's operator reads it to fail the task without retries, since the verdict is
# a function of the lake's data and a retry on the same data gives the same verdict.
GATE_FAILED = "quality gate failed for"


def gate_position(job_names: Sequence[str]) -> int:
    """Where ``validate`` goes among ``job_names``: right before the first publish job, or at
    the end when there is none, so a day that fails the gate never reaches the warehouse."""
    return next(
        (i for i, name in enumerate(job_names) if name.startswith("publish")), len(job_names)
    )
