"""The job registry: ``JOB_MAP`` maps each job name to its function, in the order ``--job all`` runs them."""

from __future__ import annotations

from medallion.jobs.base import Job, JobContext, JobResult

JOBS: list[Job] = []

JOB_MAP: dict[str, Job] = {job.name: job for job in JOBS}

__all__ = ["JOBS", "JOB_MAP", "Job", "JobContext", "JobResult"]
