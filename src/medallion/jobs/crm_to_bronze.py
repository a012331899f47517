"""Job ``crm_to_bronze``: Salesforce accounts, contacts and opportunities (CSV) from
``landing/crm/<table>/dt=<run date>/`` into ``bronze/crm/*`` and ``quarantine/crm/*`` under
their contracts."""

from __future__ import annotations

from medallion.jobs.base import Job, JobContext, JobResult
from medallion.jobs.bronze import ingest_tables

TABLES = ("crm/accounts", "crm/contacts", "crm/opportunities")


def run(context: JobContext) -> JobResult:
    return ingest_tables(context, TABLES)


CRM_TO_BRONZE = Job(
    "crm_to_bronze",
    "CRM accounts, contacts, opportunities (CSV) into bronze under their contracts; rejects to quarantine",
    run,
    ingest=True,
    landing=TABLES,
)
