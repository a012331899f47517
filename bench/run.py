"""Benchmark the daily chain at several scales against a Spark floor, in one run.

For each scale: generate two days of landing data into a scratch lake, run the Spark floor over
day 1, run the whole daily chain for day 1 and then the day-2 increment (each as one
``medallion run --job all`` process, exactly as a scheduler would), and record per job its wall
time, rows per second and dominant Spark stages, plus Spark start-up, driver peak RSS and bytes
per layer. One scale is run twice on a fresh lake to show the machine's spread. Results go to
``bench/results/<timestamp>.json`` and a table on screen.
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

from bench import eventlog, goals, table
from bench.procs import folder_bytes, run_watched

ROOT = Path(__file__).resolve().parent.parent
MEDALLION = [sys.executable, "-m", "medallion"]
DAY1 = dt.date(2025, 1, 13)
DAY2 = DAY1 + dt.timedelta(days=1)
LAYERS = ("landing", "bronze", "quarantine", "silver", "gold", "warehouse.duckdb")
STARTUP = re.compile(r"spark session ready: .* in ([\d.]+)s")


def config_text(lake: Path, event_dir: Path | None = None) -> str:
    """The shipped local config (config/local.yaml) as it is, pointed at the scratch lake, with
    a Spark event log in ``event_dir`` when given."""
    config = yaml.safe_load((ROOT / "config" / "local.yaml").read_text())
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
    """One scale's scratch lake and the runs over it."""

    def __init__(self, scale: float, workdir: Path) -> None:
        self.scale = scale
        self.dir = (workdir / f"scale_{scale:g}").resolve()
        self.lake = self.dir / "lake"
        self.events = self.dir / "eventlog"
        self.config = self.dir / "bench.yaml"

    def prepare(self) -> dict:
        """A fresh scratch folder with two days of landing data."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.lake.mkdir(parents=True)
        self.config.write_text(config_text(self.lake))
        started = time.perf_counter()
        self.cli("generate", "--scale", f"{self.scale:g}", "--days", "2", "--start-date", str(DAY1))
        return {
            "generate_s": round(time.perf_counter() - started, 2),
            "landing_bytes": folder_bytes(self.lake / "landing"),
        }

    def reset_lake(self) -> None:
        """Everything but landing gone: the next day-1 run starts as on a fresh lake."""
        for child in self.lake.iterdir():
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

    def chain(self, day: dt.date, label: str) -> dict:
        """One ``medallion run --job all`` process for ``day``: wall, start-up, jobs, stages, RSS."""
        event_dir = self.events / label
        shutil.rmtree(event_dir, ignore_errors=True)
        event_dir.mkdir(parents=True)
        config = self.dir / f"{label}.yaml"
        config.write_text(config_text(self.lake, event_dir))
        run = run_watched(
            [*MEDALLION, "run", "--job", "all", "--run-date", str(day), "--config", str(config)],
            cwd=str(ROOT),
        )
        if run.returncode != 0:
            raise RuntimeError(
                f"the {label} chain failed (exit {run.returncode}):\n{run.stderr[-3000:]}"
            )
        startup = STARTUP.search(run.stderr)
        jobs, windows, run_ids = self.audited_jobs(day)
        stages = eventlog.summarise(
            eventlog.read_stages(
                eventlog.find_event_log(event_dir), windows, str(self.lake), run_ids
            )
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
            "bytes": {layer: folder_bytes(self.lake / layer) for layer in LAYERS},
        }

    def audited_jobs(
        self, day: dt.date
    ) -> tuple[dict[str, dict], dict[str, tuple[float, float]], dict[str, str]]:
        """The latest audit record of each job for ``day`` (seconds, rows and rows per second),
        each job's run window in epoch milliseconds, and its run id."""
        latest: dict[str, dict] = {}
        for path in (self.lake / "_audit" / f"run_date={day}").glob("*.json"):
            record = json.loads(path.read_text())
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


def bench_scale(scale: float, workdir: Path, repeat: bool, log) -> dict:
    bench = ScaleBench(scale, workdir)
    log(f"scale {scale:g}: generating two days")
    result = {"scale": scale, **bench.prepare()}
    log(f"scale {scale:g}: Spark floor (day 1)")
    result["floor"] = bench.floor()
    log(f"scale {scale:g}: chain day 1")
    result["day1"] = bench.chain(DAY1, "day1")
    log(f"scale {scale:g}: chain day 2 (increment)")
    result["day2"] = bench.chain(DAY2, "day2")
    if repeat:
        log(f"scale {scale:g}: chain day 1 again on a fresh lake (spread)")
        bench.reset_lake()
        result["day1_repeat"] = bench.chain(DAY1, "day1_repeat")
    result["ratios"] = goals.scale_ratios(result)
    result["load_average_at_end"] = list(os.getloadavg())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark the medallion daily chain")
    parser.add_argument("--scales", default="0.1,1,10", help="comma-separated (default 0.1,1,10)")
    parser.add_argument(
        "--repeat-scale", type=float, default=1.0, help="run this scale's day 1 twice"
    )
    parser.add_argument("--workdir", default=str(ROOT / "bench" / ".work"), help="scratch lakes")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch lakes")
    args = parser.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",") if s.strip()]
    workdir = Path(args.workdir)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    started = dt.datetime.now(dt.UTC)
    results = {"started_at": started.isoformat(timespec="seconds"), "machine": machine()}
    results["scales"] = {}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    for scale in scales:
        # Saved after every scale, so a long run that is stopped keeps what it measured.
        results["scales"][f"{scale:g}"] = bench_scale(
            scale, workdir, scale == args.repeat_scale, log
        )
        results["goals"] = goals.evaluate(results["scales"])
        path.write_text(json.dumps(results, indent=1))
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps(results, indent=1))
    print(table.render(results))
    print(f"\nresults: {path}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
