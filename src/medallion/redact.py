"""Keeps secrets out of every log line, audit record, report and error message.

The configuration registers its secret values at start-up; ``redact`` replaces each with
``***`` and a logging filter applies it to every record the process emits.
"""

from __future__ import annotations

import logging

MASK = "***"
_secrets: set[str] = set()


def register_secrets(values: list[str]) -> None:
    """Remember values that must never be shown (short values are ignored: too many false hits)."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, ()
        return True
