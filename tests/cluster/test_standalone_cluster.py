"""The daily chain on a real Spark cluster (standalone master + one worker on loopback).

The same CLI, with only ``spark.master`` changed in the config, must produce the same silver and
gold tables (row for row counts) as local mode on the same generated extracts: nothing in the jobs
may depend on the driver and the executors sharing a process.
"""

from __future__ import annotations

import shutil

import pytest
from cluster_helpers import (
    RUN_DATE,
    run_cli,
    spark_env,
    standalone_cluster,
    table_counts,
    write_config,
)

from medallion.spark import local_jars

pytestmark = [pytest.mark.extended, pytest.mark.integration]


@pytest.mark.timeout(3600)
def test_daily_chain_on_a_standalone_cluster_matches_local_mode(tmp_path):
    env = spark_env()
    local_lake, cluster_lake = tmp_path / "local_lake", tmp_path / "cluster_lake"
    local_config = write_config(tmp_path / "local.yaml", local_lake, "local[2]")
    run_cli(
        [
            "generate",
            "--scale",
            "0.02",
            "--days",
            "1",
            "--start-date",
            RUN_DATE,
            "--config",
            str(local_config),
        ],
        env,
        tmp_path,
    )
    shutil.copytree(local_lake / "landing", cluster_lake / "landing")

    run_cli(
        ["run", "--job", "all", "--run-date", RUN_DATE, "--config", str(local_config)],
        env,
        tmp_path,
    )

    with standalone_cluster(tmp_path / "cluster") as cluster:
        cluster_config = write_config(
            tmp_path / "cluster.yaml",
            cluster_lake,
            cluster.master_url,
            **{
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.executor.memory": "768m",
                "spark.cores.max": "1",
                # A cluster master gets no jars from the builder (a real cluster has its own):
                # hand the standalone one the Maven-fetched Delta jars, as EMR's config does.
                "spark.jars": ",".join(local_jars()),
            },
        )
        done = run_cli(
            ["run", "--job", "all", "--run-date", RUN_DATE, "--config", str(cluster_config)],
            env,
            tmp_path,
        )
        assert f"spark session ready: master={cluster.master_url}" in done.stderr
        applications = (tmp_path / "cluster" / "work").glob("app-*")
        assert any(applications), "no application ran on the worker"

    for layer in ("silver", "gold"):
        local_counts = table_counts(local_lake / layer)
        assert local_counts, f"local mode wrote no {layer} tables"
        assert all(local_counts.values()), local_counts
        assert table_counts(cluster_lake / layer) == local_counts, layer
