"""CRM (Salesforce) extracts: accounts, contacts and opportunities.

Ids are 18-character Salesforce ids (``001`` accounts, ``003`` contacts, ``006`` opportunities,
``005`` owners). About 80% of accounts belong to a customer through ``External_Customer_Id__c``;
the rest are prospects with the field empty. A few customers have two accounts (ambiguous
links), counted in the manifest. On later days a few linked accounts change ``Industry``, a
tracked attribute of the customer they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medallion.generate import defects, fmt, fx, streams
from medallion.generate.context import Day, Frame, Run, TableDay
from medallion.generate.defects import CsvBatch
from medallion.generate.snowflake import SnowflakeState
from medallion.generate.spec import (
    ACCOUNTS,
    AMBIGUOUS_LINK_RATE,
    CONTACTS,
    EXACT_DUPLICATE,
    OPPORTUNITIES,
    ORPHAN_CUSTOMERS,
    ORPHAN_SALESFORCE,
    OUT_OF_RANGE_PROBABILITY,
    RULE_IDS,
    UNKNOWN_COUNTRY,
    UNKNOWN_CURRENCY,
    UNKNOWN_STAGE,
    UPDATED_DUPLICATE,
)
from medallion.generate.tables import (
    CUTOFF,
    DAY_SECONDS,
    YEAR,
    first_day_counts,
    later_stamp,
    orphan_numbers,
    plan,
    stamps_in_day,
    write_batch,
)
from medallion.generate.vocab import (
    ACCOUNT_TYPES,
    CLOSED_LOST,
    CLOSED_WON,
    COMPANY_NOUNS,
    COMPANY_WORDS,
    COUNTRIES,
    COUNTRY_CODES,
    COUNTRY_CULTURE,
    COUNTRY_CURRENCY,
    COUNTRY_TLD,
    COUNTRY_WEIGHTS,
    CURRENCIES,
    DEAL_NAMES,
    INDUSTRIES,
    STAGE_PROBABILITY,
    STAGE_WEIGHTS,
    STAGES,
    USD,
    ascii_slug,
    pools,
)

LINKED_SHARE = 0.80
OWNERS = 150
ID_STEP = 37  # Salesforce ids are increasing but not contiguous
ID_BASE = 1_000_000
NO_CUSTOMER = -1
NO_VALUE = -1
PLAIN, QUOTED, TWO_LINES = 0, 1, 2
MALFORMED_TITLES = ("VP, Sales", "VP, Operations", "Director, Finance", "Head, Procurement")
BUSINESS_WEIGHT = 5.0  # accounts belong mostly to small_business / enterprise customers


@dataclass
class CrmState:
    accounts: Frame = field(default_factory=Frame)
    contacts: Frame = field(default_factory=Frame)
    opportunities: Frame = field(default_factory=Frame)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)


def _arr(values) -> pa.Array:
    return pa.array(list(values), pa.string())


def sf_ids(prefix: str, seq: np.ndarray) -> pa.Array:
    return fmt.salesforce_ids(prefix, ID_BASE + np.asarray(seq, dtype=np.int64) * ID_STEP)


def owner_ids(owner: np.ndarray) -> pa.Array:
    return sf_ids("005", owner)


def _timestamps_between(rng: np.random.Generator, earliest: np.ndarray, latest: int) -> np.ndarray:
    return earliest + (rng.random(len(earliest)) * (latest - earliest)).astype(np.int64)


# --- accounts ------------------------------------------------------------------------------------


def _new_accounts(
    rng: np.random.Generator,
    first_seq: int,
    customer: np.ndarray,
    customer_country: np.ndarray,
    created: np.ndarray,
    updated: np.ndarray,
) -> Frame:
    count = len(customer)
    linked = customer != NO_CUSTOMER
    country = np.where(
        linked, customer_country, streams.weighted_choice(rng, COUNTRY_WEIGHTS, count)
    )
    u = rng.random(count)
    account_type = np.where(
        linked,
        np.where(u < 0.7, 0, 1),
        np.where(u < 0.75, 2, rng.integers(3, len(ACCOUNT_TYPES), size=count)),
    )
    industry = rng.integers(0, len(INDUSTRIES), size=count)
    industry[rng.random(count) < 0.05] = NO_VALUE
    revenue = (np.round(rng.lognormal(15.4, 1.4, count) / 1000) * 1000).astype(np.int64)
    revenue[rng.random(count) < 0.10] = NO_VALUE
    employees = np.maximum(1, rng.lognormal(4.5, 1.5, count)).astype(np.int64)
    employees[rng.random(count) < 0.10] = NO_VALUE
    decoration = streams.weighted_choice(rng, np.array([0.993, 0.005, 0.002]), count)
    return Frame(
        seq=np.arange(first_seq, first_seq + count, dtype=np.int64),
        word=rng.integers(0, len(COMPANY_WORDS), size=count),
        noun=rng.integers(0, len(COMPANY_NOUNS), size=count),
        suffix=pools().company_suffix.sample(rng, COUNTRY_CULTURE[country]),
        decoration=decoration,
        type=account_type,
        industry=industry,
        revenue=revenue,
        employees=employees,
        country=country,
        owner=rng.integers(1, OWNERS + 1, size=count),
        customer=customer,
        created=created,
        updated=updated,
        valid=np.ones(count, dtype=bool),
        orphan=np.zeros(count, dtype=bool),
    )


def _company_base(v: Frame) -> pa.Array:
    """The company name without its legal suffix (``Blue Harbor Logistics``)."""
    return fmt.join(
        _arr(COMPANY_WORDS).take(pa.array(v["word"])),
        _arr(COMPANY_NOUNS).take(pa.array(v["noun"])),
    )


def account_names(v: Frame) -> pa.Array:
    base = _company_base(v)
    suffix = pools().company_suffix.text.take(pa.array(v["suffix"]))
    plain = fmt.join(base, suffix)
    quoted = fmt.join('"', base, '"', suffix)
    two_lines = fmt.join(base, suffix, "\nEMEA Division")
    decoration = v["decoration"]
    return pc.if_else(
        pa.array(decoration == QUOTED),
        quoted,
        pc.if_else(pa.array(decoration == TWO_LINES), two_lines, plain),
    )


def company_domains(v: Frame) -> pa.Array:
    """A web domain for the company (``blueharborlogistics.de``)."""
    words = _arr([ascii_slug(w) for w in COMPANY_WORDS]).take(pa.array(v["word"]))
    nouns = _arr([ascii_slug(n) for n in COMPANY_NOUNS]).take(pa.array(v["noun"]))
    tld = _arr(COUNTRY_TLD.tolist()).take(pa.array(v["country"]))
    return fmt.join(words, nouns, ".", tld)


def _account_fields(v: Frame) -> dict[str, pa.Array]:
    industry = np.maximum(v["industry"], 0)
    return {
        "Id": sf_ids("001", v["seq"]),
        "Name": fmt.csv_escape(account_names(v)),
        "Type": fmt.csv_escape(_arr(ACCOUNT_TYPES).take(pa.array(v["type"]))),
        "Industry": fmt.with_nulls(
            fmt.csv_escape(_arr(INDUSTRIES).take(pa.array(industry))), v["industry"] < 0
        ),
        "AnnualRevenue": fmt.with_nulls(fmt.ints(v["revenue"]), v["revenue"] < 0),
        "NumberOfEmployees": fmt.with_nulls(fmt.ints(v["employees"]), v["employees"] < 0),
        "BillingCountry": _arr(COUNTRY_CODES).take(pa.array(v["country"])),
        "OwnerId": owner_ids(v["owner"]),
        "External_Customer_Id__c": fmt.with_nulls(
            fmt.ids("C", np.maximum(v["customer"], 0), 8), v["customer"] == NO_CUSTOMER
        ),
        "CreatedDate": fmt.timestamps(v["created"]),
        "LastModifiedDate": fmt.timestamps(v["updated"]),
    }


def _first_day_links(
    rng: np.random.Generator, sf: SnowflakeState, n_accounts: int
) -> tuple[np.ndarray, np.ndarray]:
    """Customer number per account (NO_CUSTOMER for prospects), and the positions of accounts
    in ambiguous pairs (two accounts, one customer)."""
    customers = sf.customers
    candidates = np.flatnonzero(customers["valid"])
    n_linked = round(LINKED_SHARE * n_accounts)
    n_ambiguous = round(AMBIGUOUS_LINK_RATE * n_linked)
    if n_linked >= 2 and AMBIGUOUS_LINK_RATE > 0:
        n_ambiguous = max(1, n_ambiguous)
    weights = np.where(customers["segment"][candidates] > 0, BUSINESS_WEIGHT, 1.0)
    distinct = streams.sample_without_replacement(rng, candidates, n_linked - n_ambiguous, weights)
    distinct = rng.permutation(distinct)
    doubled = distinct[:n_ambiguous]
    targets = np.concatenate([distinct, doubled])
    linked_rows = rng.choice(n_accounts, size=len(targets), replace=False)
    customer = np.full(n_accounts, NO_CUSTOMER, dtype=np.int64)
    customer[linked_rows] = customers["num"][targets]
    ambiguous_rows = np.sort(
        np.concatenate([linked_rows[:n_ambiguous], linked_rows[len(distinct) :]])
    )
    return customer, ambiguous_rows


def generate_accounts_day(run: Run, day: Day, sf: SnowflakeState, crm: CrmState) -> TableDay:
    rng = run.rng(ACCOUNTS, day, "rows")
    customers = sf.customers
    if day.is_first:
        counts, n_base = first_day_counts(ACCOUNTS, run.seed_volume(ACCOUNTS))
        customer, ambiguous_rows = _first_day_links(rng, sf, n_base)
        country = customers["country"][np.maximum(customer, 1) - 1]
        created = rng.integers(day.start - 6 * YEAR, day.start - DAY_SECONDS, size=n_base)
        updated = np.where(
            rng.random(n_base) < 0.6, _timestamps_between(rng, created, day.start + CUTOFF), created
        )
        crm.accounts = state = _new_accounts(rng, 1, customer, country, created, updated)
        positions = new_rows = np.arange(n_base, dtype=np.int64)
        protected = ambiguous_rows
        changes = {"new": n_base, "ambiguous_links": len(ambiguous_rows) // 2}
    else:
        state = crm.accounts
        industry_rows = _industry_changes(rng, run, sf, state)
        state["industry"][industry_rows] = (
            state["industry"][industry_rows] + rng.integers(1, len(INDUSTRIES), len(industry_rows))
        ) % len(INDUSTRIES)
        state["updated"][industry_rows] = stamps_in_day(rng, day, len(industry_rows))
        others = np.setdiff1d(np.flatnonzero(state["valid"] & ~state["orphan"]), industry_rows)
        updated_rows = streams.sample_without_replacement(
            rng, others, run.increment(ACCOUNTS, "update")
        )
        _touch_accounts(rng, state, updated_rows)
        state["updated"][updated_rows] = stamps_in_day(rng, day, len(updated_rows))

        n_new = run.increment(ACCOUNTS, "new")
        customer = np.full(n_new, NO_CUSTOMER, dtype=np.int64)
        fresh = sf.new_customers_today
        fresh = fresh[~np.isin(customers["num"][fresh], state["customer"])]
        n_link = min(len(fresh), n_new // 2)
        link_rows = rng.choice(n_new, size=n_link, replace=False)
        customer[link_rows] = customers["num"][fresh[:n_link]]
        country = customers["country"][np.maximum(customer, 1) - 1]
        stamp = stamps_in_day(rng, day, n_new)
        new_rows = state.extend(_new_accounts(rng, len(state) + 1, customer, country, stamp, stamp))
        positions = np.concatenate([industry_rows, updated_rows, new_rows])
        protected = np.empty(0, np.int64)
        changes = {
            "new": int(n_new),
            "updated": len(updated_rows),
            "industry_changed": len(industry_rows),
            "industry_changed_customer_ids": sorted(
                f"C{n:08d}" for n in state["customer"][industry_rows]
            ),
            # The account's LastModifiedDate: where the customer's SCD2 version starts.
            "industry_change_times": dict(
                sorted(
                    zip(
                        (f"C{n:08d}" for n in state["customer"][industry_rows]),
                        fmt.timestamps(state["updated"][industry_rows]).to_pylist(),
                        strict=True,
                    )
                )
            ),
        }
        counts = defects.counts_for(ACCOUNTS, len(positions))

    n_base = len(positions)
    eligible = np.setdiff1d(np.arange(n_base - len(new_rows), n_base), protected)
    picked = plan(run.rng(ACCOUNTS, day, "defects"), counts, n_base, eligible)

    edits = run.rng(ACCOUNTS, day, "edits")
    orphans = positions[picked.rows("orphan_customer")]
    state["customer"][orphans] = orphan_numbers(*ORPHAN_CUSTOMERS, day, len(orphans))
    state["orphan"][orphans] = True
    versions = state.take(positions)
    second = versions.take(picked.rows(UPDATED_DUPLICATE))
    _touch_accounts(edits, second, np.arange(len(second)))
    second["updated"] = later_stamp(edits, second["updated"])
    for name in ("revenue", "employees", "owner", "updated"):
        state[name][second["seq"] - 1] = second[name]

    batch = CsvBatch(ACCOUNTS, _account_fields(Frame.concat([versions, second])))
    batch.set("Name", picked.rows("null_required"), "")
    batch.set("BillingCountry", picked.rows("unknown_country"), UNKNOWN_COUNTRY)
    malformed = picked.rows("malformed_row")
    batch.set(
        "Name",
        malformed,
        fmt.join(_company_base(versions.take(malformed)), ", Inc."),
    )
    batch.append_copies(picked.rows(EXACT_DUPLICATE))

    bad = picked.quarantined(RULE_IDS[ACCOUNTS], n_base)
    state["valid"][positions[bad]] = False
    if day.is_first:
        account_ids = sf_ids("001", state["seq"][ambiguous_rows]).to_pylist()
        for row, account_id in zip(ambiguous_rows.tolist(), account_ids, strict=True):
            crm.ambiguous.setdefault(f"C{state['customer'][row]:08d}", []).append(account_id)
        crm.ambiguous = {k: sorted(v) for k, v in sorted(crm.ambiguous.items())}
    files = write_batch(run, day, batch, run.rng(ACCOUNTS, day, "order"))
    return TableDay(
        ACCOUNTS,
        files=files,
        rows_written=len(batch),
        defects=picked.realised(),
        changes=changes,
        silver_rows=int(state["valid"].sum()),
    )


def _touch_accounts(rng: np.random.Generator, frame: Frame, rows: np.ndarray) -> None:
    """Untracked edits: new revenue, headcount or owner."""
    what = rng.integers(0, 3, size=len(rows))
    revenue_rows = rows[what == 0]
    frame["revenue"][revenue_rows] = (
        np.round(rng.lognormal(15.4, 1.4, len(revenue_rows)) / 1000) * 1000
    ).astype(np.int64)
    employee_rows = rows[what == 1]
    frame["employees"][employee_rows] = np.maximum(
        1, rng.lognormal(4.5, 1.5, len(employee_rows))
    ).astype(np.int64)
    owner_rows = rows[what == 2]
    frame["owner"][owner_rows] = rng.integers(1, OWNERS + 1, size=len(owner_rows))


def _industry_changes(
    rng: np.random.Generator, run: Run, sf: SnowflakeState, accounts: Frame
) -> np.ndarray:
    """Accounts whose Industry changes today: valid accounts that are the only valid account of
    a valid customer with no other tracked change today (one new SCD2 version per day)."""
    customers = sf.customers
    linked = (
        accounts["valid"]
        & (accounts["customer"] > 0)
        & (accounts["customer"] < ORPHAN_CUSTOMERS[0])
    )
    linked &= accounts["industry"] >= 0
    numbers, counts = np.unique(accounts["customer"][accounts["valid"]], return_counts=True)
    unique_customers = numbers[(counts == 1) & (numbers > 0)]
    candidate = linked & np.isin(accounts["customer"], unique_customers)
    candidate_rows = np.flatnonzero(candidate)
    customer_pos = accounts["customer"][candidate_rows] - 1
    keep = customers["valid"][customer_pos] & ~np.isin(customer_pos, sf.tracked_today)
    return streams.sample_without_replacement(
        rng, candidate_rows[keep], run.increment(ACCOUNTS, "industry_change")
    )


# --- contacts ------------------------------------------------------------------------------------


def _new_contacts(
    rng: np.random.Generator, first_seq: int, crm: CrmState, account: np.ndarray, latest: int
) -> Frame:
    count = len(account)
    accounts = crm.accounts
    culture = COUNTRY_CULTURE[accounts["country"][account]]
    p = pools()
    first = p.first_name.sample(rng, culture)
    phone = rng.integers(100_000_000, 9_999_999_999, size=count)
    phone[rng.random(count) < 0.10] = NO_VALUE
    title = p.title.sample(rng, np.zeros(count, np.int64))
    title[rng.random(count) < 0.05] = NO_VALUE
    created = _timestamps_between(
        rng, np.maximum(accounts["created"][account], latest - 5 * YEAR), latest
    )
    return Frame(
        seq=np.arange(first_seq, first_seq + count, dtype=np.int64),
        account=account,
        account_seq=accounts["seq"][account],
        first=first,
        first_missing=rng.random(count) < 0.01,
        last=p.last_name.sample(rng, culture),
        phone=phone,
        title=title,
        created=created,
        updated=created.copy(),
        valid=np.ones(count, dtype=bool),
        orphan=np.zeros(count, dtype=bool),
    )


def _contact_fields(v: Frame, crm: CrmState) -> dict[str, pa.Array]:
    p = pools()
    accounts = crm.accounts
    domain = company_domains(accounts.take(v["account"]))
    email = fmt.join(
        p.first_name.slug.take(pa.array(v["first"])),
        ".",
        p.last_name.slug.take(pa.array(v["last"])),
        "@",
        domain,
    )
    calling = _arr([c[2] for c in COUNTRIES]).take(pa.array(accounts["country"][v["account"]]))
    return {
        "Id": sf_ids("003", v["seq"]),
        "AccountId": sf_ids("001", v["account_seq"]),
        "FirstName": fmt.with_nulls(
            p.first_name.escaped.take(pa.array(v["first"])), v["first_missing"]
        ),
        "LastName": p.last_name.escaped.take(pa.array(v["last"])),
        "Email": email,
        "Phone": fmt.with_nulls(fmt.join("+", calling, " ", fmt.ints(v["phone"])), v["phone"] < 0),
        "Title": fmt.with_nulls(
            p.title.escaped.take(pa.array(np.maximum(v["title"], 0))), v["title"] < 0
        ),
        "CreatedDate": fmt.timestamps(v["created"]),
        "LastModifiedDate": fmt.timestamps(v["updated"]),
    }


def generate_contacts_day(run: Run, day: Day, crm: CrmState) -> TableDay:
    rng = run.rng(CONTACTS, day, "rows")
    valid_accounts = np.flatnonzero(crm.accounts["valid"])
    if day.is_first:
        counts, n_base = first_day_counts(CONTACTS, run.seed_volume(CONTACTS))
        account = rng.choice(valid_accounts, size=n_base)
        crm.contacts = state = _new_contacts(rng, 1, crm, account, day.start - DAY_SECONDS)
        touched = rng.random(n_base) < 0.5
        state["updated"] = np.where(
            touched,
            _timestamps_between(rng, state["created"], day.start + CUTOFF),
            state["created"],
        )
        positions = new_rows = np.arange(n_base, dtype=np.int64)
        changes = {"new": n_base}
    else:
        state = crm.contacts
        updated_rows = streams.sample_without_replacement(
            rng,
            np.flatnonzero(state["valid"] & ~state["orphan"]),
            run.increment(CONTACTS, "update"),
        )
        new_phone = rng.random(len(updated_rows)) < 0.6
        rows = updated_rows[new_phone]
        state["phone"][rows] = rng.integers(100_000_000, 9_999_999_999, size=len(rows))
        rows = updated_rows[~new_phone]
        state["title"][rows] = pools().title.sample(rng, np.zeros(len(rows), np.int64))
        state["updated"][updated_rows] = stamps_in_day(rng, day, len(updated_rows))
        n_new = run.increment(CONTACTS, "new")
        fresh = _new_contacts(
            rng, len(state) + 1, crm, rng.choice(valid_accounts, size=n_new), day.start
        )
        fresh["created"] = fresh["updated"] = stamps_in_day(rng, day, n_new)
        new_rows = state.extend(fresh)
        positions = np.concatenate([updated_rows, new_rows])
        changes = {"new": int(n_new), "updated": len(updated_rows)}
        counts = defects.counts_for(CONTACTS, len(positions))

    n_base = len(positions)
    eligible = np.arange(n_base - len(new_rows), n_base, dtype=np.int64)
    picked = plan(run.rng(CONTACTS, day, "defects"), counts, n_base, eligible)
    edits = run.rng(CONTACTS, day, "edits")

    orphans = positions[picked.rows("orphan_account")]
    state["account_seq"][orphans] = orphan_numbers(*ORPHAN_SALESFORCE, day, len(orphans))
    state["orphan"][orphans] = True
    batch = CsvBatch(CONTACTS, _contact_fields(state.take(positions), crm))
    batch.set("LastName", picked.rows("null_required"), "")
    bad_email = picked.rows("bad_email")
    batch.set(
        "Email", bad_email, pc.replace_substring(batch.fields["Email"].take(bad_email), "@", " at ")
    )
    malformed = picked.rows("malformed_row")
    batch.set(
        "Title",
        malformed,
        _arr(
            [MALFORMED_TITLES[i] for i in edits.integers(0, len(MALFORMED_TITLES), len(malformed))]
        ),
    )
    batch.append_copies(picked.rows(EXACT_DUPLICATE))

    bad = picked.quarantined(RULE_IDS[CONTACTS], n_base)
    state["valid"][positions[bad]] = False
    files = write_batch(run, day, batch, run.rng(CONTACTS, day, "order"))
    return TableDay(
        CONTACTS,
        files=files,
        rows_written=len(batch),
        defects=picked.realised(),
        changes=changes,
        silver_rows=int(state["valid"].sum()),
    )


# --- opportunities -------------------------------------------------------------------------------


def _new_opportunities(
    rng: np.random.Generator, first_seq: int, crm: CrmState, account: np.ndarray, day: Day
) -> Frame:
    count = len(account)
    accounts = crm.accounts
    stage = streams.weighted_choice(rng, STAGE_WEIGHTS, count)
    local = COUNTRY_CURRENCY[accounts["country"][account]]
    created = _timestamps_between(
        rng, np.maximum(accounts["created"][account], day.start - 3 * YEAR), day.start - DAY_SECONDS
    )
    closed = (stage == CLOSED_WON) | (stage == CLOSED_LOST)
    created_day = created // DAY_SECONDS
    close_closed = np.minimum(created_day + rng.integers(10, 181, count), day.number - 1)
    close_open = day.number + rng.integers(1, 181, count)
    currency = np.where(rng.random(count) < 0.6, local, USD)
    # Deal sizes are drawn in USD and quoted in the opportunity's currency, in whole units.
    amount = np.round(rng.lognormal(10.3, 1.1, count) * np.exp(fx.CENTER)[currency])
    return Frame(
        seq=np.arange(first_seq, first_seq + count, dtype=np.int64),
        account=account,
        account_seq=accounts["seq"][account],
        deal=rng.integers(0, len(DEAL_NAMES), size=count),
        stage=stage,
        amount=amount.astype(np.int64) * 100,
        currency=currency,
        close=np.where(closed, np.maximum(close_closed, created_day), close_open),
        probability=STAGE_PROBABILITY[stage],
        created=created,
        updated=created.copy(),
        valid=np.ones(count, dtype=bool),
        orphan=np.zeros(count, dtype=bool),
    )


def _opportunity_fields(v: Frame, crm: CrmState) -> dict[str, pa.Array]:
    accounts = crm.accounts.take(v["account"])
    name = fmt.join(_company_base(accounts), " - ", _arr(DEAL_NAMES).take(pa.array(v["deal"])))
    stage = v["stage"]
    is_closed = (stage == CLOSED_WON) | (stage == CLOSED_LOST)
    return {
        "Id": sf_ids("006", v["seq"]),
        "AccountId": sf_ids("001", v["account_seq"]),
        "Name": fmt.csv_escape(name),
        "StageName": _arr(STAGES).take(pa.array(stage)),
        "Amount": fmt.fixed(v["amount"], 2),
        "CurrencyIsoCode": _arr(CURRENCIES).take(pa.array(v["currency"])),
        "Probability": fmt.ints(v["probability"]),
        "CloseDate": fmt.dates(v["close"]),
        "IsClosed": fmt.booleans(is_closed),
        "IsWon": fmt.booleans(stage == CLOSED_WON),
        "CreatedDate": fmt.timestamps(v["created"]),
        "LastModifiedDate": fmt.timestamps(v["updated"]),
    }


def _advance_stages(rng: np.random.Generator, state: Frame, rows: np.ndarray, day: Day) -> None:
    u = rng.random(len(rows))
    stage = state["stage"][rows]
    next_open = np.minimum(stage + 1, CLOSED_WON - 1)
    after = np.where(u < 0.7, next_open, np.where(u < 0.85, CLOSED_WON, CLOSED_LOST))
    after = np.where((stage == CLOSED_WON - 1) & (u < 0.7), CLOSED_WON, after)
    state["stage"][rows] = after
    state["probability"][rows] = STAGE_PROBABILITY[after]
    closing = (after == CLOSED_WON) | (after == CLOSED_LOST)
    state["close"][rows[closing]] = day.number
    state["updated"][rows] = stamps_in_day(rng, day, len(rows))


def generate_opportunities_day(run: Run, day: Day, crm: CrmState) -> TableDay:
    rng = run.rng(OPPORTUNITIES, day, "rows")
    valid_accounts = np.flatnonzero(crm.accounts["valid"])
    if day.is_first:
        counts, n_base = first_day_counts(OPPORTUNITIES, run.seed_volume(OPPORTUNITIES))
        account = rng.choice(valid_accounts, size=n_base)
        crm.opportunities = state = _new_opportunities(rng, 1, crm, account, day)
        state["updated"] = _timestamps_between(rng, state["created"], day.start + CUTOFF)
        positions = new_rows = np.arange(n_base, dtype=np.int64)
        changes = {"new": n_base}
    else:
        state = crm.opportunities
        open_rows = np.flatnonzero(
            state["valid"] & ~state["orphan"] & (state["stage"] < CLOSED_WON)
        )
        changed = streams.sample_without_replacement(
            rng, open_rows, run.increment(OPPORTUNITIES, "stage_change")
        )
        _advance_stages(rng, state, changed, day)
        n_new = run.increment(OPPORTUNITIES, "new")
        fresh = _new_opportunities(
            rng, len(state) + 1, crm, rng.choice(valid_accounts, size=n_new), day
        )
        fresh["stage"][:] = 0
        fresh["probability"] = STAGE_PROBABILITY[fresh["stage"]]
        fresh["close"] = day.number + rng.integers(30, 181, n_new)
        fresh["created"] = fresh["updated"] = stamps_in_day(rng, day, n_new)
        new_rows = state.extend(fresh)
        positions = np.concatenate([changed, new_rows])
        changes = {"new": int(n_new), "stage_changed": len(changed)}
        counts = defects.counts_for(OPPORTUNITIES, len(positions))

    n_base = len(positions)
    eligible = np.arange(n_base - len(new_rows), n_base, dtype=np.int64)
    picked = plan(run.rng(OPPORTUNITIES, day, "defects"), counts, n_base, eligible)

    orphans = positions[picked.rows("orphan_account")]
    state["account_seq"][orphans] = orphan_numbers(*ORPHAN_SALESFORCE, day, len(orphans))
    state["orphan"][orphans] = True
    versions = state.take(positions)
    unknown_stage = picked.rows("unknown_stage")
    versions["stage"][unknown_stage] = 0  # an open stage's flags; the name is replaced below
    versions["probability"][unknown_stage] = STAGE_PROBABILITY[0]
    versions["probability"][picked.rows("out_of_range")] = OUT_OF_RANGE_PROBABILITY

    batch = CsvBatch(OPPORTUNITIES, _opportunity_fields(versions, crm))
    batch.set("CloseDate", picked.rows("null_required"), "")
    batch.set("CurrencyIsoCode", picked.rows("unknown_currency"), UNKNOWN_CURRENCY)
    batch.set("StageName", unknown_stage, UNKNOWN_STAGE)
    malformed = picked.rows("malformed_row")
    batch.set(
        "Name",
        malformed,
        fmt.join(
            _company_base(crm.accounts.take(versions["account"][malformed])), " - Upsell, Phase 2"
        ),
    )
    batch.append_copies(picked.rows(EXACT_DUPLICATE))

    bad = picked.quarantined(RULE_IDS[OPPORTUNITIES], n_base)
    state["valid"][positions[bad]] = False
    files = write_batch(run, day, batch, run.rng(OPPORTUNITIES, day, "order"))
    return TableDay(
        OPPORTUNITIES,
        files=files,
        rows_written=len(batch),
        defects=picked.realised(),
        changes=changes,
        silver_rows=int(state["valid"].sum()),
    )
