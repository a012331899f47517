"""Kafka order events: JSON-lines micro-batch files, many per day.

Events are keyed by order (partition = order number mod 6) and get per-partition offsets that
increase across all days in arrival order. On later days the stream carries an
``order_created`` event for every new order and a status event for every status change, plus
events on other existing orders. Files are ``batch-NNNNN.jsonl`` with numbers increasing across
days, so names are globally unique and sort in arrival order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medallion.generate import defects, fmt, streams, writers
from medallion.generate.context import Day, Frame, Run, TableDay
from medallion.generate.faults import (
    FUTURE_EVENTS,
    FUTURE_SECONDS,
    FUTURE_SHARE,
    SKEW_SECONDS,
    SKEWED_SHARE,
)
from medallion.generate.snowflake import SnowflakeState
from medallion.generate.spec import (
    CLOCK_SKEWED,
    EVENTS_PER_FILE,
    FUTURE_EVENT,
    KAFKA_PARTITIONS,
    KAFKA_TOPIC,
    LATE_EVENT_MAX_HOURS,
    LATE_EVENT_MIN_HOURS,
    ORDER_EVENTS,
    ORPHAN_ORDERS,
    REDELIVERED,
    REPLAYED,
    UNKNOWN_EVENT_TYPE,
)
from medallion.generate.tables import orphan_numbers
from medallion.generate.vocab import (
    CHANNEL_WEIGHTS,
    CHANNELS,
    EVENT_TYPE_WEIGHTS,
    EVENT_TYPES,
    ORDER_STATUSES,
)

NO_ORDER = -1
UNKNOWN_TYPE = -1
DELIVERY_LAG_SECONDS = 5
MIN_FILES_PER_DAY = 10


@dataclass
class KafkaState:
    next_offset: np.ndarray = field(default_factory=lambda: np.zeros(KAFKA_PARTITIONS, np.int64))
    next_file: int = 0
    previous: Frame | None = None  # yesterday's clean events, for replays
    previous_ids: pa.Array | None = None
    valid_by_day: dict[str, int] = field(default_factory=dict)


def _random_metadata(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    return {
        "channel": streams.weighted_choice(rng, CHANNEL_WEIGHTS, count),
        "ip": rng.integers(0, 2**32, size=count, dtype=np.int64),
        "app": rng.integers(0, 300, size=count),
    }


def _lines(ev: Frame, ids: pa.Array) -> pa.Array:
    """One compact JSON object per event with the pinned keys in order. Every value is plain
    ASCII without quotes or backslashes, so no JSON escaping is needed."""
    order = ev["order"]
    order_text = pc.if_else(
        pa.array(order == NO_ORDER),
        "null",
        fmt.join('"', fmt.ids("O", np.maximum(order, 0), 9), '"'),
    )
    event_type = pc.if_else(
        pa.array(ev["type"] == UNKNOWN_TYPE),
        UNKNOWN_EVENT_TYPE,
        pa.array(list(EVENT_TYPES)).take(pa.array(np.maximum(ev["type"], 0))),
    )
    ip = ev["ip"]
    ip_text = fmt.join(
        fmt.ints(11 + (ip >> 24) % 200),
        ".",
        fmt.ints((ip >> 16) & 255),
        ".",
        fmt.ints((ip >> 8) & 255),
        ".",
        fmt.ints(1 + (ip & 255) % 254),
    )
    app = ev["app"]
    version = fmt.join(
        fmt.ints(5 + app // 100), ".", fmt.ints(app // 10 % 10), ".", fmt.ints(app % 10)
    )
    return fmt.join(
        '{"event_id":"', ids,
        '","topic":"', KAFKA_TOPIC,
        '","partition":', fmt.ints(ev["partition"]),
        ',"offset":', fmt.ints(ev["offset"]),
        ',"order_id":', order_text,
        ',"event_type":"', event_type,
        '","event_ts":"', fmt.timestamps(ev["ts"]),
        '","status":"', pa.array(list(ORDER_STATUSES)).take(pa.array(ev["status"])),
        '","metadata":{"channel":"', pa.array(list(CHANNELS)).take(pa.array(ev["channel"])),
        '","ip":"', ip_text,
        '","app_version":"', version,
        '"}}',
    )  # fmt: skip


def _truncated(rng: np.random.Generator, lines: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """The lines at ``rows`` cut short: unparseable JSON, as a torn write leaves it."""
    texts = writers.gather(lines, rows).to_pylist()
    cuts = rng.integers(10, [len(text) - 3 for text in texts]) if texts else []
    return pa.array([text[:cut] for text, cut in zip(texts, cuts, strict=True)], pa.string())


def _chunked_lines(events: Frame, ids: pa.Array) -> pa.ChunkedArray:
    """``_lines`` a slice at a time, so the intermediate columns stay small."""
    step = writers.WRITE_CHUNK_LINES
    return pa.chunked_array(
        [
            _lines(
                events.take(np.arange(start, min(start + step, len(events)))),
                ids.slice(start, step),
            )
            for start in range(0, len(events), step)
        ],
        pa.string(),
    )


def _scripted(sf: SnowflakeState, day: Day, rng: np.random.Generator) -> Frame:
    """Today's order_created events for new orders and status events for status changes."""
    orders = sf.orders
    created = sf.new_orders_today
    changed = sf.status_changed_today
    rows = np.concatenate([created, changed])
    kind = np.concatenate([np.zeros(len(created), np.int64), orders["status"][changed]])
    stamp = np.concatenate([orders["ts"][created], orders["updated"][changed]])
    stamp = np.minimum(stamp + rng.integers(0, 30, size=len(rows)), day.end - 1)
    return Frame(order=orders["num"][rows], type=kind, ts=stamp)


def _no_events() -> Frame:
    empty = np.empty(0, np.int64)
    return Frame(order=empty, type=empty, ts=empty)


def _base_events(
    run: Run, day: Day, sf: SnowflakeState, state: KafkaState, n_base: int, counts: dict[str, int]
) -> tuple[Frame, dict[str, np.ndarray]]:
    """Today's new events in arrival order, with offsets, and the rows of each in-place defect.

    Scripted events come first (later days), then events on random existing orders; defects
    are drawn only from the random ones."""
    rng = run.rng(ORDER_EVENTS, day, "rows")
    scripted = _no_events() if day.is_first else _scripted(sf, day, rng)
    scripted = scripted.take(np.arange(min(len(scripted), n_base)))
    n_random = n_base - len(scripted)
    random_rows = np.arange(len(scripted), n_base, dtype=np.int64)
    in_place = {k: v for k, v in counts.items() if k not in (REDELIVERED, REPLAYED)}
    picked = defects.pick_disjoint(run.rng(ORDER_EVENTS, day, "defects"), random_rows, in_place)

    ts = np.concatenate([scripted["ts"], rng.integers(day.start, day.end, size=n_random)])
    arrival = ts + rng.integers(0, DELIVERY_LAG_SECONDS, size=n_base)
    late = picked["late_event"]
    ts[late] = day.start - rng.integers(
        LATE_EVENT_MIN_HOURS * 3600, LATE_EVENT_MAX_HOURS * 3600 + 1, size=len(late)
    )
    arrival[late] = rng.integers(day.start, day.end, size=len(late))

    orders = sf.orders
    valid_orders = np.flatnonzero(orders["valid"])
    by_time = valid_orders[np.argsort(orders["ts"][valid_orders], kind="stable")]
    random_order = orders["num"][
        by_time[streams.pick_created_before(rng, orders["ts"][by_time], ts[random_rows])]
    ]
    order = np.concatenate([scripted["order"], random_order])
    event_type = np.concatenate(
        [scripted["type"], streams.weighted_choice(rng, EVENT_TYPE_WEIGHTS, n_random)]
    )
    status = event_type.copy()  # the status an event type implies has the same index
    # Device clocks (the future_events fault, on request): stamped years or minutes after the
    # event arrived. Their orders were drawn by the true time, so each order existed.
    future, skewed = picked.get(FUTURE_EVENT), picked.get(CLOCK_SKEWED)
    if future is not None and len(future):
        ts[future] = arrival[future] + FUTURE_SECONDS
    if skewed is not None and len(skewed):
        ts[skewed] = arrival[skewed] + rng.integers(*SKEW_SECONDS, size=len(skewed))
    orphans = picked["orphan_order"]
    order[orphans] = orphan_numbers(*ORPHAN_ORDERS, day, len(orphans))
    order[picked["null_required"]] = NO_ORDER
    event_type[picked["unknown_event_type"]] = UNKNOWN_TYPE
    partition = np.where(
        order == NO_ORDER, rng.integers(0, KAFKA_PARTITIONS, size=n_base), order % KAFKA_PARTITIONS
    )

    sequence = np.argsort(arrival, kind="stable")
    events = Frame(
        order=order[sequence],
        type=event_type[sequence],
        status=status[sequence],
        ts=ts[sequence],
        partition=partition[sequence],
        **_random_metadata(rng, n_base),
    )
    offset = np.empty(n_base, dtype=np.int64)
    for p in range(KAFKA_PARTITIONS):
        in_partition = np.flatnonzero(events["partition"] == p)
        offset[in_partition] = state.next_offset[p] + np.arange(len(in_partition))
        state.next_offset[p] += len(in_partition)
    events["offset"] = offset
    # Defect rows follow their events through the arrival sort.
    position = np.empty(n_base, dtype=np.int64)
    position[sequence] = np.arange(n_base)
    return events, {kind: np.sort(position[rows]) for kind, rows in picked.items()}


def _file_keys(positions: np.ndarray, per_file: int) -> np.ndarray:
    """Sort keys whose integer part is the file a line lands in, fraction its place inside."""
    return positions // per_file + (positions % per_file + 0.5) / (per_file + 1)


def generate_events_day(run: Run, day: Day, sf: SnowflakeState, state: KafkaState) -> TableDay:
    """Write today's micro-batch files: new events, a replayed block of yesterday's events and
    redelivered copies, in arrival order."""
    total = run.seed_volume(ORDER_EVENTS) if day.is_first else run.increment(ORDER_EVENTS, "events")
    skip = (REPLAYED,) if state.previous is None else ()
    counts = defects.counts_for(ORDER_EVENTS, total, skip=skip)
    if state.previous is None:
        # Nor is anything late on the stream's first day: as in Spark, the watermark comes
        # from earlier batches, and before the first there is none.
        counts["late_event"] = 0
    if run.faults.has(day.index, FUTURE_EVENTS, ORDER_EVENTS):
        counts[FUTURE_EVENT] = max(1, defects.count_for(FUTURE_SHARE, total))
        counts[CLOCK_SKEWED] = max(1, defects.count_for(SKEWED_SHARE, total))
    n_replayed = 0 if state.previous is None else min(counts[REPLAYED], len(state.previous))
    n_base = total - counts[REDELIVERED] - n_replayed
    events, picked = _base_events(run, day, sf, state, n_base, counts)
    ids = fmt.uuids(run.rng(ORDER_EVENTS, day, "ids"), n_base)
    clean = ~defects.union(picked, n_base)
    rng = run.rng(ORDER_EVENTS, day, "delivery")

    # Replays: a contiguous run of yesterday's clean events, re-sent as one block.
    replay_lines = pa.array([], pa.string())
    if n_replayed:
        start = int(rng.integers(0, len(state.previous) - n_replayed + 1))
        block = np.arange(start, start + n_replayed)
        replay_lines = _lines(state.previous.take(block), state.previous_ids.take(pa.array(block)))
    insert_at = int(rng.integers(0, n_base + 1))
    per_file = min(EVENTS_PER_FILE, max(1, math.ceil(total / MIN_FILES_PER_DAY)))
    n_files = max(1, math.ceil((n_base + n_replayed) / per_file))
    position = np.arange(n_base) + np.where(np.arange(n_base) >= insert_at, n_replayed, 0)
    base_file = position // per_file

    # Redeliveries: copies of clean events, written again in a later file of the same day.
    eligible = np.flatnonzero(clean & (base_file < n_files - 1))
    originals = streams.sample_without_replacement(rng, eligible, counts[REDELIVERED])
    later_files = n_files - 1 - base_file[originals]
    target = base_file[originals] + 1 + (rng.random(len(originals)) * later_files).astype(np.int64)

    # Output line k is text[source[k]]: a chunked view, so no text is copied to arrange it.
    lines = _chunked_lines(events, ids)
    malformed = picked["malformed_json"]
    text = pa.chunked_array(
        [*lines.chunks, replay_lines, _truncated(rng, lines, malformed)], pa.string()
    )
    own_line = np.arange(n_base)
    own_line[malformed] = n_base + n_replayed + np.arange(len(malformed))
    source = np.concatenate([own_line, n_base + np.arange(n_replayed), originals])
    keys = np.concatenate(
        [
            _file_keys(position, per_file),
            _file_keys(insert_at + np.arange(n_replayed), per_file),
            target + rng.uniform(0.01, 0.99, size=len(originals)),
        ]
    )
    final = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(np.floor(keys[final]), np.arange(n_files + 1))
    folder = writers.partition_dir(run.landing_root, ORDER_EVENTS, day.date)
    paths = [folder / f"batch-{state.next_file + f:05d}.jsonl" for f in range(n_files)]
    writers.write_line_files(paths, text, source[final], bounds)
    first_file, state.next_file = state.next_file, state.next_file + n_files

    keep = np.flatnonzero(clean)
    state.previous = events.take(keep)
    state.previous_ids = ids.take(pa.array(keep))
    invalid = ("late_event", "null_required", "unknown_event_type", "malformed_json", FUTURE_EVENT)
    n_valid = n_base - sum(len(picked[k]) for k in invalid if k in picked)
    state.valid_by_day[day.label] = n_valid
    realised = {k: len(v) for k, v in picked.items()}
    realised[REDELIVERED] = len(originals)
    realised[REPLAYED] = n_replayed
    return TableDay(
        ORDER_EVENTS,
        files=n_files,
        rows_written=len(source),
        defects={k: realised[k] for k in counts},
        changes={
            "new_events": n_base,
            "valid_distinct_events": n_valid,
            "first_file": f"batch-{first_file:05d}.jsonl",
            "last_file": f"batch-{state.next_file - 1:05d}.jsonl",
        },
        silver_rows=sum(state.valid_by_day.values()),
    )
