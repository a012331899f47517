"""Benchmark the daily chain at several scales against a Spark floor, in one run.

For each scale: generate two days of landing data into a scratch lake, run the Spark floor over
day 1, run the whole daily chain for day 1 and then the day-2 increment (each as one
``medallion run --job all`` process, exactly as a scheduler would), and record per job its wall
time, rows per second and dominant Spark stages, plus Spark start-up, driver peak RSS and bytes
per layer. One scale is run twice on a fresh lake to show the machine's spread. Results go to
``bench/results/<timestamp>.json`` and a table on screen.

With ``--baseline REF`` the same landing data also goes through REF's pipeline, checked out in a
scratch worktree with its own virtual environment (``bench/baseline.py``), in its own scratch
lake: per scale the runs are interleaved (baseline day 1, current day 1, current day 2, baseline
day 2), so a change in the machine's load hits both sides, and the before/after ratios come from
one sitting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench import baseline as baselines
from bench import eventlog, goals, table
from bench.baseline import Tree
from bench.procs import folder_bytes, run_watched
from medallion.audit import read_records

ROOT = Path(__file__).resolve().parent.parent
MEDALLION = [sys.executable, "-m", "medallion"]
DAY1 = dt.date(2025, 1, 13)
DAY2 = DAY1 + dt.timedelta(days=1)
LAYERS = ("landing", "bronze", "quarantine", "silver", "gold", "warehouse.duckdb")
STARTUP = re.compile(r"spark session ready: .* in ([\d.]+)s")


def config_text(lake: Path, event_dir: Path | None = None, tree_root: Path = ROOT) -> str:
    """A tree's shipped local config (config/local.yaml) as it is, pointed at the scratch lake,
    with a Spark event log in ``event_dir`` when given."""
    source = tree_root / "config" / "local.yaml"
    if not source.is_file():
        source = ROOT / "config" / "local.yaml"
    config = yaml.safe_load(source.read_text())
    config["lake"] = {"root": str(lake)}
    config["warehouse"]["duckdb"]["path"] = str(lake / "warehouse.duckdb")
    if event_dir is not None:
        config["spark"]["conf"] = {
            **config["spark"].get("conf", {}),
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": event_dir.as_uri(),
            # One plain JSON file the benchmark can read as it is.
            "spark.eventLog.rolling.enabled": "false",
            "spark.eventLog.compress": "false",
        }
    return yaml.safe_dump(config, sort_keys=False)


class ScaleBench:
    """One scale's scratch lakes (the current tree's and, with a baseline, the baseline's) and
    the runs over them. Both lakes hold the same landing files."""

    def __init__(
        self, scale: float, workdir: Path, current: Tree | None = None, baseline: Tree | None = None
    ) -> None:
        self.scale = scale
        self.dir = (workdir / f"scale_{scale:g}").resolve()
        self.lake = self.dir / "lake"
        self.baseline_lake = self.dir / "baseline" / "lake"
        self.events = self.dir / "eventlog"
        self.config = self.dir / "bench.yaml"
        self.current = current or baselines.current_tree(ROOT)
        self.baseline = baseline

    def lake_of(self, tree: Tree) -> Path:
        return self.baseline_lake if tree.name == "baseline" else self.lake

    def prepare(self) -> dict:
        """A fresh scratch folder with two days of landing data (generated once, by the current
        tree, and linked into the baseline's lake: both sides read the same bytes)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.lake.mkdir(parents=True)
        self.config.write_text(config_text(self.lake))
        started = time.perf_counter()
        self.cli("generate", "--scale", f"{self.scale:g}", "--days", "2", "--start-date", str(DAY1))
        generate_s = round(time.perf_counter() - started, 2)
        if self.baseline is not None:
            share_landing(self.lake / "landing", self.baseline_lake / "landing")
        return {"generate_s": generate_s, "landing_bytes": folder_bytes(self.lake / "landing")}

    def reset_lake(self, lake: Path | None = None) -> None:
        """Everything but landing gone: the next day-1 run starts as on a fresh lake."""
        for child in (lake or self.lake).iterdir():
            if child.name != "landing":
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*MEDALLION, *args, "--config", str(self.config)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )

    def floor(self) -> dict:
        out = self.dir / "floor"
        shutil.rmtree(out, ignore_errors=True)
        run = run_watched(
            [
                sys.executable,
                "-m",
                "bench.floor",
                "--config",
                str(self.config),
                "--run-date",
                str(DAY1),
                "--out",
                str(out),
            ],
            cwd=str(ROOT),
        )
        if run.returncode != 0:
            raise RuntimeError(f"the Spark floor failed:\n{run.stderr[-3000:]}")
        detail = json.loads(run.stdout)
        return {
            "wall_s": round(run.wall_s, 2),
            "startup_s": detail["startup_s"],
            "tables_s": detail["tables"],
            "bytes_written": folder_bytes(out),
            "jvm_peak_rss_mb": run.jvm_peak_rss_mb,
        }

    def chain(self, day: dt.date, label: str, tree: Tree | None = None) -> dict:
        """One ``medallion run --job all`` process of ``tree`` (default: the current tree) for
        ``day`` in that tree's lake: wall, start-up, jobs, stages, RSS, bytes per layer."""
        tree = tree or self.current
        lake = self.lake_of(tree)
        event_dir = self.events / label
        shutil.rmtree(event_dir, ignore_errors=True)
        event_dir.mkdir(parents=True)
        config = self.dir / f"{label}.yaml"
        config.write_text(config_text(lake, event_dir, tree.root))
        run = run_watched(
            [
                *tree.medallion,
                *("run", "--job", "all", "--run-date", str(day), "--config", str(config)),
            ],
            env=tree.env,
            cwd=str(tree.root),
        )
        if run.returncode != 0:
            raise RuntimeError(
                f"the {label} chain failed (exit {run.returncode}):\n{run.stderr[-3000:]}"
            )
        startup = STARTUP.search(run.stderr)
        jobs, windows, run_ids = self.audited_jobs(day, lake)
        stages = eventlog.summarise(
            eventlog.read_stages(eventlog.find_event_log(event_dir), windows, str(lake), run_ids)
        )
        for name, job in jobs.items():
            job["stages"] = stages.get(name, {"stages": 0, "stage_seconds": 0.0, "top": []})
        # The chain's span from the first job's start to the last job's end: the process's wall
        # without JVM start and teardown (job seconds overlap while ingests run side by side).
        jobs_s = (
            max(end for _, end in windows.values()) - min(s for s, _ in windows.values())
        ) / 1000
        return {
            "wall_s": round(run.wall_s, 2),
            "startup_s": float(startup.group(1)) if startup else None,
            "jobs_s": round(jobs_s, 2),
            "jvm_peak_rss_mb": run.jvm_peak_rss_mb,
            "python_peak_rss_mb": run.python_peak_rss_mb,
            "jobs": jobs,
            # Through the file system: a Delta table's folder is its data files and its log.
            "bytes": {layer: folder_bytes(lake / layer) for layer in LAYERS},
        }

    def audited_jobs(
        self, day: dt.date, lake: Path | None = None
    ) -> tuple[dict[str, dict], dict[str, tuple[float, float]], dict[str, str]]:
        """The latest audit record of each job for ``day`` (seconds, rows and rows per second),
        each job's run window in epoch milliseconds, and its run id."""
        latest: dict[str, dict] = {}
        for record in read_records(str(lake or self.lake), run_date=day):
            if (
                record["job"] not in latest
                or record["started_at"] > latest[record["job"]]["started_at"]
            ):
                latest[record["job"]] = record
        jobs, windows, run_ids = {}, {}, {}
        for name, record in sorted(latest.items(), key=lambda kv: kv[1]["started_at"]):
            windows[name] = (_epoch_ms(record["started_at"]), _epoch_ms(record["finished_at"]))
            run_ids[name] = record["run_id"]
            if record["status"] != "succeeded":
                raise RuntimeError(f"{name} {day} did not succeed: {record['error']}")
            seconds = record["duration_s"] or 0.0
            jobs[name] = {
                "seconds": seconds,
                "rows_in": record["rows_in"],
                "rows_out": record["rows_out"],
                "rows_quarantined": record["rows_quarantined"],
                "rows_per_s": round(record["rows_in"] / seconds) if seconds else None,
            }
        return jobs, windows, run_ids


def share_landing(source: Path, target: Path) -> None:
    """The same landing files in a second lake: hard links where the file system allows (no
    second copy of a gigabyte at scale 10; the pipeline never writes to landing), else copies."""
    target.parent.mkdir(parents=True, exist_ok=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def _epoch_ms(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


def machine() -> dict:
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    import pyspark

    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory) / 2**20, 1),
        "python": platform.python_version(),
        "java": java[0] if java else None,
        "pyspark": pyspark.__version__,
        "load_average_at_start": list(os.getloadavg()),
    }


def pyspark_version(tree: Tree) -> str | None:
    done = subprocess.run(
        [tree.python, "-c", "import pyspark; print(pyspark.__version__)"],
        capture_output=True,
        text=True,
        env=tree.env,
        cwd=tree.root,
    )
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def bench_scale(
    scale: float, workdir: Path, repeat: bool, log, baseline: Tree | None = None
) -> dict:
    bench = ScaleBench(scale, workdir, baseline=baseline)
    log(f"scale {scale:g}: generating two days")
    result = {"scale": scale, **bench.prepare()}
    log(f"scale {scale:g}: Spark floor (day 1)")
    result["floor"] = bench.floor()
    # Interleaved baseline, current, current, baseline: a drift in the machine's load over the
    # four runs costs both sides alike.
    if baseline is not None:
        log(f"scale {scale:g}: baseline {baseline.ref} chain day 1")
        result["baseline"] = {
            "ref": baseline.ref,
            "sha": baseline.sha,
            "day1": bench.chain(DAY1, "baseline_day1", baseline),
        }
    log(f"scale {scale:g}: chain day 1")
    result["day1"] = bench.chain(DAY1, "day1")
    log(f"scale {scale:g}: chain day 2 (increment)")
    result["day2"] = bench.chain(DAY2, "day2")
    if baseline is not None:
        log(f"scale {scale:g}: baseline {baseline.ref} chain day 2 (increment)")
        result["baseline"]["day2"] = bench.chain(DAY2, "baseline_day2", baseline)
    if repeat:
        log(f"scale {scale:g}: chain day 1 again on a fresh lake (spread)")
        bench.reset_lake()
        result["day1_repeat"] = bench.chain(DAY1, "day1_repeat")
    result["ratios"] = goals.scale_ratios(result)
    side_by_side = goals.side_by_side(result)
    if side_by_side is not None:
        result["side_by_side"] = side_by_side
    result["load_average_at_end"] = list(os.getloadavg())
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="benchmark the medallion daily chain")
    parser.add_argument("--scales", default="0.1,1,10", help="comma-separated (default 0.1,1,10)")
    parser.add_argument(
        "--repeat-scale", type=float, default=1.0, help="run this scale's day 1 twice"
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help="also run this git ref (e.g. 0502b34) side by side, from a scratch worktree",
    )
    parser.add_argument(
        "--drop-baseline",
        action="store_true",
        help="remove the baseline's worktree at the end (kept by default for the next run)",
    )
    parser.add_argument("--workdir", default=str(ROOT / "bench" / ".work"), help="scratch lakes")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch lakes")
    args = parser.parse_args(argv)
    try:
        args.scales = [float(s) for s in args.scales.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--scales takes comma-separated numbers, not {args.scales!r}")
    if not args.scales:
        parser.error("--scales names no scale")
    # `make bench BENCH_BASELINE=` passes an empty ref: no baseline.
    args.baseline = (args.baseline or "").strip() or None
    if args.drop_baseline and not args.baseline:
        parser.error("--drop-baseline needs --baseline")
    return args


def clean_workdir(workdir: Path, keep_baseline: bool) -> None:
    """Remove the scratch lakes; the baseline's worktree stays unless told otherwise (it is
    ignored by git, and reusing it saves building its virtual environment again)."""
    if not workdir.exists():
        return
    for child in workdir.iterdir():
        if child.name.startswith(baselines.WORKTREE_PREFIX):
            if keep_baseline:
                continue
            baselines.remove_worktree(ROOT, child)
        elif child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink()
    if not any(workdir.iterdir()):
        workdir.rmdir()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    started = dt.datetime.now(dt.UTC)
    results = {"started_at": started.isoformat(timespec="seconds"), "machine": machine()}
    current = baselines.current_tree(ROOT)
    baseline = None
    if args.baseline:
        try:
            baseline = baselines.prepare(ROOT, args.baseline, workdir, log)
        except baselines.BaselineError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
    results["trees"] = {"current": {**current.describe(), "pyspark": results["machine"]["pyspark"]}}
    if baseline is not None:
        results["trees"]["baseline"] = {**baseline.describe(), "pyspark": pyspark_version(baseline)}
    results["scales"] = {}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    for scale in args.scales:
        # Saved after every scale, so a long run that is stopped keeps what it measured.
        results["scales"][f"{scale:g}"] = bench_scale(
            scale, workdir, scale == args.repeat_scale, log, baseline
        )
        results["goals"] = goals.evaluate(results["scales"])
        path.write_text(json.dumps(results, indent=1))
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps(results, indent=1))
    print(table.render(results))
    print(f"\nresults: {path}")
    if not args.keep:
        clean_workdir(workdir, keep_baseline=not args.drop_baseline)
    elif args.drop_baseline and baseline is not None:
        baselines.remove_worktree(ROOT, baseline.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
