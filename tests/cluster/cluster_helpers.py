"""Helpers for the cluster tests: free ports, a Spark standalone cluster on loopback, lake counts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

REPO = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).resolve().parent
RUN_DATE = "2025-01-13"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_env(**extra: str) -> dict[str, str]:
    """The environment for Spark processes: loopback only, executors on this interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
    env.update(
        {
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            **extra,
        }
    )
    return env


@dataclass
class StandaloneCluster:
    master_url: str
    master_ui: str
    pids: list[int]


@contextlib.contextmanager
def standalone_cluster(
    workdir: Path, cores: int = 1, memory: str = "1g"
) -> Iterator[StandaloneCluster]:
    """A Spark standalone master and one worker on 127.0.0.1; both stopped by pid at the end."""
    port, master_ui_port, worker_ui_port = free_port(), free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    env = spark_env(SPARK_WORKER_DIR=str(workdir / "work"), SPARK_LOG_DIR=str(workdir / "logs"))
    processes: list[subprocess.Popen] = []
    try:
        processes.append(
            _start(
                [
                    spark_class,
                    "org.apache.spark.deploy.master.Master",
                    *("--host", "127.0.0.1", "--port", str(port)),
                    *("--webui-port", str(master_ui_port)),
                ],
                env,
                workdir / "master.log",
            )
        )
        _wait_for_port(port, processes[0], workdir / "master.log")
        processes.append(
            _start(
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    master_url,
                    *("--host", "127.0.0.1", "--cores", str(cores), "--memory", memory),
                    *("--webui-port", str(worker_ui_port), "--work-dir", str(workdir / "work")),
                ],
                env,
                workdir / "worker.log",
            )
        )
        master_ui = f"http://127.0.0.1:{master_ui_port}"
        _wait_for_worker(master_ui, processes[1], workdir / "worker.log")
        yield StandaloneCluster(master_url, master_ui, [p.pid for p in processes])
    finally:
        for process in reversed(processes):
            _stop(process)


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as handle:
        # Its own session, so stopping it takes its JVM (spark-class execs java) and nothing else.
        return subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark master exited early:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the Spark master did not listen on {port}:\n{log.read_text()[-3000:]}")


def _wait_for_worker(
    master_ui: str, process: subprocess.Popen, log: Path, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark worker exited early:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{master_ui}/json/", timeout=5) as response:
                state = json.load(response)
            if any(w.get("state") == "ALIVE" for w in state.get("workers", [])):
                return
        time.sleep(1)
    raise RuntimeError(f"no worker registered with the master:\n{log.read_text()[-3000:]}")


def write_config(path: Path, lake: Path, master: str | None, **spark_conf: str) -> Path:
    """A local-env config for ``lake`` with Spark's ``master`` (None: spark-submit's) and conf."""
    conf = "".join(f'\n    {key}: "{value}"' for key, value in spark_conf.items()) or " {}"
    master_text = f'"{master}"' if master else "null"
    path.write_text(
        "env: local\n"
        "spark:\n"
        f"  master: {master_text}\n"
        "  shuffle_partitions: 2\n"
        "  driver_memory: 1g\n"
        f"  conf:{conf}\n"
        f'lake: {{root: "{lake}"}}\n'
        f'warehouse: {{type: duckdb, duckdb: {{path: "{lake / "warehouse.duckdb"}"}}}}\n',
        encoding="utf-8",
    )
    return path


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout_s: int = 1500):
    done = subprocess.run(
        [sys.executable, "-m", "medallion", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert done.returncode == 0, f"medallion {' '.join(args)}:\n{done.stderr[-5000:]}"
    return done


def table_counts(root: Path) -> dict[str, int]:
    """Rows in each Delta table directly under ``root``, read through its log (never by globbing
    Parquet files, which would count files a later commit removed)."""
    from deltalake import DeltaTable

    counts = {}
    for table in sorted(p for p in root.iterdir() if (p / "_delta_log").is_dir()):
        counts[table.name] = DeltaTable(str(table)).to_pyarrow_dataset().count_rows()
    return counts
