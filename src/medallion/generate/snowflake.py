"""Snowflake extracts: customers, products and orders.

Customers are ``C`` + 8 digits, products ``P`` + 7 digits, orders ``O`` + 9 digits, numbered
from 1 in creation order. Later days carry new rows and new versions of existing rows: customers
whose tracked attributes (segment, country, email) change, customers whose phone or last name
changes, products whose price or active flag changes, and orders whose status moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medallion.generate import defects, fmt, streams
from medallion.generate.context import Day, Frame, Run, TableDay
from medallion.generate.defects import CsvBatch
from medallion.generate.fx import FxState
from medallion.generate.spec import (
    BAD_TIMESTAMPS,
    CUSTOMERS,
    EXACT_DUPLICATE,
    ORDERS,
    ORPHAN_CUSTOMERS,
    ORPHAN_PRODUCTS,
    PRODUCTS,
    RULE_IDS,
    UNKNOWN_COUNTRY,
    UNKNOWN_CURRENCY,
    UPDATED_DUPLICATE,
)
from medallion.generate.tables import (
    CUTOFF,
    DAY_SECONDS,
    YEAR,
    DefectPlan,
    first_day_counts,
    later_stamp,
    orphan_numbers,
    pick_choice,
    plan,
    sorted_by_created,
    stamps_in_day,
    write_batch,
)
from medallion.generate.vocab import (
    BRANDS,
    COUNTRIES,
    COUNTRY_CODES,
    COUNTRY_CULTURE,
    COUNTRY_CURRENCY,
    COUNTRY_WEIGHTS,
    CURRENCIES,
    EMAIL_DOMAINS,
    ORDER_STATUSES,
    PRODUCT_ADJECTIVES,
    SEGMENT_WEIGHTS,
    SEGMENTS,
    SUBCATEGORIES,
    USD,
    pools,
)

PENDING, PAID, SHIPPED, DELIVERED, CANCELLED, RETURNED = range(6)
TRACKED_ATTRIBUTES = ("segment", "country", "email")
TRACKED_WEIGHTS = np.array([0.4, 0.3, 0.3])
LOCAL_CURRENCY_SHARE = 0.65
NULL_PHONE_SHARE = 0.03
MALFORMED_LAST_NAMES = ("Smith, Jr.", "Walker, III", "Taylor, Sr.", "Jones, PhD")


@dataclass
class SnowflakeState:
    """Every customer, product and order so far (positions are id number - 1)."""

    customers: Frame = field(default_factory=Frame)
    products: Frame = field(default_factory=Frame)
    orders: Frame = field(default_factory=Frame)
    # What changed today, for the tables generated after these.
    tracked_today: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    new_customers_today: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    new_orders_today: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    status_changed_today: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def _take(frame: Frame, rows: np.ndarray) -> Frame:
    return frame.take(np.asarray(rows, dtype=np.int64))


def _phones(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.integers(100_000_000, 9_999_999_999, size=count)


def _arr(values: tuple[str, ...] | list[str]) -> pa.Array:
    return pa.array(list(values), pa.string())


# --- customers -----------------------------------------------------------------------------------


def _new_customers(
    rng: np.random.Generator, first_number: int, created: np.ndarray, updated: np.ndarray
) -> Frame:
    count = len(created)
    p = pools()
    country = streams.weighted_choice(rng, COUNTRY_WEIGHTS, count)
    culture = COUNTRY_CULTURE[country]
    first = p.first_name.sample(rng, culture)
    last = p.last_name.sample(rng, culture)
    phone = _phones(rng, count)
    phone[rng.random(count) < NULL_PHONE_SHARE] = -1
    return Frame(
        num=np.arange(first_number, first_number + count, dtype=np.int64),
        first=first,
        last=last,
        email_first=first.copy(),
        email_last=last.copy(),
        email_domain=rng.integers(0, len(EMAIL_DOMAINS), size=count),
        email_variant=np.zeros(count, dtype=np.int64),
        phone=phone,
        phone_country=country,
        country=country,
        segment=streams.weighted_choice(rng, SEGMENT_WEIGHTS, count),
        created=created,
        updated=updated,
        valid=np.ones(count, dtype=bool),
    )


def _customer_fields(v: Frame) -> dict[str, pa.Array]:
    p = pools()
    email = fmt.join(
        p.first_name.slug.take(pa.array(v["email_first"])),
        ".",
        p.last_name.slug.take(pa.array(v["email_last"])),
        fmt.ints((v["num"] * 31 + v["email_variant"] * 7) % 1000),
        "@",
        _arr(EMAIL_DOMAINS).take(pa.array(v["email_domain"])),
    )
    calling = _arr([c[2] for c in COUNTRIES]).take(pa.array(v["phone_country"]))
    phone = fmt.with_nulls(fmt.join("+", calling, " ", fmt.ints(v["phone"])), v["phone"] < 0)
    return {
        "customer_id": fmt.ids("C", v["num"], 8),
        "first_name": p.first_name.escaped.take(pa.array(v["first"])),
        "last_name": p.last_name.escaped.take(pa.array(v["last"])),
        "email": email,
        "phone": phone,
        "country": _arr(COUNTRY_CODES).take(pa.array(v["country"])),
        "segment": _arr(SEGMENTS).take(pa.array(v["segment"])),
        "created_at": fmt.timestamps(v["created"]),
        "updated_at": fmt.timestamps(v["updated"]),
    }


def _apply_tracked_changes(
    rng: np.random.Generator, state: Frame, rows: np.ndarray, stamp: np.ndarray
) -> dict[str, list[str]]:
    """Change one tracked attribute of each customer in ``rows``; returns ids by attribute."""
    attribute = streams.weighted_choice(rng, TRACKED_WEIGHTS, len(rows))
    segment_rows = rows[attribute == 0]
    state["segment"][segment_rows] = (
        state["segment"][segment_rows] + rng.integers(1, len(SEGMENTS), len(segment_rows))
    ) % len(SEGMENTS)
    country_rows = rows[attribute == 1]
    moved_to = streams.weighted_choice(rng, COUNTRY_WEIGHTS, len(country_rows))
    same = moved_to == state["country"][country_rows]
    moved_to[same] = (moved_to[same] + 1) % len(COUNTRIES)
    state["country"][country_rows] = moved_to
    email_rows = rows[attribute == 2]
    state["email_variant"][email_rows] += 1
    state["email_domain"][email_rows] = (
        state["email_domain"][email_rows] + rng.integers(1, len(EMAIL_DOMAINS), len(email_rows))
    ) % len(EMAIL_DOMAINS)
    state["updated"][rows] = stamp
    return {
        name: [f"C{n:08d}" for n in state["num"][rows[attribute == k]]]
        for k, name in enumerate(TRACKED_ATTRIBUTES)
    }


def _apply_ordinary_updates(
    rng: np.random.Generator, state: Frame, rows: np.ndarray, stamp: np.ndarray
) -> None:
    """Untracked changes only: a new phone number, or a new last name (the email keeps the
    name it was created with)."""
    new_last = rng.random(len(rows)) < 0.3
    phone_rows = rows[~new_last]
    state["phone"][phone_rows] = _phones(rng, len(phone_rows))
    state["phone_country"][phone_rows] = state["country"][phone_rows]
    name_rows = rows[new_last]
    state["last"][name_rows] = pools().last_name.sample(
        rng, COUNTRY_CULTURE[state["country"][name_rows]]
    )
    state["updated"][rows] = stamp


def current_tracked(state: Frame, customer_ids: list[str]) -> dict[str, dict[str, str]]:
    """The final tracked attributes (as extracted) of the given customers: their current
    version, which silver must hold."""
    if not customer_ids:
        return {}
    rows = np.array([int(cid[1:]) - 1 for cid in customer_ids], dtype=np.int64)
    fields = _customer_fields(state.take(rows))
    names = ("segment", "country", "email")
    values = {name: fields[name].to_pylist() for name in names}
    return {cid: {name: values[name][i] for name in names} for i, cid in enumerate(customer_ids)}


def _times_by_id(numbers: np.ndarray, stamps: np.ndarray) -> dict[str, str]:
    """``{customer_id: ISO-8601 UTC time}`` for the customers numbered ``numbers``."""
    times = fmt.timestamps(stamps).to_pylist()
    return dict(sorted(zip((f"C{n:08d}" for n in numbers), times, strict=True)))


def generate_customers_day(run: Run, day: Day, sf: SnowflakeState) -> TableDay:
    rng = run.rng(CUSTOMERS, day, "rows")
    state = sf.customers
    if day.is_first:
        counts, n_base = first_day_counts(CUSTOMERS, run.seed_volume(CUSTOMERS))
        created = rng.integers(day.start - 4 * YEAR, day.start - DAY_SECONDS, size=n_base)
        touched = rng.random(n_base) >= 0.4
        cutoff = day.start + CUTOFF
        updated = np.where(
            touched, created + (rng.random(n_base) * (cutoff - created)).astype(np.int64), created
        )
        sf.customers = state = _new_customers(rng, 1, created, updated)
        positions = np.arange(n_base, dtype=np.int64)
        new_rows = positions
        sf.tracked_today = np.empty(0, np.int64)
        changes = {"new": n_base}
    else:
        existing = np.flatnonzero(state["valid"])
        n_tracked = run.increment(CUSTOMERS, "tracked_change")
        n_update = run.increment(CUSTOMERS, "update")
        chosen = streams.sample_without_replacement(rng, existing, n_tracked + n_update)
        chosen = rng.permutation(chosen)
        tracked, updated_rows = np.sort(chosen[:n_tracked]), np.sort(chosen[n_tracked:])
        tracked_stamps = stamps_in_day(rng, day, len(tracked))
        by_attribute = _apply_tracked_changes(rng, state, tracked, tracked_stamps)
        _apply_ordinary_updates(
            rng, state, updated_rows, stamps_in_day(rng, day, len(updated_rows))
        )
        n_new = run.increment(CUSTOMERS, "new")
        stamp = stamps_in_day(rng, day, n_new)
        new_rows = state.extend(_new_customers(rng, len(state) + 1, stamp, stamp))
        positions = np.concatenate([tracked, updated_rows, new_rows])
        sf.tracked_today = tracked
        changes = {
            "new": int(n_new),
            "updated": len(updated_rows),
            "tracked_changed": len(tracked),
            "tracked_changed_ids": sorted(i for ids in by_attribute.values() for i in ids),
            "tracked_changes": {k: sorted(v) for k, v in by_attribute.items()},
            # When each change happened (its updated_at): where its SCD2 version starts.
            "tracked_change_times": _times_by_id(state["num"][tracked], tracked_stamps),
        }
        counts = defects.counts_for(CUSTOMERS, len(positions))

    versions = _take(state, positions)
    n_base = len(versions)
    eligible = np.arange(len(positions) - len(new_rows), len(positions), dtype=np.int64)
    picked = plan(run.rng(CUSTOMERS, day, "defects"), counts, n_base, eligible)

    batch = _customer_batch(run, day, state, versions, picked)
    bad = picked.quarantined(RULE_IDS[CUSTOMERS], n_base)
    state["valid"][positions[bad]] = False
    sf.new_customers_today = positions[len(positions) - len(new_rows) :][~bad[eligible]]

    files = write_batch(run, day, batch, run.rng(CUSTOMERS, day, "order"))
    return TableDay(
        CUSTOMERS,
        files=files,
        rows_written=len(batch),
        defects=picked.realised(),
        changes=changes,
        silver_rows=int(state["valid"].sum()),
    )


def _customer_batch(
    run: Run, day: Day, state: Frame, versions: Frame, picked: DefectPlan
) -> CsvBatch:
    rng = run.rng(CUSTOMERS, day, "edits")
    # Updated duplicates: a second version later the same day with a new phone number.
    second = versions.take(picked.rows(UPDATED_DUPLICATE))
    second["phone"] = _phones(rng, len(second))
    second["phone_country"] = second["country"]
    second["updated"] = later_stamp(rng, second["updated"])
    positions = second["num"] - 1
    state["phone"][positions] = second["phone"]
    state["phone_country"][positions] = second["phone_country"]
    state["updated"][positions] = second["updated"]

    batch = CsvBatch(CUSTOMERS, _customer_fields(Frame.concat([versions, second])))
    batch.set("email", picked.rows("null_required"), "")
    batch.set("country", picked.rows("unknown_country"), UNKNOWN_COUNTRY)
    bad_email = picked.rows("bad_email")
    batch.set(
        "email", bad_email, pc.replace_substring(batch.fields["email"].take(bad_email), "@", "")
    )
    bad_date = picked.rows("bad_date")
    batch.set("created_at", bad_date, _arr(pick_choice(rng, BAD_TIMESTAMPS, len(bad_date))))
    malformed = picked.rows("malformed_row")
    batch.set("last_name", malformed, _arr(pick_choice(rng, MALFORMED_LAST_NAMES, len(malformed))))
    batch.append_copies(picked.rows(EXACT_DUPLICATE))
    return batch


# --- products ------------------------------------------------------------------------------------


def _new_products(
    rng: np.random.Generator, first_number: int, created: np.ndarray, updated: np.ndarray
) -> Frame:
    count = len(created)
    p = pools()
    sub = rng.integers(0, len(SUBCATEGORIES), size=count)
    base_price = np.array([s[3] for s in SUBCATEGORIES])[sub]
    price = np.maximum(99, np.round(base_price * rng.lognormal(0.0, 0.45, count) * 100))
    price = price.astype(np.int64) // 100 * 100 + 99  # prices end in .99
    return Frame(
        num=np.arange(first_number, first_number + count, dtype=np.int64),
        sub=sub,
        brand=rng.integers(0, len(BRANDS), size=count),
        adjective=rng.integers(0, len(PRODUCT_ADJECTIVES), size=count),
        noun=p.product_noun.sample(rng, sub),
        suffix=p.product_suffix.sample(rng, np.zeros(count, np.int64)),
        price=price,
        cost=(price * rng.uniform(0.35, 0.75, count)).astype(np.int64),
        active=rng.random(count) < 0.95,
        created=created,
        updated=updated,
        valid=np.ones(count, dtype=bool),
    )


def _product_name(v: Frame, *, suffix: bool = True) -> pa.Array:
    p = pools()
    parts = [
        _arr(BRANDS).take(pa.array(v["brand"])),
        " ",
        _arr(PRODUCT_ADJECTIVES).take(pa.array(v["adjective"])),
        " ",
        p.product_noun.text.take(pa.array(v["noun"])),
    ]
    if suffix:
        parts.append(p.product_suffix.text.take(pa.array(v["suffix"])))
    return fmt.join(*parts)


def _product_fields(v: Frame) -> dict[str, pa.Array]:
    categories = _arr([s[0] for s in SUBCATEGORIES])
    subcategories = _arr([s[1] for s in SUBCATEGORIES])
    category_codes = _arr([s[0][:3].upper() for s in SUBCATEGORIES])
    sub_codes = _arr([s[2] for s in SUBCATEGORIES])
    sub = pa.array(v["sub"])
    return {
        "product_id": fmt.ids("P", v["num"], 7),
        "sku": fmt.join(
            category_codes.take(sub), "-", sub_codes.take(sub), "-", fmt.padded(v["num"], 6)
        ),
        "product_name": fmt.csv_escape(_product_name(v)),
        "category": fmt.csv_escape(categories.take(sub)),
        "subcategory": fmt.csv_escape(subcategories.take(sub)),
        "brand": fmt.csv_escape(_arr(BRANDS).take(pa.array(v["brand"]))),
        "price_usd": fmt.fixed(v["price"], 2),
        "cost_usd": fmt.fixed(v["cost"], 2),
        "active": fmt.booleans(v["active"]),
        "created_at": fmt.timestamps(v["created"]),
        "updated_at": fmt.timestamps(v["updated"]),
    }


def generate_products_day(run: Run, day: Day, sf: SnowflakeState) -> TableDay:
    rng = run.rng(PRODUCTS, day, "rows")
    state = sf.products
    if day.is_first:
        counts, n_base = first_day_counts(PRODUCTS, run.seed_volume(PRODUCTS))
        age = (6 * YEAR * rng.random(n_base) ** 0.7).astype(np.int64)
        created = day.start - DAY_SECONDS - age
        touched = rng.random(n_base) >= 0.5
        cutoff = day.start + CUTOFF
        updated = np.where(
            touched, created + (rng.random(n_base) * (cutoff - created)).astype(np.int64), created
        )
        sf.products = state = _new_products(rng, 1, created, updated)
        positions = new_rows = np.arange(n_base, dtype=np.int64)
        changes = {"new": n_base}
    else:
        existing = np.flatnonzero(state["valid"])
        updated_rows = streams.sample_without_replacement(
            rng, existing, run.increment(PRODUCTS, "update")
        )
        reprice = rng.random(len(updated_rows)) < 0.7
        rows = updated_rows[reprice]
        factor = 1 + rng.choice([-1, 1], len(rows)) * rng.uniform(0.05, 0.15, len(rows))
        state["price"][rows] = (state["price"][rows] * factor).astype(np.int64) // 100 * 100 + 99
        rows = updated_rows[~reprice]
        state["active"][rows] = ~state["active"][rows]
        state["updated"][updated_rows] = stamps_in_day(rng, day, len(updated_rows))
        n_new = run.increment(PRODUCTS, "new")
        stamp = stamps_in_day(rng, day, n_new)
        new_rows = state.extend(_new_products(rng, len(state) + 1, stamp, stamp))
        positions = np.concatenate([updated_rows, new_rows])
        changes = {"new": int(n_new), "updated": len(updated_rows)}
        counts = defects.counts_for(PRODUCTS, len(positions))

    versions = _take(state, positions)
    n_base = len(versions)
    eligible = np.arange(n_base - len(new_rows), n_base, dtype=np.int64)
    picked = plan(run.rng(PRODUCTS, day, "defects"), counts, n_base, eligible)

    negative = picked.rows("out_of_range")
    versions["price"][negative] = -versions["price"][negative]
    batch = CsvBatch(PRODUCTS, _product_fields(versions))
    batch.set("product_name", picked.rows("null_required"), "")
    malformed = picked.rows("malformed_row")
    broken_name = fmt.join(_product_name(versions.take(malformed), suffix=False), ", 2-Pack")
    batch.set("product_name", malformed, broken_name)
    batch.append_copies(picked.rows(EXACT_DUPLICATE))

    bad = picked.quarantined(RULE_IDS[PRODUCTS], n_base)
    state["valid"][positions[bad]] = False
    files = write_batch(run, day, batch, run.rng(PRODUCTS, day, "order"))
    return TableDay(
        PRODUCTS,
        files=files,
        rows_written=len(batch),
        defects=picked.realised(),
        changes=changes,
        silver_rows=int(state["valid"].sum()),
    )


# --- orders --------------------------------------------------------------------------------------

# Status mix by order age (days): pending, paid, shipped, delivered, cancelled, returned.
STATUS_BY_AGE = (
    (2, np.array([0.35, 0.35, 0.20, 0.00, 0.10, 0.00])),
    (7, np.array([0.05, 0.20, 0.45, 0.25, 0.05, 0.00])),
    (30, np.array([0.00, 0.00, 0.15, 0.72, 0.06, 0.07])),
    (None, np.array([0.00, 0.00, 0.00, 0.84, 0.07, 0.09])),
)


def _statuses(rng: np.random.Generator, age_days: np.ndarray) -> np.ndarray:
    out = np.empty(len(age_days), dtype=np.int64)
    lower = -np.inf
    for upper, mix in STATUS_BY_AGE:
        mask = (age_days >= lower) & (age_days < (np.inf if upper is None else upper))
        out[mask] = streams.weighted_choice(rng, mix, int(mask.sum()))
        lower = upper if upper is not None else lower
    return out


def _new_orders(
    rng: np.random.Generator,
    first_number: int,
    ts: np.ndarray,
    sf: SnowflakeState,
    fx: FxState,
    *,
    active_only: bool,
) -> Frame:
    count = len(ts)
    customers, products = sf.customers, sf.products
    cust_pos, cust_created = sorted_by_created(customers, customers["valid"])
    cust = cust_pos[streams.pick_created_before(rng, cust_created, ts, skew=1.3)]
    product_mask = products["valid"] & (products["active"] if active_only else True)
    prod_pos, prod_created = sorted_by_created(products, product_mask)
    prod = prod_pos[streams.pick_created_before(rng, prod_created, ts, skew=1.5)]
    local = COUNTRY_CURRENCY[customers["country"][cust]]
    currency = np.where(rng.random(count) < LOCAL_CURRENCY_SHARE, local, USD)
    rate = fx.asof(currency, ts // DAY_SECONDS)
    unit = np.maximum(1, np.round(products["price"][prod] * rate)).astype(np.int64)
    return Frame(
        num=np.arange(first_number, first_number + count, dtype=np.int64),
        customer=customers["num"][cust],
        product=products["num"][prod],
        ts=ts,
        quantity=np.minimum(rng.geometric(0.55, count), 20).astype(np.int64),
        unit=unit,
        currency=currency,
        status=np.zeros(count, dtype=np.int64),
        updated=ts.copy(),
        valid=np.ones(count, dtype=bool),
        orphan=np.zeros(count, dtype=bool),
    )


def _order_fields(v: Frame) -> dict[str, pa.Array]:
    return {
        "order_id": fmt.ids("O", v["num"], 9),
        "customer_id": fmt.ids("C", v["customer"], 8),
        "product_id": fmt.ids("P", v["product"], 7),
        "order_ts": fmt.timestamps(v["ts"]),
        "quantity": fmt.ints(v["quantity"]),
        "unit_price": fmt.fixed(v["unit"], 2),
        "amount": fmt.fixed(v["quantity"] * v["unit"], 2),
        "currency": _arr(CURRENCIES).take(pa.array(v["currency"])),
        "status": _arr(ORDER_STATUSES).take(pa.array(v["status"])),
        "updated_at": fmt.timestamps(v["updated"]),
    }


def _advance_statuses(
    rng: np.random.Generator, state: Frame, n_changes: int, day: Day
) -> np.ndarray:
    """Move orders along their lifecycle; returns the positions that changed."""
    status = state["status"]
    valid = state["valid"] & ~state["orphan"]  # an orphan's key stays on its one row
    open_orders = np.flatnonzero(valid & np.isin(status, [PENDING, PAID, SHIPPED]))
    delivered = np.flatnonzero(valid & (status == DELIVERED))
    n_returns = round(0.1 * n_changes)
    rows = np.union1d(
        streams.sample_without_replacement(rng, open_orders, n_changes - n_returns),
        streams.sample_without_replacement(rng, delivered, n_returns),
    )
    before = status[rows]
    u = rng.random(len(rows))
    after = np.select(
        [
            before == PENDING,
            before == PAID,
            before == SHIPPED,
        ],
        [
            np.where(u < 0.9, PAID, CANCELLED),
            np.where(u < 0.95, SHIPPED, CANCELLED),
            np.full(len(rows), DELIVERED),
        ],
        default=RETURNED,
    )
    status[rows] = after
    state["updated"][rows] = stamps_in_day(rng, day, len(rows))
    return rows


def generate_orders_day(run: Run, day: Day, sf: SnowflakeState, fx: FxState) -> TableDay:
    rng = run.rng(ORDERS, day, "rows")
    state = sf.orders
    if day.is_first:
        counts, n_base = first_day_counts(ORDERS, run.seed_volume(ORDERS))
        cutoff = day.start + CUTOFF
        age = (730 * DAY_SECONDS * rng.random(n_base) ** 1.3).astype(np.int64)
        ts = np.sort(cutoff - 1 - age)
        sf.orders = state = _new_orders(rng, 1, ts, sf, fx, active_only=False)
        age_days = (cutoff - ts) / DAY_SECONDS
        state["status"] = _statuses(rng, age_days)
        settled = np.minimum(cutoff - ts, 20 * DAY_SECONDS)
        state["updated"] = np.where(
            state["status"] == PENDING, ts, ts + (rng.random(n_base) * settled).astype(np.int64)
        )
        positions = new_rows = np.arange(n_base, dtype=np.int64)
        changed = np.empty(0, np.int64)
        changes = {"new": n_base}
    else:
        changed = _advance_statuses(rng, state, run.increment(ORDERS, "status_change"), day)
        n_new = run.increment(ORDERS, "new")
        ts = np.sort(day.start + rng.integers(0, CUTOFF - 600, size=n_new))
        fresh = _new_orders(rng, len(state) + 1, ts, sf, fx, active_only=True)
        fresh["status"] = np.where(rng.random(n_new) < 0.7, PENDING, PAID)
        fresh["updated"] = ts + rng.integers(0, 600, size=n_new)
        new_rows = state.extend(fresh)
        positions = np.concatenate([changed, new_rows])
        changes = {
            "new": int(n_new),
            "status_changed": len(changed),
            "status_changed_ids": [f"O{n:09d}" for n in state["num"][changed]],
        }
        counts = defects.counts_for(ORDERS, len(positions))

    n_base = len(positions)
    eligible = np.arange(n_base - len(new_rows), n_base, dtype=np.int64)
    picked = plan(run.rng(ORDERS, day, "defects"), counts, n_base, eligible)

    # Orphans are valid orders pointing at no customer / product: part of the state.
    edits = run.rng(ORDERS, day, "edits")
    orphan_c = positions[picked.rows("orphan_customer")]
    state["customer"][orphan_c] = orphan_numbers(*ORPHAN_CUSTOMERS, day, len(orphan_c))
    orphan_p = positions[picked.rows("orphan_product")]
    state["product"][orphan_p] = orphan_numbers(*ORPHAN_PRODUCTS, day, len(orphan_p))
    state["orphan"][np.concatenate([orphan_c, orphan_p])] = True
    versions = _take(state, positions)
    negative = picked.rows("out_of_range")
    versions["quantity"][negative] = -edits.integers(1, 6, size=len(negative))

    # Updated duplicates: the order amended later the same day (one more item).
    second = versions.take(picked.rows(UPDATED_DUPLICATE))
    second["quantity"] = second["quantity"] + 1
    second["updated"] = later_stamp(edits, second["updated"])
    state["quantity"][second["num"] - 1] = second["quantity"]
    state["updated"][second["num"] - 1] = second["updated"]

    batch = CsvBatch(ORDERS, _order_fields(Frame.concat([versions, second])))
    batch.set("customer_id", picked.rows("null_required"), "")
    batch.set("currency", picked.rows("unknown_currency"), UNKNOWN_CURRENCY)
    bad_date = picked.rows("bad_date")
    batch.set("order_ts", bad_date, _arr(pick_choice(edits, BAD_TIMESTAMPS, len(bad_date))))
    malformed = picked.rows("malformed_row")
    batch.set("unit_price", malformed, fmt.decimal_comma(versions["unit"][malformed], 2))
    batch.append_copies(picked.rows(EXACT_DUPLICATE))

    bad = picked.quarantined(RULE_IDS[ORDERS], n_base)
    state["valid"][positions[bad]] = False
    sf.new_orders_today = new_rows[~bad[eligible]]
    sf.status_changed_today = changed
    files = write_batch(run, day, batch, run.rng(ORDERS, day, "order"))
    return TableDay(
        ORDERS,
        files=files,
        rows_written=len(batch),
        defects=picked.realised(),
        changes=changes,
        silver_rows=int(state["valid"].sum()),
    )
