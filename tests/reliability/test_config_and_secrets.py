"""Configuration and secrets: a malformed YAML file, an unknown key, a wrong type or a missing
environment variable is exit 2 with one sentence naming the problem; a secret set through the
environment appears in no log line, audit record, report, lake file or exception message of a
full run (the reference lake's CLI run, with ``--verbose``); the Snowflake credential kept in
AWS Secrets Manager (moto's server) reaches the connector and nothing else."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import SECRET, SECRET_ENV, config_with_secret
from fake_snowflake import fake_snowflake
from lakestate import audit_trail, medallion, one_sentence, table_dirs, visible_files

from medallion import cli
from medallion.config import load_settings
from medallion.jobs import JOB_MAP
from medallion.jobs.base import Job, JobResult

pytestmark = pytest.mark.reliability

BAD_CONFIGS = {
    "malformed_yaml": (
        'env: local\nlake: {root: "./data"\nspark: {master: local}\n',
        r"config '.*' is not valid YAML at line \d+, column \d+",
    ),
    "unknown_key": (
        "env: local\nspark: {mastr: 'local[2]'}\n",
        r"config '.*' is invalid: unknown key 'spark\.mastr'",
    ),
    "unknown_section": ("env: local\nlakes: {root: ./data}\n", r"unknown key 'lakes'"),
    "wrong_type": (
        "env: local\nlock: {ttl_seconds: soon}\n",
        r"key 'lock\.ttl_seconds': Input should be a valid integer",
    ),
    "missing_env_var": (
        "env: local\nlake: {root: '${MEDALLION_RELIABILITY_UNSET}/lake'}\n",
        r"config key 'lake\.root' references environment variable "
        r"\$\{MEDALLION_RELIABILITY_UNSET\}, which is not set",
    ),
    "secret_under_unknown_key": (
        f"env: local\nalerts: {{webhook: '${{{SECRET_ENV}}}'}}\n",
        r"unknown key 'alerts\.webhook'",
    ),
    "secret_of_wrong_type": (
        f"env: local\nlock: {{ttl_seconds: '${{{SECRET_ENV}}}'}}\n",
        r"key 'lock\.ttl_seconds'",
    ),
    "not_a_mapping": ("- just\n- a list\n", r"must be a mapping of sections, not list"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_configuration_is_exit_2_naming_the_problem(tmp_path, secret_env, case):
    text, expected = BAD_CONFIGS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    args = ("run", "--job", "fx_json_to_bronze", "--run-date", "2025-01-13", "--config", str(path))
    result = medallion(*args, env=secret_env, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medallion: error: "), result.stderr
    message = lines[0].removeprefix("medallion: error: ")
    assert re.search(expected, message), message
    assert one_sentence(message) and SECRET not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()  # nothing ran


def test_missing_config_file_is_exit_2(tmp_path):
    result = medallion("audit", "--config", str(tmp_path / "nope.yaml"), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"medallion: error: config file '{tmp_path / 'nope.yaml'}' does not exist; "
        "pass --config PATH or --env NAME"
    )


def test_the_secret_was_really_in_the_configuration(reference):
    settings = load_settings("local", str(reference.config))
    assert [v for v in settings.secret_values() if SECRET in v] == [
        f"https://hooks.example.com/{SECRET}",
        SECRET,
    ]
    assert SECRET_ENV in reference.config.read_text() and SECRET not in reference.config.read_text()


def test_the_secret_appears_in_no_output_of_a_full_run(reference):
    """stdout/stderr of run, validate, report and audit; every file of the lake (landing,
    bronze..gold Parquet, quarantine, audit JSON, checkpoints, quality results, the HTML
    report, the DuckDB warehouse), byte for byte and decoded."""
    assert reference.cli["run"].returncode == 0
    assert reference.cli["report"].returncode == 0, reference.cli["report"].stderr[-2000:]
    for name, result in reference.cli.items():
        assert SECRET not in result.stdout + result.stderr, name
    assert "spark session ready" in reference.cli["run"].stderr  # the logs were captured
    printed = reference.cli["report"].stdout.strip().splitlines()[-1]
    report = reference.lake() / Path(printed).relative_to(reference.root)  # the lake may have moved
    assert report.suffix == ".html" and report.stat().st_size > 1000

    lakes = [p for p in (reference.root, reference.final_root) if p and p.exists()]
    scanned = 0
    for lake in lakes:
        for path in lake.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
                scanned += 1
        with duckdb.connect() as con:  # Parquet is compressed: search the decoded values too
            for name, folder in table_dirs(lake).items():
                files = [str(f) for f in visible_files(folder) if f.suffix == ".parquet"]
                hits = con.execute(
                    "SELECT count(*) FROM read_parquet($files) t WHERE contains(t::VARCHAR, $s)",
                    {"files": files, "s": SECRET},
                ).fetchone()[0]
                assert hits == 0, name
        with duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True) as con:
            for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                sql = f'SELECT count(*) FROM "{table}" t WHERE contains(t::VARCHAR, $s)'
                assert con.execute(sql, {"s": SECRET}).fetchone()[0] == 0, table
        assert audit_trail(lake)
    assert scanned > 100


def test_an_exception_carrying_the_secret_is_masked_everywhere_even_verbose(
    secret_env, tmp_path, capsys, monkeypatch
):
    """A job fails with the secret in its exception (a driver echoing a connection URL): the
    CLI's message, its --verbose traceback, the log and the audit record show *** instead."""

    def leaky(context) -> JobResult:
        raise RuntimeError(f"could not reach https://user:{SECRET}@warehouse.example.com")

    jobs = dict(JOB_MAP)
    jobs["leaky_job"] = Job("leaky_job", "fails with a secret", leaky, needs_spark=False)
    monkeypatch.setattr("medallion.jobs.JOB_MAP", jobs)
    config = config_with_secret(tmp_path / "config.yaml", tmp_path / "lake")
    root_logger = logging.getLogger()
    saved = root_logger.handlers[:], root_logger.level
    try:
        code = cli.main(
            ["run", "--job", "leaky_job", "--run-date", "2025-01-13", "--config", str(config), "-v"]
        )
    finally:
        root_logger.handlers[:] = saved[0]
        root_logger.setLevel(saved[1])
    out = capsys.readouterr()
    assert code == 1
    assert SECRET not in out.out + out.err
    assert "https://user:***@warehouse.example.com" in out.err
    assert "Traceback" in out.err  # --verbose did print one, masked
    (record,) = audit_trail(tmp_path / "lake")
    assert record["status"] == "failed" and SECRET not in record["error"]
    assert "***" in record["error"]


def test_dates_are_validated_before_anything_runs():
    result = medallion("run", "--job", "all", "--run-date", "2025-13-01", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "medallion: error: --run-date '2025-13-01' is not a date; use YYYY-MM-DD, e.g. 2025-01-13"
    )


# --- the Snowflake credential from AWS Secrets Manager ------------------------------------------

STORED_SECRET = "sm-Pw-from-the-store-4e81d2c7"  # only ever in moto's Secrets Manager
SECRET_ID = "medallion/reliability/snowflake"
RUN_DATE = "2025-01-15"


@pytest.fixture
def fakesnow_patch(monkeypatch):
    """fakesnow in place of the Snowflake connector (tests/fake_snowflake.py)."""
    with fake_snowflake(monkeypatch) as statements:
        yield statements


def run_cli(*argv: str) -> int:
    """``medallion`` in this process (so fakesnow stands in for Snowflake), root logger kept."""
    root_logger = logging.getLogger()
    saved = root_logger.handlers[:], root_logger.level
    try:
        return cli.main(list(argv))
    finally:
        root_logger.handlers[:] = saved[0]
        root_logger.setLevel(saved[1])


def snowflake_from_secrets_manager(path: Path, lake: Path) -> Path:
    path.write_text(
        f"""env: prod
spark: {{master: "local[2]", shuffle_partitions: 1}}
lake: {{root: "{lake}"}}
warehouse:
  type: snowflake
  snowflake:
    account: acme-test
    user: publisher
    credentials: {{secrets_manager: {{secret_id: {SECRET_ID}, region: eu-west-1}}}}
    database: MEDALLION
    schema: GOLD
""",
        encoding="utf-8",
    )
    return path


def publish_with_stored_secret(reference, tmp_path: Path, lake: Path, secret: dict) -> int:
    """Publish the reference lake's gold with a prod config whose Snowflake credentials are the
    Secrets Manager secret ``secret`` (stored first); the CLI's exit code."""
    import boto3

    shutil.copytree(reference.lake() / "gold", lake / "gold")
    config = snowflake_from_secrets_manager(tmp_path / "prod.yaml", lake)
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps(secret))
    return run_cli("run", "--job", "publish_gold_to_snowflake", "--run-date", RUN_DATE,
                   "--config", str(config), "--env", "prod", "--verbose")  # fmt: skip


def assert_nowhere(secret: str, lake: Path, *texts: str) -> list[dict]:
    """``secret`` in none of ``texts`` and no file of ``lake``; the lake's audit records."""
    for text in texts:
        assert secret not in text
    for path in lake.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    return audit_trail(lake)


@pytest.mark.filterwarnings("ignore:Arrow output on a DB-API")  # fakesnow's, not ours
def test_the_credential_from_secrets_manager_reaches_only_the_connector(
    reference, s3_server, fakesnow_patch, spark, tmp_path, capsys
):
    """The reference lake's gold published to Snowflake (fakesnow) with the password read from
    Secrets Manager when the publisher connects: the connector gets it; no log line (--verbose),
    audit record, lake file or Spark setting holds it."""
    import snowflake.connector

    lake = tmp_path / "lake"
    code = publish_with_stored_secret(reference, tmp_path, lake, {"password": STORED_SECRET})

    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    assert snowflake.connector.connect.call_args.kwargs["password"] == STORED_SECRET
    assert f"read secret '{SECRET_ID}'" in out.err  # the --verbose log was captured
    (record,) = assert_nowhere(STORED_SECRET, lake, out.out, out.err)
    assert record["status"] == "succeeded" and record["rows_out"] > 0
    spark_conf = "\n".join(f"{k}={v}" for k, v in spark.sparkContext.getConf().getAll())
    assert STORED_SECRET not in spark_conf + json.dumps(spark.conf.getAll)


def test_a_bad_secret_fails_in_one_sentence_that_does_not_show_it(
    reference, s3_server, fakesnow_patch, tmp_path, capsys
):
    """A secret whose JSON misnames its field: exit 2, one sentence naming the secret and what
    is wrong, and the value in neither the message, the --verbose traceback nor the audit."""
    lake = tmp_path / "lake"
    code = publish_with_stored_secret(reference, tmp_path, lake, {"pasword": STORED_SECRET})

    out = capsys.readouterr()
    assert code == 2
    message = out.err.strip().splitlines()[-1].removeprefix("medallion: error: ")
    assert message == (
        f"secret '{SECRET_ID}' is a JSON object with neither a 'password' nor a 'private_key' "
        "field; store one of them (or the password as plain text)"
    )
    assert one_sentence(message)
    (record,) = assert_nowhere(STORED_SECRET, lake, out.out, out.err)
    assert record["status"] == "failed" and record["error"] == message
