"""Job ``redshift_to_bronze``: Redshift customer_behavior (CSV) from
``landing/redshift/customer_behavior/dt=<run date>/`` into ``bronze/redshift/customer_behavior``
and its quarantine under the contract."""

from __future__ import annotations

from medallion.jobs.base import Job, JobContext, JobResult
from medallion.jobs.bronze import ingest_tables

TABLES = ("redshift/customer_behavior",)


def run(context: JobContext) -> JobResult:
    return ingest_tables(context, TABLES)


REDSHIFT_TO_BRONZE = Job(
    "redshift_to_bronze",
    "Redshift customer behavior (CSV) into bronze under its contract; rejects to quarantine",
    run,
    ingest=True,
    landing=TABLES,
)
