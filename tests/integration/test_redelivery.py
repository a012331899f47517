"""The state model on the deliveries real sources make, driven through the real jobs on generated
data: a skipped day caught up later (out of order), a corrected re-delivery of an old day
(a changed value, a dropped row, an added row, a corrected FX rate) and a late version of an old
key. After each, silver and gold must be what the data says, and equal a rebuild from bronze.

Each item here failed on the code before the state model: the run-order refusal of gold, the
tie of a corrected re-delivery with its stale copy, FX corrections kept out by the tie, a dropped
row that stayed for ever, stale orphan flags and a late change that never entered history."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from chain_lake import gold, same_content, settings_for, silver
from pyspark.sql import functions as F

from medallion.contracts.control import CONTROL_FILE
from medallion.generate import generate_landing
from medallion.jobs import JOB_MAP
from medallion.runner import run_chain
from medallion.transforms.gold.dim_customer import HISTORY_START, OPEN_END

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = dt.date(2025, 1, 13)
DAY1, DAY2, DAY3 = (START + dt.timedelta(days=i) for i in range(3))
# The batch jobs a delivery runs (the stream and the publisher add nothing to the state model).
DELIVERY = [
    JOB_MAP[name]
    for name in (
        "fx_json_to_bronze",
        "snowflake_to_bronze",
        "crm_to_bronze",
        "redshift_to_bronze",
        "bronze_to_silver",
        "silver_to_gold",
    )
]
REBUILD = [JOB_MAP["bronze_to_silver"], JOB_MAP["silver_to_gold"]]
SILVER_TABLES = (
    "customers", "products", "orders", "customer_behavior", "fx_rates",
    "crm_accounts", "crm_contacts", "crm_opportunities",
)  # fmt: skip
GOLD_TABLES = (
    "dim_customer", "dim_product", "fact_orders", "dim_date", "customer_360", "product_performance",
)  # fmt: skip


# -- landing files, edited as a source system would re-deliver them ----------------------------


def customers_file(root: Path, day: dt.date) -> Path:
    (path,) = (root / "landing/snowflake/customers" / f"dt={day}").glob("*.csv")
    return path


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows; a row with the wrong number of fields (a defect the generator injects)
    keeps its fields in order under ``None``, and is written back as it was."""
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [
            dict(zip(header, fields)) if len(fields) == len(header) else {None: fields}
            for fields in reader
        ]
    return header, rows


def write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    """Deliver the file again, with the control file a corrected extract comes with."""
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row[None] if None in row else [row[c] for c in header])
    control = path.parent / CONTROL_FILE
    document = json.loads(control.read_text(encoding="utf-8"))
    document["files"][path.name] = len(rows)
    control.write_text(json.dumps(document), encoding="utf-8")


def ids_in(root: Path, day: dt.date) -> set[str]:
    return {row["customer_id"] for row in read_csv(customers_file(root, day))[1] if None not in row}


def linked_customers(root: Path) -> set[str]:
    linked = set()
    for path in (root / "landing/crm/accounts").rglob("*.csv"):
        linked |= {r["External_Customer_Id__c"] for r in read_csv(path)[1] if None not in r}
    return linked


def iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def correct_fx(root: Path, day: dt.date, currency: str, factor: Decimal) -> set[str]:
    """Multiply the day's rates of ``currency`` by ``factor``; the corrected rate dates."""
    path = root / "landing/fx/fx_rates" / f"dt={day}" / "fx_rates.jsonl"
    lines, dates = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            lines.append(line)
            continue
        if isinstance(row, dict) and row.get("quote_ccy") == currency and row.get("rate"):
            for field in ("rate", "bid_rate", "ask_rate", "mid_rate"):
                row[field] = float((Decimal(str(row[field])) * factor).quantize(Decimal("1e-6")))
            dates.add(row["date"])
            line = json.dumps(row)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dates


# -- the story ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def story(spark, tmp_path_factory):
    """Deliveries in an awkward order, with what each step left behind for the tests."""
    root = tmp_path_factory.mktemp("redelivery") / "lake"
    manifest = generate_landing(
        root / "landing", scale=0.02, days=3, start_date=START, seed=7, force=True
    )
    settings = settings_for(root)
    facts: dict = {"manifest": manifest, "root": root, "settings": settings}

    def deliver(day: dt.date, jobs=DELIVERY, lake_settings=settings, options=None):
        records = run_chain(jobs, [day], lake_settings, lambda: spark, options)
        assert all(r.status == "succeeded" for r in records), [(r.job, r.error) for r in records]
        return records

    # Day 1, then day 3 (day 2 failed upstream and is skipped), then day 2 caught up.
    deliver(DAY1)
    deliver(DAY3)
    facts["catch_up"] = deliver(DAY2)
    facts["dim_after_catch_up"] = versions_by_customer(gold(spark, root, "dim_customer"))

    # A corrected re-delivery of day 1: one value changed, one row dropped, one row added (a
    # customer the orders already point at), and the EUR rates 5% higher.
    orders = silver(spark, root, "orders")
    later = ids_in(root, DAY2) | ids_in(root, DAY3)
    header, rows = read_csv(customers_file(root, DAY1))
    only_day1 = [r for r in rows if None not in r and r["customer_id"] not in later]
    with_orders = {r.customer_id for r in orders.select("customer_id").distinct().collect()}
    changed = next(r for r in only_day1 if r["customer_id"] not in with_orders)
    dropped = next(r for r in only_day1 if r["customer_id"] in with_orders)
    orphan = next(
        r.customer_id
        for r in orders.where("has_unknown_customer AND customer_id IS NOT NULL")
        .select("customer_id")
        .distinct()
        .orderBy("customer_id")
        .collect()
    )
    new_segment = "enterprise" if changed["segment"] != "enterprise" else "consumer"
    corrected = []
    for row in rows:
        if row is dropped:
            continue
        if row is changed:
            row = {**row, "segment": new_segment}
        corrected.append(row)
    corrected.append({**changed, "customer_id": orphan, "email": f"{orphan.lower()}@fix.example"})
    write_csv(customers_file(root, DAY1), header, corrected)
    facts["eur_dates"] = correct_fx(root, DAY1, "EUR", Decimal("1.05"))
    facts.update(changed=changed["customer_id"], new_segment=new_segment)
    facts.update(dropped=dropped["customer_id"], orphan=orphan)
    deliver(DAY1)

    # A late version of an old key, delivered with day 3: its updated_at falls between the
    # customer's day-1 and day-2 versions.
    _, rows1 = read_csv(customers_file(root, DAY1))
    day1_rows = {r["customer_id"]: r for r in rows1 if None not in r}
    _, rows2 = read_csv(customers_file(root, DAY2))
    linked = linked_customers(root)
    late_for = next(
        r
        for r in rows2
        if None not in r
        and r["customer_id"] in day1_rows
        and r["customer_id"] not in ids_in(root, DAY3)
        and r["customer_id"] not in linked
        and r["segment"] != day1_rows[r["customer_id"]]["segment"]
    )
    first = day1_rows[late_for["customer_id"]]
    t1, t2 = parse(first["updated_at"]), parse(late_for["updated_at"])
    middle = t1 + (t2 - t1) / 2
    middle = middle.replace(microsecond=0)
    late_segment = next(
        s for s in ("consumer", "small_business", "enterprise")
        if s not in (first["segment"], late_for["segment"])
    )  # fmt: skip
    header3, rows3 = read_csv(customers_file(root, DAY3))
    rows3.append({**first, "segment": late_segment, "updated_at": iso(middle)})
    write_csv(customers_file(root, DAY3), header3, rows3)
    facts["late"] = {
        "customer_id": late_for["customer_id"],
        "versions": [
            (first["segment"], HISTORY_START, middle),
            (late_segment, middle, t2),
            (late_for["segment"], t2, OPEN_END),
        ],
    }
    deliver(DAY3)

    # A rebuild from bronze alone, in a lake of its own.
    copy = tmp_path_factory.mktemp("rebuild") / "lake"
    shutil.copytree(root / "bronze", copy / "bronze")
    deliver(DAY3, REBUILD, settings_for(copy), {"rebuild": True})
    facts["rebuild"] = copy
    return facts


def versions_by_customer(dim) -> dict[str, int]:
    rows = dim.where("customer_sk <> -1").groupBy("customer_id").count().collect()
    return {r.customer_id: r["count"] for r in rows}


# -- the checks -----------------------------------------------------------------------------------


def test_a_skipped_day_caught_up_out_of_order_is_loaded_and_history_is_the_truth(story):
    """Gold used to refuse day 2 once day 3 was loaded; now it loads it, and the history of
    every customer is exactly the changes the generator made, as if delivered in order."""
    assert [r.job for r in story["catch_up"]][-1] == "silver_to_gold"
    times = story["manifest"]["truth"]["customers_tracked_changes"]["times_by_customer"]
    history = story["dim_after_catch_up"]
    assert {c: n for c, n in history.items() if n > 1} == {c: n + 1 for c, n in times.items()}


def test_a_corrected_redelivery_wins_and_a_dropped_row_disappears(spark, story):
    customers = silver(spark, story["root"], "customers")
    changed = customers.where(F.col("customer_id") == story["changed"]).collect()
    assert [r.segment for r in changed] == [story["new_segment"]]
    assert customers.where(F.col("customer_id") == story["dropped"]).count() == 0
    dim = gold(spark, story["root"], "dim_customer")
    versions = dim.where(F.col("customer_id") == story["changed"]).collect()
    assert versions and {r.segment for r in versions} == {story["new_segment"]}
    assert dim.where(F.col("customer_id") == story["dropped"]).count() == 0


def test_orphan_flags_follow_the_customers_that_arrive_and_vanish(spark, story):
    orders = silver(spark, story["root"], "orders")
    fact = gold(spark, story["root"], "fact_orders")
    dropped, orphan = story["dropped"], story["orphan"]
    assert {r.has_unknown_customer for r in orders.where(F.col("customer_id") == dropped).collect()} == {True}  # fmt: skip
    assert {r.has_unknown_customer for r in orders.where(F.col("customer_id") == orphan).collect()} == {False}  # fmt: skip
    assert {r.customer_sk for r in fact.where(F.col("customer_id") == dropped).collect()} == {-1}
    keyed = {r.customer_sk for r in fact.where(F.col("customer_id") == orphan).collect()}
    assert keyed and -1 not in keyed


def test_an_fx_correction_reconverts_the_orders_it_affects(spark, story):
    root = story["root"]
    rates = {
        r.rate_date.isoformat(): r.rate
        for r in silver(spark, root, "fx_rates").where("quote_ccy = 'EUR'").collect()
    }
    corrected = {}
    path = root / "landing/fx/fx_rates" / f"dt={DAY1}" / "fx_rates.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("quote_ccy") == "EUR" and row["date"] in rates:
            corrected[row["date"]] = Decimal(str(row["rate"]))
    assert corrected, "no EUR rate of day 1 reached silver"
    for day, rate in corrected.items():
        assert rates[day] == rate, day
    eur = silver(spark, root, "orders").where("currency = 'EUR' AND has_fx_rate").collect()
    reconverted = [o for o in eur if o.fx_rate_date.isoformat() in story["eur_dates"]]
    assert reconverted
    for order in reconverted:
        assert order.fx_rate == rates[order.fx_rate_date.isoformat()]
        expected = (order.amount / order.fx_rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert order.amount_usd == expected, order.order_id


def test_a_late_version_slots_into_history_between_its_neighbours(spark, story):
    late = story["late"]
    dim = gold(spark, story["root"], "dim_customer")
    rows = dim.where(F.col("customer_id") == late["customer_id"]).orderBy("valid_from").collect()
    assert [(r.segment, r.valid_from, r.valid_to) for r in rows] == late["versions"]
    # Silver keeps the latest version: the late one is older than the day-2 version.
    (current,) = (
        silver(spark, story["root"], "customers")
        .where(F.col("customer_id") == late["customer_id"])
        .collect()
    )
    assert current.segment == late["versions"][-1][0]


@pytest.mark.parametrize("layer", ["silver", "gold"])
def test_the_incremental_lake_equals_a_rebuild_from_bronze(spark, story, layer):
    read = silver if layer == "silver" else gold
    for table in SILVER_TABLES if layer == "silver" else GOLD_TABLES:
        incremental, rebuilt = (
            read(spark, story["root"], table),
            read(spark, story["rebuild"], table),
        )
        assert same_content(incremental, rebuilt), table
