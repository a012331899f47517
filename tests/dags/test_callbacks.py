"""Alert callbacks: one JSON alert logged and POSTed to the configured webhook; never a crash."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from dag_helpers import Webhook, write_config

from medallion.orchestration import callbacks
from medallion.orchestration.callbacks import (
    DEADLINE_MISSED,
    TASK_FAILED,
    TASK_RETRY,
    AlertCallback,
    deadline_missed,
)

pytestmark = pytest.mark.dag

# Airflow configures logging (structlog over the root logger) when it is first imported. Done in
# the middle of a test, that drops pytest's log-capture handler, and what the callbacks log after
# it is not captured: import it here, at collection, so every test sees Airflow's logging set up.
import airflow.providers.http.notifications.http  # noqa: E402, F401


def task_context(try_number: int = 1, error: str = "exited with code 1") -> dict:
    ti = SimpleNamespace(
        dag_id="daily_pipeline",
        run_id="scheduled__2025-01-13T00:00:00+00:00",
        task_id="bronze_to_silver",
        try_number=try_number,
        max_tries=3,
        log_url="http://airflow.local/dags/daily_pipeline/runs/x/tasks/bronze_to_silver",
    )
    return {
        "ti": ti,
        "ds": "2025-01-13",
        "logical_date": dt.datetime(2025, 1, 13, tzinfo=dt.UTC),
        "exception": RuntimeError(error),
    }


def alert_config(tmp_path: Path, url: str | None) -> str:
    return str(write_config(tmp_path / "alerts.yaml", tmp_path / "lake", webhook=url))


def test_failure_alert_is_logged_and_posted(tmp_path, caplog):
    with Webhook() as hook:
        callback = AlertCallback(TASK_FAILED, "local", alert_config(tmp_path, hook.url))
        with caplog.at_level(logging.INFO, logger="medallion.alerts"):
            callback(task_context(try_number=4))

    [posted] = hook.received
    assert posted["alert"] == "task_failed"
    assert posted["severity"] == "error"
    assert (posted["dag_id"], posted["task_id"], posted["run_date"]) == (
        "daily_pipeline",
        "bronze_to_silver",
        "2025-01-13",
    )
    assert (posted["try_number"], posted["max_tries"]) == (4, 3)
    assert posted["error"] == "exited with code 1"
    assert posted["logical_date"] == "2025-01-13T00:00:00+00:00"
    assert posted["text"] == (
        "[medallion/local] daily_pipeline.bronze_to_silver for 2025-01-13 failed: exited with code 1"
    )
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT ")]
    assert json.loads(line.removeprefix("ALERT ")) == posted
    # The webhook URL is a secret: it is never logged.
    assert hook.url not in caplog.text


def test_retry_alert_says_which_try(tmp_path):
    with Webhook() as hook:
        AlertCallback(TASK_RETRY, "local", alert_config(tmp_path, hook.url))(task_context(1))

    [posted] = hook.received
    assert posted["alert"] == "task_retry"
    assert posted["severity"] == "warning"
    assert "failed try 1 of 4, will retry" in posted["text"]


def test_no_webhook_configured_logs_only(tmp_path, caplog):
    callback = AlertCallback(TASK_FAILED, "local", alert_config(tmp_path, None))
    with caplog.at_level(logging.INFO, logger="medallion.alerts"):
        callback(task_context())

    assert any(r.getMessage().startswith("ALERT {") for r in caplog.records)
    assert not any(r.levelno == logging.WARNING for r in caplog.records)


def test_webhook_down_never_fails_the_task(tmp_path, caplog):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    callback = AlertCallback(
        TASK_FAILED, "local", alert_config(tmp_path, f"http://127.0.0.1:{port}/")
    )
    with caplog.at_level(logging.INFO, logger="medallion.alerts"):
        callback(task_context())  # must not raise

    assert "alert webhook unreachable" in caplog.text


def test_slow_webhook_is_cut_off_by_the_timeout(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(callbacks, "WEBHOOK_TIMEOUT_S", 0.3)
    with Webhook(delay_s=3) as hook:
        started = time.perf_counter()
        with caplog.at_level(logging.INFO, logger="medallion.alerts"):
            AlertCallback(TASK_FAILED, "local", alert_config(tmp_path, hook.url))(task_context())
        elapsed = time.perf_counter() - started

    assert elapsed < 2.5
    assert "alert webhook unreachable (ReadTimeout)" in caplog.text


def test_webhook_error_status_is_a_warning(tmp_path, caplog):
    with Webhook(status=500) as hook:
        with caplog.at_level(logging.INFO, logger="medallion.alerts"):
            AlertCallback(TASK_FAILED, "local", alert_config(tmp_path, hook.url))(task_context())

    assert len(hook.received) == 1
    assert "alert webhook rejected the alert: HTTP 500" in caplog.text


def test_unreadable_config_still_logs_the_alert(tmp_path, caplog):
    callback = AlertCallback(TASK_FAILED, "local", str(tmp_path / "missing.yaml"))
    with caplog.at_level(logging.INFO, logger="medallion.alerts"):
        callback(task_context())

    assert "ALERT {" in caplog.text
    assert "cannot read the alerts section of the configuration" in caplog.text


def test_deadline_callback_posts_from_the_triggerer_context(tmp_path):
    context = {
        "dag_run": {"dag_id": "daily_pipeline", "dag_run_id": "scheduled__2025-01-13"},
        "deadline": {"id": "d1", "deadline_time": "2025-01-14T06:00:00+00:00"},
    }
    with Webhook() as hook:
        asyncio.run(deadline_missed(context, env="local", config=alert_config(tmp_path, hook.url)))

    [posted] = hook.received
    assert posted["alert"] == DEADLINE_MISSED
    assert posted["run_id"] == "scheduled__2025-01-13"
    assert posted["deadline"] == "2025-01-14T06:00:00+00:00"
    assert "missed its deadline" in posted["text"]


def test_callbacks_are_importable_by_path_without_airflow_objects():
    from airflow.sdk import AsyncCallback

    callback = AsyncCallback(deadline_missed, kwargs={"env": "prod", "config": None})

    assert callback.path == "medallion.orchestration.callbacks.deadline_missed"


def test_unknown_event_is_rejected():
    with pytest.raises(ValueError, match="unknown alert event"):
        AlertCallback("task_exploded")


def test_the_webhooks_token_never_reaches_a_log(tmp_path, caplog, capfd):
    # A Slack-style URL carries its token in the path; the HTTP hook names the URL when the
    # connection fails. Nothing listens on this port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/s3cr3t-t0ken"
    with caplog.at_level(logging.DEBUG):
        AlertCallback(TASK_FAILED, "local", alert_config(tmp_path, url))(task_context())

    printed = capfd.readouterr()
    logged = caplog.text + printed.out + printed.err
    assert "alert webhook unreachable (ConnectionError)" in logged
    for output in (caplog.text, printed.out, printed.err):
        assert "s3cr3t-t0ken" not in output


def test_an_airflow_http_connection_names_the_webhook(tmp_path, monkeypatch):
    # alerts.http_conn_id: the notifier looks the connection up the way Airflow does (here from
    # an AIRFLOW_CONN_ variable, as a secrets backend would hold it); its host is the URL.
    config = tmp_path / "conn.yaml"
    config.write_text(
        f"env: local\nlake: {{root: '{tmp_path / 'lake'}'}}\n"
        "alerts: {http_conn_id: medallion_test_alerts}\n",
        encoding="utf-8",
    )
    with Webhook() as hook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MEDALLION_TEST_ALERTS",
            json.dumps({"conn_type": "http", "host": hook.url}),
        )
        AlertCallback(TASK_FAILED, "local", str(config))(task_context())

    [posted] = hook.received
    assert (posted["alert"], posted["task_id"]) == ("task_failed", "bronze_to_silver")


def test_an_undefined_connection_is_a_warning(tmp_path, caplog):
    config = tmp_path / "conn.yaml"
    config.write_text("env: local\nalerts: {http_conn_id: no_such_alerts_conn}\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="medallion.alerts"):
        AlertCallback(TASK_FAILED, "local", str(config))(task_context())

    assert "ALERT {" in caplog.text
    assert "alert webhook connection 'no_such_alerts_conn' is not defined" in caplog.text


def test_the_payload_is_posted_verbatim_not_rendered(tmp_path):
    # An error message with template braces must not be rendered by the notifier.
    with Webhook() as hook:
        AlertCallback(TASK_FAILED, "local", alert_config(tmp_path, hook.url))(
            task_context(error="bad value {{ ds }} in {'a': 1}")
        )

    [posted] = hook.received
    assert posted["error"] == "bad value {{ ds }} in {'a': 1}"


def test_a_webhook_url_and_a_connection_id_together_are_a_config_error(tmp_path):
    from medallion.config import load_settings
    from medallion.errors import ConfigError

    config = tmp_path / "both.yaml"
    config.write_text(
        "env: local\nalerts: {webhook_url: 'http://127.0.0.1:9/x', http_conn_id: c}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"alerts\.webhook_url or alerts\.http_conn_id, not both"):
        load_settings("local", str(config))


def test_alerts_go_through_the_http_providers_notifier():
    from airflow.providers.http.notifications.http import HttpNotifier

    from medallion.orchestration.callbacks import Webhook as Destination
    from medallion.orchestration.callbacks import webhook_notifier

    notifier = webhook_notifier({"alert": "task_failed"}, Destination("c", "http://127.0.0.1:9/x"))

    assert isinstance(notifier, HttpNotifier)
    assert (notifier.method, notifier.json) == ("POST", {"alert": "task_failed"})
    assert notifier.extra_options == {"timeout": callbacks.WEBHOOK_TIMEOUT_S}
    assert "127.0.0.1:9" not in repr(Destination("c", "http://127.0.0.1:9/x"))
