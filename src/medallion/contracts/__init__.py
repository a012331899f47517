"""Data contracts: ODCS v3 files for every source table, their loader and the rule compiler.

The YAML contracts live beside this module as ``<source>/<table>.yaml`` and ship in the wheel.
``docs/DATA_CONTRACTS.md`` explains how they are written and lists every rule id.

API::

    load_contract(name: str) -> Contract
        "snowflake/orders" etc.; validated against ODCS and this engine, cached.
        Contract: .name .columns (ordered Column: name, logical_type, physical_type,
        data_type, required, ...) .primary_key .foreign_keys .spark_schema() .custom
        .format .schema_evolution .quarantine_policy .rule_ids()
    load_contract_file(path, name=None) -> Contract
    contract_names() -> list[str]

    apply_contract(contract, raw, *, run_id, run_date, ingest_ts) -> ContractSplit
        Pure: ``raw`` has one string column per contract column plus _source_file,
        _raw_record (null: re-create from the fields), _line (nullable long), _malformed.
        ContractSplit.valid: contract columns typed + _run_id, _run_date, _ingest_ts,
        _source_file, _record_hash. ContractSplit.quarantined: QUARANTINE_SCHEMA
        (_run_id, _run_date, _ingest_ts, _source_file, _line, _raw_record, _reasons, _record_hash).

    read_landing(spark, contract, folder) -> LandingRead   (CSV by header name, JSON lines)
"""

from medallion.contracts.compiler import (
    BRONZE_METADATA,
    QUARANTINE_SCHEMA,
    ContractSplit,
    apply_contract,
    quarantine_reason_counts,
)
from medallion.contracts.loader import (
    contract_names,
    load_contract,
    load_contract_file,
    parse_contract,
)
from medallion.contracts.model import (
    RECORD_DUPLICATE,
    RECORD_ENCODING,
    RECORD_MALFORMED,
    Column,
    Contract,
    ContractError,
    ForeignKey,
    rule_id,
)
from medallion.contracts.readers import LandingRead, read_landing

__all__ = [
    "BRONZE_METADATA",
    "QUARANTINE_SCHEMA",
    "RECORD_DUPLICATE",
    "RECORD_ENCODING",
    "RECORD_MALFORMED",
    "Column",
    "Contract",
    "ContractError",
    "ContractSplit",
    "ForeignKey",
    "LandingRead",
    "apply_contract",
    "contract_names",
    "load_contract",
    "load_contract_file",
    "parse_contract",
    "quarantine_reason_counts",
    "read_landing",
    "rule_id",
]
