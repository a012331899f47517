"""The lake's Delta helpers: one commit per write carrying the run id, reruns replace exactly their
date, conflicts and foreign files end in one sentence naming the table, racing writers never
leave a half-written table."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time

import pytest
from delta.tables import DeltaTable

from medallion.errors import JobError, UsageError
from medallion.lake import (
    CHANGE_FEED,
    NO_COMMIT,
    ChangeFeedUnavailable,
    Lake,
    append,
    commit_metadata,
    commit_versions,
    has_data_files,
    is_delta_table,
    is_hidden,
    is_hidden_path,
    last_commit,
    last_content_commit,
    merge_into,
    merge_recomputed,
    operation_metrics,
    overwrite,
    read_changes,
    read_commit,
    read_delta,
    replace_where,
    run_date_of,
    run_id_of,
    table_label,
    write_text_atomic,
)

DAY1, DAY2 = dt.date(2025, 1, 13), dt.date(2025, 1, 14)
SCHEMA = "id int, _run_date date"


def test_lake_paths_follow_the_pinned_layout(tmp_path):
    lake = Lake.from_root(str(tmp_path))
    assert lake.landing("crm", "accounts", DAY1) == f"{tmp_path}/landing/crm/accounts/dt=2025-01-13"
    assert lake.bronze("crm", "accounts") == f"{tmp_path}/bronze/crm/accounts"
    assert lake.quarantine("fx", "fx_rates") == f"{tmp_path}/quarantine/fx/fx_rates"
    assert lake.silver("orders") == f"{tmp_path}/silver/orders"
    assert lake.gold("dim_customer") == f"{tmp_path}/gold/dim_customer"
    assert lake.audit_dir(DAY1) == f"{tmp_path}/_audit/run_date=2025-01-13"
    assert lake.checkpoint("kafka_order_events") == f"{tmp_path}/_checkpoints/kafka_order_events"
    assert lake.table("bronze/crm/accounts") == f"{tmp_path}/bronze/crm/accounts"
    assert (
        Lake.from_root("s3://bucket/lake/").bronze("fx", "fx_rates")
        == "s3://bucket/lake/bronze/fx/fx_rates"
    )


def test_run_date_folders_are_spelled_and_read_by_the_lake(tmp_path):
    lake = Lake.from_root(str(tmp_path))
    assert lake.audit_record(DAY1, "r1") == f"{tmp_path}/_audit/run_date=2025-01-13/r1.json"
    assert lake.audit_records(DAY1) == f"{tmp_path}/_audit/run_date=2025-01-13/*.json"
    assert lake.audit_records() == f"{tmp_path}/_audit/run_date=*/*.json"
    assert lake.quality_dir(DAY2) == f"{tmp_path}/_quality/run_date=2025-01-14"
    assert lake.quality_files("results.json") == f"{tmp_path}/_quality/run_date=*/results.json"
    assert run_date_of(lake.audit_record(DAY2, "r1")) == DAY2
    assert run_date_of(f"{lake.quality_dir(DAY1)}/") == DAY1
    assert run_date_of(f"{tmp_path}/_quality/run_date=soon/results.json") is None
    assert run_date_of(lake.silver("orders")) is None


@pytest.mark.parametrize(
    ("name", "hidden"),
    [("_delta_log", True), ("_SUCCESS", True), (".part-0.parquet.crc", True),
     ("_run_date=2025-01-13", False), ("part-0.parquet", False), ("orders", False)],
)  # fmt: skip
def test_hidden_names_follow_sparks_rule(name, hidden):
    assert is_hidden(name) is hidden


def test_a_path_is_hidden_when_any_of_its_parts_is():
    assert not is_hidden_path("/_run_date=2025-01-13/part-0.parquet")
    assert is_hidden_path("_delta_log/00000000000000000000.json")
    assert is_hidden_path("dt=2025-01-13/.orders.csv.crc")


def test_write_text_atomic_replaces_the_file_whole_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "_audit" / "run_date=2025-01-13" / "r1.json"
    assert write_text_atomic(str(path), "first") == str(path)
    assert write_text_atomic(f"file://{path}", "second") == f"file://{path}"
    assert path.read_text(encoding="utf-8") == "second"
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(str(path), "half \ud800 written")
    assert path.read_text(encoding="utf-8") == "second"
    assert [p.name for p in path.parent.iterdir()] == ["r1.json"]


def test_spark_reads_an_s3_lake_through_s3a_where_nothing_serves_s3(spark, monkeypatch, tmp_path):
    # A local session has no file system for s3:// (EMR's is EMRFS): the root is mapped once,
    # and S3A is pointed at the environment's endpoint for the lake's bucket.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()

    lake = Lake.for_spark("s3://unit-for-spark/prod/lake/", spark)

    assert lake.root == "s3a://unit-for-spark/prod/lake"
    assert lake.silver("orders") == "s3a://unit-for-spark/prod/lake/silver/orders"
    assert hadoop.get("fs.s3a.bucket.unit-for-spark.endpoint") == "http://127.0.0.1:9"
    assert hadoop.get("fs.s3a.bucket.unit-for-spark.endpoint.region") == "eu-west-1"
    assert Lake.for_spark("s3a://unit-for-spark/other", spark).root == "s3a://unit-for-spark/other"
    assert Lake.for_spark(str(tmp_path), spark) == Lake.from_root(str(tmp_path))


@pytest.mark.parametrize("name", ["orders", "landing/crm/accounts", "silver/../gold/x", "_audit/x"])
def test_a_name_outside_the_table_layers_is_a_usage_error(tmp_path, name):
    with pytest.raises(UsageError, match="not a lake table"):
        Lake.from_root(str(tmp_path)).table(name)


def _days(spark, rows):
    return spark.createDataFrame([(i, d) for i, d in rows], SCHEMA)


def _content(spark, path, version=None):
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return sorted((r.id, r._run_date) for r in reader.load(path).collect())


def test_replace_where_replaces_exactly_its_date_in_one_commit(spark, tmp_path):
    path = str(tmp_path / "bronze" / "crm" / "accounts")
    meta = commit_metadata("run-1")
    first = replace_where(
        _days(spark, [(1, DAY1), (2, DAY1)]),
        path,
        column="_run_date",
        value=DAY1,
        metadata=meta,
        partition_by=["_run_date"],
    )
    replace_where(_days(spark, [(3, DAY2)]), path, column="_run_date", value=DAY2, metadata=meta)
    rerun = replace_where(
        _days(spark, [(10, DAY1)]),
        path,
        column="_run_date",
        value=DAY1,
        metadata=commit_metadata("run-3"),
    )
    assert (first.version, first.rows_written) == (1, 2)  # v0 creates the table
    assert (rerun.version, rerun.rows_written, rerun.metrics["numDeletedRows"]) == (3, 1, 2)
    assert _content(spark, path) == [(3, DAY2), (10, DAY1)]
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert list(detail["partitionColumns"]) == ["_run_date"]
    history = DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    assert [run_id_of(h["userMetadata"]) for h in history[1:]] == ["run-1", "run-1", "run-3"]
    assert history[0]["operation"] == "CREATE TABLE"


def test_an_empty_rerun_removes_the_date_and_an_empty_first_write_makes_no_commit(spark, tmp_path):
    path = str(tmp_path / "t")
    for i, day in ((1, DAY1), (2, DAY2)):
        replace_where(
            _days(spark, [(i, day)]),
            path,
            column="_run_date",
            value=day,
            metadata="{}",
            partition_by=["_run_date"],
        )
    removed = replace_where(_days(spark, []), path, column="_run_date", value=DAY2, metadata="{}")
    assert removed.rows_written == 0 and removed.operation != NO_COMMIT
    assert _content(spark, path) == [(1, DAY1)]
    again = replace_where(_days(spark, []), path, column="_run_date", value=DAY2, metadata="{}")
    assert again.rows_written == 0
    assert _content(spark, path) == [(1, DAY1)]


def test_idempotent_appends_skip_a_replayed_version_and_a_new_app_id_writes(spark, tmp_path):
    path = str(tmp_path / "stream")
    first = append(_days(spark, [(1, DAY1)]), path, metadata="{}", txn=("app-a", 0))
    replay = append(_days(spark, [(1, DAY1)]), path, metadata="{}", txn=("app-a", 0))
    after_reset = append(_days(spark, [(2, DAY1)]), path, metadata="{}", txn=("app-b", 0))
    assert first.version == 0
    assert replay.operation == NO_COMMIT and replay.version == 0 and replay.rows_written == 0
    assert after_reset.version == 1
    assert _content(spark, path) == [(1, DAY1), (2, DAY1)]


def test_merge_into_tags_the_commit_and_reports_its_counts(spark, tmp_path):
    path = str(tmp_path / "silver" / "t")
    overwrite(_days(spark, [(1, DAY1), (2, DAY1)]), path, metadata=commit_metadata("r0"))
    source = _days(spark, [(2, DAY2), (3, DAY2)])

    def merge():
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(source.alias("s"), "t.id = s.id")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )

    commit = merge_into(spark, path, merge, metadata=commit_metadata("r1", job="bronze_to_silver"))
    assert commit.operation == "MERGE" and commit.version == 1
    assert (commit.metrics["numTargetRowsUpdated"], commit.metrics["numTargetRowsInserted"]) == (
        1,
        1,
    )
    assert commit.rows_written == 2
    last = DeltaTable.forPath(spark, path).history(1).first()
    assert run_id_of(last["userMetadata"]) == "r1"
    # The session setting does not leak into later commits.
    later = overwrite(_days(spark, [(9, DAY1)]), path, metadata=commit_metadata("r2"))
    assert later.version == 2
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None


def test_a_recomputed_table_is_merged_as_its_diff_and_an_unchanged_one_makes_no_commit(
    spark, tmp_path
):
    path = str(tmp_path / "silver" / "t")
    overwrite(_days(spark, [(1, DAY1), (2, DAY1), (3, DAY1)]), path, metadata=commit_metadata("r0"))
    desired = _days(spark, [(1, DAY1), (2, DAY2), (4, DAY2)])  # 2 changed, 3 gone, 4 new

    commit = merge_recomputed(
        spark, path, desired, read_delta(spark, path), ["id"], commit_metadata("r1")
    )
    assert (commit.operation, commit.version) == ("MERGE", 1)
    counts = [commit.metrics[f"numTargetRows{kind}"] for kind in ("Updated", "Inserted", "Deleted")]
    assert counts == [1, 1, 1]
    assert sorted(map(tuple, read_delta(spark, path).collect())) == [
        (1, DAY1),
        (2, DAY2),
        (4, DAY2),
    ]

    # The same rows again: nothing to change, no commit, the version as it was.
    again = merge_recomputed(
        spark, path, desired, read_delta(spark, path), ["id"], commit_metadata("r2")
    )
    assert (again.operation, again.version, again.rows_written) == (NO_COMMIT, 1, 0)
    assert commit_versions(spark, path) == [0, 1]


def test_a_folder_of_plain_parquet_is_refused_by_name(spark, tmp_path):
    path = str(tmp_path / "silver" / "orders")
    _days(spark, [(1, DAY1)]).write.parquet(path)
    with pytest.raises(JobError, match=r"silver/orders holds files but is not a Delta table"):
        read_delta(spark, path)
    with pytest.raises(JobError, match="is not a Delta table"):
        overwrite(_days(spark, [(2, DAY1)]), path, metadata="{}")


def test_a_conflicting_schema_is_one_sentence_and_writes_nothing(spark, tmp_path):
    path = str(tmp_path / "gold" / "fact_orders")
    overwrite(_days(spark, [(1, DAY1)]), path, metadata="{}")
    wrong = spark.createDataFrame([("x", DAY1)], "id string, _run_date date")
    with pytest.raises(JobError, match=r"gold/fact_orders: the incoming rows' schema conflicts"):
        overwrite(wrong, path, metadata="{}")
    assert _content(spark, path) == [(1, DAY1)]
    assert DeltaTable.forPath(spark, path).history().count() == 1


def test_read_missing_table(spark, tmp_path):
    assert read_delta(spark, str(tmp_path / "nothing")) is None
    empty = read_delta(
        spark, str(tmp_path / "nothing"), schema=spark.createDataFrame([], SCHEMA).schema
    )
    assert empty.count() == 0


def test_table_label_names_the_table_from_its_path():
    assert table_label("/x/lake/silver/orders") == "silver/orders"
    assert table_label("s3a://b/p/bronze/crm/accounts/") == "bronze/crm/accounts"


def _write_day(spark, path, ids, day, metadata="{}"):
    """Replace ``day`` of the bronze-like table at ``path`` with the rows ``ids``."""
    return replace_where(
        _days(spark, [(i, day) for i in ids]),
        path,
        column="_run_date",
        value=day,
        metadata=metadata,
        partition_by=["_run_date"],
    )


def _at_once(spark, path, writes: dict) -> dict:
    """Run ``_write_day`` for every ``name: (ids, day)`` in its own thread, released together
    by a barrier once each frame is cached; return each outcome (a Commit or the JobError)."""
    frames = {
        name: _days(spark, [(i, day) for i in ids]).cache() for name, (ids, day) in writes.items()
    }
    for frame in frames.values():
        frame.count()
    start = threading.Barrier(len(writes))
    outcomes: dict = {}

    def write(name) -> None:
        _, day = writes[name]
        start.wait()
        try:
            outcomes[name] = replace_where(
                frames[name],
                path,
                column="_run_date",
                value=day,
                metadata=commit_metadata(str(name)),
                partition_by=["_run_date"],
            )
        except JobError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=write, args=(name,)) for name in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_writers_racing_on_one_table_leave_one_whole_commit_each_or_a_clear_refusal(
    spark, tmp_path
):
    """Two threads rewrite the same date of one table at once. Delta's optimistic concurrency
    lets at most one commit per read version win; the loser gets one sentence naming the table,
    and every version a reader can see is whole: exactly one writer's rows, never a mix."""
    path = str(tmp_path / "bronze" / "crm" / "accounts")
    _write_day(spark, path, [0], DAY1)
    writers = {"a": list(range(100, 150)), "b": list(range(200, 260))}
    outcomes = _at_once(spark, path, {name: (ids, DAY1) for name, ids in writers.items()})

    refused = [o for o in outcomes.values() if isinstance(o, JobError)]
    assert len(refused) <= 1
    for error in refused:
        assert "bronze/crm/accounts: another writer committed a conflicting change" in str(error)
    wholes = {tuple((i, DAY1) for i in sorted(ids)) for ids in writers.values()}
    history = DeltaTable.forPath(spark, path).history().collect()
    assert len(history) == 2 + len(writers) - len(refused)  # create, day 1, the writers
    for entry in history[:-2]:  # every version after the first is exactly one writer's rows
        assert tuple(_content(spark, path, entry["version"])) in wholes


@pytest.mark.parametrize("table_exists", [False, True], ids=["new table", "existing table"])
def test_two_dates_written_at_once_both_land(spark, tmp_path, table_exists):
    """The ingests of two dates may run at once: their replaceWhere commits touch disjoint
    dates, and even when both create the table, both dates end up in it, each whole."""
    path = str(tmp_path / "bronze" / "redshift" / "customer_behavior")
    day0 = DAY1 - dt.timedelta(days=1)
    if table_exists:
        _write_day(spark, path, [0], day0)
    dates = {DAY1: list(range(10, 40)), DAY2: list(range(50, 90))}
    outcomes = _at_once(spark, path, {day: (ids, day) for day, ids in dates.items()})
    assert [o for o in outcomes.values() if isinstance(o, JobError)] == []
    expected = sorted((i, day) for day, ids in dates.items() for i in ids)
    if table_exists:
        expected = sorted([(0, day0), *expected])
    assert _content(spark, path) == expected


def test_a_table_another_process_is_creating_is_waited_for_and_written_into(spark, tmp_path):
    """Another process's creation is half done (its ``_delta_log`` folder exists, its first
    commit not yet): ours is refused as a "non-empty location", waits for that commit, and
    writes its date into the table. The other process is played by copying a first commit
    into the folder, so this session's cached view of the path sees nothing of it happen."""
    made_elsewhere = tmp_path / "elsewhere"
    _write_day(spark, str(made_elsewhere), [], DAY1)  # an empty table: version 0 only
    path = tmp_path / "bronze" / "redshift" / "customer_behavior"
    (path / "_delta_log").mkdir(parents=True)
    first = "00000000000000000000.json"

    def the_other_process_commits() -> None:
        time.sleep(3)
        shutil.copy(made_elsewhere / "_delta_log" / first, path / "_delta_log" / first)

    other = threading.Thread(target=the_other_process_commits)
    other.start()
    try:
        commit = _write_day(spark, str(path), [7, 8], DAY2)
    finally:
        other.join()
    assert commit.version == 1 and commit.rows_written == 2
    assert _content(spark, str(path)) == [(7, DAY2), (8, DAY2)]


def test_a_first_commit_this_session_has_not_seen_yet_is_not_taken_for_foreign_files(
    spark, tmp_path
):
    """Another process committed the table's first version after this session last looked
    (its cached view still says "no table"): the log's files are not data files, so the write
    goes into the table instead of refusing the folder as "not a Delta table"."""
    made_elsewhere = tmp_path / "elsewhere"
    _write_day(spark, str(made_elsewhere), [], DAY1)  # an empty table: version 0 only
    path = tmp_path / "bronze" / "redshift" / "customer_behavior"
    (path / "_delta_log").mkdir(parents=True)
    assert not is_delta_table(spark, str(path))  # this session now caches "no table"
    first = "00000000000000000000.json"
    shutil.copy(made_elsewhere / "_delta_log" / first, path / "_delta_log" / first)
    assert not has_data_files(spark, str(path))
    commit = _write_day(spark, str(path), [7, 8], DAY2)
    assert commit.rows_written == 2
    assert _content(spark, str(path)) == [(7, DAY2), (8, DAY2)]


def test_commits_read_from_the_log_files_are_the_tables_history(spark, tmp_path):
    """The write helpers read their commits from the log's files instead of a history query;
    each one must be what ``DESCRIBE HISTORY`` says: version, operation and metrics."""
    path = str(tmp_path / "bronze" / "crm" / "accounts")
    _write_day(spark, path, [1, 2], DAY1)
    _write_day(spark, path, [3], DAY2)
    _write_day(spark, path, [4, 5, 6], DAY1)
    history = DeltaTable.forPath(spark, path).history().collect()
    assert commit_versions(spark, path) == sorted(int(row["version"]) for row in history)
    for row in history:
        commit = read_commit(spark, path, int(row["version"]))
        assert (commit.operation, commit.metrics) == (
            row["operation"],
            operation_metrics(row["operationMetrics"]),
        )
    assert last_commit(spark, path) == read_commit(spark, path, int(history[0]["version"]))
    assert last_commit(spark, path).rows_written == 3
    assert commit_versions(spark, str(tmp_path / "nothing")) == []


def _changes(spark, path, after, until):
    frame = read_changes(spark, path, after, until)
    return sorted((r.id, str(r._run_date), r._change_type) for r in frame.collect())


def test_the_change_feed_names_the_rows_a_rerun_removed_and_the_rows_it_added(spark, tmp_path):
    """What silver's incremental run reads: since a version, which rows each date's delivery
    replaced (removed rows as deletes, new rows as inserts), and nothing of untouched dates."""
    path = str(tmp_path / "bronze" / "crm" / "accounts")

    def deliver(ids, day):
        return replace_where(
            _days(spark, [(i, day) for i in ids]),
            path,
            column="_run_date",
            value=day,
            metadata="{}",
            partition_by=["_run_date"],
            properties=CHANGE_FEED,
        )

    day1 = deliver([1, 2], DAY1)
    day2 = deliver([3], DAY2)
    rerun = deliver([2, 4], DAY1)
    assert _changes(spark, path, day1.version, day2.version) == [(3, str(DAY2), "insert")]
    assert _changes(spark, path, day2.version, rerun.version) == [
        (1, str(DAY1), "delete"),
        (2, str(DAY1), "delete"),
        (2, str(DAY1), "insert"),
        (4, str(DAY1), "insert"),
    ]
    assert _changes(spark, path, rerun.version, rerun.version) == []


def test_a_table_without_a_change_feed_says_so_before_anything_is_built_on_it(spark, tmp_path):
    path = str(tmp_path / "bronze" / "crm" / "accounts")
    first = _write_day(spark, path, [1], DAY1)  # created without CHANGE_FEED
    second = _write_day(spark, path, [2], DAY2)
    with pytest.raises(ChangeFeedUnavailable, match="bronze/crm/accounts"):
        read_changes(spark, path, first.version, second.version)


def test_the_last_content_commit_passes_over_compaction(spark, tmp_path):
    """A silver table's watermark is in its last commit that changed rows: an OPTIMIZE made
    by ``medallion maintain`` after it must not hide it."""
    path = str(tmp_path / "silver" / "products")
    overwrite(_days(spark, [(1, DAY1)]), path, metadata=commit_metadata("run-1", inputs={"a/b": 3}))
    append(_days(spark, [(2, DAY1)]), path, metadata=commit_metadata("run-2", inputs={"a/b": 4}))
    DeltaTable.forPath(spark, path).optimize().executeCompaction()
    assert last_commit(spark, path).operation == "OPTIMIZE"
    content = last_content_commit(spark, path)
    assert (content.operation, content.metadata["inputs"]) == ("WRITE", {"a/b": 4})
