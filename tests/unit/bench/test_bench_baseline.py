"""The side-by-side parts of the benchmark: its arguments, the baseline's worktree (checked out
once, reused at the same commit, replaced at another), what the baseline's processes inherit,
and the baseline-against-current ratios and goals. No real baseline is set up here: that builds
a virtual environment, which is the benchmark's job, not a test's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import baseline, goals, run, table


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture()
def repo(tmp_path) -> Path:
    """A git repository with two commits."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "bench@example.com")
    _git(repo, "config", "user.name", "bench")
    for n in (1, 2):
        (repo / "file.txt").write_text(f"version {n}\n")
        _git(repo, "add", "file.txt")
        _git(repo, "commit", "-q", "-m", f"commit {n}")
    return repo


def test_arguments_default_to_no_baseline_and_parse_scales():
    args = run.parse_args([])
    assert args.scales == [0.1, 1.0, 10.0] and args.baseline is None
    args = run.parse_args(["--scales", "0.02, 1", "--baseline", "0502b34"])
    assert args.scales == [0.02, 1.0] and args.baseline == "0502b34"
    # `make bench` without BENCH_BASELINE passes nothing; an empty value means none as well.
    assert run.parse_args(["--baseline", ""]).baseline is None
    assert run.parse_args(["--baseline", "main", "--drop-baseline"]).drop_baseline


@pytest.mark.parametrize(
    "argv", [["--scales", "one"], ["--scales", ","], ["--drop-baseline"]], ids=str
)
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(argv)
    assert exit_.value.code == 2


def test_the_worktree_is_checked_out_once_and_reused_at_the_same_commit(repo, tmp_path):
    work = tmp_path / "work"
    first = baseline.resolve(repo, "HEAD~1")
    assert first == _git(repo, "rev-parse", "HEAD~1")
    path = baseline.worktree_path(work, first)
    assert path.name == f"baseline-{first[:12]}"
    assert baseline.ensure_worktree(repo, first, path) is False
    assert (path / "file.txt").read_text() == "version 1\n"
    assert _git(path, "rev-parse", "HEAD") == first
    (path / ".venv").mkdir()  # what a set-up leaves: kept on reuse
    assert baseline.ensure_worktree(repo, first, path) is True
    assert (path / ".venv").is_dir()
    # The working tree of the repository itself is untouched: still at the newest commit.
    assert (repo / "file.txt").read_text() == "version 2\n"
    assert _git(repo, "status", "--porcelain") == ""


def test_a_folder_at_another_commit_or_unknown_to_git_is_checked_out_afresh(repo, tmp_path):
    work = tmp_path / "work"
    newest = baseline.resolve(repo, "HEAD")
    path = work / "baseline-x"
    baseline.ensure_worktree(repo, baseline.resolve(repo, "HEAD~1"), path)
    assert baseline.ensure_worktree(repo, newest, path) is False
    assert (path / "file.txt").read_text() == "version 2\n"
    # Deleted behind git's back (e.g. `make clean`): git's stale record does not get in the way.
    stale = work / "baseline-y"
    baseline.ensure_worktree(repo, newest, stale)
    subprocess.run(["rm", "-rf", str(stale)], check=True)
    assert baseline.ensure_worktree(repo, newest, stale) is False
    # A half-made folder that is no checkout.
    junk = work / "baseline-z"
    junk.mkdir()
    (junk / "leftover").write_text("x")
    assert baseline.ensure_worktree(repo, newest, junk) is False
    assert not (junk / "leftover").exists()
    baseline.remove_worktree(repo, path)
    assert not path.exists()
    assert str(path) not in _git(repo, "worktree", "list")


def test_a_ref_that_names_no_commit_is_one_sentence(repo):
    with pytest.raises(baseline.BaselineError, match="names no commit"):
        baseline.resolve(repo, "no-such-ref")


def test_the_scratch_lakes_go_and_the_worktree_stays_unless_dropped(repo, tmp_path, monkeypatch):
    work = tmp_path / "work"
    sha = baseline.resolve(repo, "HEAD")
    kept = baseline.worktree_path(work, sha)
    baseline.ensure_worktree(repo, sha, kept)
    (work / "scale_0.02" / "lake").mkdir(parents=True)
    monkeypatch.setattr(run, "ROOT", repo)
    run.clean_workdir(work, keep_baseline=True)
    assert [p.name for p in work.iterdir()] == [kept.name]
    run.clean_workdir(work, keep_baseline=False)
    assert not work.exists()
    assert "baseline-" not in _git(repo, "worktree", "list")


def test_the_baseline_runs_with_its_own_interpreter_and_jars(tmp_path):
    env = baseline.clean_env(
        {"PATH": "/bin", "VIRTUAL_ENV": "/ours/.venv", "PYSPARK_PYTHON": "/ours/python"}
    )
    assert env == {"PATH": "/bin"}
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for root in (ours, theirs):
        (root / "jvm").mkdir(parents=True)
    (ours / ".jars" / "delta").mkdir(parents=True)
    (ours / "jvm" / "pom.xml").write_text("<project/>")
    (ours / "jvm" / "jars.sha256").write_text("abc  delta/delta-spark.jar\n")
    # A ref before Delta: no jars at all.
    assert baseline.jars_for(theirs, ours) == ""
    # The same pinned jars: ours.
    (theirs / "jvm" / "pom.xml").write_text("<project/>")
    (theirs / "jvm" / "jars.sha256").write_text("abc  delta/delta-spark.jar\n")
    assert baseline.jars_for(theirs, ours) == str(ours / ".jars")
    # Other pins: it fetches its own.
    (theirs / "jvm" / "jars.sha256").write_text("def  delta/delta-spark.jar\n")
    assert baseline.jars_for(theirs, ours) is None


def test_the_landing_files_are_shared_not_regenerated(tmp_path):
    source = tmp_path / "lake" / "landing" / "crm" / "customers" / "dt=2025-01-13"
    source.mkdir(parents=True)
    (source / "part-0.csv").write_text("id\n1\n")
    target = tmp_path / "baseline" / "lake" / "landing"
    run.share_landing(tmp_path / "lake" / "landing", target)
    copied = target / "crm" / "customers" / "dt=2025-01-13" / "part-0.csv"
    assert copied.read_text() == "id\n1\n"
    assert copied.stat().st_ino == (source / "part-0.csv").stat().st_ino  # a hard link


def _run(wall: float, jobs: dict[str, float]) -> dict:
    return {
        "wall_s": wall,
        "jobs_s": wall - 10,
        "jvm_peak_rss_mb": 900.0,
        "python_peak_rss_mb": 100.0,
        "startup_s": 5.0,
        "bytes": {"silver": 2**20},
        "jobs": {
            name: {"seconds": s, "rows_per_s": 100, "stages": {"stages": 1, "top": []}}
            for name, s in jobs.items()
        },
    }


def _scale(base: tuple[float, float], current: tuple[float, float]) -> dict:
    result = {
        "landing_bytes": 2**20,
        "floor": {"wall_s": 50.0, "jvm_peak_rss_mb": 700.0, "startup_s": 5.0},
        "baseline": {
            "ref": "0502b34",
            "sha": "0502b348d5d81b852db4ca94a3f2a5d440f99a35",
            "day1": _run(base[0], {"bronze_to_silver": 40.0, "silver_to_gold": 20.0}),
            "day2": _run(base[1], {"bronze_to_silver": 36.0, "silver_to_gold": 20.0}),
        },
        "day1": _run(current[0], {"bronze_to_silver": 44.0, "silver_to_gold": 20.0}),
        "day2": _run(current[1], {"bronze_to_silver": 8.0, "silver_to_gold": 10.0}),
    }
    result["ratios"] = goals.scale_ratios(result)
    result["side_by_side"] = goals.side_by_side(result)
    return result


def test_side_by_side_ratios_come_from_both_trees_runs():
    sbs = _scale(base=(100.0, 93.0), current=(110.0, 33.0))["side_by_side"]
    assert sbs["day1"]["baseline_s"] == 100.0 and sbs["day1"]["current_s"] == 110.0
    assert sbs["day1"]["current_over_baseline"] == 1.1
    assert sbs["day2"]["current_over_baseline"] == 0.35
    assert sbs["day2_over_day1"] == {"baseline": 0.93, "current": 0.3}
    assert sbs["day1"]["jobs"]["bronze_to_silver"] == {
        "baseline_s": 40.0,
        "current_s": 44.0,
        "current_over_baseline": 1.1,
    }
    assert sbs["day2"]["jobs"]["bronze_to_silver"]["current_over_baseline"] == 0.22
    assert goals.side_by_side({"day1": {}, "day2": {}}) is None


def test_issue_16_goals_against_the_baseline():
    scales = {
        "1": _scale(base=(100.0, 84.0), current=(114.0, 40.0)),  # 1.14x: met
        "10": _scale(base=(240.0, 223.0), current=(300.0, 90.0)),  # 1.25x: not met; 0.3: met
    }
    verdicts = {(g["issue"], g["goal"]): (g["measured"], g["met"]) for g in goals.evaluate(scales)}
    assert verdicts[(16, "scale 1 day-1 chain current / baseline")] == (1.14, True)
    assert verdicts[(16, "scale 10 day-1 chain current / baseline")] == (1.25, False)
    assert verdicts[(16, "scale 10 day-2 increment / day 1 (current)")] == (0.3, True)
    # Without a baseline the side-by-side goals are listed as not measured.
    for scale in scales.values():
        del scale["baseline"], scale["side_by_side"]
    verdicts = {(g["issue"], g["goal"]): g["met"] for g in goals.evaluate(scales)}
    assert verdicts[(16, "scale 1 day-1 chain current / baseline")] is None
    assert verdicts[(16, "scale 10 day-2 increment / day 1 (current)")] is True


def test_the_table_shows_the_side_by_side_figures():
    one = _scale(base=(100.0, 93.0), current=(110.0, 33.0))
    results = {
        "machine": {
            "cores": 2,
            "memory_gib": 24.0,
            "python": "3.11",
            "pyspark": "4.1.1",
            "load_average_at_start": [1.5],
        },
        "trees": {
            "current": {"root": "/w", "sha": "33f0dc9" * 5, "ref": None, "pyspark": "4.1.1"},
            "baseline": {"root": "/w/b", "sha": "0502b34" * 5, "ref": "0502b34", "pyspark": "4.3"},
        },
        "scales": {"1": one},
        "goals": goals.evaluate({"1": one}),
    }
    text = table.render(results)
    assert "baseline: 0502b34 0502b340502b (PySpark 4.3)" in text
    assert "side by side, baseline 0502b34 (0502b348d5d8) vs current" in text
    assert "day2 / day1" in text and "0.93" in text and "0.3" in text
    [line] = [
        x for x in text.splitlines() if x.startswith("scale 1 day-1 chain current / baseline")
    ]
    assert line.split()[-5:] == ["#16", "<=", "1.15x", "1.1", "yes"]


def test_the_current_tree_says_when_it_holds_uncommitted_changes(repo):
    tree = baseline.current_tree(repo)
    assert tree.sha == _git(repo, "rev-parse", "HEAD")
    assert tree.describe()["uncommitted_changes"] is False
    (repo / "file.txt").write_text("edited\n")
    assert tree.describe()["uncommitted_changes"] is True
