"""The on-screen summary of a benchmark run (the JSON holds everything)."""

from __future__ import annotations

from bench.goals import driver_rss_mb


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def _rows(headers: list[str], rows: list[list]) -> str:
    cells = [headers, *[[("" if c is None else str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def side_by_side(sbs: dict) -> str:
    """Baseline against current for one scale: wall per day and per job, and the ratios."""
    ref = f"{sbs['ref']} ({(sbs['sha'] or '')[:12]})"
    lines = [f"\nside by side, baseline {ref} vs current (same landing data, interleaved):"]
    rows = [
        [
            day,
            _seconds(sbs[day]["baseline_s"]),
            _seconds(sbs[day]["current_s"]),
            sbs[day]["current_over_baseline"],
        ]
        for day in ("day1", "day2")
    ]
    ratio = sbs["day2_over_day1"]
    rows.append(["day2 / day1", ratio["baseline"], ratio["current"], ""])
    lines.append(_rows(["run", "baseline wall s", "current wall s", "current / baseline"], rows))
    jobs = list(sbs["day1"]["jobs"])
    rows = []
    for job in jobs:
        d1, d2 = sbs["day1"]["jobs"][job], sbs["day2"]["jobs"].get(job, {})
        rows.append(
            [
                job,
                _seconds(d1["baseline_s"]),
                _seconds(d1["current_s"]),
                d1["current_over_baseline"],
                _seconds(d2.get("baseline_s")),
                _seconds(d2.get("current_s")),
                d2.get("current_over_baseline"),
            ]
        )
    lines.append("")
    lines.append(
        _rows(
            [
                "job",
                "day1 base s",
                "day1 cur s",
                "cur/base",
                "day2 base s",
                "day2 cur s",
                "cur/base",
            ],
            rows,
        )
    )
    return "\n".join(lines)


def render(results: dict) -> str:
    out = []
    m = results["machine"]
    out.append(
        f"machine: {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"PySpark {m['pyspark']}, load at start {m['load_average_at_start'][0]:.2f}"
    )
    for name, tree in results.get("trees", {}).items():
        sha = (tree.get("sha") or "")[:12]
        ref = f"{tree['ref']} " if tree.get("ref") else ""
        dirty = " + uncommitted changes" if tree.get("uncommitted_changes") else ""
        out.append(f"{name}: {ref}{sha}{dirty} (PySpark {tree.get('pyspark')}) at {tree['root']}")
    for key, s in results["scales"].items():
        out.append(f"\n== scale {key}: landing {_mb(s['landing_bytes'])} MiB per 2 days ==")
        runs = [("floor", s["floor"]), ("day1", s["day1"]), ("day2", s["day2"])]
        if "day1_repeat" in s:
            runs.append(("day1 again", s["day1_repeat"]))
        out.append(
            _rows(
                ["run", "wall s", "spark start s", "JVM RSS MiB", "driver RSS MiB"],
                [
                    [
                        name,
                        f"{r['wall_s']:.1f}",
                        r.get("startup_s"),
                        r["jvm_peak_rss_mb"],
                        driver_rss_mb(r) if "python_peak_rss_mb" in r else "",
                    ]
                    for name, r in runs
                ],
            )
        )
        jobs = list(s["day1"]["jobs"])
        rows = []
        for job in jobs:
            d1, d2 = s["day1"]["jobs"][job], s["day2"]["jobs"].get(job, {})
            top = (d1["stages"]["top"] or [{}])[0]
            rows.append(
                [
                    job,
                    f"{d1['seconds']:.1f}",
                    d1["rows_per_s"],
                    f"{d2.get('seconds', 0):.1f}",
                    d2.get("rows_per_s"),
                    d1["stages"]["stages"],
                    f"{(top.get('query') or top.get('name', ''))[:56]} ({top.get('seconds', 0):.1f}s)"
                    if top
                    else "",
                ]
            )
        out.append("")
        out.append(
            _rows(
                ["job", "day1 s", "rows/s", "day2 s", "rows/s", "stages", "slowest stage day 1"],
                rows,
            )
        )
        b = s["day2"]["bytes"]
        out.append("\nbytes after day 2 (MiB): " + ", ".join(f"{k} {_mb(v)}" for k, v in b.items()))
        out.append("ratios: " + ", ".join(f"{k} {v}" for k, v in s["ratios"].items()))
        if s.get("side_by_side"):
            out.append(side_by_side(s["side_by_side"]))
    out.append("\n== goals ==")
    if not results["goals"]:
        out.append("(the goals are set at scales 1 and 10; none was run)")
        return "\n".join(out)
    out.append(
        _rows(
            ["goal", "issue", "target", "measured", "met"],
            [
                [
                    g["goal"],
                    f"#{g['issue']}",
                    g["target"],
                    g["measured"],
                    {True: "yes", False: "NO", None: "?"}[g["met"]],
                ]
                for g in results["goals"]
            ],
        )
    )
    return "\n".join(out)
