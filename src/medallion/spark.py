"""The one SparkSession builder. It returns a real session or fails loudly; never a mock.

Local mode is tuned for a laptop (quiet logs, UI off, loopback driver host, few shuffle
partitions, dynamic partition overwrite); on a cluster (``master: null``) it takes the cluster's
master and adds only what the pipeline's semantics need.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time

from pyspark.sql import SparkSession

from medallion.config import SparkConfig
from medallion.errors import UsageError

log = logging.getLogger(__name__)

# Settings the pipeline's correctness depends on, on every cluster.
REQUIRED_CONF = {
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "snappy",
    # Timestamps written as microsecond INT64, readable by DuckDB and Snowflake alike.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.ansi.enabled": "false",
}

MIN_JAVA = 17


def java_version() -> int | None:
    """The major version of the ``java`` Spark would start, or None when there is none."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in out.split():
        token = token.strip('"')
        if token[:1].isdigit():
            head = token.split(".")[0]
            if head == "1":  # "1.8.0_x" style
                return int(token.split(".")[1])
            return int(head)
    return None


def build_spark(settings: SparkConfig, app_suffix: str = "") -> SparkSession:
    """Start (or join) the process's SparkSession according to ``settings``."""
    started = time.perf_counter()
    builder = SparkSession.builder.appName(
        settings.app_name + (f"-{app_suffix}" if app_suffix else "")
    )
    conf = dict(REQUIRED_CONF)
    if settings.master is not None:
        if settings.master.startswith("local"):
            _check_java()
            # Python workers (createDataFrame from local rows, foreachBatch helpers) must run the
            # same interpreter as the driver, not whatever "python3" is first on the PATH.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            conf.update(
                {
                    "spark.driver.host": "127.0.0.1",
                    "spark.driver.bindAddress": "127.0.0.1",
                    "spark.ui.showConsoleProgress": "false",
                }
            )
        builder = builder.master(settings.master)
        conf["spark.ui.enabled"] = str(settings.ui).lower()
        conf["spark.sql.shuffle.partitions"] = str(settings.shuffle_partitions)
        conf["spark.default.parallelism"] = str(max(settings.shuffle_partitions, 2))
        if settings.driver_memory:
            conf["spark.driver.memory"] = settings.driver_memory
    conf.update(settings.conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: say why, do not limp on
        raise UsageError(
            f"Spark could not start ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"check that Java {MIN_JAVA}+ is installed and JAVA_HOME points at it"
        ) from exc
    spark.sparkContext.setLogLevel(settings.log_level)
    log.info(
        "spark session ready: master=%s version=%s in %.1fs",
        spark.sparkContext.master,
        spark.version,
        time.perf_counter() - started,
    )
    return spark


def _check_java() -> None:
    version = java_version()
    if version is None:
        raise UsageError(
            f"Java was not found; install a Java {MIN_JAVA}+ runtime (e.g. apt-get install openjdk-17-jre-headless) "
            "or set JAVA_HOME"
        )
    if version < MIN_JAVA:
        raise UsageError(
            f"Java {version} found but Spark 4 needs Java {MIN_JAVA}+; install it or set JAVA_HOME"
        )
