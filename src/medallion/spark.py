"""The one SparkSession builder. It returns a real session or fails loudly; never a mock.

Every session is a Delta Lake session: the Delta SQL extension and catalog are always set. Local
mode is tuned for a laptop (quiet logs, UI off, loopback driver host, few shuffle partitions) and
puts the jars that ``make jars`` fetched from Maven Central on its class path: Delta's
(``.jars/delta``) on ``spark.jars``, and for a lake on S3 hadoop-aws with the AWS SDK bundle
(``.jars/s3``) on the driver's class path. Nothing is downloaded when a session starts. On a
cluster (``master: null``) the cluster's own Delta jars are used (EMR lists its bundled
``/usr/share/aws/delta/lib`` jars in the config's ``spark.conf``) and only what the pipeline's
semantics need is added.

S3 outside EMR goes through Hadoop's S3A connector (``s3a://``): :func:`configure_s3a` points it
at the endpoint and region of the standard AWS environment variables (a local S3 server in the
tests); credentials come from S3A's default chain (the environment, then the instance role).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from medallion.config import SparkConfig
from medallion.errors import UsageError
from medallion.lake import s3_endpoint

log = logging.getLogger(__name__)

# Settings the pipeline's correctness depends on, on every cluster.
REQUIRED_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "snappy",
    # Timestamps written as microsecond INT64, readable by DuckDB and Snowflake alike.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.ansi.enabled": "false",
}

# Tuning every session starts with (a config's ``spark.conf`` overrides it). A chain day plans
# some 450 queries (each table's diff, MERGE, history and counts), most of them the same every
# day, and Spark keeps only 100 of the classes it generates for them (the default), so a
# backfill or a long-lived session compiled them again every day. Measured, a two-day chain at
# scale 0.02 in one session: 137 s and 104 s with the default, 120 s and 79 s with 5,000.
#
# Delta on S3A: the log store for one writer per table at a time (Delta's default for s3a://,
# stated here so that it shows, and so that a config's spark.conf can swap in Delta's
# S3DynamoDBLogStore for writers on several clusters). It makes a commit safe against the other
# threads of this driver, not against another driver: the run lock keeps one run per table.
DEFAULT_CONF = {
    "spark.sql.codegen.cache.maxEntries": "5000",
    "spark.delta.logStore.s3a.impl": "io.delta.storage.S3SingleDriverLogStore",
}

MIN_JAVA = 17

# Where ``make jars`` puts the Maven-fetched jars, relative to the project (or MEDALLION_JARS_DIR).
JARS_DIR_ENV = "MEDALLION_JARS_DIR"
JARS_DIR_NAME = ".jars"


def jars_dir() -> Path | None:
    """The folder of Maven-fetched jars: ``$MEDALLION_JARS_DIR``, else the first ``.jars/`` above
    the working directory or above this package (a source checkout or an editable install)."""
    configured = os.environ.get(JARS_DIR_ENV)
    if configured:
        return Path(configured)
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / JARS_DIR_NAME / "delta").is_dir():
                return folder / JARS_DIR_NAME
    return None


def local_jars(with_s3: bool = False) -> list[str]:
    """The jars a local session needs: Delta's, and hadoop-aws with the AWS SDK for ``s3a://``.

    A missing folder is a usage error naming the command that fetches it, never a download.
    """
    return _jar_group("delta") + (_jar_group("s3") if with_s3 else [])


def _jar_group(group: str) -> list[str]:
    folder = jars_dir()
    found = sorted((folder / group).glob("*.jar")) if folder else []
    if not found:
        where = folder / group if folder else f"{JARS_DIR_NAME}/{group}"
        raise UsageError(
            f"no jars in {where}: run 'make jars' (it fetches Delta Lake"
            f"{' and hadoop-aws' if group == 's3' else ''} from Maven Central with mvn) "
            f"or point {JARS_DIR_ENV} at a folder holding them"
        )
    return [str(jar) for jar in found]


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


def build_spark(settings: SparkConfig, app_suffix: str = "", s3: bool = False) -> SparkSession:
    """Start (or join) the process's SparkSession according to ``settings``.

    ``s3`` adds the S3A file system's jars to a local session (a lake on S3). They go on the
    driver's class path rather than ``spark.jars``: a local executor copies every file of
    ``spark.jars`` into its work folder at its first task, 640 MB for the AWS SDK bundle, while
    in local mode the driver's class path is the executors' too.
    """
    started = time.perf_counter()
    builder = SparkSession.builder.appName(
        settings.app_name + (f"-{app_suffix}" if app_suffix else "")
    )
    conf = {**DEFAULT_CONF, **REQUIRED_CONF}
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
            # Delta rebuilds a table's state from its log with this many tasks (default 50):
            # on a laptop's few cores and small logs, the shuffle partitions are plenty.
            conf["spark.databricks.delta.snapshotPartitions"] = str(settings.shuffle_partitions)
            # VACUUM lists a table's folder with this many tasks (default 10,000): 148 s for a
            # three-file table on two cores, 14 s with two tasks.
            conf["spark.sql.sources.parallelPartitionDiscovery.parallelism"] = str(
                max(settings.shuffle_partitions, 2)
            )
            if "spark.jars" not in settings.conf:
                conf["spark.jars"] = ",".join(local_jars())
                if s3 and "spark.driver.extraClassPath" not in settings.conf:
                    conf["spark.driver.extraClassPath"] = os.pathsep.join(_jar_group("s3"))
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


def s3a_bucket_conf(bucket: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Hadoop settings that point S3A at the S3 endpoint of the standard AWS environment
    variables, for one bucket (``fs.s3a.bucket.<bucket>.*``).

    ``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``): a custom endpoint, such as a local S3
    server, addressed path-style (``http://host:port/bucket/key``), without TLS when it is
    ``http://``. ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``): the bucket's region. None set (EMR,
    or AWS with its own endpoints): nothing, S3A's defaults apply. Credentials are left to S3A's
    default chain, which reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` from the JVM's
    environment, then the instance role, so no secret is ever written into a configuration.
    """
    prefix = f"fs.s3a.bucket.{bucket}."
    conf: dict[str, str] = {}
    endpoint = s3_endpoint(environ)
    if endpoint:
        conf[prefix + "endpoint"] = endpoint
        conf[prefix + "path.style.access"] = "true"
        conf[prefix + "connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        conf[prefix + "endpoint.region"] = region
    return conf


def configure_s3a(
    spark: SparkSession, uri: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Apply :func:`s3a_bucket_conf` for the bucket of ``uri`` (``s3a://bucket/...``) to the
    running session's Hadoop configuration, which every later read and write uses; return it."""
    bucket = uri.split("://", 1)[1].split("/", 1)[0]
    conf = s3a_bucket_conf(bucket, os.environ if environ is None else environ)
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in conf.items():
        hadoop.set(key, value)
    return conf


def serves_scheme(spark: SparkSession, scheme: str) -> bool:
    """True when the session's Hadoop has a file system for ``scheme`` (EMRFS for ``s3`` on
    EMR; nothing for ``s3`` in a local session)."""
    jvm = spark.sparkContext._jvm
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, hadoop)
    except Py4JJavaError:
        return False
    return True


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
