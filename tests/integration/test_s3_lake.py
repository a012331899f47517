"""The lake on S3, for real: day 1 of the suite's chain, run again with ``lake.root`` on a local
S3 server (moto's server mode) and compared with the same day on the local chain lake.

The day's landing files are uploaded to the bucket, the config is read from ``s3://``, and the
whole chain (the five ingests, silver, gold, validate, the publish to a local DuckDB file) runs
in the suite's Spark session through S3A, then the report is written to the bucket. Spark sees
``s3a://`` (``Lake.for_spark``); the audit trail, the quality results and the report go through
fsspec, and the publisher, the report and this test read Delta tables through ``deltalake``.

The same day on the local lake is the oracle: its audit records as the chain left them, and its
tables at the versions its day-1 runs committed (Delta time travel), so one chain day on S3
costs no second local run. CI's time is short: this is the only chain day on S3.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import boto3
import duckdb
import fsspec
import pytest
from chain_lake import DAYS
from deltalake import DeltaTable

from medallion.audit import AuditRecord, read_records
from medallion.config import Settings, load_settings
from medallion.delta_reader import storage_options, table_uri
from medallion.jobs import JOBS
from medallion.lake import Lake
from medallion.quality.job import before_publish
from medallion.quality.report import write_report
from medallion.quality.results import read_results, results_path
from medallion.runner import run_chain

pytestmark = pytest.mark.integration

DAY = DAYS[0]
BUCKET = "medallion-s3-lake"
LAKE = f"s3://{BUCKET}/lake"
CONFIG = f"s3://{BUCKET}/config/local.yaml"
# Values that differ between two runs of the same input (lakestate.PER_RUN_COLUMNS).
PER_RUN_COLUMNS = ("_run_id", "_ingest_ts")
SOURCE_FILE = "_source_file"  # an absolute URI: compared relative to its lake


@dataclass(frozen=True)
class S3Day:
    settings: Settings
    records: dict[str, AuditRecord]  # the S3 chain's record of each job, by job name
    report: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """A local S3 server on a free port, and the standard AWS variables that point at it."""
    from moto.server import ThreadedMotoServer
    from s3fs import S3FileSystem

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
        }.items():
            env.setenv(key, value)
        for key in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(key, raising=False)
        S3FileSystem.clear_instance_cache()  # none made for another endpoint may serve this one
        try:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            yield endpoint
        finally:
            S3FileSystem.clear_instance_cache()
            server.stop()


def _give_the_jvm_the_credentials(spark, bucket: str) -> None:
    """The suite's JVM started before the test set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, so
    S3A's default chain cannot find them in its environment (a CLI process's JVM inherits them
    when it starts): hand the test server's dummy keys to S3A for the bucket."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop.set(f"fs.s3a.bucket.{bucket}.access.key", os.environ["AWS_ACCESS_KEY_ID"])
    hadoop.set(f"fs.s3a.bucket.{bucket}.secret.key", os.environ["AWS_SECRET_ACCESS_KEY"])


def _upload_landing(pristine: Path, endpoint: str) -> int:
    """Upload the chain lake's landing files of ``DAY`` (data and control files), by name."""
    client = boto3.client("s3", endpoint_url=endpoint)
    files = sorted(p for p in (pristine / "landing").rglob("*") if p.is_file())
    day_files = [p for p in files if f"dt={DAY.isoformat()}" in p.relative_to(pristine).parts]
    for path in day_files:
        key = f"lake/{path.relative_to(pristine).as_posix()}"
        client.upload_file(str(path), BUCKET, key)
    return len(day_files)


@pytest.fixture(scope="module")
def s3_day(spark, chain_build, s3_server, tmp_path_factory) -> S3Day:
    """Day 1 of the chain, with the lake and the config on the S3 server."""
    _, pristine = chain_build
    assert _upload_landing(pristine, s3_server) > 0
    warehouse = tmp_path_factory.mktemp("s3_warehouse") / "warehouse.duckdb"
    config = f"""env: local
spark: {{master: "local[2]", shuffle_partitions: 1}}
lake: {{root: "{LAKE}"}}
warehouse: {{type: duckdb, duckdb: {{path: "{warehouse}"}}}}
streaming: {{max_files_per_trigger: 50}}
"""
    with fsspec.open(CONFIG, "w", encoding="utf-8") as handle:
        handle.write(config)
    settings = load_settings("local", CONFIG)
    _give_the_jvm_the_credentials(spark, BUCKET)

    records = run_chain(before_publish(JOBS), [DAY], settings, lambda: spark)

    report = write_report(settings, DAY)
    return S3Day(settings, {r.job: r for r in records}, report)


# --- reading a table's content through its log, anywhere --------------------------------------


def _content(path: str, version: int) -> tuple[int, int]:
    """(rows, checksum) of the Delta table at ``path`` as of ``version``: DuckDB's hash of every
    row summed (order and file layout do not matter), per-run columns left out and source
    files taken relative to their lake."""
    table = DeltaTable(table_uri(path), version=version, storage_options=storage_options(path))
    with duckdb.connect() as con:
        con.register("t", table.to_pyarrow_dataset())
        names = [name for name, *_ in con.execute("DESCRIBE SELECT * FROM t").fetchall()]
        hashed = ", ".join(
            f"regexp_replace(\"{c}\", '^.*?/landing/', 'landing/')"
            if c == SOURCE_FILE
            else f'"{c}"'
            for c in names
            if c not in PER_RUN_COLUMNS
        )
        rows, checksum = con.execute(
            f"SELECT count(*), coalesce(sum(hash({hashed})), 0)::HUGEINT FROM t"
        ).fetchone()
    return int(rows), int(checksum)


def _versions(records) -> dict[str, int]:
    """Every table the day's runs committed to, with the version they left it at."""
    return {
        name: version
        for record in records
        for table in record.tables
        for name, version in table.get("versions", {}).items()
    }


def _counts(record: AuditRecord) -> dict:
    return {
        "status": record.status,
        "rows": (record.rows_in, record.rows_out, record.rows_quarantined),
        "tables": [
            (t["name"], t["rows_in"], t["rows_out"], t["rows_quarantined"], t["versions"])
            for t in record.tables
        ],
    }


@pytest.fixture(scope="module")
def local_day(chain_build) -> tuple[dict[str, AuditRecord], dict[str, tuple[int, int]], Path]:
    """The local chain's day 1: its records by job, and each table's content at its version."""
    chain, pristine = chain_build
    records = chain.records_of(DAY)
    contents = {
        name: _content(str(pristine / name), version)
        for name, version in _versions(records.values()).items()
    }
    return records, contents, pristine


# --- the tests ------------------------------------------------------------------------------


def test_the_chain_ran_on_s3_through_s3a_with_the_config_from_s3(s3_day):
    assert s3_day.settings.source == CONFIG and s3_day.settings.lake.root == LAKE
    assert list(s3_day.records) == [job.name for job in before_publish(JOBS)]
    assert {r.status for r in s3_day.records.values()} == {"succeeded"}
    bronze = Lake.from_root(LAKE).bronze("crm", "accounts")
    objects = fsspec.filesystem("s3").ls(f"{bronze}/_delta_log".removeprefix("s3://"))
    assert any(o.endswith("00000000000000000000.json") for o in objects)
    # Spark read the landing files through S3A: their URIs are in bronze's lineage column
    sources = DeltaTable(bronze, storage_options=storage_options(bronze)).to_pyarrow_table(
        columns=[SOURCE_FILE]
    )
    landing = f"s3a://{BUCKET}/lake/landing/crm/accounts/dt={DAY.isoformat()}/"
    assert {uri.startswith(landing) for uri in sources.column(SOURCE_FILE).to_pylist()} == {True}
    audit = read_records(LAKE, run_date=DAY)
    assert sorted(r["run_id"] for r in audit) == sorted(r.run_id for r in s3_day.records.values())


def test_every_job_counts_the_same_rows_per_table_as_on_the_local_lake(s3_day, local_day):
    local, _, _ = local_day
    assert list(local) == [job.name for job in JOBS]
    for job, record in local.items():
        assert _counts(s3_day.records[job]) == _counts(record), job


def test_every_table_holds_the_same_rows_as_on_the_local_lake(s3_day, local_day):
    _, local, _ = local_day
    on_s3 = _versions(s3_day.records.values())
    assert set(on_s3) == set(local)
    assert {name.split("/")[0] for name in on_s3} == {"bronze", "quarantine", "silver", "gold"}
    differ = {
        name: (theirs, mine)
        for name, version in sorted(on_s3.items())
        if (mine := _content(f"{LAKE}/{name}", version)) != (theirs := local[name])
    }
    assert differ == {}, f"(local, s3) rows and checksums differ: {differ}"


def test_validate_on_s3_passes_and_measures_the_local_lakes_tables(s3_day, local_day):
    _, local, _ = local_day
    results = read_results(Lake.from_root(LAKE), DAY)

    written = s3_day.records["validate"].details["results"]  # by Spark's view of the lake
    assert table_uri(written) == results_path(Lake.from_root(LAKE), DAY)
    assert results["status"] == "passed" and results["failed_errors"] == []
    measured = {k.replace(".", "/"): v for k, v in results["row_counts"].items()}
    assert measured and all(rows == local[name][0] for name, rows in measured.items())


def test_the_warehouse_holds_gold_read_from_s3(s3_day, local_day):
    _, local, _ = local_day
    publish = s3_day.records["publish_gold_to_snowflake"]
    gold = _versions([s3_day.records["silver_to_gold"]])
    assert {f"gold/{t}": v for t, v in publish.details["gold_versions"].items()} == gold
    with duckdb.connect(s3_day.settings.warehouse.duckdb.path, read_only=True) as con:
        for name in gold:
            table = name.removeprefix("gold/")
            hashed = ", ".join(f'"{c}"' for c, *_ in con.execute(f'DESCRIBE "{table}"').fetchall())
            rows, checksum = con.execute(
                f'SELECT count(*), coalesce(sum(hash({hashed})), 0)::HUGEINT FROM "{table}"'
            ).fetchone()
            assert (rows, checksum) == local[name], table


def test_the_report_is_written_to_s3_and_shows_the_day(s3_day, local_day):
    local, _, _ = local_day
    quarantined = sum(r.rows_quarantined for job, r in local.items() if job.endswith("_to_bronze"))

    assert s3_day.report == f"{LAKE}/_reports/report_{DAY.isoformat()}.html"
    with fsspec.open(s3_day.report, "r", encoding="utf-8") as handle:
        html = handle.read()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert quarantined > 0 and f"Rows quarantined {quarantined:,}" in text
    assert "Pipeline 9 jobs succeeded" in text and "Quality gate passed" in text
    assert f"lake {LAKE}" in text
