"""Bad inputs: every file of the corpus in ``tests/data/bad/`` (and a generated 10 MB line)
either loads correctly, goes to quarantine with a reason, or fails the job with one clear
sentence naming the file; never a silent drop or a traceback. ``rows_in == rows_bronze +
rows_quarantined`` holds in every case, and ``rows_in`` is the number of records the file
really holds (counted by hand when the corpus was written, see tests/data/bad/README.md).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lakestate import audit_trail, one_sentence
from pyspark.sql import functions as F

from medallion.config import parse_settings
from medallion.errors import JobError
from medallion.jobs.base import Job
from medallion.jobs.bronze import ingest_tables
from medallion.runner import run_job

pytestmark = pytest.mark.reliability

CORPUS = Path(__file__).parents[1] / "data" / "bad"
DAY = dt.date(2025, 1, 14)
CUSTOMERS, BEHAVIOR, FX, ACCOUNTS = (
    "snowflake/customers",
    "redshift/customer_behavior",
    "fx/fx_rates",
    "crm/accounts",
)


@dataclass(frozen=True)
class Loads:
    """The job succeeds: ``rows`` in, ``bronze`` out, the rest quarantined with ``reasons``."""

    rows: int
    bronze: int
    reasons: dict[str, int] = field(default_factory=dict)
    quarantine_lines: tuple[int, ...] | None = None
    ignored: tuple[str, ...] = ()
    names: tuple[tuple[str, str, str], ...] = ()  # (customer_id, first_name, last_name) in bronze


@dataclass(frozen=True)
class Fails:
    """The job fails, writing nothing, with one sentence holding every one of ``says``."""

    says: tuple[str, ...]


CASES = {
    "empty.csv": (CUSTOMERS, Fails(("empty.csv", "has no header line", "customer_id"))),
    "header_only.csv": (CUSTOMERS, Loads(0, 0)),
    "wrong_delimiter.csv": (CUSTOMERS, Fails(("not comma-separated", "';'-delimited"))),
    "missing_column.csv": (CUSTOMERS, Fails(("missing column(s) 'email'",))),
    "extra_column.csv": (CUSTOMERS, Fails(("unexpected column(s) loyalty_tier", "'strict'"))),
    "extra_column_additive.csv": (ACCOUNTS, Loads(2, 2, ignored=("Loyalty_Tier__c",))),
    "renamed_column.csv": (CUSTOMERS, Fails(("missing column(s) 'email' (found 'e_mail')",))),
    # The quote opened on line 3 never closes: without a control file, the scan names it.
    "runaway_quote.csv": (
        CUSTOMERS,
        Fails(("runaway_quote.csv line 3", "runs over 2 line(s) that are whole records")),
    ),
    "duplicate_headers.csv": (CUSTOMERS, Fails(("column(s) email more than once",))),
    "bom.csv": (CUSTOMERS, Loads(3, 3, names=(("C00000491", "Jennifer", "Jackson"),))),
    "latin1_bytes.csv": (CUSTOMERS, Loads(4, 2, {"_record:encoding": 2}, (3, 4))),
    "crlf.csv": (
        CUSTOMERS,
        Loads(
            4, 3, {"country:allowed_values": 1}, (4,), names=(("C00000492", "Joseph", "O'Connor"),)
        ),
    ),
    "embedded_newlines.csv": (
        CUSTOMERS,
        Loads(
            4,
            3,
            {"country:allowed_values": 1},
            (7,),
            names=(
                ("C00000491", "Jennifer\nAnne", "Jackson"),
                ("C00000492", "Joseph", "O'Connor\r\nof\nGalway"),
            ),
        ),
    ),
    "truncated.csv.gz": (CUSTOMERS, Fails(("truncated.csv.gz", "truncated or corrupt"))),
    "truncated.jsonl": (FX, Loads(4, 3, {"_record:malformed": 1}, (4,))),
    "thousand_separators.csv": (
        BEHAVIOR,
        Loads(5, 1, {"revenue:type": 1, "_record:malformed": 2, "page_views:type": 1}),
    ),
    "date_formats.csv": (BEHAVIOR, Loads(7, 1, {"event_date:type": 6}, (3, 4, 5, 6, 7, 8))),
    # A clock ten years ahead, and a second past the day's tolerance: both updated_at:future;
    # the last second of the day after the delivery's date still loads.
    "future_updated_at.csv": (
        CUSTOMERS,
        Loads(
            4, 2, {"updated_at:future": 2}, (3, 5), names=(("C00000394", "Elizabeth", "Jackson"),)
        ),
    ),
    "timestamp_zones.csv": (CUSTOMERS, Loads(4, 3, {"updated_at:type": 1}, (5,))),
    "nan_infinity.csv": (
        BEHAVIOR,
        Loads(5, 1, {"session_duration_minutes:type": 2, "revenue:type": 2}, (3, 4, 5, 6)),
    ),
    "nan_infinity.jsonl": (FX, Loads(6, 1, {"rate:type": 5}, (2, 3, 4, 5, 6))),
}


@dataclass
class Outcome:
    root: Path
    table: str
    record: object = None
    error: JobError | None = None

    def layer(self, spark, layer: str):
        path = self.root / layer / self.table
        return spark.read.format("delta").load(str(path)) if path.exists() else None


def ingest(spark, tmp_path: Path, table: str, files: dict[str, bytes]) -> Outcome:
    """Land ``files`` for ``table`` on DAY and run its contract ingestion as a job."""
    root = tmp_path / "lake"
    folder = root / "landing" / table / f"dt={DAY}"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    settings = parse_settings(f'lake: {{root: "{root}"}}', "test")
    job = Job(
        f"ingest_{table.replace('/', '_')}", "bad input", lambda c: ingest_tables(c, (table,))
    )
    outcome = Outcome(root, table)
    try:
        outcome.record = run_job(job, DAY, settings, spark)
    except JobError as exc:
        outcome.error = exc
    return outcome


def check(spark, outcome: Outcome, expected: Loads | Fails, file: str) -> None:
    if isinstance(expected, Fails):
        assert outcome.error is not None, f"{file} loaded but should have failed"
        message = str(outcome.error)
        assert one_sentence(message), message
        assert outcome.error.__cause__ is None, "a wrapped (unexpected) exception"
        for fragment in expected.says:
            assert fragment in message, (fragment, message)
        assert outcome.layer(spark, "bronze") is None and outcome.layer(spark, "quarantine") is None
        (audit,) = audit_trail(outcome.root)
        assert (audit["status"], audit["error"]) == ("failed", message)
        return
    assert outcome.error is None, f"{file}: {outcome.error}"
    record = outcome.record
    table = record.details["tables"][outcome.table]
    assert (record.rows_in, record.rows_out, record.rows_quarantined) == (
        expected.rows,
        expected.bronze,
        expected.rows - expected.bronze,
    ), file
    assert record.rows_in == record.rows_out + record.rows_quarantined
    assert table["quarantine_reasons"] == expected.reasons, file
    assert tuple(table["ignored_columns"]) == expected.ignored
    bronze, quarantine = outcome.layer(spark, "bronze"), outcome.layer(spark, "quarantine")
    assert (bronze.count() if bronze else 0) == expected.bronze
    rows = quarantine.collect() if quarantine else []
    assert len(rows) == expected.rows - expected.bronze
    for row in rows:
        assert row._raw_record and row._reasons and row._source_file.endswith(file)
    if expected.quarantine_lines is not None:
        assert sorted(row._line for row in rows) == list(expected.quarantine_lines), file
    if expected.names:
        found = {(r.customer_id, r.first_name, r.last_name) for r in bronze.collect()}
        assert set(expected.names) <= found, found


@pytest.mark.parametrize("file", list(CASES))
def test_bad_input_is_loaded_quarantined_or_refused_clearly(spark, tmp_path, file):
    table, expected = CASES[file]
    outcome = ingest(spark, tmp_path, table, {file: (CORPUS / file).read_bytes()})
    check(spark, outcome, expected, file)


def test_the_corpus_is_complete_and_small():
    files = {p.name for p in CORPUS.iterdir() if p.name != "README.md"}
    assert files == set(CASES)
    assert all((CORPUS / f).stat().st_size < 4096 for f in files)


def test_a_10_mb_single_line_is_quarantined_whole(spark, tmp_path):
    header, valid = (CORPUS / "bom.csv").read_text(encoding="utf-8-sig").splitlines()[:2]
    content = f"{header}\n{valid}\n{'x' * 10_000_000}\n".encode()
    outcome = ingest(spark, tmp_path, CUSTOMERS, {"one_long_line.csv": content})
    check(spark, outcome, Loads(2, 1, {"_record:malformed": 1}, (3,)), "one_long_line.csv")
    (row,) = outcome.layer(spark, "quarantine").select(F.length("_raw_record")).collect()
    assert row[0] == 10_000_000


def test_timestamps_with_and_without_zones_become_the_same_instants_in_utc(spark, tmp_path):
    outcome = ingest(
        spark, tmp_path, CUSTOMERS, {"t.csv": (CORPUS / "timestamp_zones.csv").read_bytes()}
    )
    fmt = "yyyy-MM-dd HH:mm:ss.SSS"
    rows = {
        r.customer_id: (r.created, r.updated)
        for r in outcome.layer(spark, "bronze")
        .select(
            "customer_id",
            F.date_format("created_at", fmt).alias("created"),
            F.date_format("updated_at", fmt).alias("updated"),
        )
        .collect()
    }
    assert rows == {
        # Z and +02:00 are honoured; a timestamp without a zone is read as UTC.
        "C00000491": ("2025-01-14 10:14:44.000", "2025-01-14 08:14:44.000"),
        "C00000492": ("2025-01-14 16:52:07.000", "2025-01-14 21:52:07.250"),
        # A date alone is midnight UTC.
        "C00000394": ("2021-09-06 11:49:34.000", "2025-01-14 00:00:00.000"),
    }


def test_a_failed_file_leaves_the_previous_partition_untouched(spark, tmp_path):
    """A good delivery, then a broken redelivery of the same day: the good data stays."""
    first = ingest(spark, tmp_path, CUSTOMERS, {"a.csv": (CORPUS / "bom.csv").read_bytes()})
    assert first.error is None
    folder = first.root / "landing" / CUSTOMERS / f"dt={DAY}"
    shutil.copy(CORPUS / "truncated.csv.gz", folder / "b.csv.gz")
    settings = parse_settings(f'lake: {{root: "{first.root}"}}', "test")
    job = Job("ingest_again", "bad input", lambda c: ingest_tables(c, (CUSTOMERS,)))
    with pytest.raises(JobError, match=r"b\.csv\.gz .* truncated or corrupt"):
        run_job(job, DAY, settings, spark)
    assert first.layer(spark, "bronze").count() == 3
