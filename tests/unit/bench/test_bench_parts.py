"""The benchmark's own parts: stage attribution from a Spark event log, ratios, goals, the table.

The benchmark prints figures and asserts none (timings are not test material); what is tested
here is that the figures it prints are computed from what it measured.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import eventlog, goals, table
from bench.procs import folder_bytes, run_watched

LAKE = "/scratch/lake"
WRITE_PLAN = f"""== Physical Plan ==
AdaptiveSparkPlan (6)
+- Execute InsertIntoHadoopFsRelationCommand (5)

(1) Scan parquet
Location: InMemoryFileIndex [file:{LAKE}/silver/orders]

(2) Scan parquet
Location: InMemoryFileIndex [file:{LAKE}/gold/dim_customer]

(5) Execute InsertIntoHadoopFsRelationCommand
Arguments: file:{LAKE}/gold/.__staging__fact_orders.0a1b2c3d4e5f, false, Parquet
"""
COUNT_PLAN = f"""== Physical Plan ==
AdaptiveSparkPlan (3)
+- HashAggregate (2)

(1) Scan parquet
Location: InMemoryFileIndex [file:{LAKE}/bronze/snowflake/orders/_run_date=2025-01-13]
"""


def test_describe_query_names_the_written_table_and_its_sources():
    assert eventlog.describe_query(WRITE_PLAN, LAKE) == (
        "write gold/fact_orders <- silver/orders, gold/dim_customer"
    )
    assert eventlog.describe_query(COUNT_PLAN, LAKE) == "read bronze/snowflake/orders"
    # A table merged with its own current state reads itself first and is still the target.
    merge = WRITE_PLAN.replace(f"{LAKE}/silver/orders", f"{LAKE}/gold/fact_orders")
    assert eventlog.describe_query(merge, LAKE) == (
        "write gold/fact_orders <- gold/dim_customer, gold/fact_orders"
    )


def _events(path: Path) -> Path:
    """A minimal event log: one SQL query in two Spark jobs (one tagged by group, one by time)."""
    events = [
        {
            "Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
            "executionId": 7,
            "physicalPlanDescription": WRITE_PLAN,
        },
        {
            "Event": "SparkListenerJobStart",
            "Job ID": 1,
            "Stage IDs": [10, 11],
            "Properties": {"spark.jobGroup.id": "silver_to_gold", "spark.sql.execution.id": "7"},
        },
        {
            "Event": "SparkListenerJobStart",
            "Job ID": 2,
            "Stage IDs": [12],
            "Properties": {"spark.jobGroup.id": "some-other-group"},
        },
        {
            # A micro-batch: its group is the query's run id, its description names the query.
            "Event": "SparkListenerJobStart",
            "Job ID": 3,
            "Stage IDs": [13],
            "Properties": {
                "spark.jobGroup.id": "query-run-id",
                "spark.job.description": "kafka_order_events_abcd1234\nid = x\nbatch = 0",
            },
        },
    ]
    stages = ((10, 1_000, 2.5), (11, 4_000, 0.5), (12, 9_000, 1.0), (13, 2_000, 1.5))
    for stage_id, submitted, seconds in stages:
        events.append(
            {
                "Event": "SparkListenerStageCompleted",
                "Stage Info": {
                    "Stage ID": stage_id,
                    "Stage Name": "save at NativeMethodAccessorImpl.java:0",
                    "Number of Tasks": 4,
                    "Submission Time": submitted,
                    "Completion Time": submitted + int(seconds * 1000),
                    "Accumulables": [
                        {"Name": "internal.metrics.input.bytesRead", "Value": 2**20 * stage_id}
                    ],
                },
            }
        )
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path


def test_stages_are_attributed_by_job_group_or_by_time(tmp_path):
    log = _events(tmp_path / "app-1")
    windows = {
        "silver_to_gold": (0, 5_000),
        "crm_to_bronze": (8_000, 12_000),
        "kafka_events_to_bronze": (1_500, 6_000),  # overlaps silver_to_gold's window
    }
    run_ids = {"kafka_events_to_bronze": "abcd1234-0000", "crm_to_bronze": "ffff0000-1111"}
    stages = eventlog.read_stages(log, windows, LAKE, run_ids)
    assert [(s.stage_id, s.job) for s in stages] == [
        (10, "silver_to_gold"),  # by job group
        (11, "silver_to_gold"),
        (12, "crm_to_bronze"),  # an unknown group: by time
        (13, "kafka_events_to_bronze"),  # the stream's batch: by the run id in its query name
    ]
    assert stages[0].query == "write gold/fact_orders <- silver/orders, gold/dim_customer"
    assert stages[0].input_mb == 10.0
    summary = eventlog.summarise(stages, top=1)
    assert summary["silver_to_gold"]["stages"] == 2
    assert summary["silver_to_gold"]["stage_seconds"] == 3.0
    assert summary["silver_to_gold"]["top"][0]["stage_id"] == 10
    assert eventlog.find_event_log(tmp_path) == log


def _run(wall: float, jobs_s: float, jvm: float = 900.0) -> dict:
    return {"wall_s": wall, "jobs_s": jobs_s, "jvm_peak_rss_mb": jvm, "python_peak_rss_mb": 100.0}


def _scale(day1: float, day2: float, floor: float, jvm: float = 900.0) -> dict:
    result = {
        "day1": _run(day1, day1 - 10, jvm),
        "day2": _run(day2, day2 - 10, jvm),
        "floor": {"wall_s": floor},
        "day1_repeat": _run(day1 * 1.1, day1, jvm),
    }
    result["ratios"] = goals.scale_ratios(result)
    return result


def test_ratios_and_goals_come_from_the_measured_runs():
    one = _scale(day1=80.0, day2=30.0, floor=40.0)
    assert one["ratios"] == {
        "day1_over_floor": 2.0,
        "day2_over_day1": 0.38,
        "day2_over_day1_jobs_only": 0.29,
        "repeat_spread": 0.1,
    }
    ten = _scale(day1=600.0, day2=200.0, floor=100.0, jvm=4200.0)
    verdicts = {g["goal"]: g["met"] for g in goals.evaluate({"1": one, "10": ten})}
    assert verdicts == {
        # Issue #16: without a baseline, the side-by-side ratios are not measured.
        "scale 1 day-1 chain current / baseline": None,
        "scale 10 day-1 chain current / baseline": None,
        "scale 10 day-2 increment / day 1 (current)": True,  # 200 / 600
        "scale 1 day-1 chain wall (incl. JVM start)": True,
        "scale 1 day-1 chain / Spark floor": True,
        "scale 1 day-2 increment / day 1": True,
        "scale 10 driver peak RSS (JVM + Python)": False,  # 4,300 MiB
        "scale 10 / scale 1 day-1 wall": False,  # 7.5x
    }


def test_the_table_shows_every_scale_and_goal():
    one = _scale(day1=80.0, day2=30.0, floor=40.0)
    job = {"seconds": 12.5, "rows_per_s": 8000, "stages": {"stages": 3, "top": []}}
    for run in ("day1", "day2", "day1_repeat"):
        one[run].update(jobs={"bronze_to_silver": job}, startup_s=6.1, bytes={"silver": 2**20})
    one["floor"].update(jvm_peak_rss_mb=700.0, startup_s=6.0)
    one["landing_bytes"] = 3 * 2**20
    results = {
        "machine": {
            "cores": 2,
            "memory_gib": 24.0,
            "python": "3.11",
            "pyspark": "4",
            "load_average_at_start": [1.5],
        },
        "scales": {"1": one},
        "goals": goals.evaluate({"1": one}),
    }
    text = table.render(results)
    assert "== scale 1: landing 3.0 MiB" in text
    assert "bronze_to_silver" in text and "12.5" in text
    assert "day1_over_floor 2.0" in text
    assert "scale 1 day-1 chain / Spark floor" in text


def test_run_watched_reports_the_peak_memory_of_the_process_tree(tmp_path):
    # A child process that holds ~60 MiB for a moment: its high-water mark must be seen.
    code = "import time; b = bytearray(60 * 2**20); time.sleep(1.0)"
    run = run_watched(["python3", "-c", code])
    assert run.returncode == 0
    assert run.python_peak_rss_mb >= 60
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 24)
    assert folder_bytes(tmp_path) == 1024


DELTA_SAVE_PLAN = f"""== Physical Plan ==
Execute SaveIntoDataSourceCommand (1)
   +- SaveIntoDataSourceCommand (2)
         +- LogicalRelation (3)


(1) Execute SaveIntoDataSourceCommand
Output: []

(2) SaveIntoDataSourceCommand
Arguments: org.apache.spark.sql.delta.sources.DeltaDataSource@40313e46, [usermetadata={{"job": "crm_to_bronze", "run_id": "5e98"}}, replacewhere=`_run_date` = '2025-01-13', __partition_columns=["_run_date"], path={LAKE}/bronze/crm/accounts], Overwrite
"""
DELTA_NESTED_PLAN = f"""== Physical Plan ==
AdaptiveSparkPlan (35)

(1) Scan csv
Location: InMemoryFileIndex [file:{LAKE}/landing/crm/accounts/dt=2025-01-13/part-00000.csv]
"""
MERGE_PLAN = f"""== Physical Plan ==
Execute MergeIntoCommand (1)

(1) Execute MergeIntoCommand
Arguments: SubqueryAlias source, SubqueryAlias target, Delta[version=3, file:{LAKE}/silver/orders], ...
"""
STREAM_BATCH_PLAN = f"""== Physical Plan ==
* Project (2)
+- Scan text (1)

(1) Scan text
Location: InMemoryFileIndex [file:{LAKE}/landing/kafka/order_events/dt=2025-01-13/batch-00006.jsonl, ... 9 entries]
"""
LOG_PLAN = f"""== Physical Plan ==
AdaptiveSparkPlan (4)

(1) Scan json
Location: DeltaLogFileIndex [file:{LAKE}/silver/orders/_delta_log/00000000000000000003.json]
"""


def test_delta_writes_are_named_by_their_table_and_nested_executions_by_their_root(tmp_path):
    assert eventlog.describe_query(DELTA_SAVE_PLAN, LAKE) == "write bronze/crm/accounts"
    assert eventlog.describe_query(MERGE_PLAN, LAKE) == "merge silver/orders"
    assert eventlog.describe_query(LOG_PLAN, LAKE) == "read silver/orders log"
    # The Delta write's Spark jobs run in a nested execution that names only the sources; in a
    # stream, the write itself is nested in the micro-batch's execution (the root).
    events = [
        {
            "Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
            "executionId": 2,
            "rootExecutionId": 2,
            "physicalPlanDescription": STREAM_BATCH_PLAN,
        },
        {
            "Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
            "executionId": 3,
            "rootExecutionId": 2,
            "physicalPlanDescription": DELTA_SAVE_PLAN,
        },
        {
            "Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
            "executionId": 5,
            "rootExecutionId": 2,
            "physicalPlanDescription": DELTA_NESTED_PLAN,
        },
        {
            "Event": "SparkListenerJobStart",
            "Job ID": 1,
            "Stage IDs": [1],
            "Properties": {"spark.jobGroup.id": "crm_to_bronze", "spark.sql.execution.id": "5"},
        },
        {
            "Event": "SparkListenerStageCompleted",
            "Stage Info": {
                "Stage ID": 1,
                "Stage Name": "save",
                "Number of Tasks": 1,
                "Submission Time": 1_000,
                "Completion Time": 2_000,
            },
        },
    ]
    end = {"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd"}
    events += [
        {**end, "executionId": 5},
        {**end, "executionId": 3},
        {
            # After the write ended: in-memory work of the batch, described by the batch's source.
            "Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart",
            "executionId": 6,
            "rootExecutionId": 2,
            "physicalPlanDescription": "== Physical Plan ==\nScan ExistingRDD (1)\n",
        },
        {
            "Event": "SparkListenerJobStart",
            "Job ID": 2,
            "Stage IDs": [2],
            "Properties": {"spark.jobGroup.id": "crm_to_bronze", "spark.sql.execution.id": "6"},
        },
        {**events[-1], "Stage Info": {**events[-1]["Stage Info"], "Stage ID": 2}},
    ]
    log = tmp_path / "app-1"
    log.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    stages = eventlog.read_stages(log, {"crm_to_bronze": (0, 5_000)}, LAKE)
    assert [(s.job, s.query) for s in stages] == [
        ("crm_to_bronze", "write bronze/crm/accounts <- landing/crm/accounts"),
        ("crm_to_bronze", "read landing/kafka/order_events"),
    ]
    tally = "== Physical Plan ==\nOverwriteByExpression (3)\n\n(3) OverwriteByExpression\nArguments: NoopWrite\n"
    assert eventlog.describe_query(tally + COUNT_PLAN.split("\n", 3)[3], LAKE) == (
        "tally bronze/snowflake/orders"
    )
