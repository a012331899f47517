"""Helpers of the reliability suite: lake snapshots (row counts and content checksums per table
and partition, read independently of Spark), the CLI in a subprocess, configs.

A snapshot is what a reader of the lake sees: each table's latest committed Delta version, read
through its transaction log with ``deltalake`` (never by listing the folder, which also holds
the files of a commit in progress and those later commits removed). A folder with no committed
version (a first write still running, or killed before its commit) is no table yet.

Checksum: the sum over all rows of DuckDB's ``hash`` of every column except the per-run audit
columns ``_run_id`` and ``_ingest_ts`` (the only values that legitimately differ between two
runs of the same input), so it is independent of row order and file layout. Partitions are
named ``col=value[/col2=value2]`` from the table's partition columns ("" for none).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

PER_RUN_COLUMNS = ("_run_id", "_ingest_ts")
LAYERS = ("bronze", "quarantine", "silver", "gold")
MEDALLION = str(Path(sys.executable).parent / "medallion")

Partitions = dict[str, tuple[int, int]]  # partition path ("" for none) -> (rows, checksum)


@dataclass
class Snapshot:
    """Every table of a lake: ``tables["silver/orders"]["order_date=2025-01-13"] = (rows, sum)``."""

    tables: dict[str, Partitions] = field(default_factory=dict)
    warehouse_staging: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, tuple[int, int]]:
        return {
            name: (sum(r for r, _ in parts.values()), sum(c for _, c in parts.values()))
            for name, parts in self.tables.items()
        }

    def rows(self, name: str) -> int:
        return self.totals()[name][0]

    def diff(self, other: Snapshot) -> list[str]:
        """Human-readable differences (empty when both hold the same content)."""
        problems = []
        for name in sorted(set(self.tables) | set(other.tables)):
            mine, theirs = self.tables.get(name), other.tables.get(name)
            if mine is None or theirs is None:
                problems.append(f"{name}: only in {'first' if theirs is None else 'second'}")
                continue
            for part in sorted(set(mine) | set(theirs)):
                if mine.get(part) != theirs.get(part):
                    problems.append(f"{name} [{part}]: {mine.get(part)} != {theirs.get(part)}")
        if self.warehouse_staging or other.warehouse_staging:
            problems.append(f"staging tables: {self.warehouse_staging} / {other.warehouse_staging}")
        return problems


def _hidden(part: str) -> bool:
    return part.startswith(".") or (part.startswith("_") and "=" not in part)


def table_dirs(root: Path) -> dict[str, Path]:
    """``layer/…/table`` -> folder, for every table folder of the four layers (Delta or not)."""
    found: dict[str, Path] = {}
    depth = {"bronze": 2, "quarantine": 2, "silver": 1, "gold": 1}
    for layer in LAYERS:
        base = root / layer
        if not base.is_dir():
            continue
        parents = [base] if depth[layer] == 1 else [p for p in base.iterdir() if p.is_dir()]
        for parent in parents:
            for entry in parent.iterdir():
                if entry.is_dir() and not _hidden(entry.name):
                    found[str(entry.relative_to(root))] = entry
    return found


def visible_files(folder: Path) -> list[Path]:
    """Every data file in ``folder``, live or removed by a later commit (for scans that must
    look at everything on disk, such as the search for leaked secrets)."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_file() and not any(_hidden(p) for p in relative):
            files.append(path)
    return files


def _table_partitions(con: duckdb.DuckDBPyConnection, folder: Path) -> Partitions:
    """(rows, checksum) per partition of the table's latest version; nothing when no version
    is committed yet (a reader sees no table)."""
    try:
        table = DeltaTable(str(folder))
    except TableNotFoundError:
        return {}
    partition_columns = list(table.metadata().partition_columns)
    con.register("t", table.to_pyarrow_dataset())
    try:
        names = [name for name, *_ in con.execute("DESCRIBE SELECT * FROM t").fetchall()]
        hashed = ", ".join(f'"{c}"' for c in names if c not in PER_RUN_COLUMNS)
        part = (
            " || '/' || ".join(
                f"'{c}=' || coalesce(CAST(\"{c}\" AS VARCHAR), '__HIVE_DEFAULT_PARTITION__')"
                for c in partition_columns
            )
            if partition_columns
            else "''"
        )
        rows = con.execute(
            f"SELECT {part} AS part, count(*), coalesce(sum(hash({hashed})), 0)::HUGEINT "
            "FROM t GROUP BY part"
        ).fetchall()
    finally:
        con.unregister("t")
    return {part: (int(n), int(checksum)) for part, n, checksum in rows}


def snapshot(root: Path, warehouse: bool = True) -> Snapshot:
    """Counts and checksums of every table of the lake (and of the DuckDB warehouse)."""
    snap = Snapshot()
    with duckdb.connect() as con:
        for name, folder in sorted(table_dirs(root).items()):
            snap.tables[name] = _table_partitions(con, folder)
    db = root / "warehouse.duckdb"
    if warehouse and db.exists():
        with duckdb.connect(str(db), read_only=True) as con:
            tables = [
                t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            ]
            for table in tables:
                if table.startswith("stg_"):
                    snap.warehouse_staging.append(table)
                    continue
                con.execute(f'SELECT * FROM "{table}" LIMIT 0')
                columns = [d[0] for d in con.description]
                hashed = ", ".join(f'"{c}"' for c in columns)
                n, checksum = con.execute(
                    f'SELECT count(*), coalesce(sum(hash({hashed})), 0)::HUGEINT FROM "{table}"'
                ).fetchone()
                snap.tables[f"warehouse/{table}"] = {"": (int(n), int(checksum))}
    return snap


def reader_view_problems(seen: Snapshot, before: Snapshot, after: Snapshot) -> list[str]:
    """Partitions a reader sees that are neither as they were nor as a finished run leaves them.

    That is what a half-written partition (or table) would look like.
    """
    problems = []
    for name, parts in seen.tables.items():
        for part, value in parts.items():
            allowed = {
                snap.tables.get(name, {}).get(part)
                for snap in (before, after)
                if part in snap.tables.get(name, {})
            }
            if value not in allowed:
                problems.append(f"{name} [{part or 'whole table'}]: {value} not in {allowed}")
    if seen.warehouse_staging:
        problems.append(f"warehouse staging tables left behind: {seen.warehouse_staging}")
    return problems


# --- configuration and processes -----------------------------------------------------------------


def write_config(
    path: Path,
    root: Path,
    extra: str = "",
    files_per_trigger: int = 4,
    spark_conf: dict[str, str] | None = None,
) -> Path:
    """A config for a throwaway lake: local Spark with 2 cores and ``spark_conf``, DuckDB
    inside the lake."""
    conf = json.dumps(spark_conf or {})  # JSON is YAML's flow style
    path.write_text(
        f"""env: local
spark: {{master: "local[2]", shuffle_partitions: 1, driver_memory: 1g, conf: {conf}}}
lake: {{root: "{root}"}}
warehouse: {{type: duckdb, duckdb: {{path: "{root / "warehouse.duckdb"}"}}}}
streaming: {{max_files_per_trigger: {files_per_trigger}}}
{extra}""",
        encoding="utf-8",
    )
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
    env.update(extra)
    return env


def medallion(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the ``medallion`` console script to completion."""
    return subprocess.run(
        [MEDALLION, *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def start_medallion(*args: str, env: dict[str, str] | None = None, log: Path) -> subprocess.Popen:
    """Start the ``medallion`` console script in its own process group, output into ``log``."""
    handle = open(log, "w", encoding="utf-8")  # noqa: SIM115  (closed by the child's exit)
    return subprocess.Popen(
        [MEDALLION, *args],
        env=env or cli_env(),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and everything it started (its JVM): a crash, not a shutdown."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def wait_for(predicate, timeout: float, interval: float = 0.01, proc=None) -> bool:
    """Poll ``predicate`` until it is true (True), the timeout passes or ``proc`` exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(interval)
    return False


def audit_trail(root: Path, job: str | None = None, run_date: str | None = None) -> list[dict]:
    """Audit records of the lake, oldest first."""
    records = [json.loads(p.read_text()) for p in (root / "_audit").rglob("*.json")]
    records = [
        r
        for r in records
        if (job is None or r["job"] == job) and (run_date is None or r["run_date"] == run_date)
    ]
    return sorted(records, key=lambda r: r["started_at"])


def copy_lake(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True)


def one_sentence(message: str) -> bool:
    """One line, no Python exception class in front, no stack frames."""
    return (
        "\n" not in message.strip()
        and "Traceback" not in message
        and "\tat " not in message
        and not message.split(":", 1)[0].strip().endswith(("Error", "Exception"))
    )


def lines_of(paths: Iterable[Path]) -> int:
    return sum(len([x for x in p.read_text().splitlines() if x.strip()]) for p in paths)
