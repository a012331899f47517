"""The session fixture is a real, local, session-scoped SparkSession with the pipeline's settings:
a Delta Lake session on the pinned runtime, its jars from the Maven-fetched folder."""

import pytest
from pyspark.sql import SparkSession

from medallion.errors import UsageError
from medallion.spark import JARS_DIR_ENV, local_jars


def test_session_is_real_local_and_configured(spark):
    assert isinstance(spark, SparkSession)
    assert spark.sparkContext.master == "local[2]"
    assert spark.version == "4.1.1"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "1"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert (
        spark.conf.get("spark.sql.catalog.spark_catalog")
        == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )
    assert spark.range(10).selectExpr("sum(id)").first()[0] == 45


def test_every_session_keeps_a_chain_days_generated_classes(spark):
    # medallion.spark.DEFAULT_CONF: Spark's default of 100 made every chain day recompile.
    assert spark.conf.get("spark.sql.codegen.cache.maxEntries") == "5000"


def test_the_test_session_runs_tiny_data_interpreted(spark):
    # tests/tiny_spark.py: compiling each query's code cost more than running its few rows.
    assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"


def test_delta_runs_from_the_maven_fetched_jars(spark, tmp_path):
    jars = spark.conf.get("spark.jars")
    assert "delta-spark_4.1_2.13-4.2.0.jar" in jars and "/.jars/delta/" in jars
    assert "bundle-2.29.52.jar" not in jars  # the S3 jars only join a session for an s3a lake
    assert "spark.jars.packages" not in dict(spark.sparkContext.getConf().getAll())
    path = str(tmp_path / "t")
    spark.range(3).write.format("delta").save(path)
    assert spark.sql(f"DESCRIBE HISTORY delta.`{path}`").first()["operation"] == "WRITE"


def test_missing_jars_are_one_sentence_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(JARS_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match=r"no jars in .*nowhere/delta: run 'make jars'"):
        local_jars()


def test_session_is_shared(spark):
    assert SparkSession.getActiveSession() is spark


def test_local_sessions_list_tables_with_few_tasks(spark):
    # VACUUM's folder listing defaults to 10,000 tasks: minutes on two cores for a tiny table.
    assert spark.conf.get("spark.sql.sources.parallelPartitionDiscovery.parallelism") == "2"
