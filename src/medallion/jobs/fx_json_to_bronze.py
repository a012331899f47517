"""Job ``fx_json_to_bronze``: FX rates (JSON lines) from ``landing/fx/fx_rates/dt=<run date>/``
into ``bronze/fx/fx_rates`` and ``quarantine/fx/fx_rates`` under the ``fx/fx_rates`` contract."""

from __future__ import annotations

from medallion.jobs.base import Job, JobContext, JobResult
from medallion.jobs.bronze import ingest_tables

TABLES = ("fx/fx_rates",)


def run(context: JobContext) -> JobResult:
    return ingest_tables(context, TABLES)


FX_JSON_TO_BRONZE = Job(
    "fx_json_to_bronze",
    "FX rates (JSON lines) from landing/fx into bronze under their contract; rejects to quarantine",
    run,
    ingest=True,
    landing=TABLES,
)
