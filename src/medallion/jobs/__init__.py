"""The job registry: ``JOB_MAP`` maps each job name to its function, in the order ``--job all`` runs them."""

from __future__ import annotations

from medallion.jobs.base import Job, JobContext, JobResult
from medallion.jobs.bronze_to_silver import SILVER_JOB
from medallion.jobs.crm_to_bronze import CRM_TO_BRONZE
from medallion.jobs.fx_json_to_bronze import FX_JSON_TO_BRONZE
from medallion.jobs.kafka_events_to_bronze import KAFKA_JOB
from medallion.jobs.publish_gold_to_snowflake import PUBLISH_JOB
from medallion.jobs.redshift_to_bronze import REDSHIFT_TO_BRONZE
from medallion.jobs.silver_to_gold import GOLD_JOB
from medallion.jobs.snowflake_to_bronze import SNOWFLAKE_TO_BRONZE

JOBS: list[Job] = [
    FX_JSON_TO_BRONZE,
    CRM_TO_BRONZE,
    SNOWFLAKE_TO_BRONZE,
    REDSHIFT_TO_BRONZE,
    KAFKA_JOB,
    SILVER_JOB,
    GOLD_JOB,
    PUBLISH_JOB,
]

JOB_MAP: dict[str, Job] = {job.name: job for job in JOBS}

__all__ = ["JOBS", "JOB_MAP", "Job", "JobContext", "JobResult"]
