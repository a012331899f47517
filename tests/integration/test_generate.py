"""``medallion generate``: the landing zone it writes, checked by an independent reader.

The reader below parses every file with the csv and json modules and applies the agreed defect
taxonomy on its own (not the generator's code) to re-derive what the manifest claims: rows per
file, each defect kind's count, the rule each defective row must trip, tracked changes, status
changes, ambiguous CRM links and valid distinct events. It also checks that every other row is
clean, that foreign keys of non-orphans resolve, and that reruns are byte-identical.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import datetime as dt
import io
import json
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import pycountry
import pytest

from medallion.contracts.control import CONTROL_FILE
from medallion.errors import UsageError
from medallion.generate import generate_landing

START = dt.date(2025, 1, 13)
DAYS = 3
SCALE = 0.1

# Pinned by DESIGN.md section 5 (copied here on purpose: the test checks the files against the
# design, not against the generator's own constants).
HEADERS = {
    "crm/accounts": "Id,Name,Type,Industry,AnnualRevenue,NumberOfEmployees,BillingCountry,OwnerId,External_Customer_Id__c,CreatedDate,LastModifiedDate",
    "crm/contacts": "Id,AccountId,FirstName,LastName,Email,Phone,Title,CreatedDate,LastModifiedDate",
    "crm/opportunities": "Id,AccountId,Name,StageName,Amount,CurrencyIsoCode,Probability,CloseDate,IsClosed,IsWon,CreatedDate,LastModifiedDate",
    "snowflake/customers": "customer_id,first_name,last_name,email,phone,country,segment,created_at,updated_at",
    "snowflake/products": "product_id,sku,product_name,category,subcategory,brand,price_usd,cost_usd,active,created_at,updated_at",
    "snowflake/orders": "order_id,customer_id,product_id,order_ts,quantity,unit_price,amount,currency,status,updated_at",
    "redshift/customer_behavior": "customer_id,event_date,login_count,page_views,session_duration_minutes,purchases,revenue",
}
FX_KEYS = ["date", "base_ccy", "quote_ccy", "rate", "bid_rate", "ask_rate", "mid_rate", "source"]
EVENT_KEYS = [
    "event_id",
    "topic",
    "partition",
    "offset",
    "order_id",
    "event_type",
    "event_ts",
    "status",
    "metadata",
]
SEED_VOLUMES = {
    "crm/accounts": 10_000,
    "crm/contacts": 25_000,
    "crm/opportunities": 20_000,
    "snowflake/customers": 50_000,
    "snowflake/products": 10_000,
    "snowflake/orders": 100_000,
    "redshift/customer_behavior": 50_000,
    "kafka/order_events": 100_000,
}
CURRENCIES = set(
    [
        "AUD",
        "BRL",
        "CAD",
        "CHF",
        "CNY",
        "CZK",
        "DKK",
        "EUR",
        "GBP",
        "HUF",
        "INR",
        "JPY",
        "KRW",
        "MXN",
        "NOK",
        "PLN",
        "SEK",
        "SGD",
        "USD",
        "ZAR",
    ]
)
COUNTRIES = {c.alpha_2 for c in pycountry.countries}
STAGE_PROBABILITY = {
    "Prospecting": 10,
    "Qualification": 10,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
    "Closed Won": 100,
    "Closed Lost": 0,
}
EVENT_STATUS = {
    "order_created": "pending",
    "order_paid": "paid",
    "order_shipped": "shipped",
    "order_delivered": "delivered",
    "order_cancelled": "cancelled",
    "order_returned": "returned",
}
ORDER_STATUSES = set(EVENT_STATUS.values())
SEGMENTS = {"consumer", "small_business", "enterprise"}
LATE_HOURS = 48  # a late event is more than this older than its landing day


TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")
DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _ts(text: str) -> dt.datetime | None:
    """A strict ``YYYY-MM-DDTHH:MM:SSZ`` parse (what strptime does, only faster)."""
    match = TIMESTAMP.fullmatch(text)
    try:
        return dt.datetime(*map(int, match.groups())) if match else None
    except ValueError:  # 2025-02-30, 25:61
        return None


def _date(text: str) -> dt.date | None:
    match = DATE.fullmatch(text)
    try:
        return dt.date(*map(int, match.groups())) if match else None
    except ValueError:
        return None


def _is_email(text: str) -> bool:
    local, at, domain = text.partition("@")
    return bool(at and local and "." in domain and " " not in text)


# --- the independent reader ----------------------------------------------------------------------


def control_totals(folder: Path) -> dict[str, int]:
    """What a delivery folder's control file declares, checked for its table and date."""
    document = json.loads((folder / CONTROL_FILE).read_text(encoding="utf-8"))
    assert document["table"] == f"{folder.parent.parent.name}/{folder.parent.name}"
    assert document["date"] == folder.name.removeprefix("dt=")
    return document["files"]


class Landing:
    """Re-derives, day by day and in dependency order, what the manifest claims."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = json.loads((root / "_manifest.json").read_text(encoding="utf-8"))
        self.days = sorted(self.manifest["days"])
        self.valid: dict[str, set] = defaultdict(set)  # table -> keys of valid rows so far
        self.latest: dict[str, dict] = defaultdict(dict)  # table -> key -> latest valid row
        self.found: dict[str, dict[str, dict]] = defaultdict(dict)  # day -> table -> recount
        self.offsets: dict[int, int] = {}
        self.event_lines: dict[str, str] = {}
        for day in self.days:
            for table, read in (
                ("fx/fx_rates", self._fx),
                ("snowflake/products", self._products),
                ("snowflake/customers", self._customers),
                ("snowflake/orders", self._orders),
                ("crm/accounts", self._accounts),
                ("crm/contacts", self._contacts),
                ("crm/opportunities", self._opportunities),
                ("redshift/customer_behavior", self._behavior),
                ("kafka/order_events", self._events),
            ):
                self.found[day][table] = read(day)

    # CSV tables share one pass: parse, split off malformed rows and exact copies, classify.
    def _csv(self, day: str, table: str, classify, key) -> dict:
        folder = self.root / table / f"dt={day}"
        files = sorted(folder.glob("part-*.csv"))
        header = HEADERS[table].split(",")
        defects: Counter = Counter()
        seen: set[tuple] = set()
        valid_rows: list[dict] = []
        records = 0
        per_file: dict[str, int] = {}
        for path in files:
            text = path.read_text(encoding="utf-8")
            assert text.startswith(HEADERS[table] + "\n"), f"{path}: header differs"
            reader = csv.reader(io.StringIO(text, newline=""), strict=True)
            assert next(reader) == header
            per_file[path.name] = 0
            for fields in reader:
                records += 1
                per_file[path.name] += 1
                if len(fields) != len(header):
                    defects["malformed_row"] += 1
                    continue
                if tuple(fields) in seen:
                    defects["exact_duplicate"] += 1
                    continue
                seen.add(tuple(fields))
                row = dict(zip(header, fields, strict=True))
                kinds = classify(row)
                assert len(kinds) <= 1, f"{table} {day}: a row carries {kinds}: {row}"
                if kinds:
                    defects[kinds[0]] += 1
                if not kinds or kinds[0].startswith("orphan_"):
                    valid_rows.append(row)
        assert control_totals(folder) == per_file, f"{folder}: the control file's counts"
        keys = Counter(key(row) for row in valid_rows)
        updated = sum(n - 1 for n in keys.values())
        if updated:
            defects["updated_duplicate"] += updated
        return {"files": len(files), "rows": records, "defects": defects, "valid": valid_rows}

    def _keep_latest(self, table: str, rows: list[dict], key, stamp) -> dict:
        """Fold today's valid rows into the latest version per key; returns the previous
        version of every key that had one."""
        previous = {}
        for row in sorted(rows, key=stamp):
            k = key(row)
            if k in self.latest[table] and k not in previous:
                previous[k] = self.latest[table][k]
            self.latest[table][k] = row
            self.valid[table].add(k)
        return previous

    def _customers(self, day: str) -> dict:
        def classify(r: dict) -> list[str]:
            kinds = []
            if r["email"] == "":
                kinds.append("null_required")
            elif not _is_email(r["email"]):
                kinds.append("bad_email")
            if r["country"] not in COUNTRIES:
                kinds.append("unknown_country")
            if _ts(r["created_at"]) is None:
                kinds.append("bad_date")
            return kinds

        found = self._csv(day, "snowflake/customers", classify, lambda r: r["customer_id"])
        for r in found["valid"]:
            assert r["segment"] in SEGMENTS and r["first_name"] and r["last_name"]
            assert _ts(r["created_at"]) <= _ts(r["updated_at"])
        previous = self._keep_latest(
            "snowflake/customers",
            found["valid"],
            lambda r: r["customer_id"],
            lambda r: r["updated_at"],
        )
        tracked = ("segment", "country", "email")
        found["tracked"] = {
            k
            for k, old in previous.items()
            if any(old[a] != self.latest["snowflake/customers"][k][a] for a in tracked)
        }
        found["tracked_times"] = {
            k: self.latest["snowflake/customers"][k]["updated_at"] for k in found["tracked"]
        }
        return found

    def _products(self, day: str) -> dict:
        def classify(r: dict) -> list[str]:
            kinds = []
            if r["product_name"] == "":
                kinds.append("null_required")
            if float(r["price_usd"]) < 0:
                kinds.append("out_of_range")
            return kinds

        found = self._csv(day, "snowflake/products", classify, lambda r: r["product_id"])
        for r in found["valid"]:
            assert r["active"] in ("true", "false") and float(r["cost_usd"]) >= 0
        self._keep_latest(
            "snowflake/products",
            found["valid"],
            lambda r: r["product_id"],
            lambda r: r["updated_at"],
        )
        return found

    def _orders(self, day: str) -> dict:
        customers = self.valid["snowflake/customers"]
        products = self.valid["snowflake/products"]

        def classify(r: dict) -> list[str]:
            kinds = []
            if r["customer_id"] == "":
                kinds.append("null_required")
            elif r["customer_id"] not in customers:
                kinds.append("orphan_customer")
            if r["product_id"] not in products:
                kinds.append("orphan_product")
            if r["currency"] not in CURRENCIES:
                kinds.append("unknown_currency")
            if int(r["quantity"]) < 1:
                kinds.append("out_of_range")
            if _ts(r["order_ts"]) is None:
                kinds.append("bad_date")
            return kinds

        found = self._csv(day, "snowflake/orders", classify, lambda r: r["order_id"])
        for r in found["valid"]:
            assert r["status"] in ORDER_STATUSES
            cents = round(float(r["unit_price"]) * 100) * int(r["quantity"])
            assert round(float(r["amount"]) * 100) == cents, r
            assert _ts(r["order_ts"]) <= _ts(r["updated_at"])
            assert _ts(r["order_ts"]).date() <= dt.date.fromisoformat(day)
        previous = self._keep_latest(
            "snowflake/orders", found["valid"], lambda r: r["order_id"], lambda r: r["updated_at"]
        )
        latest = self.latest["snowflake/orders"]
        found["status_changed"] = {
            k for k, old in previous.items() if old["status"] != latest[k]["status"]
        }
        return found

    def _accounts(self, day: str) -> dict:
        customers = self.valid["snowflake/customers"]

        def classify(r: dict) -> list[str]:
            kinds = []
            if r["Name"] == "":
                kinds.append("null_required")
            if r["BillingCountry"] not in COUNTRIES:
                kinds.append("unknown_country")
            link = r["External_Customer_Id__c"]
            if link and link not in customers:
                kinds.append("orphan_customer")
            return kinds

        found = self._csv(day, "crm/accounts", classify, lambda r: r["Id"])
        previous = self._keep_latest(
            "crm/accounts", found["valid"], lambda r: r["Id"], lambda r: r["LastModifiedDate"]
        )
        latest = self.latest["crm/accounts"]
        found["industry"] = {
            latest[k]["External_Customer_Id__c"]
            for k, old in previous.items()
            if old["Industry"] != latest[k]["Industry"]
        }
        found["industry_times"] = {
            latest[k]["External_Customer_Id__c"]: latest[k]["LastModifiedDate"]
            for k, old in previous.items()
            if old["Industry"] != latest[k]["Industry"]
        }
        return found

    def _contacts(self, day: str) -> dict:
        accounts = self.valid["crm/accounts"]

        def classify(r: dict) -> list[str]:
            kinds = []
            if r["LastName"] == "":
                kinds.append("null_required")
            if r["Email"] and not _is_email(r["Email"]):
                kinds.append("bad_email")
            if r["AccountId"] not in accounts:
                kinds.append("orphan_account")
            return kinds

        found = self._csv(day, "crm/contacts", classify, lambda r: r["Id"])
        self._keep_latest(
            "crm/contacts", found["valid"], lambda r: r["Id"], lambda r: r["LastModifiedDate"]
        )
        return found

    def _opportunities(self, day: str) -> dict:
        accounts = self.valid["crm/accounts"]

        def classify(r: dict) -> list[str]:
            kinds = []
            if r["CloseDate"] == "":
                kinds.append("null_required")
            if r["CurrencyIsoCode"] not in CURRENCIES:
                kinds.append("unknown_currency")
            if r["StageName"] not in STAGE_PROBABILITY:
                kinds.append("unknown_stage")
            if not 0 <= int(r["Probability"]) <= 100:
                kinds.append("out_of_range")
            if r["AccountId"] not in accounts:
                kinds.append("orphan_account")
            return kinds

        found = self._csv(day, "crm/opportunities", classify, lambda r: r["Id"])
        for r in found["valid"]:
            stage = r["StageName"]
            assert int(r["Probability"]) == STAGE_PROBABILITY[stage]
            assert r["IsClosed"] == ("true" if stage.startswith("Closed") else "false")
            assert r["IsWon"] == ("true" if stage == "Closed Won" else "false")
            assert _date(r["CloseDate"]) is not None
        self._keep_latest(
            "crm/opportunities", found["valid"], lambda r: r["Id"], lambda r: r["LastModifiedDate"]
        )
        return found

    def _behavior(self, day: str) -> dict:
        customers = self.valid["snowflake/customers"]

        def classify(r: dict) -> list[str]:
            kinds = []
            if r["customer_id"] == "":
                kinds.append("null_required")
            elif r["customer_id"] not in customers:
                kinds.append("orphan_customer")
            if int(r["page_views"]) < 0:
                kinds.append("out_of_range")
            if _date(r["event_date"]) is None:
                kinds.append("bad_date")
            return kinds

        key = lambda r: (r["customer_id"], r["event_date"])  # noqa: E731
        found = self._csv(day, "redshift/customer_behavior", classify, key)
        for r in found["valid"]:
            assert min(int(r[c]) for c in ("login_count", "purchases")) >= 0
            assert float(r["revenue"]) >= 0 and float(r["session_duration_minutes"]) >= 0
        assert found["defects"].pop("updated_duplicate", 0) == 0, "behavior keys must be unique"
        self._keep_latest(
            "redshift/customer_behavior", found["valid"], key, lambda r: r["event_date"]
        )
        return found

    def _fx_reference(self, ccy: str, by_ccy: dict, medians: dict) -> float:
        """What a rate is compared with: its currency's median in the file when the file holds
        a history of it, else its latest valid rate of the earlier files (a daily file)."""
        if len(by_ccy[ccy]) >= 20:
            return medians[ccy]
        earlier = [(d, r["rate"]) for (d, c), r in self.latest["fx/fx_rates"].items() if c == ccy]
        return max(earlier)[1] if earlier else medians[ccy]

    def _fx(self, day: str) -> dict:
        path = self.root / "fx/fx_rates" / f"dt={day}" / "fx_rates.jsonl"
        lines = path.read_text(encoding="utf-8").split("\n")
        assert lines[-1] == ""
        assert control_totals(path.parent) == {path.name: len(lines) - 1}
        defects: Counter = Counter()
        parsed = []
        for line in lines[:-1]:
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                defects["malformed_json"] += 1
        by_ccy = defaultdict(list)
        for r in parsed:
            assert list(r) == FX_KEYS and r["base_ccy"] == "USD"
            assert r["bid_rate"] <= r["rate"] <= r["ask_rate"] and r["mid_rate"] == r["rate"]
            if r["quote_ccy"] in CURRENCIES and r["rate"] > 0:
                by_ccy[r["quote_ccy"]].append(r["rate"])
        medians = {c: statistics.median(v) for c, v in by_ccy.items()}
        valid = []
        for r in parsed:
            if r["quote_ccy"] not in CURRENCIES:
                defects["unknown_currency"] += 1
            elif r["rate"] == 0:
                defects["zero_rate"] += 1
            elif r["rate"] < 0:
                defects["negative_rate"] += 1
            elif r["rate"] > 100 * self._fx_reference(r["quote_ccy"], by_ccy, medians):
                defects["absurd_rate"] += 1
            else:
                valid.append(r)
                if r["quote_ccy"] == "USD":
                    assert r["rate"] == 1.0
                self.valid["fx/fx_rates"].add((r["date"], r["quote_ccy"]))
                self.latest["fx/fx_rates"][(r["date"], r["quote_ccy"])] = r
        return {"files": 1, "rows": len(lines) - 1, "defects": defects, "valid": valid}

    def _events(self, day: str) -> dict:
        orders = self.valid["snowflake/orders"]
        day_start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time())
        files = sorted((self.root / "kafka/order_events" / f"dt={day}").glob("batch-*.jsonl"))
        defects: Counter = Counter()
        rows = 0
        seen_today: dict[str, str] = {}
        valid_ids = set()
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                rows += 1
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    defects["malformed_json"] += 1
                    continue
                assert list(event) == EVENT_KEYS and event["topic"] == "orders"
                event_id = event["event_id"]
                if event_id in seen_today:
                    assert seen_today[event_id] == line and seen_today[event_id] is not None
                    defects["redelivered"] += 1
                    continue
                if event_id in self.event_lines:
                    assert self.event_lines[event_id] == line, "a replay re-sends the same bytes"
                    defects["replayed"] += 1
                    continue
                seen_today[event_id] = line
                partition, offset = event["partition"], event["offset"]
                assert 0 <= partition < 6 and offset > self.offsets.get(partition, -1)
                self.offsets[partition] = offset
                assert all(isinstance(v, str) for v in event["metadata"].values())
                ts = _ts(event["event_ts"])
                kinds = []
                if event["order_id"] is None:
                    kinds.append("null_required")
                elif event["order_id"] not in orders:
                    kinds.append("orphan_order")
                if event["event_type"] not in EVENT_STATUS:
                    kinds.append("unknown_event_type")
                elif event["status"] != EVENT_STATUS[event["event_type"]]:
                    kinds.append("status_mismatch")
                if ts < day_start - dt.timedelta(hours=LATE_HOURS):
                    kinds.append("late_event")
                else:
                    assert ts < day_start + dt.timedelta(days=1)
                assert len(kinds) <= 1, f"an event carries {kinds}: {line}"
                if kinds:
                    defects[kinds[0]] += 1
                if not kinds or kinds == ["orphan_order"]:
                    valid_ids.add(event_id)
        self.event_lines.update(seen_today)
        self.valid["kafka/order_events"] |= valid_ids
        return {"files": len(files), "rows": rows, "defects": defects, "valid_ids": valid_ids}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lake") / "landing"
    generate_landing(root, scale=SCALE, days=DAYS, start_date=START, seed=42)
    return root


@pytest.fixture(scope="module")
def reader(landing) -> Landing:
    return Landing(landing)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- layout and volumes --------------------------------------------------------------------------


def test_layout_and_manifest_shape(landing, reader):
    manifest = reader.manifest
    assert manifest["generator"] == {
        "scale": SCALE,
        "days": DAYS,
        "start_date": "2025-01-13",
        "seed": 42,
        "version": manifest["generator"]["version"],
    }
    assert reader.days == ["2025-01-13", "2025-01-14", "2025-01-15"]
    tables = [*HEADERS, "fx/fx_rates", "kafka/order_events"]
    for day in reader.days:
        assert sorted(manifest["days"][day]) == sorted(tables)
        for table in tables:
            assert (landing / table / f"dt={day}").is_dir()
    assert sorted(p.name for p in landing.iterdir()) == [
        "_manifest.json",
        "crm",
        "fx",
        "kafka",
        "redshift",
        "snowflake",
    ]
    event_files = sorted(p.name for p in landing.glob("kafka/order_events/dt=*/batch-*.jsonl"))
    by_day = [
        sorted(p.name for p in landing.glob(f"kafka/order_events/dt={d}/*.jsonl"))
        for d in reader.days
    ]
    assert [name for names in by_day for name in names] == event_files, "numbers increase"
    assert len(by_day[0]) >= 10


def test_first_day_volumes(reader):
    first = reader.manifest["days"]["2025-01-13"]
    for table, seed in SEED_VOLUMES.items():
        assert first[table]["rows_written"] == round(seed * SCALE), table
    assert first["fx/fx_rates"]["rows_written"] == 20_360
    for day in reader.days[1:]:
        assert reader.manifest["days"][day]["fx/fx_rates"]["rows_written"] == 20


def test_fx_history_is_business_days_ending_on_the_start_date(landing):
    lines = (landing / "fx/fx_rates/dt=2025-01-13/fx_rates.jsonl").read_text().splitlines()
    dates = set()
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            dates.add(json.loads(line)["date"])
    days = sorted(dt.date.fromisoformat(d) for d in dates)
    assert len(days) == 1018 and days[-1] == START
    assert all(d.weekday() < 5 for d in days)
    assert (
        json.loads(
            (landing / "fx/fx_rates/dt=2025-01-14/fx_rates.jsonl").read_text().splitlines()[0]
        )["date"]
        == "2025-01-14"
    )


def test_fx_levels_are_realistic(reader):
    rates = defaultdict(list)
    for (_, ccy), row in reader.latest["fx/fx_rates"].items():
        rates[ccy].append(row["rate"])
    assert min(rates["KRW"]) >= 1300 and max(rates["KRW"]) <= 1450
    assert min(rates["JPY"]) >= 140 and max(rates["JPY"]) <= 160
    assert min(rates["HUF"]) >= 350 and max(rates["HUF"]) <= 400
    assert 0.85 <= statistics.median(rates["EUR"]) <= 0.95
    assert set(rates["USD"]) == {1.0}


def test_csv_text_quirks_are_present(landing):
    text = "".join(p.read_text(encoding="utf-8") for p in landing.glob("*/*/dt=2025-01-13/*.csv"))
    for needle in ("é", "ü", "Å", '""', '",'):
        assert needle in text, needle
    records = [
        fields
        for p in landing.glob("*/*/dt=2025-01-13/*.csv")
        for fields in csv.reader(io.StringIO(p.read_text(encoding="utf-8"), newline=""))
    ]
    assert any("\n" in field for fields in records for field in fields), "a quoted line break"


# --- the manifest, re-derived from the files -----------------------------------------------------


def test_rows_written_and_files_match_the_files(reader):
    for day in reader.days:
        for table, found in reader.found[day].items():
            entry = reader.manifest["days"][day][table]
            assert entry["rows_written"] == found["rows"], (day, table)
            assert entry["files"] == found["files"], (day, table)


def test_defect_counts_match_the_files(reader):
    for day in reader.days:
        for table, found in reader.found[day].items():
            claimed = {k: v for k, v in reader.manifest["days"][day][table]["defects"].items() if v}
            assert dict(found["defects"]) == claimed, (day, table)


def test_defects_are_injected_at_the_documented_rates(reader):
    first = reader.manifest["days"]["2025-01-13"]
    rates = reader.manifest["rates"]
    for table, entry in first.items():
        for kind, count in entry["defects"].items():
            if kind == "replayed":
                continue
            if (table, kind) == ("kafka/order_events", "late_event"):
                assert count == 0  # nothing is late before the stream's first batch
                continue
            expected = rates[table][kind] * entry["rows_written"]
            assert abs(count - expected) <= 1, (table, kind)
            assert count > 0, (table, kind)


def test_expected_quarantine_by_rule(reader):
    rules = reader.manifest["rules"]
    for day in reader.days:
        for table, entry in reader.manifest["days"][day].items():
            by_rule: Counter = Counter()
            for kind, count in reader.found[day][table]["defects"].items():
                if rules[table][kind]:
                    by_rule[rules[table][kind]] += count
            expected = entry["expected"]
            assert {k: v for k, v in expected["quarantine"].items() if v} == dict(by_rule)
            assert expected["rows_bronze"] == entry["rows_written"] - sum(by_rule.values())


def test_silver_rows_so_far(reader):
    valid_so_far: dict[str, set] = defaultdict(set)
    keys = {
        "snowflake/customers": lambda r: r["customer_id"],
        "snowflake/products": lambda r: r["product_id"],
        "snowflake/orders": lambda r: r["order_id"],
        "crm/accounts": lambda r: r["Id"],
        "crm/contacts": lambda r: r["Id"],
        "crm/opportunities": lambda r: r["Id"],
        "redshift/customer_behavior": lambda r: (r["customer_id"], r["event_date"]),
        "fx/fx_rates": lambda r: (r["date"], r["quote_ccy"]),
    }
    for day in reader.days:
        for table, key in keys.items():
            valid_so_far[table] |= {key(r) for r in reader.found[day][table]["valid"]}
            assert reader.manifest["days"][day][table]["expected"]["silver_rows"] == len(
                valid_so_far[table]
            ), (day, table)
        valid_so_far["events"] |= reader.found[day]["kafka/order_events"]["valid_ids"]
        claimed = reader.manifest["days"][day]["kafka/order_events"]
        assert claimed["expected"]["silver_rows"] == len(valid_so_far["events"])


def test_tracked_changes_match_the_files(reader):
    truth = reader.manifest["truth"]["customers_tracked_changes"]
    times: Counter = Counter()
    for day in reader.days:
        tables = reader.manifest["days"][day]
        found = reader.found[day]["snowflake/customers"]["tracked"]
        claimed = set(tables["snowflake/customers"]["changes"].get("tracked_changed_ids", []))
        assert found == claimed, day
        industry = reader.found[day]["crm/accounts"]["industry"]
        assert industry == set(
            tables["crm/accounts"]["changes"].get("industry_changed_customer_ids", [])
        )
        assert not found & industry, "one tracked change per customer and day"
        assert sorted(found | industry) == truth["by_day"][day]
        times.update(found | industry)
    assert dict(times) == truth["times_by_customer"]
    assert sum(len(v) for v in truth["by_day"].values()) > 0
    # When each later SCD2 version starts, and the current version of each changed customer.
    starts: dict[str, list[str]] = {}
    for day in reader.days:
        for kind in ("tracked_times", "industry_times"):
            table = "snowflake/customers" if kind == "tracked_times" else "crm/accounts"
            for customer_id, stamp in reader.found[day][table][kind].items():
                starts.setdefault(customer_id, []).append(stamp)
    assert {c: sorted(t) for c, t in starts.items()} == truth["valid_from_by_customer"]
    latest = reader.latest["snowflake/customers"]
    assert truth["current_by_customer"] == {
        c: {a: latest[c][a] for a in ("segment", "country", "email")}
        for c in sorted(
            {c for d in reader.days for c in reader.found[d]["snowflake/customers"]["tracked"]}
        )
    }


def test_status_changes_match_the_files(reader):
    truth = reader.manifest["truth"]["orders_status_changes"]
    for day in reader.days:
        changes = reader.manifest["days"][day]["snowflake/orders"]["changes"]
        assert reader.found[day]["snowflake/orders"]["status_changed"] == set(
            changes.get("status_changed_ids", [])
        )
    latest = reader.latest["snowflake/orders"]
    assert truth["final_status"] and all(
        latest[o]["status"] == s for o, s in truth["final_status"].items()
    )


def test_ambiguous_crm_links(reader):
    accounts_by_customer = defaultdict(set)
    for account_id, row in reader.latest["crm/accounts"].items():
        link = row["External_Customer_Id__c"]
        if link in reader.valid["snowflake/customers"]:
            accounts_by_customer[link].add(account_id)
    found = {c: sorted(a) for c, a in accounts_by_customer.items() if len(a) > 1}
    assert found == reader.manifest["truth"]["crm_ambiguous_links"]
    assert found
    linked = sum(1 for r in reader.latest["crm/accounts"].values() if r["External_Customer_Id__c"])
    assert 0.7 < linked / len(reader.latest["crm/accounts"]) < 0.9


def test_valid_distinct_events(reader):
    truth = reader.manifest["truth"]["kafka_valid_distinct_events"]
    for day in reader.days:
        assert truth["by_day"][day] == len(reader.found[day]["kafka/order_events"]["valid_ids"])
    assert truth["total"] == len(reader.valid["kafka/order_events"])


def test_new_rows(reader):
    new_rows = reader.manifest["truth"]["new_rows"]
    for day in reader.days[1:]:
        assert new_rows[day]["snowflake/customers"] > 0 and new_rows[day]["snowflake/orders"] > 0
        assert new_rows[day]["fx/fx_rates"] == 20


def test_orders_are_priced_in_fx_of_their_date(reader):
    """unit_price = price_usd x the latest valid rate on or before the order date."""
    rates = defaultdict(list)
    for (date, ccy), row in reader.latest["fx/fx_rates"].items():
        rates[ccy].append((date, row["rate"]))
    for series in rates.values():
        series.sort()
    first_day_products = {
        r["product_id"]: r for r in reader.found["2025-01-13"]["snowflake/products"]["valid"]
    }
    checked = 0
    for order in reader.found["2025-01-13"]["snowflake/orders"]["valid"]:
        product = first_day_products.get(order["product_id"])
        if product is None:  # an orphan product
            continue
        date = order["order_ts"][:10]
        series = rates[order["currency"]]
        rate = series[bisect.bisect_right(series, (date, float("inf"))) - 1][1]
        expected = round(float(product["price_usd"]) * rate, 2)
        assert abs(float(order["unit_price"]) - expected) <= 0.011, order
        checked += 1
    assert checked > 1000


# --- determinism and arguments -------------------------------------------------------------------


def test_reruns_are_byte_identical(tmp_path):
    first = generate_landing(tmp_path / "a", scale=0.02, days=2, seed=7)
    second = generate_landing(tmp_path / "b", scale=0.02, days=2, seed=7)
    assert first == second
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    other = generate_landing(tmp_path / "c", scale=0.02, days=2, seed=8)
    assert _tree(tmp_path / "a") != _tree(tmp_path / "c")
    assert other["generator"]["seed"] == 8


def test_earlier_days_do_not_depend_on_later_ones(tmp_path):
    generate_landing(tmp_path / "one", scale=0.02, days=1, seed=7)
    generate_landing(tmp_path / "two", scale=0.02, days=2, seed=7)
    one = _tree(tmp_path / "one")
    two = _tree(tmp_path / "two")
    for name, data in one.items():
        if name != "_manifest.json":
            assert two[name] == data, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": -1}, "--scale"),
        ({"scale": 0}, "--scale"),
        ({"scale": float("nan")}, "--scale"),
        ({"days": 0}, "--days"),
        ({"days": 1.5}, "--days"),
        ({"start_date": "2025-02-30"}, "--start-date"),
        ({"start_date": "yesterday"}, "--start-date"),
        ({"seed": -3}, "--seed"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path, kwargs, message):
    with pytest.raises(UsageError, match=message) as info:
        generate_landing(tmp_path / "landing", **kwargs)
    assert info.value.exit_code == 2
    assert not (tmp_path / "landing").exists()


def test_existing_landing_needs_force(tmp_path):
    root = tmp_path / "landing"
    (root / "crm").mkdir(parents=True)
    (root / "crm" / "old.csv").write_text("x\n")
    with pytest.raises(UsageError, match="--force") as info:
        generate_landing(root, scale=0.01, days=1)
    assert info.value.exit_code == 2
    assert (root / "crm" / "old.csv").exists()
    manifest = generate_landing(root, scale=0.01, days=1, force=True)
    assert not (root / "crm" / "old.csv").exists()
    assert json.loads((root / "_manifest.json").read_text()) == manifest
    assert not list(tmp_path.glob(".*generating*")), "the staging folder is cleaned up"


def test_a_file_is_not_a_landing_folder(tmp_path):
    (tmp_path / "landing").write_text("")
    with pytest.raises(UsageError, match="is a file"):
        generate_landing(tmp_path / "landing", scale=0.01, days=1)
