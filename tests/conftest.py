"""Shared fixtures: one real local SparkSession for the whole test run (never a mock)."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("PYSPARK_PYTHON", os.path.join(os.path.dirname(os.sys.executable), "python"))


@pytest.fixture(scope="session")
def spark():
    """A local SparkSession with one shuffle partition, the UI off and the tiny-data settings
    (tests/tiny_spark.py); fails loudly if Spark cannot start. It has the S3A jars, for the
    lake on a local S3 server (tests/integration/test_s3_lake.py): they sit on the driver's
    class path, where they cost no copy and no measurable start-up time."""
    from tiny_spark import TINY_DATA_CONF

    from medallion.config import SparkConfig
    from medallion.spark import build_spark

    settings = SparkConfig(
        master="local[2]", shuffle_partitions=1, driver_memory="2g", ui=False, conf=TINY_DATA_CONF
    )
    session = build_spark(settings, "tests", s3=True)
    assert session.sparkContext.master == "local[2]", "the test session must be a real local Spark"
    yield session
    session.stop()


@pytest.fixture
def lake_settings(tmp_path):
    """Settings for a throwaway lake under tmp_path (local Spark, DuckDB in the lake)."""
    from medallion.config import parse_settings

    text = f"""
env: local
spark: {{master: "local[2]", shuffle_partitions: 1}}
lake: {{root: "{tmp_path / "lake"}"}}
warehouse: {{type: duckdb, duckdb: {{path: "{tmp_path / "lake" / "warehouse.duckdb"}"}}}}
"""
    return parse_settings(text, "test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """A local AWS server (moto's server mode: S3, Secrets Manager) for this test; boto3, fsspec
    and s3fs point at it through the environment and fsspec's config, as they point at AWS in
    production. Yields its endpoint URL. moto keeps its state per process, not per server, so
    it is reset afterwards."""
    import urllib.request

    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    import fsspec

    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = endpoint
    yield endpoint
    fsspec.config.conf.get("s3", {}).pop("endpoint_url", None)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    server.stop()
