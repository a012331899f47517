"""Every silver and gold table the chain writes is what its contract declares: the same columns
in the same order with the same Spark types, the same partition columns, and no null in a column
the contract calls required.

The tables are the shared three-day chain's (tests/integration/conftest.py), read, not rebuilt:
a transform that adds, drops, renames, reorders or retypes a column fails here until its
contract (``quality/contracts/<layer>/<table>.yaml``) says so too. Columns are compared in order
because the contract is the table's documentation and the order is part of what the pipeline
writes (``SELECT *``, the warehouse's tables): a silver table keeps the order of its first
write through every later MERGE, so a reordered transform would give an incremental table and a
rebuilt one different layouts. Types are compared as Spark spells them (``simpleString``).
"""

from __future__ import annotations

import pytest
from chain_lake import gold, silver
from deltalake import DeltaTable
from pyspark.sql import functions as F

from medallion.quality.table_contracts import LAYERS, TableContract, table_contract, table_names

pytestmark = pytest.mark.integration

TABLES = [(layer, table) for layer in LAYERS for table in table_names(layer)]
IDS = [f"{layer}.{table}" for layer, table in TABLES]
READ = {"silver": silver, "gold": gold}


def schema_difference(written: list[tuple[str, str]], contract: TableContract) -> str:
    """What differs between a written schema and the declared one, in a sentence."""
    declared = dict(contract.schema)
    actual = dict(written)
    problems = [
        f"undeclared {sorted(set(actual) - set(declared))}" if set(actual) - set(declared) else "",
        f"not written {sorted(set(declared) - set(actual))}" if set(declared) - set(actual) else "",
        ", ".join(
            f"{name} is {actual[name]}, declared {declared[name]}"
            for name in actual
            if name in declared and actual[name] != declared[name]
        ),
    ]
    problems = [p for p in problems if p] or [f"order differs: written {[n for n, _ in written]}"]
    return f"{contract.source}: " + "; ".join(problems)


@pytest.mark.parametrize(("layer", "table"), TABLES, ids=IDS)
def test_each_table_is_written_with_the_columns_and_types_its_contract_declares(
    spark, chain_lake, layer, table
):
    contract = table_contract(layer, table)
    frame = READ[layer](spark, chain_lake.root, table)

    written = [(f.name, f.dataType.simpleString()) for f in frame.schema.fields]

    assert written == contract.schema, schema_difference(written, contract)


@pytest.mark.parametrize(("layer", "table"), TABLES, ids=IDS)
def test_each_table_is_partitioned_as_declared_and_has_no_null_where_required(
    spark, chain_lake, layer, table
):
    contract = table_contract(layer, table)
    path = chain_lake.root / layer / table
    required = [c.name for c in contract.columns if c.required]
    frame = READ[layer](spark, chain_lake.root, table)

    partitioned = tuple(DeltaTable(str(path)).metadata().partition_columns)
    nulls = frame.select(
        F.count(F.lit(1)).alias("_rows"),
        *[F.sum(F.col(c).isNull().cast("int")).alias(c) for c in required],
    ).first()

    assert partitioned == contract.partition_by, (
        f"{contract.source}: written partitioned by {partitioned}"
    )
    assert nulls["_rows"] > 0, "an empty table proves nothing about its required columns"
    assert {c: nulls[c] for c in required if nulls[c]} == {}, (
        f"{contract.source}: required columns hold nulls"
    )
