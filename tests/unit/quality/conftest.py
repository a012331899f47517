"""Fixtures for the quality tests: the tiny lake of ``quality_lake`` built once, copied per test."""

from __future__ import annotations

import shutil

import pytest
from quality_lake import build_lake


@pytest.fixture(scope="session")
def clean_lake_dir(spark, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("quality") / "lake"
    build_lake(spark, str(root))
    return str(root)


@pytest.fixture
def lake(clean_lake_dir, lake_settings):
    """A private copy of the clean lake at ``lake_settings.lake.root``."""
    shutil.copytree(clean_lake_dir, lake_settings.lake.root)
    return lake_settings
