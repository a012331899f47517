"""The session fixture is a real, local, session-scoped SparkSession with the pipeline's settings."""

from pyspark.sql import SparkSession


def test_session_is_real_local_and_configured(spark):
    assert isinstance(spark, SparkSession)
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "1"
    assert spark.conf.get("spark.sql.sources.partitionOverwriteMode") == "dynamic"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.ui.enabled") == "false"
    assert spark.range(10).selectExpr("sum(id)").first()[0] == 45


def test_session_is_shared(spark):
    assert SparkSession.getActiveSession() is spark
