"""Alerting callbacks for the Airflow DAG: task failure, task retry and a missed DAG-run deadline.

Every alert is one JSON object, logged on the ``medallion.alerts`` logger (one line, easy to
ship and to grep) and POSTed as JSON by the http provider's ``HttpNotifier`` when the
configuration names a webhook: ``alerts.webhook_url`` (the notifier's HTTP connection is derived
from it when the alert fires, so the URL never sits in a DAG object, in Airflow's database or in
a log: it is registered with Airflow's secrets masker) or ``alerts.http_conn_id`` (an Airflow HTTP
connection, e.g. from a secrets backend, whose host is the webhook's URL). Alerting never fails a
task: a webhook that is down, slow or rejects the request costs one warning line, nothing more.

This module imports Airflow only when an alert is sent, so the triggerer (which runs the deadline
callback), the workers and the tests can all import it cheaply.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.http.notifications.http import HttpNotifier

log = logging.getLogger("medallion.alerts")
# The HTTP hook's own lines: it names the request's URL when it sends (debug) and when the
# connection fails (warning), and a webhook's URL carries its token. Only its errors (the
# status and the body of a rejected POST) are kept; our warning says what happened.
hook_log = logging.getLogger("medallion.alerts.http")
hook_log.setLevel(logging.ERROR)

WEBHOOK_TIMEOUT_S = 5.0
# The id of the HTTP connection derived from ``alerts.webhook_url`` (it exists only in memory,
# for the one POST; Airflow's connections are not consulted for it).
DERIVED_CONN_ID = "medallion_alerts_webhook"
TASK_FAILED = "task_failed"
TASK_RETRY = "task_retry"
DEADLINE_MISSED = "dag_run_deadline_missed"
EVENTS = (TASK_FAILED, TASK_RETRY, DEADLINE_MISSED)
_MAX_ERROR_CHARS = 2000


def build_alert(event: str, context: Mapping[str, Any] | None, env: str) -> dict[str, Any]:
    """The alert payload for ``event`` from an Airflow callback context (any missing key is None).

    Works with the task context Airflow passes to task callbacks and with the smaller context a
    deadline callback receives (the DAG run as a dict and the deadline).
    """
    context = context or {}
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    deadline = context.get("deadline")
    payload: dict[str, Any] = {
        "alert": event,
        "severity": "warning" if event == TASK_RETRY else "error",
        "env": env,
        "dag_id": _first(_get(ti, "dag_id"), _get(dag_run, "dag_id")),
        "run_id": _first(_get(ti, "run_id"), _get(dag_run, "run_id"), _get(dag_run, "dag_run_id")),
        "task_id": _get(ti, "task_id"),
        "logical_date": _iso(_first(context.get("logical_date"), _get(dag_run, "logical_date"))),
        "run_date": context.get("ds"),
        "try_number": _get(ti, "try_number"),
        "max_tries": _get(ti, "max_tries"),
        "error": _error_text(exception),
        "log_url": _safe(lambda: ti.log_url) if ti is not None else None,
        "deadline": _iso(_first(_get(deadline, "deadline_time"), _get(deadline, "deadline"))),
        "fired_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    payload["text"] = _summary(payload)
    return payload


@dataclass(frozen=True)
class Webhook:
    """Where alerts go: an Airflow HTTP connection id, and the URL when it is derived from
    ``alerts.webhook_url`` (then no Airflow connection is looked up). The URL is a secret."""

    conn_id: str
    url: str | None = field(default=None, repr=False)


def send_alert(payload: Mapping[str, Any], webhook: Webhook | None) -> bool:
    """Log ``payload`` as one JSON line and POST it with the ``HttpNotifier`` to ``webhook``.

    Returns whether the webhook accepted it (False when there is none). Never raises.
    """
    try:
        line = json.dumps(payload, default=str, sort_keys=True)
    except Exception:  # a payload that cannot be serialised still gets reported
        line = json.dumps({"alert": str(payload.get("alert")), "text": str(payload.get("text"))})
    log.error("ALERT %s", line)
    if webhook is None:
        return False
    try:
        from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

        # notify(), not the notifier's __call__: that would render the payload as a Jinja
        # template, and an error message may well contain braces.
        webhook_notifier(json.loads(line), webhook).notify({})
    except AirflowNotFoundException:
        log.warning(
            "alert webhook connection '%s' is not defined in Airflow; the alert is in this log "
            "only",
            webhook.conn_id,
        )
        return False
    except AirflowException as exc:  # the hook's check_response: "<status>:<reason>"
        log.warning("alert webhook rejected the alert: HTTP %s", _status_text(exc))
        return False
    except Exception as exc:  # down, slow, DNS, TLS, no such connection: never fail the task
        log.warning(
            "alert webhook unreachable (%s); the alert is in this log only", type(exc).__name__
        )
        return False
    return True


def webhook_notifier(payload: Mapping[str, Any], webhook: Webhook) -> HttpNotifier:
    """The http provider's ``HttpNotifier`` that POSTs ``payload`` as JSON to ``webhook``."""
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.providers.http.notifications.http import HttpNotifier
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    class _WebhookHook(HttpHook):
        """An HttpHook that logs to ``hook_log`` and, when the URL comes from the config, uses
        the connection derived from it instead of looking one up."""

        def get_connection(self, conn_id: str) -> Connection:  # type: ignore[override]
            if webhook.url is None:
                return super().get_connection(conn_id)
            return Connection(conn_id=conn_id, conn_type="http", host=webhook.url)

        @property
        def log(self) -> logging.Logger:  # type: ignore[override]
            return hook_log

    class _WebhookNotifier(HttpNotifier):
        @property
        def hook(self) -> HttpHook:  # type: ignore[override]
            return _WebhookHook(method=self.method, http_conn_id=self.http_conn_id)

    if webhook.url is not None:
        # Airflow masks these in every task and triggerer log line (the hook's own included).
        mask_secret(webhook.url)
        secret_part = urllib.parse.urlsplit(webhook.url)._replace(scheme="", netloc="").geturl()
        if len(secret_part) > 8:  # a path or query that carries a token
            mask_secret(secret_part)
    return _WebhookNotifier(
        http_conn_id=webhook.conn_id,
        json=dict(payload),
        headers={"Content-Type": "application/json", "User-Agent": "medallion-alerts"},
        extra_options={"timeout": WEBHOOK_TIMEOUT_S},
    )


def webhook_for(env: str, config: str | None) -> Webhook | None:
    """The configured webhook (``alerts.webhook_url``, else ``alerts.http_conn_id``), or None
    when neither is set or the configuration cannot be read."""
    try:
        from medallion.config import load_settings

        alerts = load_settings(env, config).alerts
    except Exception as exc:  # a broken config must not turn an alert into a crash
        log.warning("cannot read the alerts section of the configuration (%s)", exc)
        return None
    if alerts.webhook_url is not None:
        return Webhook(DERIVED_CONN_ID, alerts.webhook_url.get_secret_value())
    if alerts.http_conn_id is not None:
        return Webhook(alerts.http_conn_id)
    return None


def _status_text(exc: Exception) -> str:
    # HttpHook.check_response raises AirflowException("500:Internal Server Error").
    return str(exc).split(":", 1)[0].strip() or type(exc).__name__


class AlertCallback:
    """A task callback (``on_failure_callback`` / ``on_retry_callback``) that sends one alert.

    It holds only the environment name and the config location; the webhook is looked up from
    the configuration when the callback fires.
    """

    def __init__(self, event: str, env: str = "local", config: str | None = None) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown alert event '{event}'; choose one of {', '.join(EVENTS)}")
        self.event = event
        self.env = env
        self.config = config

    def __call__(self, context: Mapping[str, Any]) -> None:
        try:
            payload = build_alert(self.event, context, self.env)
            send_alert(payload, webhook_for(self.env, self.config))
        except Exception:  # the last line of defence: a callback never raises into Airflow
            log.exception("alert callback %s failed", self.event)

    def __repr__(self) -> str:
        return f"AlertCallback(event={self.event!r}, env={self.env!r}, config={self.config!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlertCallback):
            return NotImplemented
        return (self.event, self.env, self.config) == (other.event, other.env, other.config)

    def __hash__(self) -> int:
        return hash((self.event, self.env, self.config))


def on_task_failure(env: str = "local", config: str | None = None) -> AlertCallback:
    return AlertCallback(TASK_FAILED, env, config)


def on_task_retry(env: str = "local", config: str | None = None) -> AlertCallback:
    return AlertCallback(TASK_RETRY, env, config)


async def deadline_missed(
    context: Mapping[str, Any] | None = None, *, env: str = "local", config: str | None = None
) -> None:
    """The DAG-run deadline callback (an ``AsyncCallback``: Airflow's triggerer runs it).

    The blocking parts (reading the config, the HTTP POST) run in a worker thread so the
    triggerer's event loop is never held up.
    """

    def fire() -> None:
        payload = build_alert(DEADLINE_MISSED, context, env)
        send_alert(payload, webhook_for(env, config))

    try:
        await asyncio.to_thread(fire)
    except Exception:
        log.exception("deadline alert failed")


# --- helpers -------------------------------------------------------------------------------------


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return _safe(lambda: getattr(obj, name, None))


def _safe(read: Any) -> Any:
    try:
        return read()
    except Exception:
        return None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _error_text(exception: Any) -> str | None:
    if exception is None:
        return None
    text = str(exception).strip() or type(exception).__name__
    try:
        from medallion.redact import redact

        text = redact(text)
    except Exception:
        pass
    return text[:_MAX_ERROR_CHARS]


def _summary(payload: Mapping[str, Any]) -> str:
    where = payload["dag_id"] or "medallion"
    if payload["task_id"]:
        where += f".{payload['task_id']}"
    when = payload["run_date"] or payload["logical_date"] or payload["run_id"] or "?"
    if payload["alert"] == DEADLINE_MISSED:
        return f"[medallion/{payload['env']}] {where} run {when} missed its deadline {payload['deadline'] or ''}".strip()
    if payload["alert"] == TASK_RETRY:
        what = (
            f"failed try {payload['try_number']} of {(payload['max_tries'] or 0) + 1}, will retry"
        )
    else:
        what = "failed"
    error = f": {payload['error']}" if payload["error"] else ""
    return f"[medallion/{payload['env']}] {where} for {when} {what}{error}"
