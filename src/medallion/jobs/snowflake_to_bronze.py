"""Job ``snowflake_to_bronze``: Snowflake customers, products and orders (CSV) from
``landing/snowflake/<table>/dt=<run date>/`` into ``bronze/snowflake/*`` and
``quarantine/snowflake/*`` under their contracts."""

from __future__ import annotations

from medallion.jobs.base import Job, JobContext, JobResult
from medallion.jobs.bronze import ingest_tables

TABLES = ("snowflake/customers", "snowflake/products", "snowflake/orders")


def run(context: JobContext) -> JobResult:
    return ingest_tables(context, TABLES)


SNOWFLAKE_TO_BRONZE = Job(
    "snowflake_to_bronze",
    "Snowflake customers, products, orders (CSV) into bronze under their contracts; rejects to quarantine",
    run,
    ingest=True,
    landing=TABLES,
)
