"""What the two delivery-schedule properties share: how many schedules run, drawn how.

``tests/unit/transforms/gold/test_delivery_schedules.py`` (the dimension on hand-made rows) and
``tests/integration/test_job_schedules.py`` (the jobs) each take their count from an environment
variable of their own; ``MEDALLION_SCHEDULE_SEED`` draws other schedules than the fixed default
ones for both.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, seed, settings

SCHEDULE_SEED = os.environ.get("MEDALLION_SCHEDULE_SEED")


def schedule_settings(count: int):
    """Hypothesis' settings for ``count`` drawn schedules (0: the explicit examples only), each a
    slow example: no deadline, no example database, the same draws on every run unless
    ``MEDALLION_SCHEDULE_SEED`` is set. Apply it above ``@given``."""

    def decorate(test):
        if SCHEDULE_SEED:
            test = seed(int(SCHEDULE_SEED))(test)
        return settings(
            max_examples=max(count, 1),
            phases=list(Phase) if count else [Phase.explicit],
            deadline=None,
            derandomize=SCHEDULE_SEED is None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )(test)

    return decorate
