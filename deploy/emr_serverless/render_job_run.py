"""Write job_run.json: the StartJobRun request the DAG's EMR Serverless task sends for one date.

It builds the ``emr_serverless`` variant of the DAG from config/prod.yaml with sample values for
the environment variables that file references, renders one task for one logical date and prints
the request (the tests check that the committed job_run.json is exactly this). Usage:

    .venv/bin/python deploy/emr_serverless/render_job_run.py [--job JOB] [--date D] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from medallion.config import parse_settings
from medallion.orchestration.dag_factory import build_daily_pipeline, start_job_run_request

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SAMPLE_JOB = "bronze_to_silver"
SAMPLE_DATE = dt.date(2025, 1, 13)
# Sample values for the variables config/prod.yaml references; real ones come from the deployment.
SAMPLE_ENVIRON = {
    "MEDALLION_LAKE_BUCKET": "example-medallion-lake",
    "EMR_APPLICATION_ID": "00fexampleapp0001",
    "EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/medallion-emr-serverless-job",
    "SNOWFLAKE_ACCOUNT": "example-account",
    "SNOWFLAKE_USER": "MEDALLION",
}


def render(job: str = SAMPLE_JOB, date: dt.date = SAMPLE_DATE) -> dict:
    config = ROOT / "config" / "prod.yaml"
    settings = parse_settings(config.read_text(encoding="utf-8"), str(config), SAMPLE_ENVIRON)
    dag = build_daily_pipeline(
        settings, "emr_serverless", job_names=[job], deadline=False, environ=SAMPLE_ENVIRON
    )
    return start_job_run_request(dag.get_task(job), date)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default=SAMPLE_JOB)
    parser.add_argument("--date", default=SAMPLE_DATE.isoformat())
    parser.add_argument("--output", help="write here instead of printing")
    args = parser.parse_args(argv)
    text = json.dumps(render(args.job, dt.date.fromisoformat(args.date)), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
