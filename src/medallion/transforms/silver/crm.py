"""CRM accounts, contacts and opportunities in silver: snake_case, current state, orphans flagged."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.transforms.common import (
    MONEY_TYPE,
    clean_string,
    latest_per_key,
    lower_email,
    upper_code,
    version_order,
)

ACCOUNT_COLUMNS = [
    "account_id",
    "account_name",
    "account_type",
    "industry",
    "annual_revenue",
    "number_of_employees",
    "billing_country",
    "owner_id",
    "customer_id",
    "created_at",
    "updated_at",
    "_run_date",
    "_record_hash",
]
CONTACT_COLUMNS = [
    "contact_id",
    "account_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "title",
    "created_at",
    "updated_at",
    "_run_date",
    "_record_hash",
]
OPPORTUNITY_COLUMNS = [
    "opportunity_id",
    "account_id",
    "opportunity_name",
    "stage_name",
    "amount",
    "currency",
    "probability",
    "close_date",
    "is_closed",
    "is_won",
    "created_at",
    "updated_at",
    "_run_date",
    "_record_hash",
]


def _lineage() -> list:
    return [F.col("_run_date").cast(T.DateType()).alias("_run_date"), F.col("_record_hash")]


def accounts_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("Id").alias("account_id"),
        clean_string("Name").alias("account_name"),
        clean_string("Type").alias("account_type"),
        clean_string("Industry").alias("industry"),
        F.col("AnnualRevenue").cast(MONEY_TYPE).alias("annual_revenue"),
        F.col("NumberOfEmployees").cast(T.IntegerType()).alias("number_of_employees"),
        upper_code("BillingCountry").alias("billing_country"),
        clean_string("OwnerId").alias("owner_id"),
        clean_string("External_Customer_Id__c").alias("customer_id"),
        F.col("CreatedDate").alias("created_at"),
        F.col("LastModifiedDate").alias("updated_at"),
        *_lineage(),
    )


def contacts_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("Id").alias("contact_id"),
        clean_string("AccountId").alias("account_id"),
        clean_string("FirstName").alias("first_name"),
        clean_string("LastName").alias("last_name"),
        lower_email("Email").alias("email"),
        clean_string("Phone").alias("phone"),
        clean_string("Title").alias("title"),
        F.col("CreatedDate").alias("created_at"),
        F.col("LastModifiedDate").alias("updated_at"),
        *_lineage(),
    )


def opportunities_from_bronze(bronze: DataFrame) -> DataFrame:
    return bronze.select(
        clean_string("Id").alias("opportunity_id"),
        clean_string("AccountId").alias("account_id"),
        clean_string("Name").alias("opportunity_name"),
        clean_string("StageName").alias("stage_name"),
        F.col("Amount").cast(MONEY_TYPE).alias("amount"),
        upper_code("CurrencyIsoCode").alias("currency"),
        F.col("Probability").cast(T.IntegerType()).alias("probability"),
        F.col("CloseDate").alias("close_date"),
        F.col("IsClosed").alias("is_closed"),
        F.col("IsWon").alias("is_won"),
        F.col("CreatedDate").alias("created_at"),
        F.col("LastModifiedDate").alias("updated_at"),
        *_lineage(),
    )


def current_accounts(versions: DataFrame, customers: DataFrame) -> DataFrame:
    """Latest version per account; ``has_unknown_customer`` when its customer id matches none.

    Prospects (no customer id) are not orphans: they have no customer by design.
    """
    known = customers.select(F.col("customer_id").alias("_known_customer")).distinct()
    current = versions.transform(latest_per_key(["account_id"], version_order("updated_at")))
    return (
        current.join(known, on=F.col("customer_id") == F.col("_known_customer"), how="left")
        .withColumn("is_prospect", F.col("customer_id").isNull())
        .withColumn(
            "has_unknown_customer",
            F.col("customer_id").isNotNull() & F.col("_known_customer").isNull(),
        )
        .select(*ACCOUNT_COLUMNS, "is_prospect", "has_unknown_customer")
    )


def _flag_unknown_account(current: DataFrame, accounts: DataFrame, columns: list[str]) -> DataFrame:
    known = accounts.select(F.col("account_id").alias("_known_account"))
    return (
        current.join(known, on=F.col("account_id") == F.col("_known_account"), how="left")
        .withColumn("has_unknown_account", F.col("_known_account").isNull())
        .select(*columns, "has_unknown_account")
    )


def current_contacts(versions: DataFrame, accounts: DataFrame) -> DataFrame:
    current = versions.transform(latest_per_key(["contact_id"], version_order("updated_at")))
    return _flag_unknown_account(current, accounts, CONTACT_COLUMNS)


def current_opportunities(versions: DataFrame, accounts: DataFrame) -> DataFrame:
    current = versions.transform(latest_per_key(["opportunity_id"], version_order("updated_at")))
    return _flag_unknown_account(current, accounts, OPPORTUNITY_COLUMNS)
