"""Customers in silver: standardised, current, aligned with their CRM account and primary contact."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from medallion.transforms.silver import customers

D = dt.date
TS = dt.datetime


def _accounts(spark, rows):
    return spark.createDataFrame(
        rows,
        "account_id string, account_name string, industry string, customer_id string, created_at timestamp, updated_at timestamp",
    )


def test_alignment_picks_oldest_account_counts_ambiguity_and_keeps_unlinked(spark):
    accounts = _accounts(
        spark,
        [
            ("A2", "Beta", "Retail", "C1", TS(2024, 5, 1), TS(2024, 5, 1)),
            (
                "A1",
                "Alpha",
                "Banking",
                "C1",
                TS(2024, 1, 1),
                TS(2024, 1, 1),
            ),  # oldest claim on C1 wins
            ("A3", "Gamma", "Energy", "C2", TS(2024, 3, 1), TS(2024, 3, 1)),
            ("A4", "Prospect", "Energy", None, TS(2024, 3, 1), TS(2024, 3, 1)),
        ],
    )
    contacts = spark.createDataFrame(
        [
            ("K2", "A1", "Zoë", "Müller", "zoe@x.io", TS(2024, 2, 1)),
            ("K1", "A1", "Ann", "Lee", "ann@x.io", TS(2024, 1, 2)),  # oldest contact is primary
            ("K3", "A3", "Bo", "Ek", "bo@x.io", TS(2024, 3, 2)),
        ],
        "contact_id string, account_id string, first_name string, last_name string, email string, created_at timestamp",
    )
    base = spark.createDataFrame(
        [("C1",), ("C2",), ("C3",)], "customer_id string"
    ).selectExpr("customer_id", *[f"cast(null as string) as {c}" for c in ("first_name", "last_name", "email", "phone", "country", "segment")], "cast(null as timestamp) as created_at", "cast(null as timestamp) as updated_at", "cast(null as date) as _run_date", "cast(null as string) as _record_hash")  # fmt: skip
    result = base.transform(customers.align_with_crm(accounts, contacts)).select(
        "customer_id",
        "crm_account_id",
        "crm_industry",
        "crm_account_count",
        "primary_contact_id",
        "primary_contact_name",
    )
    expected = [
        Row(customer_id="C1", crm_account_id="A1", crm_industry="Banking", crm_account_count=2, primary_contact_id="K1", primary_contact_name="Ann Lee"),
        Row(customer_id="C2", crm_account_id="A3", crm_industry="Energy", crm_account_count=1, primary_contact_id="K3", primary_contact_name="Bo Ek"),
        Row(customer_id="C3", crm_account_id=None, crm_industry=None, crm_account_count=0, primary_contact_id=None, primary_contact_name=None),
    ]  # fmt: skip
    assertDataFrameEqual(result, expected)


def test_customers_are_standardised(spark):
    bronze = spark.createDataFrame(
        [("C1", " José ", "Núñez", " Jose.Nunez@Example.COM ", "+34 600", " es ", "Enterprise", TS(2024, 1, 1), TS(2024, 1, 2), D(2025, 1, 13), "h")],
        "customer_id string, first_name string, last_name string, email string, phone string, country string, segment string, created_at timestamp, updated_at timestamp, _run_date date, _record_hash string",
    )  # fmt: skip
    row = customers.customers_from_bronze(bronze).first()
    assert (row.first_name, row.email, row.country, row.segment) == (
        "José",
        "jose.nunez@example.com",
        "ES",
        "enterprise",
    )
