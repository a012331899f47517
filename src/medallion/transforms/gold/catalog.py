"""The gold tables the warehouse publisher publishes, in the order it publishes them.

They are the tables with a gold contract (``quality/contracts/gold/<table>.yaml``). What each
merges on is its contract's primary key, stated there once and read when a table is published
(``medallion.quality.table_contracts.primary_key("gold", table)``), not here: listing the tables
parses no contract, so importing the job registry (every CLI command, Airflow's DAG parsing)
stays cheap. Each key is unique in its table (the gold job guarantees it, the contract's quality
rules check it and the publisher checks it again). SCD2 rows merge on the surrogate key, so
every history row is its own warehouse row.
"""

from __future__ import annotations

from medallion.quality.table_contracts import table_names

GOLD_TABLES: tuple[str, ...] = table_names("gold")
