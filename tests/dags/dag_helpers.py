"""Constants and helpers shared by the DAG tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"

# The registry's final order (DESIGN.md section 2) and the DAG built from it.
FINAL_JOBS = [
    "fx_json_to_bronze",
    "crm_to_bronze",
    "snowflake_to_bronze",
    "redshift_to_bronze",
    "kafka_events_to_bronze",
    "bronze_to_silver",
    "silver_to_gold",
    "publish_gold_to_snowflake",
]
INGESTS = FINAL_JOBS[:5]
# The job tasks, in order, and their upstream jobs (pipeline_steps).
JOB_TASKS = [*FINAL_JOBS[:7], "validate", "publish_gold_to_snowflake"]
JOB_UPSTREAM = {
    **{name: set() for name in INGESTS},
    "bronze_to_silver": set(INGESTS),
    "silver_to_gold": {"bronze_to_silver"},
    "validate": {"silver_to_gold"},
    "publish_gold_to_snowflake": {"validate"},
}
# The landing tables each ingest reads, and the sensor that waits for each one's delivery.
LANDING = {
    "fx_json_to_bronze": ["fx/fx_rates"],
    "crm_to_bronze": ["crm/accounts", "crm/contacts", "crm/opportunities"],
    "snowflake_to_bronze": ["snowflake/customers", "snowflake/products", "snowflake/orders"],
    "redshift_to_bronze": ["redshift/customer_behavior"],
    "kafka_events_to_bronze": ["kafka/order_events"],
}


def sensor_id(table: str) -> str:
    return "landing_" + table.replace("/", "_")


SENSORS = {sensor_id(table): table for tables in LANDING.values() for table in tables}
# The DAG's tasks in the order the factory adds them: each ingest after its sensors.
EXPECTED_TASKS = [
    *(task for job in INGESTS for task in [*map(sensor_id, LANDING[job]), job]),
    *JOB_TASKS[5:],
]
EXPECTED_UPSTREAM = {
    **{sensor: set() for sensor in SENSORS},
    **JOB_UPSTREAM,
    **{job: set(map(sensor_id, LANDING[job])) for job in INGESTS},
}
# The tasks whose run for a date waits for the previous date's (state carried across dates).
DEPENDS_ON_PAST = {
    "kafka_events_to_bronze",
    "bronze_to_silver",
    "silver_to_gold",
    "validate",
    "publish_gold_to_snowflake",
}

EMR_SETTINGS = {
    "emr_application_id": "00ftestapp0001",
    "emr_execution_role_arn": "arn:aws:iam::123456789012:role/medallion-test-job",
    "emr_code_uri": "s3://test-bucket/code/",
    "emr_venv_uri": "s3://test-bucket/code/medallion-venv.tar.gz",
    "emr_logs_uri": "s3://test-bucket/logs",
}


def write_config(
    path: Path,
    lake: Path,
    *,
    webhook: str | None = None,
    variant: str = "local",
    **airflow: object,
) -> Path:
    """A local-env config with the lake under ``lake``, small Spark and the given airflow keys."""
    airflow_section = {"variant": variant, **airflow}
    if variant == "emr_serverless":
        airflow_section = {**EMR_SETTINGS, **airflow_section}
    lines = [
        "env: local",
        'spark: {master: "local[2]", shuffle_partitions: 1, driver_memory: 1g}',
        f'lake: {{root: "{lake}"}}',
        f'warehouse: {{type: duckdb, duckdb: {{path: "{lake / "warehouse.duckdb"}"}}}}',
        f'alerts: {{webhook_url: "{webhook}"}}' if webhook else "alerts: {}",
        "airflow:",
        *(f"  {key}: {value}" for key, value in airflow_section.items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Webhook:
    """A loopback HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                time.sleep(delay_s)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
