"""CLI parsing and exit codes, through the real entrypoint (in-process and as a subprocess)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from medallion import cli
from medallion.jobs import JOB_MAP


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medallion", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_unknown_job_exits_2_naming_valid_jobs(capsys):
    assert cli.main(["run", "--job", "nope", "--run-date", "2025-01-13"]) == 2
    err = capsys.readouterr().err
    assert "unknown job 'nope'" in err
    assert "valid jobs: all" in err
    for name in JOB_MAP:
        assert name in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run-date", "2025-13-01"], "--run-date '2025-13-01' is not a date"),
        (["--run-date", "13/01/2025"], "--run-date '13/01/2025' is not a date"),
        (
            ["--start-date", "2025-01-15", "--end-date", "2025-01-13"],
            "--end-date 2025-01-13 is before --start-date 2025-01-15",
        ),
        (["--start-date", "2025-01-15"], "needs both --start-date and --end-date"),
        (
            ["--run-date", "2025-01-13", "--start-date", "2025-01-13", "--end-date", "2025-01-14"],
            "not both",
        ),
    ],
)
def test_bad_dates_exit_2(capsys, args, message):
    assert cli.main(["run", "--job", "all", *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_config_exits_2_naming_the_key(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("env: local\nlake: {rot: ./data}\n")
    assert cli.main(["audit", "--config", str(config)]) == 2
    assert "unknown key 'lake.rot'" in capsys.readouterr().err


def test_backfill_dates_are_every_day_in_order():
    args = cli.build_parser().parse_args(
        ["run", "--job", "all", "--start-date", "2025-01-30", "--end-date", "2025-02-02"]
    )
    assert cli.resolve_dates(args) == [
        dt.date(2025, 1, 30),
        dt.date(2025, 1, 31),
        dt.date(2025, 2, 1),
        dt.date(2025, 2, 2),
    ]


def test_run_date_defaults_to_today_utc():
    args = cli.build_parser().parse_args(["run", "--job", "all"])
    assert cli.resolve_dates(args) == [dt.datetime.now(dt.UTC).date()]


def test_jobs_lists_every_registered_job_in_order():
    result = run_cli("jobs")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert names == list(JOB_MAP)


def test_python_dash_m_and_usage_errors_exit_2():
    result = run_cli("run")
    assert result.returncode == 2
    assert "--job" in result.stderr
    assert run_cli("--version").stdout.startswith("medallion ")


def test_audit_json_on_empty_lake(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"env: local\nlake: {{root: {tmp_path / 'lake'}}}\n")
    result = run_cli("audit", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["restore", "--table", "silver/orders"], "one of the arguments --version --timestamp"),
        (
            ["restore", "--table", "silver/orders", "--version", "1", "--timestamp", "2025-01-15"],
            "not allowed with argument",
        ),
        (["history"], "--table"),
    ],
)
def test_table_commands_need_their_arguments(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "--table", "silver/orders", "--last", "0"], "--last must be a positive"),
        (
            ["history", "--table", "landing/fx/fx_rates"],
            "'landing/fx/fx_rates' is not a lake table",
        ),
        (["maintain", "--table", "gold/../secrets"], "'gold/../secrets' is not a lake table"),
        (["restore", "--table", "silver/orders", "--version", "-1"], "--version must be 0 or more"),
        (
            ["restore", "--table", "silver/orders", "--timestamp", "yesterday"],
            "--timestamp 'yesterday' is not a time",
        ),
    ],
)
def test_bad_table_command_usage_exits_2_without_spark(tmp_path, capsys, args, message):
    config = tmp_path / "c.yaml"
    config.write_text(f"env: local\nlake: {{root: {tmp_path / 'lake'}}}\n")
    assert cli.main([*args, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_job_all_validates_before_the_publish_and_passes_accept_anomalies(monkeypatch, tmp_path):
    """`--job all` is the registry's jobs with validate (the checks and the anomaly gate) just
    before the publish, as the DAG runs them; `--accept-anomalies` reaches every job's options."""
    import medallion.runner

    config = tmp_path / "c.yaml"
    config.write_text(f"env: local\nlake: {{root: {tmp_path / 'lake'}}}\n")
    calls = []
    monkeypatch.setattr(
        medallion.runner, "run_chain", lambda jobs, dates, *_, **kw: calls.append((jobs, dates, _))
    )
    args = ["run", "--job", "all", "--run-date", "2025-01-13", "--config", str(config)]
    assert cli.main([*args, "--accept-anomalies"]) == 0
    ((jobs, dates, (_, _, options)),) = calls
    assert [job.name for job in jobs] == [
        *list(JOB_MAP)[:-1],
        "validate",
        "publish_gold_to_snowflake",
    ]
    assert dates == [dt.date(2025, 1, 13)] and options["accept_anomalies"] is True
    assert cli.build_parser().parse_args(["validate", "--accept-anomalies"]).accept_anomalies
