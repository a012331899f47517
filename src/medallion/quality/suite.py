"""The quality suites: the rules in the ODCS v3 contracts of the silver and gold tables.

A suite is one contract file. The packaged ones are one per table,
``quality/contracts/<layer>/<table>.yaml`` (:mod:`medallion.quality.table_contracts` loads them
and their declared columns); a suite given to :func:`load_suite` or :func:`parse_suite` may hold
several tables. ``quality`` entries sit on a schema object (table checks) or on its properties
(column checks). Each file is validated when loaded against the ODCS JSON Schema (when
``jsonschema`` is importable) and the ODCS pydantic model, by the source contracts' reader
(``medallion.contracts.loader.read_odcs``), then against what this engine runs:

* library rules: ``metric`` one of ``rowCount | nullValues | missingValues | invalidValues |
  duplicateValues``, ``arguments`` (``properties``, ``validValues``, ``missingValues``,
  ``pattern``), exactly one ``mustBe...`` operator;
* ``type: sql`` rules: a Spark SQL ``query`` returning one number, over temp views named
  ``<layer>_<table>``; ``${run_date}`` and ``${table}`` are substituted;
* ``type: custom`` rules with ``engine: medallion``: ``implementation`` names a check that needs
  the run context (see ``CUSTOM_CHECKS``); its parameters and its operator are the rule's
  ``customProperties`` (the ODCS field for "properties required for rule execution").

ODCS ids may not contain dots, so a rule's ``id`` is unique within its table and the check is
reported as ``<layer>.<table>.<id>`` (e.g. ``gold.fact_orders.customer_fk``). An invalid rule is
a :class:`QualityContractError` naming the file and the rule.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from open_data_contract_standard.model import OpenDataContractStandard

from medallion.quality.table_contracts import (
    LAYERS,
    TABLE_NAME,
    QualityContractError,
    custom_properties,
    read_contract,
    table_contract,
    table_names,
)

SEVERITIES = ("error", "warn")
ENGINE = "medallion"
LIBRARY_METRICS = ("rowCount", "nullValues", "missingValues", "invalidValues", "duplicateValues")
_LOCAL_ID = re.compile(r"^[A-Za-z0-9_-]+$")

# Custom checks the engine implements, with the parameters each one requires.
CUSTOM_CHECKS: dict[str, tuple[str, ...]] = {
    "row_count_change": (),
    "freshness": ("column",),
    "bronze_conservation": ("sources",),
    "bronze_keys_in_silver": ("source", "key"),
    "warehouse_rows": (),
}


# --- thresholds -------------------------------------------------------------------------------

_COMPARE: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "mustBe": ("=", operator.eq),
    "mustNotBe": ("!=", operator.ne),
    "mustBeGreaterThan": (">", operator.gt),
    "mustBeGreaterOrEqualTo": (">=", operator.ge),
    "mustBeLessThan": ("<", operator.lt),
    "mustBeLessOrEqualTo": ("<=", operator.le),
}
OPERATORS = (*_COMPARE, "mustBeBetween", "mustNotBeBetween")


@dataclass(frozen=True)
class Threshold:
    """One ODCS operator and its value, e.g. ``mustBeLessOrEqualTo: 5``."""

    operator: str
    value: Any

    def holds(self, observed: float | int) -> bool:
        if self.operator == "mustBeBetween":
            low, high = self.value
            return low <= observed <= high
        if self.operator == "mustNotBeBetween":
            low, high = self.value
            return not low <= observed <= high
        return _COMPARE[self.operator][1](observed, self.value)

    def describe(self, unit: str | None = None) -> str:
        """Short and readable: ``= 0``, ``<= 5 %``, ``between 1 and 3 days``."""
        suffix = {"percent": " %", "rows": "", None: ""}.get(unit, f" {unit}")
        if self.operator in ("mustBeBetween", "mustNotBeBetween"):
            low, high = self.value
            word = "between" if self.operator == "mustBeBetween" else "not between"
            return f"{word} {_fmt(low)} and {_fmt(high)}{suffix}"
        return f"{_COMPARE[self.operator][0]} {_fmt(self.value)}{suffix}"


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- rules and suites -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One executable check, with everything the engine and the report need."""

    id: str  # <layer>.<table>.<local id>
    layer: str
    table: str
    kind: str  # library | sql | custom
    severity: str
    description: str
    threshold: Threshold
    unit: str | None = None
    dimension: str | None = None
    metric: str | None = None
    properties: tuple[str, ...] = ()
    arguments: Mapping[str, Any] = field(default_factory=dict)
    query: str | None = None
    implementation: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def view(self) -> str:
        return view_name(self.layer, self.table)


def view_name(layer: str, table: str) -> str:
    """The temp view a table is registered under for SQL rules: ``gold_fact_orders``."""
    return f"{layer}_{table}"


@dataclass(frozen=True)
class Suite:
    """One contract file: the rules of its tables, in file order."""

    layer: str
    contract_id: str
    version: str
    source: str
    tables: tuple[str, ...]
    rules: tuple[Rule, ...]


def load_suite(path: str | Path) -> Suite:
    """Load and validate one quality contract file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QualityContractError(f"cannot read quality contract {path}: {exc}") from exc
    return parse_suite(text, str(path))


@functools.cache
def packaged_suites() -> tuple[Suite, ...]:
    """The packaged contracts' suites, one per table: silver first, each layer in
    :data:`~medallion.quality.table_contracts.TABLES` order (the order validate reports in)."""
    suites = []
    for layer in LAYERS:
        for table in table_names(layer):
            contract = table_contract(layer, table)
            suites.append(_suite(layer, contract.document, contract.source))
    return tuple(suites)


def parse_suite(text: str, where: str) -> Suite:
    """Validate a quality contract: ODCS v3 as the source contracts are checked
    (:func:`medallion.contracts.loader.read_odcs`), then the rules against what the engine runs."""
    layer, document = read_contract(text, where)
    return _suite(layer, document, where)


def _suite(layer: str, document: OpenDataContractStandard, where: str) -> Suite:
    rules: list[Rule] = []
    tables: list[str] = []
    for obj in document.schema_ or []:
        table = obj.name or ""
        if not TABLE_NAME.match(table) or table in tables:
            raise QualityContractError(
                f"quality contract {where}: schema object name '{table}' must be a unique "
                "lower_snake_case table name"
            )
        tables.append(table)
        seen: set[str] = set()
        entries = [(None, q) for q in obj.quality or []]
        for prop in obj.properties or []:
            entries += [(prop.name, q) for q in prop.quality or []]
        for column, quality in entries:
            rule = _rule(quality, layer, table, column, where)
            if rule.id in seen:
                raise QualityContractError(
                    f"quality contract {where}: rule id '{rule.id}' is used twice"
                )
            seen.add(rule.id)
            rules.append(rule)
    return Suite(
        layer=layer,
        contract_id=document.id or "",
        version=document.version or "",
        source=where,
        tables=tuple(tables),
        rules=tuple(rules),
    )


def _rule(quality: Any, layer: str, table: str, column: str | None, where: str) -> Rule:
    local = quality.id or ""
    here = f"{where}: {layer}.{table}" + (f".{column}" if column else "") + f" rule '{local}'"
    if not _LOCAL_ID.match(local):
        raise QualityContractError(f"{here}: every rule needs an id of letters, digits, _ or -")
    if quality.severity not in SEVERITIES:
        raise QualityContractError(
            f"{here}: severity must be one of {', '.join(SEVERITIES)}, not {quality.severity!r}"
        )
    kind = quality.type or "library"
    common: dict[str, Any] = {
        "id": f"{layer}.{table}.{local}",
        "layer": layer,
        "table": table,
        "kind": kind,
        "severity": quality.severity,
        "description": " ".join((quality.description or quality.name or local).split()),
        "unit": quality.unit,
        "dimension": quality.dimension,
    }
    if kind == "library":
        if quality.metric not in LIBRARY_METRICS:
            raise QualityContractError(
                f"{here}: metric must be one of {', '.join(LIBRARY_METRICS)}, not {quality.metric!r}"
            )
        arguments = dict(quality.arguments or {})
        properties = tuple(arguments.pop("properties", None) or ([column] if column else []))
        if quality.metric != "rowCount" and not properties:
            raise QualityContractError(
                f"{here}: {quality.metric} needs a column: put it under a property or give "
                "arguments.properties"
            )
        if quality.metric == "invalidValues" and not (
            arguments.get("validValues") or arguments.get("pattern")
        ):
            raise QualityContractError(
                f"{here}: invalidValues needs arguments.validValues or arguments.pattern"
            )
        if quality.unit not in (None, "rows", "percent"):
            raise QualityContractError(f"{here}: unit must be rows or percent")
        return Rule(
            **common,
            threshold=_threshold(quality.model_dump(), here),
            metric=quality.metric,
            properties=properties,
            arguments=MappingProxyType(arguments),
        )
    if kind == "sql":
        if not (quality.query or "").strip():
            raise QualityContractError(f"{here}: a sql rule needs a query")
        return Rule(
            **common,
            threshold=_threshold(quality.model_dump(), here),
            query=quality.query.strip().rstrip(";"),
        )
    if kind == "custom":
        if quality.engine != ENGINE:
            raise QualityContractError(f"{here}: custom rules need engine: {ENGINE}")
        name = quality.implementation
        if not isinstance(name, str) or name not in CUSTOM_CHECKS:
            raise QualityContractError(
                f"{here}: implementation must be one of {', '.join(CUSTOM_CHECKS)}, not {name!r}"
            )
        parameters = custom_properties(quality.customProperties)
        missing = [p for p in CUSTOM_CHECKS[name] if p not in parameters]
        if missing:
            raise QualityContractError(
                f"{here}: {name} needs customProperties {', '.join(missing)}"
            )
        threshold = _threshold(parameters, here)
        for op in OPERATORS:
            parameters.pop(op, None)
        return Rule(
            **common,
            threshold=threshold,
            implementation=name,
            parameters=MappingProxyType(parameters),
        )
    raise QualityContractError(f"{here}: type must be library, sql or custom, not {kind!r}")


def _threshold(fields: Mapping[str, Any], here: str) -> Threshold:
    given = [(op, fields[op]) for op in OPERATORS if fields.get(op) is not None]
    if len(given) != 1:
        raise QualityContractError(
            f"{here}: give exactly one of {', '.join(OPERATORS)} (found {len(given)})"
        )
    op, value = given[0]
    between = op in ("mustBeBetween", "mustNotBeBetween")
    values = value if between else [value]
    if (between and len(value) != 2) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise QualityContractError(f"{here}: {op} needs a number (or two for between)")
    return Threshold(op, tuple(value) if between else value)
