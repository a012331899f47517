"""The contract of each silver and gold table: its declared columns and its primary key.

Every table the pipeline writes to silver or gold has one ODCS v3 file beside the others of its
layer, ``quality/contracts/<layer>/<table>.yaml``, found from the table's name. It declares every
column the table is written with, in the table's order: its Spark type as written to Delta
(``physicalType`` in Spark's own spelling, ``decimal(18,2)``), its ``logicalType``, whether it is
non-null by construction (``required``), and the key columns (``primaryKey`` with
``primaryKeyPosition``). The primary key is the one place a table's key is stated: silver's
MERGEs (``jobs.bronze_to_silver``), ``dim_customer``'s MERGE (``jobs.silver_to_gold``) and the
warehouse publisher read it with :func:`primary_key` when they write. The same file carries the
table's quality rules, which :mod:`medallion.quality.suite` turns into checks.

Contracts are parsed when first asked for, not at import: :func:`table_names` only lists the
folder, so importing the job registry (every CLI command, Airflow's DAG parsing) parses none.

A packaged contract is checked when first loaded: ODCS v3 (JSON Schema and pydantic model, by
:func:`medallion.contracts.loader.read_odcs`), then one schema object named after its file,
every property with a known Spark type that holds its logical type, and a primary key whose
columns are required. ``tests/integration/test_contract_schemas.py`` compares each declaration
with the tables the chain writes, so a transform cannot add, drop or retype a column unnoticed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from open_data_contract_standard.model import OpenDataContractStandard

from medallion.contracts.loader import holds_logical_type, parse_physical_type, read_odcs
from medallion.errors import UsageError

LAYERS = ("silver", "gold")
# Each layer's tables, in the order ``medallion validate`` checks and reports them (and the
# publisher publishes gold). A contract file that is not listed here is an error, not ignored.
TABLES: dict[str, tuple[str, ...]] = {
    "silver": (
        "customers",
        "products",
        "orders",
        "order_events",
        "customer_behavior",
        "fx_rates",
        "crm_accounts",
        "crm_contacts",
        "crm_opportunities",
    ),
    "gold": (
        "dim_customer",
        "dim_product",
        "dim_date",
        "fact_orders",
        "customer_360",
        "product_performance",
    ),
}
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class QualityContractError(UsageError):
    """A silver or gold contract is invalid (exit code 2): the message names the file, and the
    column or rule."""


@dataclass(frozen=True)
class DeclaredColumn:
    """One output column as its contract declares it."""

    name: str
    physical_type: str  # Spark's simpleString of the type written to Delta: decimal(18,2)
    logical_type: str
    required: bool


@dataclass(frozen=True)
class TableContract:
    """One table's contract: its declared schema, key and partitioning, and the ODCS document
    (whose quality rules :mod:`medallion.quality.suite` reads)."""

    layer: str
    table: str
    contract_id: str
    version: str
    source: str
    columns: tuple[DeclaredColumn, ...]
    primary_key: tuple[str, ...]
    partition_by: tuple[str, ...]
    document: OpenDataContractStandard = field(compare=False, repr=False)

    @property
    def schema(self) -> list[tuple[str, str]]:
        """``(column, physical type)`` in the table's order, as Spark's ``simpleString`` spells
        the types: what a written table's schema is compared with."""
        return [(c.name, c.physical_type) for c in self.columns]


def table_names(layer: str) -> tuple[str, ...]:
    """The tables of ``layer`` that have a contract, in validate's order."""
    if layer not in LAYERS:
        raise QualityContractError(f"unknown layer '{layer}': one of {', '.join(LAYERS)}")
    _check_folder(layer)
    return TABLES[layer]


@functools.cache
def table_contract(layer: str, table: str) -> TableContract:
    """The packaged contract of ``<layer>/<table>``, validated; cached per process."""
    if table not in table_names(layer):
        raise QualityContractError(
            f"no contract for {layer} table '{table}': {layer} tables are "
            f"{', '.join(TABLES[layer])}"
        )
    where = f"{layer}/{table}.yaml"
    text = (_folder(layer) / f"{table}.yaml").read_text(encoding="utf-8")
    contract = parse_table_contract(text, where)
    if (contract.layer, contract.table) != (layer, table):
        raise QualityContractError(
            f"quality contract {where} describes {contract.layer}.{contract.table}: a contract "
            "is named after its table and sits in its layer's folder"
        )
    return contract


def primary_key(layer: str, table: str) -> list[str]:
    """The key columns of ``<layer>/<table>`` in ``primaryKeyPosition`` order: what its MERGE
    (and the warehouse's) matches on."""
    return list(table_contract(layer, table).primary_key)


def read_contract(text: str, where: str) -> tuple[str, OpenDataContractStandard]:
    """A quality contract's layer and ODCS model, checked against ODCS v3 and for a known layer
    (any number of tables; the packaged ones hold one each)."""
    _, document = read_odcs(text, where, error=QualityContractError, noun="quality contract")
    layer = custom_properties(document.customProperties).get("layer")
    if layer not in LAYERS:
        raise QualityContractError(
            f"quality contract {where}: customProperties.layer must be one of {', '.join(LAYERS)}"
        )
    return layer, document


def parse_table_contract(text: str, where: str) -> TableContract:
    """Validate one table's contract: ODCS v3, one schema object, every column typed, a key."""
    layer, document = read_contract(text, where)
    objects = document.schema_ or []
    if len(objects) != 1:
        raise QualityContractError(
            f"quality contract {where}: a table's contract holds exactly one schema object "
            f"(found {len(objects)})"
        )
    obj = objects[0]
    table = obj.name or ""
    if not TABLE_NAME.match(table):
        raise QualityContractError(
            f"quality contract {where}: schema object name '{table}' must be a lower_snake_case "
            "table name"
        )
    columns = [_column(prop, f"{where}: {layer}.{table}") for prop in obj.properties or []]
    names = [c.name for c in columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if not columns or twice:
        raise QualityContractError(
            f"quality contract {where}: {layer}.{table} must declare each of its columns once"
            + (f" ({', '.join(twice)} twice)" if twice else " (it declares none)")
        )
    props = obj.properties or []
    return TableContract(
        layer=layer,
        table=table,
        contract_id=document.id or "",
        version=document.version or "",
        source=where,
        columns=tuple(columns),
        primary_key=_primary_key(props, columns, f"{where}: {layer}.{table}"),
        partition_by=tuple(
            p.name
            for p in sorted(props, key=lambda p: p.partitionKeyPosition or 0)
            if p.partitioned
        ),
        document=document,
    )


def custom_properties(items: list[Any] | None) -> dict[str, Any]:
    """ODCS ``customProperties`` (a list of property/value pairs) as a dict."""
    return {item.property: item.value for item in items or [] if item.property}


def _column(prop: Any, here: str) -> DeclaredColumn:
    name = prop.name or ""
    here = f"{here}.{name}"
    physical, logical = prop.physicalType, prop.logicalType
    try:
        data_type = parse_physical_type(physical or "")
    except ValueError as exc:
        raise QualityContractError(
            f"{here}: physicalType must be the Spark type the column is written with ({exc})"
        ) from None
    if data_type.simpleString() != physical:
        raise QualityContractError(
            f"{here}: write physicalType '{physical}' as Spark does: '{data_type.simpleString()}'"
        )
    if not holds_logical_type(data_type, logical or ""):
        raise QualityContractError(
            f"{here}: physicalType '{physical}' cannot hold logicalType {logical!r}"
        )
    return DeclaredColumn(name, physical, logical, bool(prop.required))


def _primary_key(props: list[Any], columns: list[DeclaredColumn], here: str) -> tuple[str, ...]:
    keyed = [(p.primaryKeyPosition, c) for p, c in zip(props, columns) if p.primaryKey]
    positions = sorted(position or 0 for position, _ in keyed)
    if not keyed or positions != list(range(1, len(keyed) + 1)):
        raise QualityContractError(
            f"{here}: mark the key column(s) primaryKey: true with primaryKeyPosition 1, 2, ... "
            f"(found positions {positions or 'none'})"
        )
    optional = [c.name for _, c in keyed if not c.required]
    if optional:
        raise QualityContractError(f"{here}: key column(s) {', '.join(optional)} must be required")
    return tuple(c.name for _, c in sorted(keyed, key=lambda k: k[0]))


def _check_folder(layer: str) -> None:
    """Every contract file of the layer is a listed table (an unlisted one would go unchecked)."""
    files = {
        e.name.removesuffix(".yaml") for e in _folder(layer).iterdir() if e.name.endswith(".yaml")
    }
    problems = []
    if files - set(TABLES[layer]):
        problems.append(f"not listed: {', '.join(sorted(files - set(TABLES[layer])))}")
    if set(TABLES[layer]) - files:
        problems.append(f"no contract file: {', '.join(sorted(set(TABLES[layer]) - files))}")
    if problems:
        raise QualityContractError(
            f"the {layer} contracts in quality/contracts/{layer}/ and TABLES in "
            f"medallion/quality/table_contracts.py disagree: {'; '.join(problems)}"
        )


def _folder(layer: str) -> Any:
    return resources.files("medallion.quality") / "contracts" / layer
