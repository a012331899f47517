"""The ratios that mean something on a noisy machine, and the goals issues #11 and #16 set.

Every ratio compares runs made in the same benchmark run, minutes apart on the same machine;
with a baseline ref, the baseline's and the current tree's runs of a scale are interleaved over
the same landing data, so the load hits both. Goals are reported, not asserted: a benchmark
prints figures, tests do not assert timings.
"""

from __future__ import annotations

RSS_LIMIT_MB = 4096
# Issue #16 (Delta Lake): the day-1 chain no slower than this against the Parquet baseline...
DAY1_OVER_BASELINE_MAX = 1.15
DAY1_OVER_BASELINE_SCALES = ("1", "10")
# ... and the day-2 increment at most this share of day 1 at scale 10.
DAY2_OVER_DAY1_MAX_AT_10 = 0.4


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


def side_by_side(result: dict) -> dict | None:
    """Baseline against current for one scale: wall per day, current / baseline per day, and
    day 2 / day 1 for each side; per job, the seconds of each side. None without a baseline."""
    base = result.get("baseline")
    if not base:
        return None
    days = {}
    for day in ("day1", "day2"):
        b, c = base[day], result[day]
        jobs = {}
        for job in [*b.get("jobs", {}), *(j for j in c.get("jobs", {}) if j not in b["jobs"])]:
            bs = b["jobs"].get(job, {}).get("seconds")
            cs = c["jobs"].get(job, {}).get("seconds")
            jobs[job] = {"baseline_s": bs, "current_s": cs, "current_over_baseline": _ratio(cs, bs)}
        days[day] = {
            "baseline_s": b["wall_s"],
            "current_s": c["wall_s"],
            "current_over_baseline": _ratio(c["wall_s"], b["wall_s"]),
            "baseline_jobs_s": b.get("jobs_s"),
            "current_jobs_s": c.get("jobs_s"),
            "jobs_current_over_baseline": _ratio(c.get("jobs_s"), b.get("jobs_s")),
            "jobs": jobs,
        }
    return {
        "ref": base.get("ref"),
        "sha": base.get("sha"),
        **days,
        "day2_over_day1": {
            "baseline": _ratio(base["day2"]["wall_s"], base["day1"]["wall_s"]),
            "current": _ratio(result["day2"]["wall_s"], result["day1"]["wall_s"]),
        },
    }


def evaluate(scales: dict[str, dict]) -> list[dict]:
    """Each goal with the issue that set it, its target, the measured figure, and whether it
    was met (None: not measured in this run, e.g. no baseline was given)."""
    found = []

    def goal(issue: int, name: str, target: str, measured, met: bool | None) -> None:
        found.append(
            {"issue": issue, "goal": name, "target": target, "measured": measured, "met": met}
        )

    one, ten = scales.get("1"), scales.get("10")
    # Issue #16: Delta against the Parquet baseline, side by side.
    for key in DAY1_OVER_BASELINE_SCALES:
        scale = scales.get(key)
        if not scale:
            continue
        ratio = (scale.get("side_by_side") or {}).get("day1", {}).get("current_over_baseline")
        goal(
            16,
            f"scale {key} day-1 chain current / baseline",
            f"<= {DAY1_OVER_BASELINE_MAX}x",
            ratio,
            None if ratio is None else ratio <= DAY1_OVER_BASELINE_MAX,
        )
    if ten:
        ratio = ten["ratios"]["day2_over_day1"]
        goal(
            16,
            "scale 10 day-2 increment / day 1 (current)",
            f"<= {DAY2_OVER_DAY1_MAX_AT_10}",
            ratio,
            None if ratio is None else ratio <= DAY2_OVER_DAY1_MAX_AT_10,
        )
    # Issue #11: the chain against the Spark floor and its own scaling.
    if one:
        wall = one["day1"]["wall_s"]
        goal(11, "scale 1 day-1 chain wall (incl. JVM start)", "< 90 s", wall, wall < 90)
        ratio = one["ratios"]["day1_over_floor"]
        goal(
            11, "scale 1 day-1 chain / Spark floor", "< 3x", ratio, ratio is not None and ratio < 3
        )
        ratio = one["ratios"]["day2_over_day1"]
        goal(
            11,
            "scale 1 day-2 increment / day 1",
            "<= 0.5",
            ratio,
            ratio is not None and ratio <= 0.5,
        )
    if ten:
        rss = max(driver_rss_mb(ten["day1"]), driver_rss_mb(ten["day2"]))
        goal(
            11,
            "scale 10 driver peak RSS (JVM + Python)",
            f"< {RSS_LIMIT_MB} MiB",
            rss,
            rss < RSS_LIMIT_MB,
        )
    if one and ten:
        ratio = _ratio(ten["day1"]["wall_s"], one["day1"]["wall_s"])
        goal(11, "scale 10 / scale 1 day-1 wall", "< 6x", ratio, ratio is not None and ratio < 6)
    return found
