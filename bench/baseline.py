"""The baseline: a git ref checked out in a scratch worktree with its own tooling.

Before/after ratios are only worth something when both sides ran in the same sitting, on the
same landing data, minutes apart: on a shared machine the load changes from hour to hour. So the
benchmark checks the baseline ref out next to the working tree (``git worktree add --detach``
under ``bench/.work/baseline-<sha>``, ignored by git), gives it its own virtual environment from
its own lock (``uv sync --frozen``; the ref may pin another Spark) and, for a ref on Delta Lake,
its jars, and runs its ``medallion`` CLI exactly like the current tree's.

The worktree is kept between benchmark runs (setting it up builds a virtual environment) and
reused when it is already checked out at the ref's commit; ``--drop-baseline`` removes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

WORKTREE_PREFIX = "baseline-"
# Settings of the benchmark's own environment that would point the baseline's processes at the
# current tree's interpreter, virtual environment or jars.
LEAKY_ENV = (
    "VIRTUAL_ENV",
    "UV_PROJECT_ENVIRONMENT",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYSPARK_PYTHON",
    "PYSPARK_DRIVER_PYTHON",
    "SPARK_HOME",
    "MEDALLION_JARS_DIR",
)


class BaselineError(RuntimeError):
    """The baseline could not be checked out or set up; the message says which step failed."""


@dataclass
class Tree:
    """A checkout whose ``medallion`` the benchmark runs: the current tree or the baseline."""

    name: str  # "current" or "baseline"
    root: Path
    python: str
    env: dict[str, str] | None = field(default=None, repr=False)  # None: the bench's own
    ref: str | None = None
    sha: str | None = None
    reused: bool = field(default=False, compare=False)

    @property
    def medallion(self) -> list[str]:
        return [self.python, "-m", "medallion"]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "root": str(self.root),
            "python": self.python,
            "ref": self.ref,
            "sha": self.sha,
            "worktree_reused": self.reused,
            # The current tree is usually being edited: its figures are of HEAD plus those edits.
            "uncommitted_changes": _dirty(self.root),
        }


def current_tree(root: Path) -> Tree:
    return Tree("current", root, sys.executable, sha=_head(root))


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BaselineError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _head(repo: Path) -> str | None:
    try:
        return _git(repo, "rev-parse", "HEAD")
    except BaselineError:
        return None


def _dirty(repo: Path) -> bool | None:
    try:
        return bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
    except BaselineError:
        return None


def resolve(repo: Path, ref: str) -> str:
    """The full commit sha ``ref`` names in ``repo``."""
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except BaselineError:
        raise BaselineError(f"the baseline ref {ref!r} names no commit in {repo}") from None


def worktree_path(workdir: Path, sha: str) -> Path:
    return workdir / f"{WORKTREE_PREFIX}{sha[:12]}"


def ensure_worktree(repo: Path, sha: str, path: Path) -> bool:
    """A detached worktree of ``sha`` at ``path``; True when one was already there at that sha.

    Anything else at ``path`` (another commit, a half-made checkout, a folder git no longer
    knows) is removed and checked out afresh.
    """
    if path.exists():
        if (path / ".git").exists() and _head(path) == sha:
            return True
        remove_worktree(repo, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _git(repo, "worktree", "prune")
    _git(repo, "worktree", "add", "--detach", str(path), sha)
    return False


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove the worktree at ``path`` and git's record of it."""
    subprocess.run(
        ["git", "-C", str(repo), "worktree", "remove", "--force", str(path)],
        capture_output=True,
        text=True,
    )
    shutil.rmtree(path, ignore_errors=True)
    _git(repo, "worktree", "prune")


def find_uv(root: Path) -> str:
    """The project's uv: the one on the PATH, else ``.tools/bin/uv`` (what the Makefile uses)."""
    found = shutil.which("uv")
    if found:
        return found
    local = root / ".tools" / "bin" / "uv"
    if local.is_file():
        return str(local)
    raise BaselineError("no uv found on the PATH or in .tools/bin: run 'make setup' first")


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The benchmark's environment without what would tie a process to the current tree."""
    env = dict(os.environ if base is None else base)
    for key in LEAKY_ENV:
        env.pop(key, None)
    return env


def jars_for(tree_root: Path, our_root: Path) -> str | None:
    """Where the baseline's Delta jars come from: ours when it pins the same ones, else None
    (it must fetch its own with ``make jars``). A ref before Delta needs none: ``""``."""
    pins = tree_root / "jvm" / "jars.sha256"
    if not (tree_root / "jvm" / "pom.xml").exists():
        return ""
    ours = our_root / "jvm" / "jars.sha256"
    if (
        pins.is_file()
        and ours.is_file()
        and pins.read_bytes() == ours.read_bytes()
        and (our_root / ".jars" / "delta").is_dir()
    ):
        return str(our_root / ".jars")
    return None


def _run(argv: list[str], cwd: Path, env: dict[str, str], step: str) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise BaselineError(f"{step} failed in {cwd} (exit {done.returncode}):\n{tail}")


def prepare(repo: Path, ref: str, workdir: Path, log=lambda message: None) -> Tree:
    """Check ``ref`` out under ``workdir`` (or reuse it) and set it up to run its pipeline."""
    sha = resolve(repo, ref)
    path = worktree_path(workdir.resolve(), sha)
    reused = ensure_worktree(repo, sha, path)
    log(f"baseline {ref} ({sha[:12]}): {'reusing' if reused else 'checked out'} {path}")
    env = clean_env()
    log(f"baseline {ref}: uv sync --frozen into {path / '.venv'}")
    _run([find_uv(repo), "sync", "--frozen"], path, env, "uv sync --frozen")
    jars = jars_for(path, repo)
    if jars is None:
        log(f"baseline {ref}: make jars (it pins other Delta jars than ours)")
        _run(["make", "--no-print-directory", "jars"], path, env, "make jars")
        jars = str(path / ".jars")
    if jars:
        env["MEDALLION_JARS_DIR"] = jars
    python = path / ".venv" / "bin" / "python"
    if not python.exists():
        raise BaselineError(f"uv sync left no interpreter at {python}")
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return Tree("baseline", path, str(python), env=env, ref=ref, sha=sha, reused=reused)
