"""The session fixture is a real, local, session-scoped SparkSession with the pipeline's settings:
a Delta Lake session on the pinned runtime, its jars from the Maven-fetched folder."""

import pytest
from pyspark.sql import SparkSession

from medallion.errors import UsageError
from medallion.spark import JARS_DIR_ENV, local_jars, s3a_bucket_conf, serves_scheme


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
    # The S3A jars (the test session has them) go on the driver's class path: as spark.jars a
    # local executor would copy the 640 MB AWS SDK bundle into its work folder.
    assert "bundle-2.29.52.jar" not in jars
    s3_jars = spark.sparkContext.getConf().get("spark.driver.extraClassPath")
    assert "/.jars/s3/hadoop-aws-3.4.2.jar" in s3_jars and "bundle-2.29.52.jar" in s3_jars
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


def test_the_session_serves_s3a_but_not_s3(spark):
    assert serves_scheme(spark, "s3a") and serves_scheme(spark, "file")
    assert not serves_scheme(spark, "s3")  # EMRFS's scheme: nothing serves it off EMR


def test_s3a_takes_a_custom_endpoint_and_region_from_the_aws_environment():
    local = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "key-id",
        "AWS_SECRET_ACCESS_KEY": "not-for-hadoop",
    }
    assert s3a_bucket_conf("lake", local) == {
        "fs.s3a.bucket.lake.endpoint": "http://127.0.0.1:5000",
        "fs.s3a.bucket.lake.path.style.access": "true",
        "fs.s3a.bucket.lake.connection.ssl.enabled": "false",
        "fs.s3a.bucket.lake.endpoint.region": "us-east-1",
    }  # credentials stay with S3A's default chain: no secret in a configuration
    s3_only = {"AWS_ENDPOINT_URL": "http://other:1", "AWS_ENDPOINT_URL_S3": "https://s3.internal"}
    assert s3a_bucket_conf("b", s3_only)["fs.s3a.bucket.b.endpoint"] == "https://s3.internal"
    assert s3a_bucket_conf("b", s3_only)["fs.s3a.bucket.b.connection.ssl.enabled"] == "true"
    assert s3a_bucket_conf("b", {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "x"}) == {
        "fs.s3a.bucket.b.endpoint.region": "eu-west-1"
    }
    assert s3a_bucket_conf("b", {}) == {}  # EMR: the instance role and AWS's own endpoints


def test_delta_commits_to_s3a_with_the_single_driver_log_store(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.delta.logStore.s3a.impl") == "io.delta.storage.S3SingleDriverLogStore"
