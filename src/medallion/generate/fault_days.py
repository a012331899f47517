"""Writing the delivery faults that replace or edit a day's files (see ``faults``).

A day with nothing new generates no rows: each table delivers nothing or replays the previous
day's delivery. A runaway quote edits one record of a CSV file the day already wrote.
"""

from __future__ import annotations

import dataclasses
import shutil

from medallion.generate import writers
from medallion.generate.context import Day, Run, TableDay
from medallion.generate.faults import EMPTY_DAY, REPLAYED_DAY, RUNAWAY_QUOTE
from medallion.generate.kafka import KafkaState
from medallion.generate.spec import (
    ALREADY_DELIVERED,
    COLUMNS,
    CSV_TABLES,
    FX_RATES,
    ORDER_EVENTS,
    TABLES,
)

# A runaway quote opens on this physical line of the file (the header is line 1), or on the
# first line after it that can hold one, as in the case that found the gap.
RUNAWAY_LINE = 50


def nothing_new_day(
    run: Run, day: Day, previous: Day, delivered: dict[str, TableDay], kafka: KafkaState
) -> dict[str, TableDay]:
    """The day's tables when no source changed: replays of ``delivered`` (the previous day's
    result) for the tables the plan replays, empty deliveries for the rest."""
    replayed = run.faults.replayed(day.index)
    return {
        table: (
            _replay(run, day, previous, delivered[table], kafka)
            if table in replayed
            else _empty(run, day, delivered[table])
        )
        for table in TABLES
    }


def _no_changes(table: str) -> dict[str, object]:
    if table == FX_RATES:
        return {"new_dates": 0}
    if table == ORDER_EVENTS:
        return {"new_events": 0, "valid_distinct_events": 0}
    return {"new": 0}


def _empty(run: Run, day: Day, before: TableDay) -> TableDay:
    """Nothing sent: a CSV header (and a control file of 0), an empty FX file, no stream files."""
    changes = {**_no_changes(before.table), "fault": EMPTY_DAY}
    if before.table == ORDER_EVENTS:
        return TableDay(ORDER_EVENTS, changes=changes, silver_rows=before.silver_rows)
    folder = writers.partition_dir(run.landing_root, before.table, day.date)
    if before.table == FX_RATES:
        name, text = "fx_rates.jsonl", ""
    else:
        name, text = "part-00000.csv", ",".join(COLUMNS[before.table]) + "\n"
    (folder / name).write_text(text, encoding="utf-8")
    writers.write_control(folder, before.table, day.date, {name: 0})
    return TableDay(before.table, files=1, changes=changes, silver_rows=before.silver_rows)


def _replay(run: Run, day: Day, previous: Day, before: TableDay, kafka: KafkaState) -> TableDay:
    """The previous day's delivery again, byte for byte (its control file too). Stream files
    get new batch numbers, as a replayed topic lands in new files."""
    source = run.landing_root / before.table / f"dt={previous.label}"
    files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else []
    changes = {**_no_changes(before.table), "fault": REPLAYED_DAY}
    if not files:  # the day before sent nothing (a stream's empty day): nor does its replay
        return TableDay(before.table, changes=changes, silver_rows=before.silver_rows)
    target = writers.partition_dir(run.landing_root, before.table, day.date)
    defects = dict(before.defects)
    if before.table == ORDER_EVENTS:
        for path in files:
            shutil.copyfile(path, target / f"batch-{kafka.next_file:05d}.jsonl")
            kafka.next_file += 1
        # Every line bronze took the day before is a duplicate now (as is every line that was
        # one then); every other line is rejected for the reason it was then.
        took = before.to_manifest()["expected"]["rows_bronze"]
        defects[ALREADY_DELIVERED] = defects.get(ALREADY_DELIVERED, 0) + took
    else:
        for path in files:
            shutil.copyfile(path, target / path.name)
    return dataclasses.replace(before, defects=defects, changes=changes)


def break_a_quote(run: Run, day: Day, result: TableDay) -> TableDay:
    """Open a quote that never closes in one record of the table's first file.

    The record chosen is the first on or after line :data:`RUNAWAY_LINE` (half-way down a
    shorter file) that holds no quote and starts at a record boundary (an even number of quotes
    before it), and is not the last, so a reader must absorb at least the next line into it.
    The control file is left as the export wrote it: it still declares every record.
    """
    if result.table not in CSV_TABLES:
        raise ValueError(f"{result.table} is not a CSV table")
    path = run.landing_root / result.table / f"dt={day.label}" / "part-00000.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    # A small day's file may be shorter than RUNAWAY_LINE: then start half-way down it.
    first_line = min(RUNAWAY_LINE, max(2, len(lines) // 2))
    quotes, line = 0, None
    for number, text in enumerate(lines[:-2], start=1):  # the last element follows the final \n
        if number >= first_line and quotes % 2 == 0 and '"' not in text and "," in text:
            line = number
            break
        quotes += text.count('"')
    if line is None:
        raise ValueError(f"{path} has no record a runaway quote can open in")
    first, rest = lines[line - 1].split(",", 1)
    lines[line - 1] = f'{first},"{rest}'
    path.write_text("\n".join(lines), encoding="utf-8")
    runaway = {"fault": RUNAWAY_QUOTE, "runaway_quote": {"file": path.name, "line": line}}
    return dataclasses.replace(result, changes={**result.changes, **runaway})
