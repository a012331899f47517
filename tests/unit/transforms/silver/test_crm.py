"""CRM accounts, contacts and opportunities in silver: current state, orphans flagged."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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


UTC = dt.UTC
CONTACTS = (
    "contact_id string, account_id string, first_name string, last_name string, email string, "
    "phone string, title string, created_at timestamp, updated_at timestamp, _run_date date, "
    "_record_hash string"
)
OPPORTUNITIES = (
    "opportunity_id string, account_id string, opportunity_name string, stage_name string, "
    "amount decimal(18,2), currency string, probability int, close_date date, is_closed boolean, "
    "is_won boolean, created_at timestamp, updated_at timestamp, _run_date date, "
    "_record_hash string"
)
CREATED = TS(2024, 1, 1, tzinfo=UTC)
T1, T2 = TS(2025, 1, 10, tzinfo=UTC), TS(2025, 1, 11, tzinfo=UTC)


def _current_accounts(spark):
    return spark.createDataFrame(
        [("A1", "Acme", False), ("A2", "Beta", True)],
        "account_id string, account_name string, has_unknown_customer boolean",
    )


def _contact(contact_id, account_id, title, updated_at, run_date, record_hash):
    return (contact_id, account_id, "Ann", "Lee", "ann@x.io", "+49 1", title, CREATED, updated_at,
            run_date, record_hash)  # fmt: skip


def test_current_contacts_keep_the_latest_version_and_flag_an_unknown_account(spark):
    promoted = _contact("K1", "A1", "CTO", T2, D(2025, 1, 11), "a")
    old_title = _contact("K1", "A1", "Engineer", T1, D(2025, 1, 12), "b")  # older, later run
    first_delivery = _contact("K2", "A2", "Buyer", T1, D(2025, 1, 10), "z")
    redelivered = _contact("K2", "A404", "Buyer", T1, D(2025, 1, 11), "a")  # same time, later run
    no_account = _contact("K3", None, "Consultant", T1, D(2025, 1, 10), "c")
    versions = spark.createDataFrame(
        [promoted, old_title, first_delivery, redelivered, no_account], CONTACTS
    )

    result = crm.current_contacts(versions, _current_accounts(spark))

    expected = spark.createDataFrame(
        [(*promoted, False), (*redelivered, True), (*no_account, True)],
        CONTACTS + ", has_unknown_account boolean",
    )
    assertDataFrameEqual(result, expected)


def _opportunity(opportunity_id, account_id, stage, amount, updated_at, run_date, record_hash):
    closed = stage.startswith("Closed")
    return (opportunity_id, account_id, f"Deal {opportunity_id}", stage, Decimal(amount), "EUR",
            100 if stage == "Closed Won" else 40, D(2025, 3, 31), closed, stage == "Closed Won",
            CREATED, updated_at, run_date, record_hash)  # fmt: skip


def test_current_opportunities_keep_the_latest_version_and_flag_an_unknown_account(spark):
    won = _opportunity("OP1", "A1", "Closed Won", "900.00", T2, D(2025, 1, 11), "a")
    open_ = _opportunity("OP1", "A1", "Negotiation", "1000.00", T1, D(2025, 1, 12), "b")
    smaller_hash = _opportunity("OP2", "A404", "Prospecting", "10.00", T1, D(2025, 1, 10), "1")
    larger_hash = _opportunity("OP2", "A404", "Qualification", "20.00", T1, D(2025, 1, 10), "2")
    on_a2 = _opportunity("OP3", "A2", "Prospecting", "5.00", T1, D(2025, 1, 10), "c")
    versions = spark.createDataFrame(
        [won, open_, smaller_hash, larger_hash, on_a2], OPPORTUNITIES
    ).repartition(2)

    result = crm.current_opportunities(versions, _current_accounts(spark))

    expected = spark.createDataFrame(
        [(*won, False), (*larger_hash, True), (*on_a2, False)],
        OPPORTUNITIES + ", has_unknown_account boolean",
    )
    assertDataFrameEqual(result, expected)
