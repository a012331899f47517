"""The integration suite's one chain lake: three generated days through every job, built once
per test run and shared (the chain, bronze and quality-report tests all read it).

``chain_lake`` is the lake itself (``test_chain`` reruns a day in it at the end, as a user
would); ``copy_of_chain_lake`` gives a module its own copy of the lake as the three-day chain
left it, so no module sees what another did to its lake.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from chain_lake import DAYS, SCALE, SEED, START, ChainLake, settings_for

from medallion.generate import generate_landing
from medallion.jobs import JOBS
from medallion.runner import run_chain


@pytest.fixture(scope="session")
def chain_build(spark, tmp_path_factory) -> tuple[ChainLake, Path]:
    """The three-day chain, and a pristine copy of the lake it left (for ``copy_of_chain_lake``)."""
    base = tmp_path_factory.mktemp("chain")
    root = base / "lake"
    manifest = generate_landing(
        root / "landing", scale=SCALE, days=len(DAYS), start_date=START, seed=SEED, force=True
    )
    settings = settings_for(root)
    records = run_chain(JOBS, DAYS, settings, lambda: spark)
    pristine = base / "pristine"
    shutil.copytree(root, pristine, symlinks=True)
    return ChainLake(root, manifest, settings, records), pristine


@pytest.fixture(scope="session")
def chain_lake(chain_build) -> ChainLake:
    return chain_build[0]


@pytest.fixture(scope="module")
def copy_of_chain_lake(chain_build, tmp_path_factory) -> ChainLake:
    """A copy of the lake as the three-day chain left it, for one module to use as it likes."""
    chain, pristine = chain_build
    root = tmp_path_factory.mktemp("chain_copy") / "lake"
    shutil.copytree(pristine, root, symlinks=True)
    repoint_stream_checkpoint(chain.root, root)
    return ChainLake(root, chain.manifest, settings_for(root), chain.records)


def repoint_stream_checkpoint(old_root: Path, new_root: Path) -> None:
    """Point the copied stream checkpoint's file log at the copy's landing files.

    The file source logs every file it has read by absolute URI; a lake moved without that
    edit re-reads every landing file at its new place as new. Each rewritten log entry loses
    its Hadoop checksum file (the local file system reads a file without one, not a stale one).
    """
    old, new = f"file://{old_root}/", f"file://{new_root}/"
    for log in (new_root / "_checkpoints").glob("*/sources/*/*"):
        if log.name.startswith(".") or not log.is_file():
            continue
        text = log.read_text(encoding="utf-8")
        if old in text:
            log.write_text(text.replace(old, new), encoding="utf-8")
            log.with_name(f".{log.name}.crc").unlink(missing_ok=True)
