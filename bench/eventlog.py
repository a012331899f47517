"""Where the time goes: the Spark stages of each pipeline job, from Spark's event log.

The runner tags every Spark job with its pipeline job as the job group. Structured Streaming
tags its micro-batches with its own group; their description carries the query name, which
holds the first characters of the pipeline run id, and that places them. Anything else is
placed by time, in the pipeline job whose audited run window holds its submission. Each stage is
described by what its SQL query did: the lake tables it wrote and read (from the physical plan),
which says more than Spark's own stage names (``save at NativeMethodAccessorImpl.java:0``).

A Delta write is a command whose plan names its table (``SaveIntoDataSourceCommand ... path=``
for a DataFrame write, ``Delta[version=N, path]`` for MERGE and the other Delta commands) and
runs its Spark jobs in nested SQL executions whose plans hold the sources only: those are
described with the root execution's target. Reads of a table's ``_delta_log`` (Delta rebuilding
a snapshot) are named ``<table> log``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

SCAN_PATH = re.compile(r"Location: \w+ \[file:(/[^,\]\s]+)")
WRITE_PATH = re.compile(
    r"Execute InsertIntoHadoopFsRelationCommand\n(?:.*\n)*?Arguments: file:(/[^,\s]+)"
)
# Delta: a DataFrame write (its options hold the path) and the table commands.
DELTA_SAVE = re.compile(
    r"SaveIntoDataSourceCommand\nArguments: \S*DeltaDataSource\S*, \[.*?\bpath=(?:file:)?(/[^,\]\s]+)"
)
DELTA_COMMAND = re.compile(
    r"Execute (MergeIntoCommand|DeleteCommand|UpdateCommand|WriteIntoDelta|\w*Optimize\w*Command|"
    r"VacuumCommand|RestoreTableCommand)\b"
)
DELTA_TABLE = re.compile(r"Delta\[version=-?\d+, (?:file:)?(/[^,\]\s]+)\]")
VERBS = {"MergeIntoCommand": "merge", "DeleteCommand": "delete", "UpdateCommand": "update"}


@dataclass
class Stage:
    job: str
    stage_id: int
    name: str
    query: str
    tasks: int
    seconds: float
    input_mb: float
    shuffle_write_mb: float


def _metric(info: dict, *names: str) -> float:
    """Sum accumulables by name (stage-level task metrics) in bytes."""
    total = 0.0
    for acc in info.get("Accumulables", []):
        if acc.get("Name") in names:
            try:
                total += float(acc.get("Value", 0))
            except (TypeError, ValueError):
                continue
    return total


def write_target(plan: str) -> tuple[str, str] | None:
    """The verb and the lake path a plan writes, or None for a query that only reads."""
    write = WRITE_PATH.search(plan)
    if write:
        return "write", write.group(1)
    save = DELTA_SAVE.search(plan)
    if save:
        return "write", save.group(1)
    command = DELTA_COMMAND.search(plan)
    table = DELTA_TABLE.search(plan)
    if command and table:
        name = command.group(1)
        verb = VERBS.get(name) or ("optimize" if "Optimize" in name else name.lower())
        if name.startswith("WriteIntoDelta"):
            verb = "write"
        return verb.removesuffix("command"), table.group(1)
    return None


def describe_query(
    plan: str, lake: str, target: tuple[str, str] | None = None, root_plan: str = ""
) -> str:
    """ "write gold/fact_orders <- silver/orders, gold/dim_customer" from a physical plan.

    For a nested execution (a Delta command's Spark jobs, or the work inside a stream's
    micro-batch), whose own plan may name neither the table it writes nor what it reads:
    ``target`` is the (verb, path) of the write command it runs under, and ``root_plan`` the
    root execution's plan, whose sources stand in when the plan scans only in-memory data.
    """

    def table(path: str) -> str:
        relative = path.split(lake.rstrip("/") + "/", 1)[-1]
        relative = re.sub(r"/\.__staging__(\w+)\.\w+", r"/\1", relative)
        relative = re.sub(r"/_delta_log(/.*)?$", " log", relative)
        return re.sub(r"/(dt|_run_date|_batch_id)=.*", "", relative)

    sources: list[str] = []
    for path in SCAN_PATH.findall(plan) or SCAN_PATH.findall(root_plan):
        if table(path) not in sources:
            sources.append(table(path))
    write = write_target(plan) or target
    if write:
        verb, target_table = write[0], table(write[1])
        sources = [s for s in sources if s != target_table] + (
            [target_table] if target_table in sources else []
        )
        return (
            f"{verb} {target_table} <- {', '.join(sources)}"
            if sources
            else f"{verb} {target_table}"
        )
    # A contract tally runs its counts through a no-op write (Spark 4.1 names it NoopWrite).
    tally = "noop" in plan.split("\n(1)", 1)[0] or "Arguments: NoopWrite" in plan
    verb = "tally" if tally else "read"
    return f"{verb} {', '.join(sources)}" if sources else verb


def read_stages(
    event_log: Path,
    windows: dict[str, tuple[float, float]] | None = None,
    lake: str = "",
    run_ids: dict[str, str] | None = None,
) -> list[Stage]:
    """Every completed stage in the log, tagged with the pipeline job that ran it.

    ``windows`` maps pipeline job names to their (start, end) in epoch milliseconds and
    ``run_ids`` to their audited run ids.
    """
    windows = windows or {}
    run_ids = run_ids or {}
    stage_group: dict[int, str] = {}
    stage_query: dict[int, str] = {}
    queries: dict[str, str] = {}
    plans: dict[str, str] = {}  # root execution id -> its plan
    # root execution id -> the write commands under it that have started and not ended
    open_writes: dict[str, list[tuple[str, tuple[str, str]]]] = defaultdict(list)
    stages: list[Stage] = []

    def owner(group: str, submitted: float) -> str:
        if group in windows or not windows:
            return group
        for job, (start, end) in windows.items():
            if start <= submitted <= end:
                return job
        return group

    with event_log.open(encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            kind = event.get("Event")
            if kind.endswith("SQLExecutionStart"):
                execution = str(event["executionId"])
                plan = event.get("physicalPlanDescription", "")
                root = str(event.get("rootExecutionId", execution))
                target = write_target(plan)
                if root == execution:
                    plans[root] = plan
                    queries[execution] = describe_query(plan, lake)
                else:
                    # Nested: under the innermost write command still open in the same root.
                    inherited = open_writes[root][-1][1] if open_writes[root] else None
                    queries[execution] = describe_query(plan, lake, inherited, plans.get(root, ""))
                if target:
                    open_writes[root].append((execution, target))
            elif kind.endswith("SQLExecutionEnd"):
                execution = str(event["executionId"])
                for writes in open_writes.values():
                    writes[:] = [w for w in writes if w[0] != execution]
            elif kind == "SparkListenerJobStart":
                properties = event.get("Properties") or {}
                group = properties.get("spark.jobGroup.id") or "(none)"
                description = properties.get("spark.job.description") or ""
                if group not in windows:
                    group = next(
                        (job for job, rid in run_ids.items() if rid[:8] in description), group
                    )
                query = queries.get(str(properties.get("spark.sql.execution.id")), "")
                for stage_id in event.get("Stage IDs", []):
                    stage_group[stage_id] = group
                    stage_query[stage_id] = query
            elif kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                if "Submission Time" not in info or "Completion Time" not in info:
                    continue
                stage_id = info["Stage ID"]
                stages.append(
                    Stage(
                        job=owner(stage_group.get(stage_id, "(none)"), info["Submission Time"]),
                        stage_id=stage_id,
                        name=info.get("Stage Name", ""),
                        query=stage_query.get(stage_id, ""),
                        tasks=int(info.get("Number of Tasks", 0)),
                        seconds=(info["Completion Time"] - info["Submission Time"]) / 1000,
                        input_mb=_metric(info, "internal.metrics.input.bytesRead") / 2**20,
                        shuffle_write_mb=_metric(
                            info, "internal.metrics.shuffle.write.bytesWritten"
                        )
                        / 2**20,
                    )
                )
    return stages


def summarise(stages: list[Stage], top: int = 5) -> dict[str, dict]:
    """Per pipeline job: stage count, stage seconds, and the ``top`` slowest stages.

    Stages of one job can overlap (Spark runs independent stages concurrently), so stage seconds
    may exceed the job's wall time; they rank where the work is, not add up to it.
    """
    by_job: dict[str, list[Stage]] = defaultdict(list)
    for stage in stages:
        by_job[stage.job].append(stage)
    summary = {}
    for job, items in by_job.items():
        items.sort(key=lambda s: s.seconds, reverse=True)
        summary[job] = {
            "stages": len(items),
            "stage_seconds": round(sum(s.seconds for s in items), 2),
            "top": [
                {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(s).items()}
                for s in items[:top]
            ],
        }
    return summary


def find_event_log(folder: Path) -> Path:
    """The one application's event log in ``folder`` (Spark names it after the app id)."""
    logs = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if len(logs) != 1:
        raise RuntimeError(f"expected one Spark event log in {folder}, found {len(logs)}")
    return logs[0]
