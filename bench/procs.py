"""Run a command and watch its whole process tree: wall time and peak resident memory per process.

Peak RSS comes from each process's ``VmHWM`` (the kernel's high-water mark) sampled while it
runs; the high-water mark only grows, so sampling misses at most the growth in the last interval.
The driver of a local Spark run is the JVM the Python process starts; its peak is reported apart
from the Python process's.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ProcessRun:
    """What one watched command did."""

    argv: list[str]
    returncode: int
    wall_s: float
    stdout: str
    stderr: str
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # "java" / "python" -> MiB

    @property
    def jvm_peak_rss_mb(self) -> float:
        return self.peak_rss_mb.get("java", 0.0)

    @property
    def python_peak_rss_mb(self) -> float:
        return self.peak_rss_mb.get("python", 0.0)


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process has just exited
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tree(root: int) -> list[int]:
    pids, queue = [], [root]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue += _children(pid)
    return pids


def _hwm_and_name(pid: int) -> tuple[str, float] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    name = fields.get("Name", "").strip()
    hwm = fields.get("VmHWM", "0 kB").split()[0]
    return name, int(hwm) / 1024


def run_watched(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None, poll_s: float = 0.25
) -> ProcessRun:
    """Run ``argv`` to completion; return its output, wall time and peak RSS by process kind."""
    started = time.perf_counter()
    peaks: dict[int, tuple[str, float]] = {}
    with (
        open(os.devnull, "rb") as stdin,
        subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
        ) as proc,
    ):
        # Drain the pipes on threads so a chatty process cannot block on a full pipe.
        chunks: dict[str, list[str]] = {"out": [], "err": []}
        readers = [
            threading.Thread(target=lambda s=s, k=k: chunks[k].extend(s), daemon=True)
            for s, k in ((proc.stdout, "out"), (proc.stderr, "err"))
        ]
        for reader in readers:
            reader.start()
        while proc.poll() is None:
            for pid in _tree(proc.pid):
                sample = _hwm_and_name(pid)
                if sample and sample[1] >= peaks.get(pid, ("", 0.0))[1]:
                    peaks[pid] = sample
            time.sleep(poll_s)
        for reader in readers:
            reader.join()
    wall = time.perf_counter() - started
    by_kind: dict[str, float] = {}
    for name, mb in peaks.values():
        kind = "java" if name == "java" else "python" if name.startswith("python") else name
        by_kind[kind] = max(by_kind.get(kind, 0.0), mb)
    return ProcessRun(
        argv=argv,
        returncode=proc.returncode,
        wall_s=wall,
        stdout="".join(chunks["out"]),
        stderr="".join(chunks["err"]),
        peak_rss_mb={k: round(v, 1) for k, v in by_kind.items()},
    )


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
