"""``medallion report --run-date D``: one self-contained HTML file of what a run did.

Written to ``<lake>/_reports/report_<D>.html``; it embeds its CSS and draws its charts as inline
SVG, so it opens from disk with no network. Everything is read without Spark: the audit trail
and the quality results are JSON; lake tables are Delta tables read through their transaction
log with ``deltalake`` (row counts from the log's per-file ``num_records``, rows from the
version's pyarrow dataset, never from listing a table folder, which still holds files later
commits removed) and queried with DuckDB. Sections:

1. run summary: the latest audit record of each job for D;
2. row flow per table through landing, bronze, quarantine, silver, gold and the warehouse;
3. quarantine by table and reason (``_reasons`` unnested), with sample rejected rows;
4. data-quality checks from ``_quality/run_date=D/results.json``;
5. SCD2 changes of the day in ``dim_customer`` (the new version and the one it replaced);
6. trends of key counts over every run date in the audit trail.

The template autoescapes every value; free text from audit errors and check messages also goes
through ``redact`` so a secret never reaches the page.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import defaultdict
from typing import Any

import duckdb
import fsspec
import jinja2
import pyarrow as pa
import pyarrow.dataset as pads

from medallion import __version__
from medallion.audit import read_records, utc_now_iso
from medallion.config import Settings
from medallion.delta_reader import DeltaSnapshot, open_delta, table_uri
from medallion.errors import JobError
from medallion.lake import RUN_DATE, Lake, write_text_atomic
from medallion.quality.charts import flow_chart, trend_chart
from medallion.quality.results import read_results
from medallion.redact import redact
from medallion.transforms.gold.dim_customer import HISTORY_START, TRACKED_ATTRIBUTES

log = logging.getLogger(__name__)

LAYERS = ["landing", "bronze", "quarantine", "silver", "gold", "warehouse"]
# Each source table, the silver table it feeds and the gold table that carries it on.
LINEAGE: list[tuple[str, str, str | None]] = [
    ("snowflake/customers", "customers", "dim_customer"),
    ("snowflake/products", "products", "dim_product"),
    ("snowflake/orders", "orders", "fact_orders"),
    ("kafka/order_events", "order_events", None),
    ("redshift/customer_behavior", "customer_behavior", None),
    ("fx/fx_rates", "fx_rates", None),
    ("crm/accounts", "crm_accounts", None),
    ("crm/contacts", "crm_contacts", None),
    ("crm/opportunities", "crm_opportunities", None),
]
CONFIDENTIAL = {"email"}  # tracked attributes shown masked in the SCD2 section
SAMPLES_PER_TABLE = 3
MAX_SCD2_ROWS = 50
RAW_RECORD_CHARS = 400


def report_path(lake: Lake, run_date: dt.date) -> str:
    return f"{lake.reports_dir()}/report_{run_date.isoformat()}.html"


def write_report(settings: Settings, run_date: dt.date) -> str:
    """Collect, render and write the report; return its path."""
    lake = Lake.from_root(settings.lake.root)
    html = render_report(collect(settings, lake, run_date))
    path = write_text_atomic(report_path(lake, run_date), html)
    log.info("report for %s written to %s", run_date, path)
    return path


def render_report(data: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("medallion.quality", "templates"),
        autoescape=True,  # every value is escaped unless a template marks it safe (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["duration"] = _duration
    return env.get_template("report.html").render(**data)


# --- collection -------------------------------------------------------------------------------


class _LakeTables:
    """The lake's Delta tables through their logs (a folder and s3:// alike), each opened once."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._opened: dict[str, DeltaSnapshot | None] = {}

    def table(self, *parts: str) -> DeltaSnapshot | None:
        """The latest version of the table at ``parts`` under the lake; None when absent or
        unreadable (the report shows what it can and says so in the log)."""
        path = self.lake.path(*parts)
        if path not in self._opened:
            try:
                self._opened[path] = open_delta(path)
            except JobError as exc:
                log.warning("report: %s", exc)
                self._opened[path] = None
        return self._opened[path]

    def rows(self, *parts: str, run_date: dt.date | None = None) -> int | None:
        """Rows of the table (of its ``_run_date`` partition when given), from the log."""
        table = self.table(*parts)
        if table is None:
            return None
        if run_date is not None:
            return table.partition_rows(RUN_DATE, run_date)
        return table.rows if table.rows is not None else table.dataset().count_rows()

    def read(
        self, *parts: str, columns: list[str], run_date: dt.date | None = None
    ) -> pa.Table | None:
        """The given columns (those that exist) of the table (of one ``_run_date``)."""
        table = self.table(*parts)
        if table is None:
            return None
        where = None
        if run_date is not None:
            if RUN_DATE not in table.partition_columns:
                return None
            where = pads.field(RUN_DATE) == pa.scalar(run_date)
        return table.read(columns, filter=where)

    def relative(self, path: str | None) -> str:
        """A source file path shown relative to the lake root."""
        if not path:
            return ""
        # Spark writes s3a:// where the lake is configured as s3:// (Lake.for_spark).
        text = table_uri(str(path)).removeprefix("file://").removeprefix("file:")
        _, root = fsspec.core.url_to_fs(self.lake.root)
        for prefix in (table_uri(self.lake.root), root):
            if prefix and text.startswith(prefix.rstrip("/") + "/"):
                return text[len(prefix.rstrip("/")) + 1 :]
        return text


def collect(settings: Settings, lake: Lake, run_date: dt.date) -> dict[str, Any]:
    files = _LakeTables(lake)
    records = read_records(lake.root)
    day = run_date.isoformat()
    latest = _latest_per_job([r for r in records if r.get("run_date") == day])
    jobs = _jobs(latest)
    flow = _flow(files, settings, latest, run_date)
    quarantine = _quarantine(files, run_date, {row["source"]: row for row in flow["rows"]})
    results = read_results(lake, run_date)
    return {
        "run_date": day,
        "env": settings.env,
        "lake_root": lake.root,
        "generated_at": utc_now_iso(),
        "version": __version__,
        "jobs": jobs,
        "pipeline_status": _pipeline_status(jobs),
        "flow": flow,
        "quarantine": quarantine,
        "quality": _quality(results),
        "scd2": _scd2(files, run_date),
        "trends": _trends(lake, records),
    }


def _latest_per_job(records: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for record in records:  # oldest first: later records replace earlier ones
        latest[record.get("job", "?")] = record
    return latest


def _jobs(latest: dict[str, dict]) -> list[dict[str, Any]]:
    rows = []
    for record in sorted(latest.values(), key=lambda r: r.get("started_at") or ""):
        rows.append(
            {
                "job": record.get("job", "?"),
                "status": record.get("status", "?"),
                "started_at": (record.get("started_at") or "").replace("T", " ")[:19],
                "duration_s": record.get("duration_s"),
                "rows_in": record.get("rows_in"),
                "rows_out": record.get("rows_out"),
                "rows_quarantined": record.get("rows_quarantined"),
                "error": redact(record.get("error") or ""),
                "run_id": record.get("run_id", ""),
            }
        )
    return rows


def _pipeline_status(jobs: list[dict]) -> dict[str, Any]:
    failed = [j["job"] for j in jobs if j["status"] != "succeeded"]
    return {
        "ok": bool(jobs) and not failed,
        "jobs": len(jobs),
        "failed": failed,
        "duration_s": sum(j["duration_s"] or 0 for j in jobs),
    }


def _table_counts(latest: dict[str, dict]) -> dict[str, dict]:
    """Every table entry of the day's latest records, by name (``silver/orders``, ``crm/accounts``)."""
    counts: dict[str, dict] = {}
    for record in sorted(latest.values(), key=lambda r: r.get("started_at") or ""):
        if record.get("status") != "succeeded":
            continue
        for table in record.get("tables") or []:
            name = str(table.get("name", "")).removeprefix("bronze/")
            counts[name] = table
    return counts


def _flow(
    files: _LakeTables, settings: Settings, latest: dict[str, dict], run_date: dt.date
) -> dict[str, Any]:
    """Rows per table per layer: the audit trail first, the lake itself where it is silent."""
    audited = _table_counts(latest)
    warehouse = _warehouse_counts(settings)
    rows = []
    for source, silver, gold in LINEAGE:
        ingest = audited.get(source, {})
        src, tbl = source.split("/")
        values = {
            "landing": ingest.get("rows_in"),
            "bronze": ingest.get("rows_out"),
            "quarantine": ingest.get("rows_quarantined"),
            "silver": audited.get(f"silver/{silver}", {}).get("rows_out"),
            "gold": audited.get(f"gold/{gold}", {}).get("rows_out") if gold else None,
            "warehouse": audited.get(f"warehouse/{gold}", {}).get("rows_out") if gold else None,
        }
        if values["bronze"] is None:
            values["bronze"] = files.rows("bronze", src, tbl, run_date=run_date)
        if values["quarantine"] is None:
            values["quarantine"] = files.rows("quarantine", src, tbl, run_date=run_date)
        if values["silver"] is None:
            values["silver"] = files.rows("silver", silver)
        if gold and values["gold"] is None:
            values["gold"] = files.rows("gold", gold)
        if gold and values["warehouse"] is None:
            values["warehouse"] = warehouse.get(gold)
        label = f"{source} → {silver}" + (f" → {gold}" if gold else "")
        rows.append({"source": source, "label": label, "values": values})
    return {"rows": rows, "layers": LAYERS, "chart": flow_chart(rows, LAYERS)}


def _warehouse_counts(settings: Settings) -> dict[str, int]:
    """Row counts of the local DuckDB warehouse's tables (empty when there is none or it is busy)."""
    config = settings.warehouse
    if config.type != "duckdb" or not os.path.exists(config.duckdb.path):
        return {}
    try:
        con = duckdb.connect(config.duckdb.path, read_only=True)
    except duckdb.Error as exc:
        log.warning("report: cannot open the warehouse %s: %s", config.duckdb.path, exc)
        return {}
    try:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [config.duckdb.schema_],
        ).fetchall()
        schema = config.duckdb.schema_.replace('"', '""')
        return {
            name: con.execute(
                f'SELECT count(*) FROM "{schema}"."{name.replace(chr(34), chr(34) * 2)}"'
            ).fetchone()[0]
            for (name,) in tables
        }
    finally:
        con.close()


def _quarantine(files: _LakeTables, run_date: dt.date, flow: dict[str, dict]) -> dict[str, Any]:
    tables = []
    con = duckdb.connect()
    try:
        for source, _, _ in LINEAGE:
            src, tbl = source.split("/")
            frame = files.read(
                "quarantine",
                src,
                tbl,
                columns=["_reasons", "_raw_record", "_source_file", "_line"],
                run_date=run_date,
            )
            if frame is None or frame.num_rows == 0:
                continue
            con.register("q", frame)
            names = set(frame.column_names)
            reasons = (
                con.execute(
                    "SELECT reason, count(*) AS n FROM (SELECT unnest(_reasons) AS reason FROM q) "
                    "GROUP BY reason ORDER BY n DESC, reason"
                ).fetchall()
                if "_reasons" in names
                else []
            )
            order = ", ".join(c for c in ("_source_file", "_line") if c in names) or "1"
            samples = con.execute(
                f"SELECT * FROM q ORDER BY {order} LIMIT {SAMPLES_PER_TABLE}"
            ).fetchall()
            columns = [d[0] for d in con.description]
            con.unregister("q")
            landed = flow.get(source, {}).get("values", {}).get("landing")
            tables.append(
                {
                    "source": source,
                    "rows": frame.num_rows,
                    "landed": landed,
                    "share": 100.0 * frame.num_rows / landed if landed else None,
                    "reasons": [
                        {"reason": r, "rows": n, "share": 100.0 * n / frame.num_rows}
                        for r, n in reasons
                    ],
                    "samples": [_sample(files, dict(zip(columns, row))) for row in samples],
                }
            )
    finally:
        con.close()
    return {"tables": tables, "total": sum(t["rows"] for t in tables)}


def _sample(files: _LakeTables, row: dict[str, Any]) -> dict[str, Any]:
    raw = "" if row.get("_raw_record") is None else str(row["_raw_record"])
    return {
        "raw": raw[:RAW_RECORD_CHARS] + ("…" if len(raw) > RAW_RECORD_CHARS else ""),
        "reasons": list(row.get("_reasons") or []),
        "source_file": files.relative(row.get("_source_file")),
        "line": row.get("_line"),
    }


def _quality(results: dict | None) -> dict[str, Any] | None:
    if results is None:
        return None
    checks = results.get("checks", [])
    for check in checks:
        check["message"] = redact(check.get("message") or "")
    rank = {("failed", "error"): 0, ("failed", "warn"): 1}
    # The gate's figures have their own table; a failed one is also listed with the failures.
    gate = lambda c: c.get("kind") == "anomaly"  # noqa: E731
    attention = sorted(
        (c for c in checks if c["status"] == "failed" or (c["status"] != "passed" and not gate(c))),
        key=lambda c: rank.get((c["status"], c["severity"]), 2),
    )
    return {
        "status": results.get("status"),
        "summary": results.get("summary", {}),
        "finished_at": (results.get("finished_at") or "").replace("T", " ")[:19],
        "attention": attention,
        "passed": [c for c in checks if c["status"] == "passed" and not gate(c)],
        "figures": [_figure(c) for c in checks if c.get("kind") == "anomaly"],
    }


def _figure(check: dict[str, Any]) -> dict[str, Any]:
    """An anomaly-gate figure as the report shows it: today's value beside each earlier one."""
    unit = check.get("unit")

    def shown(value: Any) -> str:
        if value is None:
            return "-"
        if unit == "ratio":
            return f"{value:.1%}"
        if unit == "x":
            return f"{value:.3f}x"
        return _num(value)

    return {
        **check,
        "value": shown(check.get("observed")),
        "baseline_shown": shown(check.get("baseline")),
        "history_shown": [(day[5:], shown(value)) for day, value in check.get("history") or []],
    }


def _scd2(files: _LakeTables, run_date: dt.date) -> dict[str, Any] | None:
    dim = files.read(
        "gold",
        "dim_customer",
        columns=[
            "customer_sk",
            "customer_id",
            *TRACKED_ATTRIBUTES,
            "valid_from",
            "valid_to",
            "is_current",
        ],
    )
    if dim is None:
        return None
    attributes = [c for c in TRACKED_ATTRIBUTES if c in dim.column_names]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("dim", dim)
        opened = (
            "FROM dim n LEFT JOIN dim o ON o.customer_id = n.customer_id AND o.valid_to = n.valid_from "
            "WHERE n.valid_from > ? AND CAST(n.valid_from AS DATE) = ?"
        )
        params = [HISTORY_START, run_date]
        total = con.execute(f"SELECT count(*) {opened}", params).fetchone()[0]
        select = ", ".join(
            ["n.customer_id", "n.customer_sk", "n.valid_from", "o.customer_sk", "o.valid_from"]
            + [f"o.{a}" for a in attributes]
            + [f"n.{a}" for a in attributes]
        )
        rows = con.execute(
            f"SELECT {select} {opened} ORDER BY n.valid_from, n.customer_id LIMIT {MAX_SCD2_ROWS}",
            params,
        ).fetchall()
        versions = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_current) FROM dim"
        ).fetchone()
    finally:
        con.close()
    changes = []
    for row in rows:
        old = dict(zip(attributes, row[5 : 5 + len(attributes)]))
        new = dict(zip(attributes, row[5 + len(attributes) :]))
        changes.append(
            {
                "customer_id": row[0],
                "customer_sk": row[1],
                "valid_from": _ts(row[2]),
                "previous_sk": row[3],
                "previous_from": _ts(row[4]),
                "changes": [
                    {"attribute": a, "old": _mask(a, old[a]), "new": _mask(a, new[a])}
                    for a in attributes
                    if old[a] != new[a]
                ],
            }
        )
    return {"total": total, "rows": changes, "versions": versions[0], "current": versions[1]}


def _trends(lake: Lake, records: list[dict]) -> dict[str, Any]:
    by_date: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_date[record.get("run_date", "")].append(record)
    dates = sorted(d for d in by_date if d)
    series: dict[str, list[float | None]] = defaultdict(list)
    for day in dates:
        latest = _latest_per_job(by_date[day])
        tables = _table_counts(latest)
        ingested = [
            t for n, t in tables.items() if not n.startswith(("silver/", "gold/", "warehouse/"))
        ]
        gold_details = latest.get("silver_to_gold", {}).get("details") or {}
        results = read_results(lake, dt.date.fromisoformat(day))
        summary = (results or {}).get("summary") or {}
        series["rows landed"].append(_sum(t.get("rows_in") for t in ingested))
        series["rows quarantined"].append(_sum(t.get("rows_quarantined") for t in ingested))
        series["silver orders"].append(tables.get("silver/orders", {}).get("rows_out"))
        series["fact_orders rows"].append(tables.get("gold/fact_orders", {}).get("rows_out"))
        series["dim_customer versions"].append(tables.get("gold/dim_customer", {}).get("rows_out"))
        series["SCD2 changes of the day"].append(gold_details.get("dim_customer_changes_today"))
        series["failed checks"].append(summary.get("failed") if results else None)
        series["pipeline seconds"].append(
            round(sum(r.get("duration_s") or 0 for r in latest.values()), 1) if latest else None
        )
    charts = [trend_chart(name, dates, values) for name, values in series.items()]
    return {"dates": dates, "charts": charts}


# --- formatting helpers -----------------------------------------------------------------------


def _sum(values) -> int | None:
    known = [int(v) for v in values if v is not None]
    return sum(known) if known else None


def _ts(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def _mask(attribute: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if attribute in CONFIDENTIAL:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}" if domain else "***"
    return text


def _num(value: Any) -> str:
    if value is None:
        return "\N{EN DASH}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "\N{EN DASH}"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
