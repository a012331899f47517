"""Hand-made customer and CRM account versions, as bronze holds them, and the dimension they
specify: shared by the dimension's history and MERGE tests."""

from __future__ import annotations

import datetime as dt

from medallion.transforms.gold.dim_customer import dim_customer

TS = dt.datetime
CUSTOMER_VERSIONS = (
    "customer_id string, first_name string, last_name string, email string, country string, "
    "segment string, updated_at timestamp, _run_date date, _record_hash string"
)
ACCOUNT_VERSIONS = (
    "account_id string, customer_id string, industry string, created_at timestamp, "
    "updated_at timestamp, _run_date date, _record_hash string"
)
CURRENT = "customer_id string, first_name string, last_name string, crm_account_name string"


def customer(cid, segment, updated, run_date, country="DE", first="Ann", email=None):
    email = email or f"{cid.lower()}@x.io"
    return (
        cid,
        first,
        "Lee",
        email,
        country,
        segment,
        updated,
        run_date,
        f"{cid}|{segment}|{country}|{updated}|{first}",
    )


OLD_ACCOUNT = TS(2020, 1, 1)


def account(aid, cid, industry, updated, run_date, created=OLD_ACCOUNT):
    return (aid, cid, industry, created, updated, run_date, f"{aid}|{cid}|{industry}|{updated}")


def build(spark, customers, accounts=(), names=None):
    versions = spark.createDataFrame(list(customers), CUSTOMER_VERSIONS)
    links = spark.createDataFrame(list(accounts), ACCOUNT_VERSIONS)
    # Silver's current customers: the descriptive attributes (names) of the latest version.
    latest = {}
    for row in sorted(customers, key=lambda r: (r[6], r[7], r[8])):
        latest[row[0]] = (row[0], row[1], row[2], (names or {}).get(row[0]))
    current = spark.createDataFrame(list(latest.values()), CURRENT)
    return dim_customer(versions, links, current)
