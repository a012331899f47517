"""The ratios that mean something on a noisy machine, and the goals issue #11 sets against them.

Every ratio compares runs made in the same benchmark run, minutes apart on the same machine.
Goals are reported, not asserted: a benchmark prints figures, tests do not assert timings.
"""

from __future__ import annotations

RSS_LIMIT_MB = 4096


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def driver_rss_mb(run: dict) -> float:
    """The driver's peak: the JVM (driver and local executors) plus the Python process over it."""
    return round(run["jvm_peak_rss_mb"] + run["python_peak_rss_mb"], 1)


def scale_ratios(result: dict) -> dict:
    day1, day2, floor = result["day1"], result["day2"], result["floor"]
    ratios = {
        "day1_over_floor": _ratio(day1["wall_s"], floor["wall_s"]),
        "day2_over_day1": _ratio(day2["wall_s"], day1["wall_s"]),
        # Without the fixed cost of a process (JVM start, imports): the chain's span of jobs.
        "day2_over_day1_jobs_only": _ratio(day2["jobs_s"], day1["jobs_s"]),
    }
    repeat = result.get("day1_repeat")
    if repeat:
        low, high = sorted([day1["wall_s"], repeat["wall_s"]])
        ratios["repeat_spread"] = _ratio(high - low, low) if high > low else 0.0
    return ratios


def evaluate(scales: dict[str, dict]) -> list[dict]:
    """Each goal with its target, the measured figure, and whether it was met."""
    found = []

    def goal(name: str, target: str, measured, met: bool | None) -> None:
        found.append({"goal": name, "target": target, "measured": measured, "met": met})

    one, ten = scales.get("1"), scales.get("10")
    if one:
        wall = one["day1"]["wall_s"]
        goal("scale 1 day-1 chain wall (incl. JVM start)", "< 90 s", wall, wall < 90)
        ratio = one["ratios"]["day1_over_floor"]
        goal("scale 1 day-1 chain / Spark floor", "< 3x", ratio, ratio is not None and ratio < 3)
        ratio = one["ratios"]["day2_over_day1"]
        goal("scale 1 day-2 increment / day 1", "<= 0.5", ratio, ratio is not None and ratio <= 0.5)
    if ten:
        rss = max(driver_rss_mb(ten["day1"]), driver_rss_mb(ten["day2"]))
        goal(
            "scale 10 driver peak RSS (JVM + Python)",
            f"< {RSS_LIMIT_MB} MiB",
            rss,
            rss < RSS_LIMIT_MB,
        )
    if one and ten:
        ratio = _ratio(ten["day1"]["wall_s"], one["day1"]["wall_s"])
        goal("scale 10 / scale 1 day-1 wall", "< 6x", ratio, ratio is not None and ratio < 6)
    return found
