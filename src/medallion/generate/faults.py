"""Delivery faults: what a real source sometimes sends on a later day, asked for by name.

The default extract is the clean daily cadence with row-level defects at documented rates.
Real sources also fail whole deliveries, and the pipeline's guards exist for those days, so
the generator can write them on request (``medallion generate --fault DAY:KIND[:TABLE,...]``),
each counted in the manifest so a test can check the guard exactly:

* ``decimal_shift``: the day's FX file has every rate divided by 100 (a unit slip at the
  source; USD per USD stays 1). Each shifted rate must go to quarantine as ``rate:jump``
  against its currency's last accepted rate. Not on day 1: a first delivery has no history,
  and a file shifted as a whole agrees with its own median.
* ``future_events``: device clocks on the stream. Some new events are stamped ten years after
  they arrive (quarantined as ``event_ts:future``); some a few minutes after (within the
  tolerance for clock skew: kept).
* ``runaway_quote``: one record of the table's first file (default ``crm/accounts``) opens a
  quote it never closes, so a CSV reader absorbs the records after it. The control file still
  declares the records the export wrote; the ingest job must fail naming the file.
* ``empty_day`` / ``replayed_day``: a day with nothing new. No source changed, so the
  generator's state does not advance; each table either delivers nothing (a CSV header, an
  empty FX file, no stream files) or replays the previous day's delivery byte for byte (its
  stream files under new batch names). ``replayed_day`` names the tables that replay (default:
  all); every other table of that day is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from medallion.errors import UsageError
from medallion.generate.spec import ACCOUNTS, CSV_TABLES, FX_RATES, ORDER_EVENTS, TABLES

DECIMAL_SHIFT = "decimal_shift"
FUTURE_EVENTS = "future_events"
RUNAWAY_QUOTE = "runaway_quote"
EMPTY_DAY = "empty_day"
REPLAYED_DAY = "replayed_day"

# Per kind: the tables it may name, and those it applies to when it names none.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    DECIMAL_SHIFT: ((FX_RATES,), (FX_RATES,)),
    FUTURE_EVENTS: ((ORDER_EVENTS,), (ORDER_EVENTS,)),
    RUNAWAY_QUOTE: (CSV_TABLES, (ACCOUNTS,)),
    EMPTY_DAY: ((), TABLES),
    REPLAYED_DAY: (TABLES, TABLES),
}
# The kinds that replace a day's whole delivery: nothing new is generated that day.
NOTHING_NEW = frozenset({EMPTY_DAY, REPLAYED_DAY})
# Kinds that need an earlier delivery to mean anything.
LATER_DAYS_ONLY = frozenset({DECIMAL_SHIFT, REPLAYED_DAY, EMPTY_DAY})

# What the fault kinds do to the rows they touch (read by the FX and stream generators).
SHIFT_DIVISOR = 100.0
FUTURE_SHARE = 0.005  # of a day's new events, at least one
SKEWED_SHARE = 0.005  # at least one
FUTURE_SECONDS = 3_652 * 86_400  # ten years ahead of arrival
SKEW_SECONDS = (60, 45 * 60)  # ahead of arrival: inside the default 1-hour tolerance


@dataclass(frozen=True)
class Fault:
    """One fault on one day (``day`` counts from 1, as ``--days`` does)."""

    day: int
    kind: str
    tables: tuple[str, ...]


def parse_fault(text: str) -> Fault:
    """``DAY:KIND`` or ``DAY:KIND:TABLE[,TABLE...]`` (a CLI argument) as a :class:`Fault`."""
    day, _, rest = str(text).partition(":")
    kind, _, tables = rest.partition(":")
    if not day.strip().isdigit() or not kind.strip():
        raise UsageError(f"--fault must look like DAY:KIND[:TABLE,...] (got {text!r})")
    names = tuple(t.strip() for t in tables.split(",") if t.strip())
    return make_fault(int(day), kind.strip(), names)


def make_fault(day: int, kind: str, tables: Iterable[str] = ()) -> Fault:
    if kind not in KINDS:
        raise UsageError(f"unknown fault kind {kind!r}; choose one of {', '.join(sorted(KINDS))}")
    allowed, default = KINDS[kind]
    tables = tuple(tables)
    unknown = [t for t in tables if t not in allowed]
    if unknown:
        where = ", ".join(allowed) if allowed else "no table (it applies to every table)"
        raise UsageError(f"fault {kind} applies to {where}; not to {', '.join(unknown)}")
    return Fault(day, kind, tables or default)


@dataclass(frozen=True)
class FaultPlan:
    """The faults of a generate run, checked against its days, and looked up per day."""

    faults: tuple[Fault, ...] = ()

    @classmethod
    def of(cls, faults: Iterable[Fault | str], days: int) -> FaultPlan:
        parsed = tuple(f if isinstance(f, Fault) else parse_fault(f) for f in faults)
        kinds_by_day: dict[int, set[str]] = {}
        for fault in parsed:
            if not 1 <= fault.day <= days:
                raise UsageError(
                    f"fault {fault.kind} on day {fault.day}: the run has {days} day(s)"
                )
            if fault.day == 1 and fault.kind in LATER_DAYS_ONLY:
                raise UsageError(f"fault {fault.kind} needs an earlier delivery: not on day 1")
            kinds_by_day.setdefault(fault.day, set()).add(fault.kind)
        for day, kinds in kinds_by_day.items():
            if kinds & NOTHING_NEW and kinds - NOTHING_NEW:
                raise UsageError(
                    f"day {day}: {', '.join(sorted(kinds - NOTHING_NEW))} cannot go with a day "
                    "that has nothing new"
                )
        seen: dict[tuple[int, str], str] = {}
        for fault in parsed:
            for table in fault.tables:
                earlier = seen.setdefault((fault.day, table), fault.kind)
                if earlier != fault.kind:
                    raise UsageError(
                        f"day {fault.day}: {table} cannot carry both {earlier} and {fault.kind}"
                    )
        return cls(tuple(sorted(parsed, key=lambda f: (f.day, f.kind))))

    def tables(self, day_index: int, kind: str) -> frozenset[str]:
        """The tables carrying ``kind`` on the day at ``day_index`` (0 for day 1)."""
        return frozenset(
            t for f in self.faults if f.day == day_index + 1 and f.kind == kind for t in f.tables
        )

    def has(self, day_index: int, kind: str, table: str) -> bool:
        return table in self.tables(day_index, kind)

    def nothing_new(self, day_index: int) -> bool:
        return any(f.day == day_index + 1 and f.kind in NOTHING_NEW for f in self.faults)

    def replayed(self, day_index: int) -> frozenset[str]:
        return self.tables(day_index, REPLAYED_DAY)

    def to_manifest(self, date_of: Callable[[int], str]) -> list[dict[str, object]]:
        """The manifest's ``faults``: each fault with its day's date."""
        return [
            {"day": f.day, "date": date_of(f.day), "kind": f.kind, "tables": list(f.tables)}
            for f in self.faults
        ]
