"""The compact results table ``medallion validate`` prints (rich).

Every check that did not pass gets its own row (failed errors, then warnings, then skipped);
passed checks are folded into one row per table, and the anomaly gate's skipped figures (too
little history yet, too few rows) into one row. The failure messages follow the table. The
full detail is in results.json and the HTML report.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_RANK = {("failed", "error"): 0, ("failed", "warn"): 1}
_LABEL = {("failed", "error"): "[bold red]FAIL[/]", ("failed", "warn"): "[yellow]WARN[/]"}


def print_results(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    checks = results.get("checks", [])
    summary = results.get("summary", {})
    colour = "red" if results.get("status") == "failed" else "green"
    table = Table(
        title=(
            f"data quality {results.get('run_date')}: [{colour}]{results.get('status')}[/] - "
            f"{summary.get('checks', 0)} checks: {summary.get('passed', 0)} passed, "
            f"{summary.get('failed_errors', 0)} failed, {summary.get('failed_warnings', 0)} "
            f"warnings, {summary.get('skipped', 0)} skipped"
        ),
        title_justify="left",
        box=None,
        pad_edge=False,
    )
    table.add_column("", no_wrap=True)
    table.add_column("check", overflow="fold")
    table.add_column("sev", no_wrap=True)
    table.add_column("observed", justify="right", no_wrap=True)
    table.add_column("threshold", no_wrap=True)
    # The anomaly gate skips a figure it has too little history for: one row says how many.
    folded = [c for c in checks if c["status"] == "skipped" and c.get("kind") == "anomaly"]
    attention = sorted(
        (c for c in checks if c["status"] != "passed" and c not in folded),
        key=lambda c: _RANK.get((c["status"], c["severity"]), 2),
    )
    for check in attention:
        table.add_row(
            _LABEL.get((check["status"], check["severity"]), "[dim]skip[/]"),
            check["id"],
            check["severity"],
            _observed(check),
            check["threshold"],
        )
    passed: dict[str, int] = {}
    for check in checks:
        if check["status"] == "passed":
            key = f"{check['layer']}.{check['table']}"
            passed[key] = passed.get(key, 0) + 1
    for key, count in passed.items():
        table.add_row("[green]ok[/]", f"{key}.*", "", f"{count} passed", "")
    if folded:
        table.add_row(
            "[dim]skip[/]", "anomaly.*", "", f"{len(folded)} skipped", "too little history"
        )
    console.print(table)
    for check in attention:
        if check["status"] == "failed":
            colour = "red" if check["severity"] == "error" else "yellow"
            console.print(f"[{colour}]{check['id']}[/]: {check['message']}", highlight=False)


def _observed(check: dict[str, Any]) -> str:
    value = check.get("observed")
    if value is None:
        return "-"
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"
    return text + (" %" if check.get("unit") == "percent" else "")
