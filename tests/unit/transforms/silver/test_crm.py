"""CRM accounts, contacts and opportunities in silver: current state, orphans flagged."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import crm

D = dt.date
TS = dt.datetime


def test_accounts_flag_unknown_customers_but_not_prospects(spark):
    versions = spark.createDataFrame(
        [
            ("A1", "C1", TS(2024, 1, 1), D(2025, 1, 13), "h1"),
            ("A2", "C404", TS(2024, 1, 1), D(2025, 1, 13), "h2"),
            ("A3", None, TS(2024, 1, 1), D(2025, 1, 13), "h3"),
        ],
        "account_id string, customer_id string, updated_at timestamp, _run_date date, _record_hash string",
    )
    for column in crm.ACCOUNT_COLUMNS:
        if column not in versions.columns:
            versions = versions.withColumn(
                column, __import__("pyspark.sql.functions").sql.functions.lit(None).cast("string")
            )
    known = spark.createDataFrame([("C1",)], "customer_id string")
    result = crm.current_accounts(versions, known).select(
        "account_id", "is_prospect", "has_unknown_customer"
    )
    assertDataFrameEqual(
        result,
        [Row(account_id="A1", is_prospect=False, has_unknown_customer=False),
         Row(account_id="A2", is_prospect=False, has_unknown_customer=True),
         Row(account_id="A3", is_prospect=True, has_unknown_customer=False)],
    )  # fmt: skip
