"""The unified entrypoint: ``medallion run | jobs | generate | validate | report | audit`` and the
table operations ``history | restore | maintain``.

Exit codes: 0 success; 1 a job ran and failed (recorded in the audit trail); 2 bad usage or bad
configuration. Expected errors print one sentence and no traceback unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Sequence

from medallion import __version__
from medallion.config import ENVIRONMENTS, Settings, load_settings
from medallion.errors import MedallionError, UsageError
from medallion.redact import RedactingFilter, redact, register_secrets

log = logging.getLogger("medallion")


# --- argument parsing --------------------------------------------------------------------------


def parse_date(value: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else _bad_date(value, flag)
    except ValueError:
        return _bad_date(value, flag)


def _bad_date(value: str, flag: str) -> dt.date:
    raise UsageError(f"{flag} '{value}' is not a date; use YYYY-MM-DD, e.g. 2025-01-13")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env", default="local", help=f"environment: {', '.join(ENVIRONMENTS)} (default local)"
    )
    parser.add_argument(
        "--config", help="config file path or s3:// URI (default config/<env>.yaml)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging and tracebacks")


def _accept_anomalies(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-anomalies",
        action="store_true",
        help="validate: report the day's anomalies as warnings instead of failing "
        "(recorded in the audit record)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medallion",
        description="A daily, contract-driven lakehouse pipeline: landing -> bronze -> silver -> gold -> warehouse.",
    )
    parser.add_argument("--version", action="version", version=f"medallion {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run one job, or --job all for the daily chain")
    run.add_argument("--job", required=True, help="a job name from `medallion jobs`, or all")
    run.add_argument("--run-date", help="YYYY-MM-DD (default: today, UTC)")
    run.add_argument("--start-date", help="backfill: first date (with --end-date)")
    run.add_argument("--end-date", help="backfill: last date, inclusive")
    run.add_argument(
        "--mode", choices=["merge", "overwrite"], help="publish: override the table mode"
    )
    run.add_argument("--tables", help="publish: comma-separated gold tables (default: all)")
    run.add_argument(
        "--reset-checkpoint", action="store_true", help="stream: clear checkpoint and output first"
    )
    run.add_argument(
        "--rebuild",
        action="store_true",
        help="silver/gold: write every table whole from bronze instead of merging the changes",
    )
    run.add_argument(
        "--yes", action="store_true", help="confirm destructive options without asking"
    )
    _accept_anomalies(run)
    _common(run)

    jobs = sub.add_parser("jobs", help="list jobs with one-line descriptions")
    _common(jobs)

    gen = sub.add_parser("generate", help="write synthetic source extracts into landing/")
    gen.add_argument("--scale", type=float, default=1.0, help="volume multiplier (default 1.0)")
    gen.add_argument("--days", type=int, default=3, help="number of daily extracts (default 3)")
    gen.add_argument(
        "--start-date", default="2025-01-13", help="first extract date (default 2025-01-13)"
    )
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--force", action="store_true", help="replace an existing landing folder")
    gen.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="DAY:KIND[:TABLE,...]",
        help="make a day a faulty delivery: decimal_shift, future_events, runaway_quote, "
        "empty_day or replayed_day (repeatable; see docs/SOURCES.md)",
    )
    _common(gen)

    validate = sub.add_parser("validate", help="data-quality checks on silver and gold")
    validate.add_argument("--run-date", help="YYYY-MM-DD (default: today, UTC)")
    _accept_anomalies(validate)
    _common(validate)

    report = sub.add_parser("report", help="write an HTML run report and print its path")
    report.add_argument("--run-date", help="YYYY-MM-DD (default: today, UTC)")
    _common(report)

    audit = sub.add_parser("audit", help="show recent runs from the audit trail")
    audit.add_argument("--last", type=int, default=20, help="how many runs (default 20)")
    audit.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(audit)

    history = sub.add_parser("history", help="a lake table's Delta commits, newest first")
    history.add_argument("--table", required=True, help="LAYER/TABLE, e.g. silver/orders")
    history.add_argument("--last", type=int, default=20, help="how many commits (default 20)")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(history)

    restore = sub.add_parser(
        "restore", help="roll a lake table back to an earlier version (under its writer's lock)"
    )
    restore.add_argument("--table", required=True, help="LAYER/TABLE, e.g. silver/orders")
    target = restore.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", type=int, help="the table version to restore")
    target.add_argument(
        "--timestamp", help="restore the version current at this UTC time (ISO-8601)"
    )
    _common(restore)

    maintain = sub.add_parser(
        "maintain", help="compact small files and vacuum past lake.vacuum_retention_hours"
    )
    maintain.add_argument("--table", help="LAYER/TABLE (default: every table in the lake)")
    _common(maintain)
    return parser


# --- commands ------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.env, args.config)
    register_secrets(settings.secret_values())
    return settings


def _spark_factory(settings: Settings):
    def factory():
        from medallion.lake import Lake
        from medallion.spark import build_spark

        return build_spark(settings.spark, s3=Lake.from_root(settings.lake.root).on_s3)

    return factory


def resolve_dates(args: argparse.Namespace) -> list[dt.date]:
    if args.start_date or args.end_date:
        if args.run_date:
            raise UsageError("give either --run-date or --start-date/--end-date, not both")
        if not (args.start_date and args.end_date):
            raise UsageError("a backfill needs both --start-date and --end-date")
        start = parse_date(args.start_date, "--start-date")
        end = parse_date(args.end_date, "--end-date")
        if end < start:
            raise UsageError(f"--end-date {end} is before --start-date {start}")
        return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    if args.run_date:
        return [parse_date(args.run_date, "--run-date")]
    return [dt.datetime.now(dt.UTC).date()]


# The jobs whose tables are functions of bronze and can be written whole again (--rebuild).
REBUILDABLE = {"bronze_to_silver", "silver_to_gold"}


def cmd_run(args: argparse.Namespace) -> int:
    from medallion.jobs import JOB_MAP, JOBS
    from medallion.quality.job import before_publish
    from medallion.runner import run_chain

    if args.job == "all":
        selected = before_publish(JOBS)
    elif args.job in JOB_MAP:
        selected = [JOB_MAP[args.job]]
    else:
        raise UsageError(f"unknown job '{args.job}'; valid jobs: all, {', '.join(JOB_MAP)}")
    if args.rebuild and not {j.name for j in selected} & REBUILDABLE:
        raise UsageError(f"--rebuild applies to {' and '.join(sorted(REBUILDABLE))} (or all)")
    dates = resolve_dates(args)
    settings = _settings(args)
    if args.reset_checkpoint and not args.yes:
        _confirm_reset(settings.lake.root)
    options = {
        "mode": args.mode,
        "tables": [t.strip() for t in args.tables.split(",")] if args.tables else None,
        "reset_checkpoint": args.reset_checkpoint,
        "rebuild": args.rebuild,
        "yes": args.yes,
        "accept_anomalies": args.accept_anomalies,
    }
    with _progress(len(selected) * len(dates)) as hook:
        run_chain(selected, dates, settings, _spark_factory(settings), options, progress=hook)
    return 0


def _confirm_reset(lake_root: str) -> None:
    """--reset-checkpoint deletes the stream's checkpoint and its bronze output: ask first."""
    what = f"the Kafka stream's checkpoint and its bronze and quarantine output under {lake_root}"
    if not sys.stdin.isatty():
        raise UsageError(f"--reset-checkpoint deletes {what}; add --yes to confirm")
    answer = input(f"Delete {what}? Type 'yes' to continue: ")
    if answer.strip().lower() != "yes":
        raise UsageError("reset cancelled; nothing was deleted")


def cmd_jobs(args: argparse.Namespace) -> int:
    from medallion.jobs import JOBS

    width = max((len(job.name) for job in JOBS), default=0)
    for job in JOBS:
        print(f"{job.name.ljust(width)}  {job.description}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medallion.generate import generate_landing

    start = parse_date(args.start_date, "--start-date")
    settings = _settings(args)
    root = settings.lake.root
    if "://" in root:
        raise UsageError(
            f"generate writes to a local lake; lake.root is '{root}' (use --env local)"
        )
    landing = Path(root) / "landing"
    manifest = generate_landing(
        landing,
        scale=args.scale,
        days=args.days,
        start_date=start,
        seed=args.seed,
        force=args.force,
        faults=args.fault,
    )
    days = sorted(manifest.get("days", {}))
    print(f"wrote {len(days)} day(s) of extracts ({days[0]}..{days[-1]}) to {landing}")
    for fault in manifest["faults"]:
        print(
            f"fault on day {fault['day']} ({fault['date']}): {fault['kind']} in "
            f"{', '.join(fault['tables'])}"
        )
    print(f"manifest: {landing / '_manifest.json'}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from medallion.lake import Lake
    from medallion.quality.console import print_results
    from medallion.quality.job import VALIDATE_JOB, QualityGateFailed
    from medallion.quality.results import read_results
    from medallion.runner import run_job

    run_date = (
        parse_date(args.run_date, "--run-date") if args.run_date else dt.datetime.now(dt.UTC).date()
    )
    settings = _settings(args)
    spark = _spark_factory(settings)()
    try:
        options = {"accept_anomalies": args.accept_anomalies}
        record = run_job(VALIDATE_JOB, run_date, settings, spark, options)
    except QualityGateFailed as exc:
        print_results(exc.run.to_dict())
        raise
    results = read_results(Lake.from_root(settings.lake.root), run_date) or {}
    print_results(results)
    print(f"results: {record.details.get('results')}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from medallion.quality.report import write_report

    run_date = (
        parse_date(args.run_date, "--run-date") if args.run_date else dt.datetime.now(dt.UTC).date()
    )
    settings = _settings(args)
    print(write_report(settings, run_date))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from medallion.audit import read_records

    if args.last < 1:
        raise UsageError("--last must be a positive number")
    settings = _settings(args)
    records = read_records(settings.lake.root, last=args.last)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"last {len(records)} runs in {settings.lake.root}/_audit")
    for column in (
        "started_at",
        "job",
        "run_date",
        "status",
        "duration_s",
        "rows_in",
        "rows_out",
        "quarantined",
        "error",
    ):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(
            r.get("started_at", ""),
            r.get("job", ""),
            r.get("run_date", ""),
            "[green]succeeded[/]"
            if r.get("status") == "succeeded"
            else f"[red]{r.get('status')}[/]",
            f"{r.get('duration_s') or 0:.1f}",
            str(r.get("rows_in", 0)),
            str(r.get("rows_out", 0)),
            str(r.get("rows_quarantined", 0)),
            (r.get("error") or "")[:120],
        )
    Console().print(table)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from medallion.lake import Lake
    from medallion.operations import history, table_name, table_path

    if args.last < 1:
        raise UsageError("--last must be a positive number")
    settings = _settings(args)
    lake = Lake.from_root(settings.lake.root)
    lake.table(args.table)  # a bad name is refused before Spark starts
    spark = _spark_factory(settings)()
    lake = Lake.for_spark(settings.lake.root, spark)
    entries = history(spark, table_path(spark, lake, args.table), last=args.last)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    name = table_name(args.table)
    table = Table(title=f"{name}: last {len(entries)} commits (times in UTC)")
    for column in ("version", "time", "operation", "run_id", "job", "rows_written", "rows_deleted"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            str(e.version),
            e.to_dict()["timestamp"],
            e.operation,
            e.run_id or "",
            e.job or "",
            "" if e.rows_written is None else str(e.rows_written),
            "" if e.rows_deleted is None else str(e.rows_deleted),
        )
    Console(width=160).print(table)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from medallion.lake import Lake
    from medallion.operations import (
        parse_timestamp,
        resolve_version,
        restore_job,
        table_path,
    )
    from medallion.runner import run_job

    timestamp = parse_timestamp(args.timestamp) if args.timestamp is not None else None
    if args.version is not None and args.version < 0:
        raise UsageError("--version must be 0 or more")
    settings = _settings(args)
    lake = Lake.from_root(settings.lake.root)
    lake.table(args.table)
    spark = _spark_factory(settings)()
    lake = Lake.for_spark(settings.lake.root, spark)
    path = table_path(spark, lake, args.table)
    version = resolve_version(spark, path, version=args.version, timestamp=timestamp)
    record = run_job(restore_job(args.table, version), _today(), settings, spark)
    details = record.details
    if details.get("commit_version") is None:
        print(f"{details['table']} is already at version {version}; nothing was restored")
    else:
        print(
            f"restored {details['table']} from version {details['from_version']} to version "
            f"{version}: the restore is version {details['commit_version']} (run {record.run_id})"
        )
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from medallion.lake import Lake
    from medallion.operations import Maintained, lake_tables, maintain_job, table_name, table_path
    from medallion.runner import run_job

    settings = _settings(args)
    lake = Lake.from_root(settings.lake.root)
    if args.table:
        lake.table(args.table)
    spark = _spark_factory(settings)()
    lake = Lake.for_spark(settings.lake.root, spark)
    if args.table:
        table_path(spark, lake, args.table)
        names = [table_name(args.table)]
    else:
        names = lake_tables(spark, lake)
    if not names:
        print(f"no tables in the lake at {lake.root}; nothing to maintain")
        return 0
    retention = settings.lake.vacuum_retention_hours
    record = run_job(maintain_job(names, retention), _today(), settings, spark)
    for values in record.details.get("tables", {}).values():
        print(Maintained(**values).describe())
    print(f"retention {retention} hours: restore can go back that far (run {record.run_id})")
    return 0


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


COMMANDS = {
    "run": cmd_run,
    "jobs": cmd_jobs,
    "generate": cmd_generate,
    "validate": cmd_validate,
    "report": cmd_report,
    "audit": cmd_audit,
    "history": cmd_history,
    "restore": cmd_restore,
    "maintain": cmd_maintain,
}


# --- plumbing -----------------------------------------------------------------------------------


class _progress:
    """A progress bar for multi-job runs in a terminal; a no-op in logs and CI."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar = None

    def __enter__(self):
        if self.total <= 1 or not sys.stderr.isatty():
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("pipeline", total=self.total)

        def hook(job, run_date, record) -> None:
            self.bar.update(task, advance=1, description=f"{run_date} {job.name}")

        return hook

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-5s %(name)s | %(message)s", "%H:%M:%S")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in (
        "py4j",
        "botocore",
        "aiobotocore",
        "urllib3",
        "s3fs",
        "fsspec",
        "asyncio",
        "snowflake",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    verbose = getattr(args, "verbose", False)
    setup_logging(verbose)
    try:
        return COMMANDS[args.command](args)
    except MedallionError as exc:
        if verbose:  # the chained causes may quote a secret too
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        print(f"medallion: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("medallion: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
