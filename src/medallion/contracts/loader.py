"""Loading ODCS v3 contract files into validated :class:`~medallion.contracts.model.Contract`s.

The contracts ship inside the package as ``medallion/contracts/<source>/<table>.yaml``.
Every file is checked three times when it is loaded, and any problem is a ``ContractError``
whose message names the file and the field:

1. against the ODCS JSON Schema (``open_data_contract_standard/schema.json``), when the
   ``jsonschema`` package is importable;
2. against the ODCS pydantic model (``open_data_contract_standard.model``);
3. against what this engine can enforce: known physical types that agree with the logical
   type, supported ``logicalTypeOptions``, known ``customProperties`` and well-formed
   ``medallion`` quality rules, foreign keys and rule ids.

Public API::

    load_contract(name: str) -> Contract            # "snowflake/orders"; cached
    load_contract_file(path, name=None) -> Contract  # any file (tests, new contracts)
    parse_contract(text, where, name=None) -> Contract
    read_odcs(text, where) -> (dict, OpenDataContractStandard)  # passes 1-2 only (quality suites)
    contract_names() -> list[str]                   # every packaged contract
    parse_physical_type(text) -> pyspark DataType   # "decimal(18,2)" -> DecimalType(18, 2)
    holds_logical_type(data_type, logical) -> bool  # may a decimal hold "number"? (yes)
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pycountry
import yaml
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import ValidationError
from pyspark.sql import types as T

from medallion.contracts.model import (
    COLUMN_CHECKS,
    EVOLUTION_POLICIES,
    FORMATS,
    JUMP,
    RULE_ID_PATTERN,
    Column,
    Contract,
    ContractError,
    ExpressionRule,
    ForeignKey,
    JumpRule,
    QuarantinePolicy,
    Range,
)
from medallion.durations import EXAMPLES as DURATION_EXAMPLES
from medallion.durations import parse_duration
from medallion.errors import MedallionError

ENGINE = "medallion"  # quality rules with this engine are executed by the rule compiler
VENDOR = "medallion"  # custom properties of other vendors are kept but not interpreted
CONTRACT_NAME = re.compile(r"^[a-z][a-z0-9_]*/[a-z][a-z0-9_]*$")

# Code lists a column can name in its ``allowedValues`` custom property, read from pycountry.
CODE_LISTS: dict[str, Callable[[], frozenset[str]]] = {
    "iso4217": lambda: frozenset(c.alpha_3 for c in pycountry.currencies),
    "iso3166-alpha2": lambda: frozenset(c.alpha_2 for c in pycountry.countries),
    "iso3166-alpha3": lambda: frozenset(c.alpha_3 for c in pycountry.countries),
}

# ``logicalTypeOptions.format`` values for strings that stand for a pattern.
STRING_FORMATS = {
    "email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}

_SIMPLE_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "varchar": T.StringType(),
    "text": T.StringType(),
    "int": T.IntegerType(),
    "integer": T.IntegerType(),
    "bigint": T.LongType(),
    "long": T.LongType(),
    "smallint": T.ShortType(),
    "tinyint": T.ByteType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_VARCHAR = re.compile(r"^varchar\(\s*\d+\s*\)$")

# Which Spark types each ODCS logical type may be stored as.
_LOGICAL_TYPES: dict[str, tuple[type[T.DataType], ...]] = {
    "string": (T.StringType,),
    "integer": (T.ByteType, T.ShortType, T.IntegerType, T.LongType),
    "number": (T.DecimalType, T.DoubleType, T.FloatType),
    "boolean": (T.BooleanType,),
    "date": (T.DateType,),
    "timestamp": (T.TimestampType,),
    "map": (T.MapType,),
    "array": (T.ArrayType,),
}

_RANGE_OPTIONS = {
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
}
_SUPPORTED_OPTIONS: dict[str, set[str]] = {
    "string": {"pattern", "format"},
    "integer": {*_RANGE_OPTIONS, "format"},
    "number": {*_RANGE_OPTIONS, "format"},
    "date": {*_RANGE_OPTIONS, "format"},
    "timestamp": {*_RANGE_OPTIONS, "format", "timezone", "defaultTimezone"},
}

_ROOT_PROPERTIES = {"landingFormat", "schemaEvolution", "partitionColumns", "quarantinePolicy"}
_COLUMN_PROPERTIES = {"allowedValues", "ignoreCase", "notAfterDelivery"}


# --- public API -------------------------------------------------------------------------------


def contract_names() -> list[str]:
    """Every contract shipped in the package, as ``<source>/<table>``, sorted."""
    root = resources.files(__package__)
    names = []
    for source in root.iterdir():
        if not source.is_dir() or source.name.startswith(("_", ".")):
            continue
        for entry in source.iterdir():
            if entry.is_file() and entry.name.endswith(".yaml"):
                names.append(f"{source.name}/{entry.name.removesuffix('.yaml')}")
    return sorted(names)


@functools.cache
def load_contract(name: str) -> Contract:
    """The packaged contract ``name`` (``"snowflake/orders"``), validated; cached per process."""
    if not CONTRACT_NAME.match(name):
        raise ContractError(f"contract name '{name}' is not of the form <source>/<table>")
    source, table = name.split("/")
    entry = resources.files(__package__).joinpath(source, f"{table}.yaml")
    if not entry.is_file():
        known = ", ".join(contract_names())
        raise ContractError(f"there is no contract named '{name}'; known contracts: {known}")
    where = f"contracts/{name}.yaml"
    return parse_contract(entry.read_text(encoding="utf-8"), where, name=name)


def load_contract_file(path: str | Path, name: str | None = None) -> Contract:
    """Load and validate the contract in ``path``; ``name`` defaults to the file's ``name``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"contract file {path} cannot be read: {exc.strerror}") from exc
    return parse_contract(text, str(path), name=name)


def parse_contract(text: str, where: str, name: str | None = None) -> Contract:
    """Validate ODCS YAML ``text`` (from ``where``, used in messages) into a ``Contract``."""
    data, odcs = read_odcs(text, where)
    return _build(data, odcs, where, name)


def read_odcs(
    text: str,
    where: str,
    *,
    error: type[MedallionError] = ContractError,
    noun: str = "contract",
) -> tuple[dict[str, Any], OpenDataContractStandard]:
    """Parse ODCS v3 YAML ``text`` and check it against the ODCS JSON Schema and pydantic model
    (passes 1 and 2 above); return the raw document and the model.

    Any problem raises ``error`` with one message naming ``noun`` and ``where`` (``contract
    contracts/crm/accounts.yaml does not conform to ODCS v3: ...``). The source contracts use
    the defaults; the quality suites (:mod:`medallion.quality.suite`) pass their own error class.
    """
    data = _parse_yaml(text, f"{noun} {where}", error)
    _validate_json_schema(data, f"{noun} {where}", error)
    return data, _validate_model(data, f"{noun} {where}", error)


def parse_physical_type(text: str) -> T.DataType:
    """A Spark type from a contract's ``physicalType`` (``decimal(18,2)``, ``map<string,string>``).

    Raises ``ValueError`` for a type this engine does not know.
    """
    spec = text.strip().lower()
    if spec in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[spec]
    if _VARCHAR.match(spec):
        return T.StringType()
    match = _DECIMAL.match(spec)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"decimal({precision},{scale}) is not a valid decimal type")
        return T.DecimalType(precision, scale)
    if spec.startswith("array<") and spec.endswith(">"):
        return T.ArrayType(parse_physical_type(spec[6:-1]), True)
    if spec.startswith("map<") and spec.endswith(">"):
        key, value = _split_top_level(spec[4:-1])
        return T.MapType(parse_physical_type(key), parse_physical_type(value), True)
    raise ValueError(f"unknown physical type '{text}'")


def holds_logical_type(data_type: T.DataType, logical: str) -> bool:
    """Whether a Spark type may store an ODCS logical type (``decimal(18,2)`` holds ``number``,
    ``string`` does not hold ``integer``); an unknown logical type holds nothing."""
    return isinstance(data_type, _LOGICAL_TYPES.get(logical, ()))


# --- the three validation passes --------------------------------------------------------------


def _parse_yaml(text: str, what: str, error: type[MedallionError]) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{what} is not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise error(f"{what} must be a YAML mapping (an ODCS document)")
    return data


@functools.cache
def _json_schema_validator() -> Any | None:
    try:
        import jsonschema
    except ImportError:  # the pydantic model and the engine's own checks still run
        return None
    schema = json.loads(
        resources.files("open_data_contract_standard").joinpath("schema.json").read_text("utf-8")
    )
    validator_class = jsonschema.validators.validator_for(schema)
    return validator_class(schema)


def _validate_json_schema(data: dict[str, Any], what: str, error: type[MedallionError]) -> None:
    validator = _json_schema_validator()
    if validator is None:
        return
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    from jsonschema.exceptions import best_match, relevance

    first = best_match(errors)
    messages: list[str] = []
    for problem in [first, *sorted(errors, key=relevance)]:
        message = f"{_field_path(data, list(problem.absolute_path))}: {_short(problem.message)}"
        if message not in messages:
            messages.append(message)
    shown = messages[:3]
    more = f" (and {len(messages) - len(shown)} more)" if len(messages) > len(shown) else ""
    raise error(f"{what} does not conform to ODCS v3: {'; '.join(shown)}{more}")


def _validate_model(
    data: dict[str, Any], what: str, error: type[MedallionError]
) -> OpenDataContractStandard:
    try:
        return OpenDataContractStandard.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_field_path(data, list(item['loc']))}: {item['msg']}"
            for item in exc.errors(include_url=False)
        ]
        raise error(f"{what} does not match the ODCS model: " + "; ".join(problems[:3])) from None


# --- building the engine's view ---------------------------------------------------------------


def _build(
    data: dict[str, Any], odcs: OpenDataContractStandard, where: str, name: str | None
) -> Contract:
    def fail(path: str, problem: str) -> ContractError:
        return ContractError(f"contract {where}: field '{path}': {problem}")

    declared = data.get("name")
    if not isinstance(declared, str) or not CONTRACT_NAME.match(declared):
        raise fail("name", "must be the contract's <source>/<table> name, e.g. snowflake/orders")
    if name is not None and declared != name:
        raise fail("name", f"is '{declared}' but the file is the contract for '{name}'")
    schema = data.get("schema") or []
    if len(schema) != 1:
        raise fail("schema", f"must hold exactly one table, found {len(schema)}")
    table = schema[0]
    table_path = f"schema[{table.get('name')}]"
    if table.get("name") != declared.split("/")[1]:
        raise fail(f"{table_path}.name", f"must be '{declared.split('/')[1]}', the table name")

    root_custom = _custom_properties(data.get("customProperties"), _ROOT_PROPERTIES, "", fail)
    properties = table.get("properties") or []
    if not properties:
        raise fail(f"{table_path}.properties", "must list the table's columns")
    columns = [
        _column(prop, f"{table_path}.properties[{prop.get('name')}]", fail) for prop in properties
    ]
    names = [c.name for c in columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise fail(f"{table_path}.properties", f"column(s) {', '.join(duplicated)} declared twice")

    jumps = {}
    for prop, column in zip(properties, columns, strict=True):
        jump = _jump_rule(prop, f"{table_path}.properties[{column.name}]", column, names, fail)
        if jump is not None:
            jumps[column.name] = jump
    columns = [replace(c, jump=jumps[c.name]) if c.name in jumps else c for c in columns]

    quarantine_duplicates, expression_rules = _table_quality(
        table.get("quality"), f"{table_path}.quality", names, fail
    )
    foreign_keys = _foreign_keys(declared, table, properties, table_path, names, fail)
    primary_key = _primary_key(columns, table_path, fail)

    landing_format = root_custom.get("landingFormat", "csv")
    if landing_format not in FORMATS:
        raise fail("customProperties.landingFormat", f"must be one of {', '.join(FORMATS)}")
    evolution = root_custom.get("schemaEvolution", "strict")
    if evolution not in EVOLUTION_POLICIES:
        raise fail(
            "customProperties.schemaEvolution", f"must be one of {', '.join(EVOLUTION_POLICIES)}"
        )
    partition_columns = root_custom.get("partitionColumns", ["_run_date"])
    if not isinstance(partition_columns, list) or not all(
        isinstance(c, str) for c in partition_columns
    ):
        raise fail("customProperties.partitionColumns", "must be a list of column names")
    policy = _quarantine_policy(root_custom.get("quarantinePolicy"), fail)
    description = (data.get("description") or {}).get("purpose")

    return Contract(
        name=declared,
        version=str(data.get("version")),
        path=where,
        columns=tuple(columns),
        primary_key=primary_key,
        foreign_keys=tuple(foreign_keys),
        expression_rules=tuple(expression_rules),
        quarantine_duplicates=quarantine_duplicates,
        format=landing_format,
        schema_evolution=evolution,
        partition_columns=tuple(partition_columns),
        quarantine_policy=policy,
        custom=MappingProxyType(root_custom),
        description=description,
        odcs=odcs,
    )


def _column(prop: dict[str, Any], path: str, fail: Callable[..., ContractError]) -> Column:
    name = prop["name"]
    if not RULE_ID_PATTERN.match(f"{name}:type"):
        raise fail(f"{path}.name", "must be a plain column name (letters, digits, underscore)")
    logical = prop.get("logicalType")
    if logical not in _LOGICAL_TYPES:
        raise fail(
            f"{path}.logicalType", f"must be one of {', '.join(_LOGICAL_TYPES)} (got {logical!r})"
        )
    physical = prop.get("physicalType")
    if not isinstance(physical, str):
        raise fail(f"{path}.physicalType", "is required: the Spark type bronze stores")
    try:
        data_type = parse_physical_type(physical)
    except ValueError as exc:
        raise fail(f"{path}.physicalType", str(exc)) from None
    if not isinstance(data_type, _LOGICAL_TYPES[logical]):
        raise fail(
            f"{path}.physicalType",
            f"'{physical}' cannot hold logical type '{logical}'",
        )

    options = prop.get("logicalTypeOptions") or {}
    unsupported = sorted(set(options) - _SUPPORTED_OPTIONS.get(logical, set()))
    if unsupported:
        raise fail(
            f"{path}.logicalTypeOptions.{unsupported[0]}",
            f"is not enforced by the {ENGINE} engine for logical type '{logical}'",
        )
    pattern = options.get("pattern")
    fmt = options.get("format")
    datetime_format = None
    if logical == "string" and fmt is not None:
        if fmt not in STRING_FORMATS:
            raise fail(
                f"{path}.logicalTypeOptions.format",
                f"string format '{fmt}' is not enforced; use one of {', '.join(STRING_FORMATS)} "
                "or a pattern",
            )
        if pattern is not None:
            raise fail(f"{path}.logicalTypeOptions", "set either pattern or format, not both")
        pattern = STRING_FORMATS[fmt]
    elif logical in ("date", "timestamp"):
        datetime_format = fmt
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise fail(
                f"{path}.logicalTypeOptions.pattern", f"is not a valid regex: {exc}"
            ) from None

    custom = _custom_properties(prop.get("customProperties"), _COLUMN_PROPERTIES, path, fail)
    allowed, allowed_source, ignore_case = _allowed_values(prop, custom, logical, path, fail)
    return Column(
        name=name,
        logical_type=logical,
        physical_type=physical,
        data_type=data_type,
        required=bool(prop.get("required", False)),
        primary_key=bool(prop.get("primaryKey", False)),
        primary_key_position=prop.get("primaryKeyPosition"),
        unique=bool(prop.get("unique", False)),
        pattern=pattern,
        allowed_values=allowed,
        allowed_values_source=allowed_source,
        ignore_case=ignore_case,
        range=_range(options, logical, path, fail),
        not_after_delivery=_not_after_delivery(custom, logical, path, fail),
        datetime_format=datetime_format,
        description=prop.get("description"),
    )


def _not_after_delivery(
    custom: dict[str, Any], logical: str, path: str, fail: Callable[..., ContractError]
) -> dt.timedelta | None:
    """The ``notAfterDelivery`` tolerance of a date or timestamp column (``"1 day"``)."""
    if "notAfterDelivery" not in custom:
        return None
    where = f"{path}.customProperties.notAfterDelivery"
    if logical not in ("date", "timestamp"):
        raise fail(where, "only applies to date and timestamp columns")
    tolerance = parse_duration(custom["notAfterDelivery"])
    if tolerance is None:
        raise fail(where, f"must be a duration such as {DURATION_EXAMPLES}")
    return tolerance


def _allowed_values(
    prop: dict[str, Any],
    custom: dict[str, Any],
    logical: str,
    path: str,
    fail: Callable[..., ContractError],
) -> tuple[frozenset[str] | None, str | None, bool]:
    code_list = custom.get("allowedValues")
    enum = prop.get("enum")
    if code_list is not None and enum:
        raise fail(path, "declare allowed values either as enum or as allowedValues, not both")
    ignore_case = custom.get("ignoreCase")
    if ignore_case is not None and not isinstance(ignore_case, bool):
        raise fail(f"{path}.customProperties.ignoreCase", "must be true or false")
    if code_list is not None:
        if code_list not in CODE_LISTS:
            raise fail(
                f"{path}.customProperties.allowedValues",
                f"unknown code list '{code_list}'; use one of {', '.join(CODE_LISTS)}",
            )
        values = CODE_LISTS[code_list]()
        return values, code_list, True if ignore_case is None else ignore_case
    if enum:
        if logical != "string":
            raise fail(f"{path}.enum", "allowed values are only enforced on string columns")
        values = frozenset(str(item["value"]) for item in enum)
        return values, "enum", bool(ignore_case)
    if ignore_case is not None:
        raise fail(f"{path}.customProperties.ignoreCase", "only applies with allowed values")
    return None, None, False


def _range(
    options: dict[str, Any], logical: str, path: str, fail: Callable[..., ContractError]
) -> Range | None:
    bounds: dict[str, Any] = {}
    for option, attribute in _RANGE_OPTIONS.items():
        if option not in options:
            continue
        raw = options[option]
        try:
            bounds[attribute] = _bound(raw, logical)
        except (ValueError, TypeError, InvalidOperation):
            raise fail(
                f"{path}.logicalTypeOptions.{option}", f"{raw!r} is not a valid {logical} bound"
            ) from None
    return Range(**bounds) if bounds else None


def _bound(raw: Any, logical: str) -> Decimal | dt.date | dt.datetime:
    if logical in ("integer", "number"):
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise TypeError
        value = Decimal(str(raw))
        # 1E+7 would become a decimal with a negative scale, which Spark rejects.
        return value.quantize(Decimal(1)) if value == value.to_integral_value() else value
    if logical == "date":
        return dt.date.fromisoformat(str(raw))
    value = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _jump_rule(
    prop: dict[str, Any],
    path: str,
    column: Column,
    names: list[str],
    fail: Callable[..., ContractError],
) -> JumpRule | None:
    rules = [
        (i, q)
        for i, q in enumerate(prop.get("quality") or [])
        if _is_engine_rule(q, f"{path}.quality[{i}]", fail)
    ]
    jump = None
    for i, rule in rules:
        where = f"{path}.quality[{i}].implementation"
        impl = rule["implementation"]
        if impl.get("check") != JUMP:
            raise fail(f"{where}.check", f"column-level {ENGINE} rules support check '{JUMP}' only")
        if column.logical_type != "number" and column.logical_type != "integer":
            raise fail(where, "the jump check needs a numeric column")
        if jump is not None:
            raise fail(where, "a column takes one jump rule")
        group_by = impl.get("groupBy") or []
        if isinstance(group_by, str):
            group_by = [group_by]
        missing = [g for g in group_by if g not in names]
        if missing:
            raise fail(f"{where}.groupBy", f"unknown column(s) {', '.join(missing)}")
        max_factor, min_rows = impl.get("maxFactor"), impl.get("minRows", 1)
        if not isinstance(max_factor, int | float) or max_factor <= 1:
            raise fail(f"{where}.maxFactor", "must be a number above 1")
        if not isinstance(min_rows, int) or min_rows < 1:
            raise fail(f"{where}.minRows", "must be a positive integer")
        extra = sorted(set(impl) - {"check", "groupBy", "maxFactor", "minRows", "history"})
        if extra:
            raise fail(f"{where}.{extra[0]}", "is not a setting of the jump check")
        order_by, history_factor = _jump_history(
            impl.get("history"), f"{where}.history", names, fail
        )
        jump = JumpRule(tuple(group_by), float(max_factor), min_rows, order_by, history_factor)
    return jump


def _jump_history(
    history: Any, where: str, names: list[str], fail: Callable[..., ContractError]
) -> tuple[str | None, float | None]:
    """``history: {orderBy: date, maxFactor: 3}`` of a jump check, as (order column, factor)."""
    if history is None:
        return None, None
    if not isinstance(history, dict):
        raise fail(where, "must be a mapping with orderBy and maxFactor")
    extra = sorted(set(history) - {"orderBy", "maxFactor"})
    if extra:
        raise fail(f"{where}.{extra[0]}", "is not a setting of the jump check's history")
    order_by, factor = history.get("orderBy"), history.get("maxFactor")
    if order_by not in names:
        raise fail(f"{where}.orderBy", f"must name a column of the table (got {order_by!r})")
    if not isinstance(factor, int | float) or factor <= 1:
        raise fail(f"{where}.maxFactor", "must be a number above 1")
    return order_by, float(factor)


def _table_quality(
    quality: list[dict[str, Any]] | None,
    path: str,
    names: list[str],
    fail: Callable[..., ContractError],
) -> tuple[bool, list[ExpressionRule]]:
    duplicates = False
    expressions: list[ExpressionRule] = []
    for i, rule in enumerate(quality or []):
        where = f"{path}[{i}]"
        if not _is_engine_rule(rule, where, fail):
            continue
        impl = rule["implementation"]
        check = impl.get("check")
        if check == "duplicate":
            duplicates = True
        elif check == "expression":
            rule_name, expression = impl.get("rule"), impl.get("expression")
            match = RULE_ID_PATTERN.match(rule_name or "")
            if not match or match["column"] not in names or match["check"] not in COLUMN_CHECKS:
                raise fail(
                    f"{where}.implementation.rule",
                    f"must be <column>:<check> with a column of this table and a check among "
                    f"{', '.join(COLUMN_CHECKS)} (got {rule_name!r})",
                )
            if not isinstance(expression, str) or not expression.strip():
                raise fail(f"{where}.implementation.expression", "must be a Spark SQL condition")
            expressions.append(ExpressionRule(rule_name, expression, rule.get("description")))
        else:
            raise fail(
                f"{where}.implementation.check",
                f"table-level {ENGINE} rules support 'duplicate' and 'expression' (got {check!r})",
            )
    return duplicates, expressions


def _is_engine_rule(rule: dict[str, Any], where: str, fail: Callable[..., ContractError]) -> bool:
    """True for a rule the compiler executes; text rules are documentation; others are errors."""
    kind = rule.get("type", "library")
    if kind == "text":
        return False
    if kind != "custom" or rule.get("engine") != ENGINE:
        raise fail(
            where,
            f"quality rules of type '{kind}' are not executed at ingestion; use type custom "
            f"with engine {ENGINE} (or type text for documentation)",
        )
    if not isinstance(rule.get("implementation"), dict):
        raise fail(f"{where}.implementation", "must be a mapping with a 'check' key")
    return True


def _foreign_keys(
    contract_name: str,
    table: dict[str, Any],
    properties: list[dict[str, Any]],
    table_path: str,
    names: list[str],
    fail: Callable[..., ContractError],
) -> list[ForeignKey]:
    keys = []
    for prop in properties:
        for i, relation in enumerate(prop.get("relationships") or []):
            where = f"{table_path}.properties[{prop['name']}].relationships[{i}]"
            target, column = _reference(contract_name, relation.get("to"), f"{where}.to", fail)
            keys.append(ForeignKey((prop["name"],), target, (column,)))
    for i, relation in enumerate(table.get("relationships") or []):
        where = f"{table_path}.relationships[{i}]"
        sources = _as_list(relation.get("from"))
        targets = _as_list(relation.get("to"))
        local = [s.rsplit(".", 1)[-1].rsplit("/", 1)[-1] for s in sources]
        unknown = [c for c in local if c not in names]
        if unknown:
            raise fail(f"{where}.from", f"unknown column(s) {', '.join(unknown)}")
        resolved = [_reference(contract_name, t, f"{where}.to", fail) for t in targets]
        if len({contract for contract, _ in resolved}) != 1:
            raise fail(f"{where}.to", "a composite key must reference a single table")
        keys.append(ForeignKey(tuple(local), resolved[0][0], tuple(c for _, c in resolved)))
    return keys


def _reference(
    contract_name: str, ref: Any, where: str, fail: Callable[..., ContractError]
) -> tuple[str, str]:
    """Resolve ``<file>.yaml#/schema/<table>/properties/<column>`` (file relative to this one)."""
    if not isinstance(ref, str) or "#" not in ref:
        raise fail(
            where,
            "reference another contract as '<file>.yaml#/schema/<table>/properties/<column>' "
            f"(got {ref!r})",
        )
    file, pointer = ref.split("#", 1)
    parts = pointer.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "schema" or parts[2] != "properties":
        raise fail(where, f"'{pointer}' is not /schema/<table>/properties/<column>")
    target_path = posixpath.normpath(posixpath.join(posixpath.dirname(contract_name), file))
    target = target_path.removesuffix(".yaml").removesuffix(".yml")
    if not CONTRACT_NAME.match(target) or target.split("/")[1] != parts[1]:
        raise fail(where, f"'{file}' does not name the contract of table '{parts[1]}'")
    return target, parts[3]


def _primary_key(
    columns: list[Column], table_path: str, fail: Callable[..., ContractError]
) -> list[str]:
    keyed = [c for c in columns if c.primary_key]
    positions = [c.primary_key_position for c in keyed]
    if len(keyed) > 1 and (None in positions or len(set(positions)) != len(positions)):
        raise fail(
            f"{table_path}.properties",
            "a composite primary key needs a distinct primaryKeyPosition on each key column",
        )
    return [c.name for c in sorted(keyed, key=lambda c: c.primary_key_position or 0)]


def _quarantine_policy(raw: Any, fail: Callable[..., ContractError]) -> QuarantinePolicy:
    if raw is None:
        return QuarantinePolicy()
    where = "customProperties.quarantinePolicy"
    if not isinstance(raw, dict):
        raise fail(where, "must be a mapping with mode, maxRatio and minRows")
    extra = sorted(set(raw) - {"mode", "maxRatio", "minRows"})
    if extra:
        raise fail(f"{where}.{extra[0]}", "is not a quarantine policy setting")
    policy = QuarantinePolicy(
        mode=raw.get("mode", "quarantine"),
        max_ratio=raw.get("maxRatio", QuarantinePolicy.max_ratio),
        min_rows=raw.get("minRows", QuarantinePolicy.min_rows),
    )
    if policy.mode not in ("quarantine", "fail"):
        raise fail(f"{where}.mode", "must be 'quarantine' or 'fail'")
    if not isinstance(policy.max_ratio, int | float) or not 0 <= policy.max_ratio <= 1:
        raise fail(f"{where}.maxRatio", "must be a number between 0 and 1")
    if not isinstance(policy.min_rows, int) or policy.min_rows < 0:
        raise fail(f"{where}.minRows", "must be a non-negative integer")
    return policy


def _custom_properties(
    items: list[dict[str, Any]] | None,
    known: set[str],
    path: str,
    fail: Callable[..., ContractError],
) -> dict[str, Any]:
    """Custom properties as a dict; this engine's must be known, other vendors' are kept."""
    found: dict[str, Any] = {}
    prefix = f"{path}." if path else ""
    for i, item in enumerate(items or []):
        key = item.get("property")
        vendor = item.get("vendor")
        if vendor not in (None, VENDOR):
            continue
        if key not in known:
            raise fail(
                f"{prefix}customProperties[{i}].property",
                f"unknown property {key!r}; known: {', '.join(sorted(known))}",
            )
        if key in found:
            raise fail(f"{prefix}customProperties[{i}].property", f"'{key}' is set twice")
        found[key] = item.get("value")
    return found


# --- helpers ----------------------------------------------------------------------------------


def _split_top_level(text: str) -> tuple[str, str]:
    depth = 0
    for i, char in enumerate(text):
        if char == "<" or char == "(":
            depth += 1
        elif char == ">" or char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            return text[:i], text[i + 1 :]
    raise ValueError(f"'map<{text}>' needs a key type and a value type")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return []


def _field_path(data: Any, path: Iterable[Any]) -> str:
    """``schema[orders].properties[quantity].logicalType`` for the JSON path of a field."""
    out: list[str] = []
    node = data
    for part in path:
        if isinstance(part, int) and isinstance(node, list):
            item = node[part] if part < len(node) else None
            label = item.get("name") if isinstance(item, dict) else None
            out[-1:] = [f"{out[-1] if out else ''}[{label if label else part}]"]
            node = item
        else:
            out.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(out) or "<root>"


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
