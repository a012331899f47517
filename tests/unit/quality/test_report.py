"""The HTML run report, rendered in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os

import pytest
from quality_lake import HOSTILE_RAW, D, write_audit

from medallion.lake import Lake
from medallion.quality.report import write_report
from medallion.quality.results import CheckResult, ValidationRun, write_results
from medallion.redact import register_secrets

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET = "s3cr3t-Pa55word-for-the-report"


def _results(root: str) -> None:
    run = ValidationRun(run_date=D, run_id="r1", env="local", started_at="2025-01-15T03:00:00Z")
    run.results = [
        CheckResult(
            "gold.fact_orders.customer_fk", "gold", "fact_orders",
            "Every customer_sk exists in dim_customer.", "error", "failed", 1, "= 0",
            "observed 1, expected = 0", "rows", "sql",
        ),
        CheckResult(
            "silver.orders.order_id_unique", "silver", "orders", "One row per order id.",
            "error", "passed", 0, "= 0", "0 duplicate row(s) on (order_id)", "rows", "library",
        ),
    ]  # fmt: skip
    write_results(Lake.from_root(root), run)


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}; the report test needs it: "
            "apt-get install -y chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_report_renders_offline_with_every_section(lake, browser, tmp_path):
    root = lake.lake.root
    _results(root)
    # A failed publish whose error carries a secret (written before the secret was registered).
    write_audit(root, "publish_gold_to_snowflake", D, [], 40, status="failed", error=f"login failed for password {SECRET}")  # fmt: skip
    register_secrets([SECRET])

    path = write_report(lake, D)

    assert path == f"{root}/_reports/report_2025-01-15.html"
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requests, dialogs = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    url = f"file://{path}"
    page.goto(url)
    page.wait_for_load_state("load")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    assert requests == [url]  # no CDN, font, image or script: only the file itself
    assert page.title() == "medallion run report 2025-01-15"
    runs = page.inner_text("#runs")
    assert "snowflake_to_bronze" in runs and "publish_gold_to_snowflake" in runs
    assert "login failed for password ***" in runs
    assert SECRET not in page.content()
    assert "1 of 8 jobs failed" in page.inner_text(".cards")
    assert (
        "snowflake/orders → orders → fact_orders"
        in page.locator("#flow svg text").all_text_contents()
    )
    bars = page.locator("#flow svg title").all_text_contents()
    assert [b for b in bars if b.startswith("snowflake/orders")] == [
        f"snowflake/orders → orders → fact_orders: {layer} rows"
        for layer in ("landing 5", "bronze 3", "quarantine 2", "silver 3", "gold 3")
    ]
    quarantine = page.inner_text("#quarantine")
    assert "currency:allowed\t2" in quarantine and "order_id:pattern\t1" in quarantine
    assert "40.00 % of 5 landed rows" in quarantine
    assert HOSTILE_RAW in quarantine  # shown as text, never run
    assert page.locator("script").count() == 0 and dialogs == []
    quality = page.inner_text("#quality")
    assert "gold.fact_orders.customer_fk" in quality and "failed" in quality
    assert "1 passed checks" in quality
    scd2 = page.inner_text("#scd2")
    assert "C2" in scd2 and "segment: consumer → enterprise" in scd2
    assert "email: c***@example.com → a***@example.org" in scd2  # confidential: masked
    trends = page.locator("#trends svg text").all_text_contents()
    assert {"rows landed", "rows quarantined", "fact_orders rows", "failed checks"} <= set(trends)


def test_report_says_when_validate_has_not_run(lake):
    path = write_report(lake, D)

    with open(path, encoding="utf-8") as handle:
        html = handle.read()
    assert "Validate has not run for 2025-01-15" in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
