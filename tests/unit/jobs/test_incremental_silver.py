"""Silver recomputes only the keys bronze's change feed says can have changed, and still equals a
rebuild: each delivery below reaches a row only through one dependency path (its own version, a
parent that arrives or vanishes, a rate in force on its date, an account or contact of its
customer, a version a corrected delivery removed), on hand-made bronze tables of a few rows.

Every run after the first must take the incremental path for every table (``recomputed`` in the
job's details), so equality with the rebuild is a test of the scopes, not of a full recompute.

The story runs the silver job four times (about 2.5 minutes), so its tests are in
``make test-slow``; the fall-back test at the end runs in ``make test``.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from medallion.config import parse_settings
from medallion.jobs.base import JobContext
from medallion.jobs.bronze_to_silver import BRONZE_INPUTS, SilverBuild
from medallion.lake import CHANGE_FEED, Lake, read_delta, replace_where
from medallion.quality.table_contracts import table_names

D1, D2 = dt.date(2025, 1, 13), dt.date(2025, 1, 14)
UTC = dt.UTC

SCHEMAS = {
    "fx/fx_rates": "date date, base_ccy string, quote_ccy string, rate double, bid_rate double, "
    "ask_rate double, mid_rate double, source string",
    "snowflake/customers": "customer_id string, first_name string, last_name string, email string, "
    "phone string, country string, segment string, created_at timestamp, updated_at timestamp",
    "snowflake/products": "product_id string, sku string, product_name string, category string, "
    "subcategory string, brand string, price_usd double, cost_usd double, active boolean, "
    "created_at timestamp, updated_at timestamp",
    "snowflake/orders": "order_id string, customer_id string, product_id string, order_ts timestamp, "
    "quantity int, unit_price double, amount double, currency string, status string, "
    "updated_at timestamp",
    "crm/accounts": "Id string, Name string, Type string, Industry string, AnnualRevenue double, "
    "NumberOfEmployees int, BillingCountry string, OwnerId string, External_Customer_Id__c string, "
    "CreatedDate timestamp, LastModifiedDate timestamp",
    "crm/contacts": "Id string, AccountId string, FirstName string, LastName string, Email string, "
    "Phone string, Title string, CreatedDate timestamp, LastModifiedDate timestamp",
    "crm/opportunities": "Id string, AccountId string, Name string, StageName string, "
    "Amount double, CurrencyIsoCode string, Probability int, CloseDate date, IsClosed boolean, "
    "IsWon boolean, CreatedDate timestamp, LastModifiedDate timestamp",
    "redshift/customer_behavior": "customer_id string, login_count int, page_views int, "
    "session_duration_minutes double, purchases int, revenue double, event_date date",
    "kafka/order_events": "event_id string, topic string, partition int, offset long, "
    "order_id string, event_type string, event_ts timestamp, status string, "
    "metadata map<string,string>",
}


def ts(day: int, hour: int = 0, month: int = 1, year: int = 2025) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def rate(day: int, ccy: str, value: float) -> tuple:
    return (dt.date(2025, 1, day), "USD", ccy, value, value, value, value, "ecb")


def customer(cid: str, updated: int = 1, segment: str = "consumer") -> tuple:
    return (
        cid,
        "Ann",
        "Lee",
        f"{cid.lower()}@x.io",
        None,
        "DE",
        segment,
        ts(1, year=2024),
        ts(updated),
    )


def product(pid: str) -> tuple:
    return (pid, f"SKU-{pid}", pid, "c", "s", "b", 10.0, 5.0, True, ts(1, year=2024), ts(1))


def order(oid: str, cid: str, pid: str, ccy: str, day: int, amount: float = 100.0) -> tuple:
    return (oid, cid, pid, ts(day, 10), 1, amount, amount, ccy, "placed", ts(day, 10))


def account(aid: str, cid: str | None, created_year: int, updated: int = 1) -> tuple:
    return (aid, f"Acct {aid}", "Customer", "Retail", 1.0, 1, "DE", "U1", cid,
            ts(1, year=created_year), ts(updated))  # fmt: skip


def contact(kid: str, aid: str | None, created_year: int, updated: int = 1) -> tuple:
    return (kid, aid, "Kim", kid, f"{kid.lower()}@x.io", None, "CEO", ts(1, year=created_year),
            ts(updated))  # fmt: skip


def opportunity(yid: str, aid: str) -> tuple:
    return (yid, aid, yid, "Prospecting", 1.0, "EUR", 10, dt.date(2025, 3, 1), False, False,
            ts(1, year=2024), ts(1))  # fmt: skip


def behavior(cid: str, day: int) -> tuple:
    return (cid, 1, 2, 3.0, 0, 0.0, dt.date(2025, 1, day))


def event(eid: str, oid: str, day: int) -> tuple:
    return (
        eid,
        "orders",
        0,
        int(eid[1:]),
        oid,
        "order_created",
        ts(day, 11),
        "placed",
        {"c": "web"},
    )


class Lakehouse:
    """A lake whose bronze tables the test delivers to directly, one run date at a time."""

    def __init__(self, spark, root) -> None:
        self.spark, self.root = spark, root
        self.lake = Lake.from_root(str(root))
        self.settings = parse_settings(f'env: local\nlake: {{root: "{root}"}}\n', "test")

    def deliver(self, day: dt.date, **tables: list[tuple]) -> None:
        """Replace ``day``'s delivery of each named bronze table (``fx__fx_rates=[...]``)."""
        for name, rows in tables.items():
            label = name.replace("__", "/")
            frame = self.spark.createDataFrame(rows, SCHEMAS[label])
            source, table = label.split("/")
            stamped = frame.selectExpr(
                "*", f"DATE'{day}' AS _run_date", "sha2(to_json(struct(*)), 256) AS _record_hash"
            )
            replace_where(
                stamped,
                self.lake.bronze(source, table),
                column="_run_date",
                value=day,
                metadata="{}",
                partition_by=["_run_date"],
                properties=CHANGE_FEED,
            )

    def silver_run(self, day: dt.date, rebuild: bool = False) -> dict[str, str]:
        context = JobContext(
            self.spark, self.settings, self.lake, day, f"run-{day}", job="bronze_to_silver"
        )
        result = SilverBuild(context, rebuild=rebuild).run()
        return result.details["recomputed"]

    def silver(self, table: str):
        return read_delta(self.spark, self.lake.silver(table))

    def row(self, table: str, **key):
        condition = " AND ".join(f"{k} = '{v}'" for k, v in key.items())
        (found,) = self.silver(table).where(condition).collect()
        return found


def keys_of(frame, column: str) -> set[str]:
    return {r[column] for r in frame.select(column).collect()}


@pytest.fixture(scope="module")
def story(spark, tmp_path_factory):
    lake = Lakehouse(spark, tmp_path_factory.mktemp("incremental") / "lake")
    facts = {"lake": lake}
    lake.deliver(
        D1,
        fx__fx_rates=[rate(10, "EUR", 0.90), rate(12, "EUR", 0.91), rate(10, "GBP", 0.80)],
        snowflake__customers=[customer(c) for c in ("C1", "C2", "C6")],
        snowflake__products=[product("P1")],
        snowflake__orders=[
            order("O1", "C1", "P1", "EUR", 12),
            order("O2", "C3", "P9", "GBP", 11),  # customer and product not known yet
            order("O4", "C2", "P1", "EUR", 10),
            order("O6", "C1", "P1", "EUR", 11),  # converted at the carried 10 Jan rate
        ],
        crm__accounts=[
            account("A1", "C1", 2020),
            account("A2", "C2", 2021),
            account("A6", "C6", 2020),
        ],
        crm__contacts=[
            contact("K1", "A1", 2021),
            contact("K2", "A2", 2021),
            contact("K5", "A5", 2021),  # its account arrives on day 2
            contact("K6", "A6", 2021),
        ],
        crm__opportunities=[opportunity("Y1", "A1"), opportunity("Y2", "A2")],
        redshift__customer_behavior=[behavior("C1", 12), behavior("C4", 12)],
        kafka__order_events=[event("E1", "O1", 12), event("E2", "O3", 12), event("E4", "O2", 12)],
    )
    facts["first"] = lake.silver_run(D1)

    lake.deliver(
        D2,
        fx__fx_rates=[rate(13, "EUR", 0.95), rate(11, "EUR", 0.905)],  # 11 Jan arrives late
        snowflake__customers=[customer(c, 14) for c in ("C3", "C4", "C5")],
        snowflake__products=[product("P9")],
        snowflake__orders=[order("O3", "C1", "P1", "USD", 13), order("O5", "C2", "P1", "EUR", 13)],
        crm__accounts=[
            account("A1", "C2", 2020, updated=14),  # A1 moves from C1 to C2
            account("A5", "C5", 2020, updated=14),
        ],
        crm__contacts=[contact("K8", "A6", 2020, updated=14)],  # A6's new oldest contact
        kafka__order_events=[event("E3", "O5", 13)],
    )
    facts["second"] = lake.silver_run(D2)
    facts["after_day2"] = {
        "O2": lake.row("orders", order_id="O2"),
        "O6": lake.row("orders", order_id="O6"),
        "E2": lake.row("order_events", event_id="E2"),
        "C4": lake.row("customer_behavior", customer_id="C4"),
        "C1": lake.row("customers", customer_id="C1"),
        "C2": lake.row("customers", customer_id="C2"),
        "C5": lake.row("customers", customer_id="C5"),
        "C6": lake.row("customers", customer_id="C6"),
    }

    # Day 1 re-delivered, corrected: C1 and O2 dropped, A2 dropped, K5 moved from A5 to A1,
    # the 10 Jan EUR rate corrected; the opportunities delivered again unchanged. Nothing of
    # C5 and A5 (delivered on day 2) is in the corrected files: C5 is reached only through the
    # version of K5 the correction removed.
    lake.deliver(
        D1,
        fx__fx_rates=[rate(10, "EUR", 0.99), rate(12, "EUR", 0.91), rate(10, "GBP", 0.80)],
        snowflake__customers=[customer(c) for c in ("C2", "C6")],
        snowflake__orders=[
            order("O1", "C1", "P1", "EUR", 12),
            order("O4", "C2", "P1", "EUR", 10),
            order("O6", "C1", "P1", "EUR", 11),
        ],
        crm__accounts=[account("A1", "C1", 2020), account("A6", "C6", 2020)],
        crm__contacts=[
            contact("K1", "A1", 2021),
            contact("K2", "A2", 2021),
            contact("K5", "A1", 2021),
            contact("K6", "A6", 2021),
        ],
        crm__opportunities=[opportunity("Y1", "A1"), opportunity("Y2", "A2")],
    )
    facts["third"] = lake.silver_run(D1)

    rebuilt = Lakehouse(spark, tmp_path_factory.mktemp("incremental_rebuild") / "lake")
    shutil.copytree(lake.root / "bronze", rebuilt.root / "bronze")
    facts["rebuild"] = rebuilt.silver_run(D1, rebuild=True)
    facts["rebuilt"] = rebuilt
    return facts


SILVER = table_names("silver")
# The tests that read the story (four silver runs) run in make test-slow.
slow = pytest.mark.slow


@slow
def test_a_first_run_computes_every_table_whole_and_later_runs_only_changed_keys(story):
    assert set(story["first"]) == set(SILVER)
    assert set(story["first"].values()) == {"whole"}
    for run in ("second", "third"):
        assert story[run] == {t: "changed keys" for t in SILVER}, run
    assert set(story["rebuild"].values()) == {"whole"}


def rows_of(frame) -> list[str]:
    """A tiny table's rows, in a canonical order (by content), columns by name."""
    columns = sorted(frame.columns)
    return sorted(repr([(c, row[c]) for c in columns]) for row in frame.collect())


@slow
def test_every_silver_table_equals_a_rebuild_from_the_final_bronze(story):
    for table in SILVER:
        incremental = rows_of(story["lake"].silver(table))
        assert incremental, table
        assert incremental == rows_of(story["rebuilt"].silver(table)), table


@slow
def test_arriving_parents_clear_the_flags_of_rows_nothing_else_changed(story):
    after = story["after_day2"]
    assert not after["O2"].has_unknown_customer and not after["O2"].has_unknown_product
    assert not after["E2"].has_unknown_order
    assert not after["C4"].has_unknown_customer


@slow
def test_a_late_rate_reconverts_an_order_dated_in_its_window(story):
    o6 = story["after_day2"]["O6"]
    assert (float(o6.fx_rate), o6.fx_rate_date) == (0.905, dt.date(2025, 1, 11))


@slow
def test_account_and_contact_changes_realign_the_customers_they_touch(story):
    after = story["after_day2"]
    assert after["C1"].crm_account_id is None and after["C1"].crm_account_count == 0
    assert (after["C2"].crm_account_id, after["C2"].crm_account_count) == ("A1", 2)
    assert after["C5"].primary_contact_id == "K5"  # its account arrived
    assert after["C6"].primary_contact_id == "K8"  # reached through the contact alone


@slow
def test_a_corrected_redelivery_reaches_rows_through_the_versions_it_removed(story):
    lake = story["lake"]
    assert "O2" not in keys_of(lake.silver("orders"), "order_id")
    assert lake.row("order_events", event_id="E4").has_unknown_order
    assert lake.row("orders", order_id="O1").has_unknown_customer
    assert lake.row("customer_behavior", customer_id="C1").has_unknown_customer
    assert float(lake.row("orders", order_id="O4").fx_rate) == 0.99
    assert lake.row("crm_contacts", contact_id="K2").has_unknown_account
    assert lake.row("crm_opportunities", opportunity_id="Y2").has_unknown_account
    assert lake.row("customers", customer_id="C2").crm_account_count == 1
    # K5 left A5 only in the version the correction removed: C5 has no primary contact now.
    assert lake.row("customers", customer_id="C5").primary_contact_id is None


@slow
def test_the_commits_record_the_bronze_versions_they_were_computed_from(spark, story):
    from medallion.lake import last_commit, latest_version

    lake = story["lake"].lake
    commit = last_commit(spark, lake.silver("orders"))
    inputs = commit.metadata["inputs"]
    assert set(inputs) == {f"{s}/{t}" for s, t in BRONZE_INPUTS}
    for label, version in inputs.items():
        source, table = label.split("/")
        assert version == latest_version(spark, lake.bronze(source, table)), label


def test_without_a_change_feed_or_a_watermark_a_table_is_computed_whole(spark, tmp_path):
    """Each reason the feed cannot answer makes the run recompute the table whole (correct,
    only slower): a bronze table created without the feed, a bronze table restored behind the
    watermark, a silver table whose last commit is not a silver run's."""
    from medallion.lake import commit_metadata, overwrite

    lake = Lakehouse(spark, tmp_path / "lake")
    accounts = lake.lake.bronze("crm", "accounts")
    for day in (D1, D2):
        frame = spark.createDataFrame([account("A1", "C1", 2020)], SCHEMAS["crm/accounts"])
        replace_where(
            frame.selectExpr("*", f"DATE'{day}' AS _run_date", "'h' AS _record_hash"),
            accounts,
            column="_run_date",
            value=day,
            metadata="{}",
            partition_by=["_run_date"],
        )  # no CHANGE_FEED
    context = JobContext(spark, lake.settings, lake.lake, D2, "run-x", job="bronze_to_silver")
    build = SilverBuild(context)
    project = lambda frame: frame  # noqa: E731
    assert build.inputs == {"crm/accounts": 2}
    assert build.changes({"crm/accounts": 1}, "crm", "accounts", project) is None  # no feed
    assert build.changes({"crm/accounts": 5}, "crm", "accounts", project) is None  # went back
    assert build.changes({}, "crm", "accounts", project) is None  # not in the watermark

    products = lake.lake.silver("products")
    overwrite(spark.range(1), products, metadata=commit_metadata("by-hand"))
    assert build.watermark("products") is None
    overwrite(spark.range(1), products, metadata=commit_metadata("run", inputs={"crm/accounts": 1}))
    assert build.watermark("products") == {"crm/accounts": 1}
    assert SilverBuild(context, rebuild=True).watermark("products") is None
