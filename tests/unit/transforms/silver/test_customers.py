"""Customers in silver: standardised, current, aligned with their CRM account and primary contact."""

from __future__ import annotations

import datetime as dt

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
            ("A1", "Alpha", "Banking", "C1", TS(2024, 1, 1), TS(2024, 1, 1)),  # oldest claim wins
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
    base_schema = (
        "customer_id string, first_name string, last_name string, email string, phone string, "
        "country string, segment string, created_at timestamp, updated_at timestamp, "
        "_run_date date, _record_hash string"
    )
    c1 = (
        "C1",
        "Ann",
        "Lee",
        "ann@c1.io",
        None,
        "DE",
        "smb",
        TS(2023, 1, 1),
        TS(2024, 1, 1),
        D(2025, 1, 13),
        "h1",
    )
    c2 = (
        "C2",
        "Bo",
        "Ek",
        "bo@c2.io",
        None,
        "SE",
        "enterprise",
        TS(2023, 1, 1),
        TS(2024, 1, 1),
        D(2025, 1, 13),
        "h2",
    )
    c3 = (
        "C3",
        "Cy",
        "Fo",
        "cy@c3.io",
        None,
        "FR",
        "smb",
        TS(2023, 1, 1),
        TS(2024, 1, 1),
        D(2025, 1, 13),
        "h3",
    )
    base = spark.createDataFrame([c1, c2, c3], base_schema)  # fmt: skip

    result = base.transform(customers.align_with_crm(accounts, contacts))

    expected = spark.createDataFrame(
        [(*c1, "A1", "Alpha", "Banking", 2, TS(2024, 1, 1), "K1", "Ann Lee", "ann@x.io"),
         (*c2, "A3", "Gamma", "Energy", 1, TS(2024, 3, 1), "K3", "Bo Ek", "bo@x.io"),
         (*c3, None, None, None, 0, None, None, None, None)],
        base_schema + ", crm_account_id string, crm_account_name string, crm_industry string, "
        "crm_account_count int, crm_account_updated_at timestamp, primary_contact_id string, "
        "primary_contact_name string, primary_contact_email string",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def test_customers_are_standardised(spark):
    schema = (
        "customer_id string, first_name string, last_name string, email string, phone string, "
        "country string, segment string, created_at timestamp, updated_at timestamp, "
        "_run_date date, _record_hash string"
    )
    bronze = spark.createDataFrame(
        [("C1", " José ", "Núñez", " Jose.Nunez@Example.COM ", "+34 600", " es ", "Enterprise", TS(2024, 1, 1), TS(2024, 1, 2), D(2025, 1, 13), "h", "r1", "customers.csv"),
         (" C2", "Ann", " ", "", " ", "de", " SMB ", TS(2024, 1, 1), TS(2024, 1, 2), D(2025, 1, 13), "h2", "r1", "customers.csv")],
        schema + ", _run_id string, _source_file string",
    )  # fmt: skip
    result = customers.customers_from_bronze(bronze)
    expected = spark.createDataFrame(
        [("C1", "José", "Núñez", "jose.nunez@example.com", "+34 600", "ES", "enterprise", TS(2024, 1, 1), TS(2024, 1, 2), D(2025, 1, 13), "h"),
         ("C2", "Ann", None, None, None, "DE", "smb", TS(2024, 1, 1), TS(2024, 1, 2), D(2025, 1, 13), "h2")],
        schema,
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


UTC = dt.UTC


def test_primary_contact_is_the_oldest_then_the_smallest_id_and_needs_an_account(spark):
    contacts = spark.createDataFrame(
        [("K2", "A1", "Zoë", "Müller", "zoe@x.io", TS(2024, 2, 1, tzinfo=UTC)),
         ("K1", "A1", "Ann", "Lee", "ann@x.io", TS(2024, 1, 2, tzinfo=UTC)),  # oldest
         ("K4", "A2", "Bo", None, None, TS(2024, 3, 1, tzinfo=UTC)),
         ("K3", "A2", "Cy", "Ek", "cy@x.io", TS(2024, 3, 1, tzinfo=UTC)),  # same time: smaller id
         ("K5", "A3", "Di", "Fo", "di@x.io", None),  # no created_at: sorts after any known time
         ("K6", "A3", "Ed", None, "ed@x.io", TS(2024, 6, 1, tzinfo=UTC)),
         ("K0", None, "Al", "Oldest", "al@x.io", TS(2020, 1, 1, tzinfo=UTC))],  # no account
        "contact_id string, account_id string, first_name string, last_name string, "
        "email string, created_at timestamp",
    )  # fmt: skip

    result = customers.primary_contacts(contacts)

    expected = spark.createDataFrame(
        [("A1", "K1", "Ann Lee", "ann@x.io"),
         ("A2", "K3", "Cy Ek", "cy@x.io"),
         ("A3", "K6", "Ed", "ed@x.io")],  # a missing last name leaves no trailing space
        "account_id string, primary_contact_id string, primary_contact_name string, "
        "primary_contact_email string",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def test_customer_account_link_is_the_oldest_account_and_counts_every_claim(spark):
    jan, may = TS(2024, 1, 1, tzinfo=UTC), TS(2024, 5, 1, tzinfo=UTC)
    edited = TS(2025, 1, 10, tzinfo=UTC)
    accounts = _accounts(
        spark,
        [("A2", "Beta", "Retail", "C1", may, edited),
         ("A1", "Alpha", "Banking", "C1", jan, edited),  # the oldest claim on C1 wins
         ("A5", "Epsilon", "Energy", "C2", jan, may),
         ("A3", "Gamma", "Energy", "C2", jan, jan),  # same created_at: the smaller id wins
         ("A6", "Zeta", "Retail", "C3", None, may),  # the only claim, even without created_at
         ("A4", "Prospect", "Energy", None, jan, jan)],  # a prospect links to no customer
    )  # fmt: skip

    result = customers.customer_account_links(accounts)

    expected = spark.createDataFrame(
        [("C1", "A1", "Alpha", "Banking", edited, 2),
         ("C2", "A3", "Gamma", "Energy", jan, 2),
         ("C3", "A6", "Zeta", "Retail", may, 1)],
        "customer_id string, crm_account_id string, crm_account_name string, "
        "crm_industry string, crm_account_updated_at timestamp, crm_account_count int",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)
