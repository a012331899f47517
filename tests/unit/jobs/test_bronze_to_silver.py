"""The silver write step on tiny inline Delta tables: first write, one MERGE of only the changed
rows, and a run with nothing new (zeros, no crash)."""

from __future__ import annotations

import datetime as dt
import json

from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from medallion.audit import TableCount
from medallion.jobs.base import JobContext
from medallion.jobs.bronze_to_silver import SilverBuild
from medallion.lake import Lake, append, read_delta

D = dt.date
PRODUCT_SCHEMA = "product_id string, price decimal(18,2), brand string"


def _context(spark, tmp_path, day: dt.date, run_id: str, min_versions: int = 0) -> JobContext:
    from medallion.config import parse_settings

    settings = parse_settings(
        f'env: local\nlake: {{root: "{tmp_path / "lake"}"}}\n'
        f"incremental: {{min_versions: {min_versions}}}\n",
        "test",
    )
    lake = Lake.from_root(str(tmp_path / "lake"))
    return JobContext(spark, settings, lake, day, run_id, job="bronze_to_silver")


def _products(spark, rows):
    from decimal import Decimal

    return spark.createDataFrame(
        [(pid, Decimal(price), brand) for pid, price, brand in rows], PRODUCT_SCHEMA
    )


def _files(spark, path: str) -> set[str]:
    return {
        r[0] for r in spark.read.format("delta").load(path).select(F.input_file_name()).collect()
    }


def test_silver_write_merges_only_changed_rows_inserts_new_keys_and_deletes_vanished_ones(
    spark, tmp_path
):
    day1 = SilverBuild(_context(spark, tmp_path, D(2025, 1, 13), "run-1"))
    first = _products(spark, [("P1", "1.00", "acme"), ("P2", "2.00", None)]).coalesce(1)
    day1.write("products", first, 2)
    path = day1.lake.silver("products")
    untouched = _files(spark, path)  # the file holding P1 and P2
    # P3 and P5 in a file of their own, so that what the MERGE rewrites is visible file by file.
    append(_products(spark, [("P3", "3.00", "z"), ("P5", "5.00", "gone")]).coalesce(1), path, metadata="{}")  # fmt: skip

    day2 = SilverBuild(_context(spark, tmp_path, D(2025, 1, 14), "run-2"))
    recomputed = _products(
        spark,
        [
            ("P1", "1.00", "acme"),  # unchanged
            ("P2", "2.00", None),  # unchanged, its null compared null-safe
            ("P3", "3.50", "z"),  # changed
            ("P4", "4.00", "new"),  # new key
            # P5 vanished: the corrected delivery that had it no longer does
        ],
    )
    result = day2.write("products", recomputed, rows_in=7)

    assertDataFrameEqual(result, recomputed)
    history = DeltaTable.forPath(spark, path).history(1).first()
    metrics = {k: int(v) for k, v in history["operationMetrics"].items() if v.isdigit()}
    assert history["operation"] == "MERGE"
    assert json.loads(history["userMetadata"])["run_id"] == "run-2"
    assert (metrics["numSourceRows"], metrics["numTargetRowsInserted"]) == (3, 1)
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsDeleted"]) == (1, 1)
    assert metrics["numTargetRowsCopied"] == 0
    # Only the file of P3 and P5 was rewritten: the one holding P1 and P2 is still live.
    assert metrics["numTargetFilesRemoved"] == 1
    assert len(untouched) == 1 and untouched <= _files(spark, path)
    assert day2.tables == [
        TableCount("silver/products", rows_in=7, rows_out=4, versions={"silver/products": 2})
    ]
    assert (day2.details["products_rows_changed"], day2.details["products_rows_rewritten"]) == (
        3,
        2,
    )


def test_silver_write_with_nothing_changed_succeeds_and_records_zeros(spark, tmp_path):
    build = SilverBuild(_context(spark, tmp_path, D(2025, 1, 13), "run-1"))
    rows = _products(spark, [("P1", "1.00", "acme")])
    build.write("products", rows, 1)
    again = SilverBuild(_context(spark, tmp_path, D(2025, 1, 14), "run-2"))
    again.write("products", _products(spark, [("P1", "1.00", "acme")]), rows_in=1)
    (count,) = again.tables
    assert (count.rows_in, count.rows_out) == (1, 1)
    assert again.details["products_rows_changed"] == 0
    assertDataFrameEqual(read_delta(spark, again.lake.silver("products")), rows)


def test_rebuild_overwrites_the_table_in_one_commit(spark, tmp_path):
    build = SilverBuild(_context(spark, tmp_path, D(2025, 1, 13), "run-1"))
    build.write("products", _products(spark, [("P1", "1.00", "a"), ("P2", "2.00", "b")]), 2)
    rebuild = SilverBuild(_context(spark, tmp_path, D(2025, 1, 14), "run-2"), rebuild=True)
    only = _products(spark, [("P1", "1.50", "a")])
    rebuild.write("products", only, 1)
    history = DeltaTable.forPath(spark, rebuild.lake.silver("products")).history(1).first()
    assert (history["version"], history["operation"]) == (1, "WRITE")
    assert rebuild.tables[0].versions == {"silver/products": 1}
    assertDataFrameEqual(read_delta(spark, rebuild.lake.silver("products")), only)


def test_a_table_below_the_incremental_size_is_recomputed_whole_and_overwritten(spark, tmp_path):
    """``incremental.min_versions``: a table computed from fewer bronze versions is written like a
    rebuild (one overwrite, with the watermark), without asking the change feed for a scope; a
    table of that size or more takes the incremental way."""
    build = SilverBuild(_context(spark, tmp_path, D(2025, 1, 13), "run-1"))
    build.write("products", _products(spark, [("P1", "1.00", "a"), ("P2", "2.00", "b")]), 2)
    small = SilverBuild(_context(spark, tmp_path, D(2025, 1, 14), "run-2", min_versions=3))
    versions = _products(spark, [("P1", "1.50", "a")])

    def no_scope(since):
        raise AssertionError("a small table must not ask the change feed for a scope")

    recomputed, scope = small.scoped("products", versions, 2, no_scope)
    assert (recomputed, scope) == (versions, None)
    assert small.scopes == {"products": "whole (small table)"}
    small.write("products", recomputed, 2)
    history = DeltaTable.forPath(spark, small.lake.silver("products")).history(1).first()
    assert (history["version"], history["operation"]) == (1, "WRITE")
    assert json.loads(history["userMetadata"])["inputs"] == small.inputs
    assertDataFrameEqual(read_delta(spark, small.lake.silver("products")), versions)

    asked = []
    big = SilverBuild(_context(spark, tmp_path, D(2025, 1, 14), "run-3", min_versions=3))
    big.scoped("products", versions, 3, lambda since: asked.append(since))
    assert asked == [small.inputs] and "products" not in big.whole
