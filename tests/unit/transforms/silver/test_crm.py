"""CRM accounts, contacts and opportunities in silver: current state, orphans flagged."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import crm

D = dt.date
TS = dt.datetime


ACCOUNTS = (
    "account_id string, account_name string, account_type string, industry string, "
    "annual_revenue decimal(18,2), number_of_employees int, billing_country string, "
    "owner_id string, customer_id string, created_at timestamp, updated_at timestamp, "
    "_run_date date, _record_hash string"
)


def _account(account_id, customer_id, record_hash):
    return (account_id, f"Name {account_id}", "Customer", "Retail", Decimal("1000.00"), 12, "DE",
            "U1", customer_id, TS(2023, 1, 1), TS(2024, 1, 1), D(2025, 1, 13), record_hash)  # fmt: skip


def test_accounts_flag_unknown_customers_but_not_prospects(spark):
    known, unknown, prospect = (
        _account("A1", "C1", "h1"),
        _account("A2", "C404", "h2"),
        _account("A3", None, "h3"),
    )
    versions = spark.createDataFrame([known, unknown, prospect], ACCOUNTS)  # fmt: skip
    customer_base = spark.createDataFrame([("C1",)], "customer_id string")

    result = crm.current_accounts(versions, customer_base)

    expected = spark.createDataFrame(
        [(*known, False, False), (*unknown, False, True), (*prospect, True, False)],
        ACCOUNTS + ", is_prospect boolean, has_unknown_customer boolean",
    )
    assertDataFrameEqual(result, expected)


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
