"""Durations as people write them in configs and contracts: ``"24 hours"``, ``"1 day"``.

One syntax for the stream's watermark delay and future tolerance and for a contract's
``notAfterDelivery``: a whole number and one of the units Spark's watermark delays use.
"""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
EXAMPLES = "'24 hours', '30 minutes' or '1 day'"


def parse_duration(text: object) -> dt.timedelta | None:
    """``"24 hours"`` -> timedelta(hours=24); None when ``text`` is not such a duration."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        return None
    amount, unit = int(match.group(1)), match.group(2).lower()
    return dt.timedelta(**{f"{unit}s": amount})
