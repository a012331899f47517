"""Customers in silver: current state, standardised, aligned with their CRM account.

The business key between the systems is ``External_Customer_Id__c`` on the CRM account, which
holds the ``customer_id``. When two accounts point at one customer (an ambiguous link) the
oldest account wins (earliest ``created_at``, then the smallest id), so the choice is stable as
accounts change; ``crm_account_count`` keeps the number of candidates so the ambiguity is
visible. The primary contact of an account is likewise its oldest contact.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import (
    clean_string,
    latest_per_key,
    lower_email,
    upper_code,
    version_order,
)

CUSTOMER_BASE_COLUMNS = [
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "segment",
    "created_at",
    "updated_at",
    "_run_date",
    "_record_hash",
]
CRM_COLUMNS = [
    "crm_account_id",
    "crm_account_name",
    "crm_industry",
    "crm_account_count",
    "crm_account_updated_at",
    "primary_contact_id",
    "primary_contact_name",
    "primary_contact_email",
]


def customers_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("customer_id").alias("customer_id"),
        clean_string("first_name").alias("first_name"),
        clean_string("last_name").alias("last_name"),
        lower_email("email").alias("email"),
        clean_string("phone").alias("phone"),
        upper_code("country").alias("country"),
        F.lower(clean_string("segment")).alias("segment"),
        F.col("created_at"),
        F.col("updated_at"),
        F.col("_run_date").cast(T.DateType()).alias("_run_date"),
        F.col("_record_hash"),
    )


def current_customers(versions: DataFrame) -> DataFrame:
    """One row per customer: the latest version."""
    return versions.transform(latest_per_key(["customer_id"], version_order("updated_at"))).select(
        *CUSTOMER_BASE_COLUMNS
    )


def primary_contacts(contacts: DataFrame) -> DataFrame:
    """One contact per account: the oldest (then smallest id)."""
    order = [F.col("created_at").asc_nulls_last(), F.col("contact_id").asc()]
    return (
        contacts.where(F.col("account_id").isNotNull())
        .transform(latest_per_key(["account_id"], order))
        .select(
            "account_id",
            F.col("contact_id").alias("primary_contact_id"),
            F.concat_ws(" ", "first_name", "last_name").alias("primary_contact_name"),
            F.col("email").alias("primary_contact_email"),
        )
    )


def customer_account_links(accounts: DataFrame) -> DataFrame:
    """One account per customer (the oldest), with how many accounts claimed that customer."""
    linked = accounts.where(F.col("customer_id").isNotNull())
    counts = linked.groupBy("customer_id").agg(
        F.count(F.lit(1)).cast(T.IntegerType()).alias("crm_account_count")
    )
    order = [F.col("created_at").asc_nulls_last(), F.col("account_id").asc()]
    chosen = linked.transform(latest_per_key(["customer_id"], order)).select(
        "customer_id",
        F.col("account_id").alias("crm_account_id"),
        F.col("account_name").alias("crm_account_name"),
        F.col("industry").alias("crm_industry"),
        F.col("updated_at").alias("crm_account_updated_at"),
    )
    return chosen.join(counts, on="customer_id", how="inner")


def align_with_crm(accounts: DataFrame, contacts: DataFrame):
    """Attach each customer's CRM account, industry and primary contact (nulls when none)."""

    def transform(customers: DataFrame) -> DataFrame:
        links = customer_account_links(accounts).join(
            primary_contacts(contacts).withColumnRenamed("account_id", "crm_account_id"),
            on="crm_account_id",
            how="left",
        )
        return (
            customers.join(links, on="customer_id", how="left")
            .withColumn("crm_account_count", F.coalesce(F.col("crm_account_count"), F.lit(0)))
            .select(*CUSTOMER_BASE_COLUMNS, *CRM_COLUMNS)
        )

    return transform
