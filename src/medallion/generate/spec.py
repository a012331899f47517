"""What the generator writes: tables, columns, volumes, daily increments and defect rates.

Everything a reader of the landing zone (or of ``docs/SOURCES.md``) needs to know about the
synthetic sources is a named constant here, so the manifest, the docs and the tests quote one
source of truth.
"""

from __future__ import annotations

from typing import Final

GENERATOR_VERSION: Final = "1.1"

ACCOUNTS: Final = "crm/accounts"
CONTACTS: Final = "crm/contacts"
OPPORTUNITIES: Final = "crm/opportunities"
CUSTOMERS: Final = "snowflake/customers"
PRODUCTS: Final = "snowflake/products"
ORDERS: Final = "snowflake/orders"
BEHAVIOR: Final = "redshift/customer_behavior"
FX_RATES: Final = "fx/fx_rates"
ORDER_EVENTS: Final = "kafka/order_events"

TABLES: Final = (
    ACCOUNTS,
    CONTACTS,
    OPPORTUNITIES,
    CUSTOMERS,
    PRODUCTS,
    ORDERS,
    BEHAVIOR,
    FX_RATES,
    ORDER_EVENTS,
)
CSV_TABLES: Final = (ACCOUNTS, CONTACTS, OPPORTUNITIES, CUSTOMERS, PRODUCTS, ORDERS, BEHAVIOR)

# Pinned by DESIGN.md section 5: header names in this order (keys of the JSON objects for FX
# and Kafka, in this order).
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    ACCOUNTS: (
        "Id",
        "Name",
        "Type",
        "Industry",
        "AnnualRevenue",
        "NumberOfEmployees",
        "BillingCountry",
        "OwnerId",
        "External_Customer_Id__c",
        "CreatedDate",
        "LastModifiedDate",
    ),
    CONTACTS: (
        "Id",
        "AccountId",
        "FirstName",
        "LastName",
        "Email",
        "Phone",
        "Title",
        "CreatedDate",
        "LastModifiedDate",
    ),
    OPPORTUNITIES: (
        "Id",
        "AccountId",
        "Name",
        "StageName",
        "Amount",
        "CurrencyIsoCode",
        "Probability",
        "CloseDate",
        "IsClosed",
        "IsWon",
        "CreatedDate",
        "LastModifiedDate",
    ),
    CUSTOMERS: (
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "country",
        "segment",
        "created_at",
        "updated_at",
    ),
    PRODUCTS: (
        "product_id",
        "sku",
        "product_name",
        "category",
        "subcategory",
        "brand",
        "price_usd",
        "cost_usd",
        "active",
        "created_at",
        "updated_at",
    ),
    ORDERS: (
        "order_id",
        "customer_id",
        "product_id",
        "order_ts",
        "quantity",
        "unit_price",
        "amount",
        "currency",
        "status",
        "updated_at",
    ),
    BEHAVIOR: (
        "customer_id",
        "event_date",
        "login_count",
        "page_views",
        "session_duration_minutes",
        "purchases",
        "revenue",
    ),
    FX_RATES: (
        "date",
        "base_ccy",
        "quote_ccy",
        "rate",
        "bid_rate",
        "ask_rate",
        "mid_rate",
        "source",
    ),
    ORDER_EVENTS: (
        "event_id",
        "topic",
        "partition",
        "offset",
        "order_id",
        "event_type",
        "event_ts",
        "status",
        "metadata",
    ),
}

# Primary (business) keys, as the silver layer deduplicates on them.
KEYS: Final[dict[str, tuple[str, ...]]] = {
    ACCOUNTS: ("Id",),
    CONTACTS: ("Id",),
    OPPORTUNITIES: ("Id",),
    CUSTOMERS: ("customer_id",),
    PRODUCTS: ("product_id",),
    ORDERS: ("order_id",),
    BEHAVIOR: ("customer_id", "event_date"),
    FX_RATES: ("date", "quote_ccy"),
    ORDER_EVENTS: ("event_id",),
}

# Day-1 rows at --scale 1 (data records written, defects included). FX is pinned regardless of
# the scale: FX_HISTORY_DATES business days x 20 currencies.
SEED_VOLUMES: Final[dict[str, int]] = {
    ACCOUNTS: 10_000,
    CONTACTS: 25_000,
    OPPORTUNITIES: 20_000,
    CUSTOMERS: 50_000,
    PRODUCTS: 10_000,
    ORDERS: 100_000,
    BEHAVIOR: 50_000,
    ORDER_EVENTS: 100_000,
}
FX_HISTORY_DATES: Final = 1_018

# Each later day, as a fraction of the table's day-1 seed volume x scale.
INCREMENTS: Final[dict[str, dict[str, float]]] = {
    CUSTOMERS: {"new": 0.010, "tracked_change": 0.010, "update": 0.020},
    PRODUCTS: {"new": 0.005, "update": 0.010},
    ORDERS: {"new": 0.030, "status_change": 0.030},
    ACCOUNTS: {"new": 0.010, "update": 0.020, "industry_change": 0.003},
    CONTACTS: {"new": 0.010, "update": 0.010},
    OPPORTUNITIES: {"new": 0.020, "stage_change": 0.030},
    BEHAVIOR: {"rows": 0.100},
    ORDER_EVENTS: {"events": 0.500},
}

# Defect kinds. "copy" kinds add rows (a copy of a clean row); "in-place" kinds alter a new row.
EXACT_DUPLICATE: Final = "exact_duplicate"
UPDATED_DUPLICATE: Final = "updated_duplicate"
REDELIVERED: Final = "redelivered"
REPLAYED: Final = "replayed"
COPY_KINDS: Final = frozenset({EXACT_DUPLICATE, UPDATED_DUPLICATE, REDELIVERED, REPLAYED})
# Row kinds that only delivery faults write (medallion.generate.faults): a rate divided by 100,
# an event stamped years or minutes after it arrived, and a replayed line bronze already holds.
DECIMAL_SHIFTED: Final = "decimal_shifted"
FUTURE_EVENT: Final = "future_event"
CLOCK_SKEWED: Final = "clock_skewed"
ALREADY_DELIVERED: Final = "already_delivered"

# The documented default rates: the share of a day's rows that carry each defect kind. The
# exact count per day is round(rate x rows of the day) and is written to the manifest.
DEFECT_RATES: Final[dict[str, dict[str, float]]] = {
    ACCOUNTS: {
        EXACT_DUPLICATE: 0.010,
        UPDATED_DUPLICATE: 0.010,
        "null_required": 0.005,
        "unknown_country": 0.005,
        "malformed_row": 0.005,
        "orphan_customer": 0.005,
    },
    CONTACTS: {
        EXACT_DUPLICATE: 0.010,
        "null_required": 0.005,
        "bad_email": 0.010,
        "malformed_row": 0.005,
        "orphan_account": 0.005,
    },
    OPPORTUNITIES: {
        EXACT_DUPLICATE: 0.010,
        "null_required": 0.005,
        "unknown_currency": 0.005,
        "unknown_stage": 0.005,
        "out_of_range": 0.005,
        "malformed_row": 0.005,
        "orphan_account": 0.005,
    },
    CUSTOMERS: {
        EXACT_DUPLICATE: 0.010,
        UPDATED_DUPLICATE: 0.010,
        "null_required": 0.005,
        "unknown_country": 0.005,
        "bad_email": 0.010,
        "bad_date": 0.005,
        "malformed_row": 0.005,
    },
    PRODUCTS: {
        EXACT_DUPLICATE: 0.005,
        "null_required": 0.005,
        "out_of_range": 0.005,
        "malformed_row": 0.005,
    },
    ORDERS: {
        EXACT_DUPLICATE: 0.010,
        UPDATED_DUPLICATE: 0.010,
        "null_required": 0.005,
        "unknown_currency": 0.005,
        "out_of_range": 0.005,
        "bad_date": 0.005,
        "malformed_row": 0.005,
        "orphan_customer": 0.005,
        "orphan_product": 0.005,
    },
    BEHAVIOR: {
        EXACT_DUPLICATE: 0.010,
        "null_required": 0.005,
        "out_of_range": 0.005,
        "bad_date": 0.005,
        "malformed_row": 0.005,
        "orphan_customer": 0.005,
    },
    FX_RATES: {
        "zero_rate": 0.005,
        "negative_rate": 0.005,
        "absurd_rate": 0.005,
        "unknown_currency": 0.005,
        "malformed_json": 0.005,
    },
    ORDER_EVENTS: {
        REDELIVERED: 0.010,
        REPLAYED: 0.010,
        "late_event": 0.010,
        "null_required": 0.005,
        "unknown_event_type": 0.005,
        "malformed_json": 0.005,
        "orphan_order": 0.005,
    },
}

# Share of linked CRM accounts that point at a customer another account already points at.
AMBIGUOUS_LINK_RATE: Final = 0.002

# The quarantine rule id each defect kind must trip (None: the row is valid and kept).
RULE_IDS: Final[dict[str, dict[str, str | None]]] = {
    ACCOUNTS: {
        EXACT_DUPLICATE: "_record:duplicate",
        UPDATED_DUPLICATE: None,
        "null_required": "Name:required",
        "unknown_country": "BillingCountry:allowed_values",
        "malformed_row": "_record:malformed",
        "orphan_customer": None,
    },
    CONTACTS: {
        EXACT_DUPLICATE: "_record:duplicate",
        "null_required": "LastName:required",
        "bad_email": "Email:pattern",
        "malformed_row": "_record:malformed",
        "orphan_account": None,
    },
    OPPORTUNITIES: {
        EXACT_DUPLICATE: "_record:duplicate",
        "null_required": "CloseDate:required",
        "unknown_currency": "CurrencyIsoCode:allowed_values",
        "unknown_stage": "StageName:allowed_values",
        "out_of_range": "Probability:range",
        "malformed_row": "_record:malformed",
        "orphan_account": None,
    },
    CUSTOMERS: {
        EXACT_DUPLICATE: "_record:duplicate",
        UPDATED_DUPLICATE: None,
        "null_required": "email:required",
        "unknown_country": "country:allowed_values",
        "bad_email": "email:pattern",
        "bad_date": "created_at:type",
        "malformed_row": "_record:malformed",
    },
    PRODUCTS: {
        EXACT_DUPLICATE: "_record:duplicate",
        "null_required": "product_name:required",
        "out_of_range": "price_usd:range",
        "malformed_row": "_record:malformed",
    },
    ORDERS: {
        EXACT_DUPLICATE: "_record:duplicate",
        UPDATED_DUPLICATE: None,
        "null_required": "customer_id:required",
        "unknown_currency": "currency:allowed_values",
        "out_of_range": "quantity:range",
        "bad_date": "order_ts:type",
        "malformed_row": "_record:malformed",
        "orphan_customer": None,
        "orphan_product": None,
    },
    BEHAVIOR: {
        EXACT_DUPLICATE: "_record:duplicate",
        "null_required": "customer_id:required",
        "out_of_range": "page_views:range",
        "bad_date": "event_date:type",
        "malformed_row": "_record:malformed",
        "orphan_customer": None,
    },
    FX_RATES: {
        "zero_rate": "rate:range",
        "negative_rate": "rate:range",
        "absurd_rate": "rate:jump",
        "unknown_currency": "quote_ccy:allowed_values",
        "malformed_json": "_record:malformed",
        # Delivery faults (medallion.generate.faults), only on the days asked for:
        DECIMAL_SHIFTED: "rate:jump",
    },
    ORDER_EVENTS: {
        REDELIVERED: "duplicate_event",
        REPLAYED: "duplicate_event",
        "late_event": "late_event",
        "null_required": "order_id:required",
        "unknown_event_type": "event_type:allowed_values",
        "malformed_json": "_record:malformed",
        "orphan_order": None,
        # Delivery faults (medallion.generate.faults), only on the days asked for:
        FUTURE_EVENT: "event_ts:future",
        CLOCK_SKEWED: None,
        ALREADY_DELIVERED: "duplicate_event",
    },
}

NULL_REQUIRED_COLUMN: Final[dict[str, str]] = {
    ACCOUNTS: "Name",
    CONTACTS: "LastName",
    OPPORTUNITIES: "CloseDate",
    CUSTOMERS: "email",
    PRODUCTS: "product_name",
    ORDERS: "customer_id",
    BEHAVIOR: "customer_id",
    ORDER_EVENTS: "order_id",
}

# Literal values the defects use; the contracts reject each of them.
UNKNOWN_COUNTRY: Final = "XX"
UNKNOWN_CURRENCY: Final = "QQQ"
UNKNOWN_STAGE: Final = "Maybe Later"
UNKNOWN_EVENT_TYPE: Final = "order_teleported"
BAD_TIMESTAMPS: Final = ("2025-02-30T25:61:00Z", "not-a-date", "2024-13-01T10:00:00Z", "yesterday")
BAD_DATES: Final = ("2025-02-30", "not-a-date", "2024-13-01", "31/12/2024")
OUT_OF_RANGE_PROBABILITY: Final = 150

# Late events are 49-96 hours older than the start of their landing day; replays only re-send
# the previous day's events, which are less than 24 hours older than the day start. A
# late_event rule with any threshold between 24 h and 49 h separates them exactly.
LATE_EVENT_MIN_HOURS: Final = 49
LATE_EVENT_MAX_HOURS: Final = 96

CSV_PART_ROWS: Final = 250_000
EVENTS_PER_FILE: Final = 2_000
KAFKA_TOPIC: Final = "orders"
KAFKA_PARTITIONS: Final = 6

# Orphan foreign keys come from number ranges no generated entity ever uses.
# (base, span): orphan numbers stay in [base, base + span), above every real id at any scale.
ORPHAN_CUSTOMERS: Final = (90_000_000, 10_000_000)  # C9xxxxxxx
ORPHAN_PRODUCTS: Final = (9_000_000, 1_000_000)  # P9xxxxxx
ORPHAN_ORDERS: Final = (900_000_000, 100_000_000)  # O9xxxxxxxx
ORPHAN_SALESFORCE: Final = (1_000_000_000, 300_000_000)  # sequence numbers of orphan CRM ids
