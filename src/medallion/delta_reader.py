"""Reading the lake's Delta tables without Spark (the warehouse publisher, the report, tests).

A Delta table's folder holds every data file any commit ever wrote until VACUUM deletes them:
the files a later commit removed (an updated row's old file, a replaced partition) are still
there. Only the transaction log says which files make up the current version, so nothing here
lists or globs a table folder: every read goes through the log with ``deltalake`` (delta-rs),
as a pyarrow dataset whose fragments are exactly the log's live files, with the partition
values the log records (they are not in the files themselves).

S3 lakes: ``s3a://`` (Hadoop's scheme) is read as ``s3://``; delta-rs takes credentials from the
usual AWS chain, and the standard ``AWS_*`` variables of the environment (a custom endpoint such
as a local S3 server included) are passed on as storage options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from medallion.errors import JobError
from medallion.lake import is_hidden_path, s3_endpoint, table_label

# The AWS settings delta-rs's object store understands, taken from the environment when set.
_AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
)


def table_uri(path: str) -> str:
    """The URI delta-rs opens: ``s3a://`` and ``s3n://`` become ``s3://``; local paths stay."""
    for scheme in ("s3a://", "s3n://"):
        if path.startswith(scheme):
            return "s3://" + path[len(scheme) :]
    return path.removeprefix("file://") if path.startswith("file:///") else path


def storage_options(path: str) -> dict[str, str]:
    """delta-rs storage options for ``path``: none locally; the AWS environment for S3."""
    if not table_uri(path).startswith("s3://"):
        return {}
    options = {key: os.environ[key] for key in _AWS_ENV if os.environ.get(key)}
    endpoint = s3_endpoint(options)
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


@dataclass(frozen=True)
class DeltaSnapshot:
    """One version of a Delta table as the log describes it: its live files and their rows."""

    path: str
    version: int
    files: tuple[str, ...]  # absolute URIs of the live data files
    relative_files: tuple[str, ...]  # the same, relative to the table folder (as the log has them)
    partition_columns: tuple[str, ...]
    rows: int | None  # sum of the add actions' num_records (None when a file has no stats)
    table: Any = field(repr=False, compare=False)  # the deltalake.DeltaTable
    # Per live file, aligned with ``relative_files``: its partition values (as text), num_records.
    file_partitions: tuple[dict[str, str | None], ...] = field(default=(), repr=False)
    file_rows: tuple[int | None, ...] = field(default=(), repr=False)

    @property
    def label(self) -> str:
        return table_label(self.path)

    def dataset(self) -> pads.Dataset:
        """The version's rows as a pyarrow dataset (partition columns included)."""
        from deltalake.exceptions import DeltaProtocolError

        try:
            return self.table.to_pyarrow_dataset(
                # INT96 timestamps (older writers) as microseconds: 9999-12-31 fits, ns does not.
                parquet_read_options=pads.ParquetReadOptions(coerce_int96_timestamp_unit="us")
            )
        except DeltaProtocolError as exc:
            raise JobError(
                f"{self.label} uses a Delta feature the reader outside Spark cannot read "
                f"({exc}); disable it on the table (e.g. deletion vectors) or read it with Spark"
            ) from None

    def partition_rows(self, column: str, value: object) -> int:
        """Rows in the files whose partition ``column`` is ``value``, from the log alone."""
        wanted = _partition_text(value)
        selected = [
            (parts, rows)
            for parts, rows in zip(self.file_partitions, self.file_rows, strict=True)
            if parts.get(column) == wanted
        ]
        if any(rows is None for _, rows in selected):  # a writer left no statistics
            return self.dataset().count_rows(filter=pads.field(column) == pa.scalar(value))
        return sum(rows or 0 for _, rows in selected)

    def read(self, columns: list[str] | None = None, filter: Any = None) -> pa.Table:
        """The given columns (those the table has) of the rows matching ``filter``."""
        dataset = self.dataset()
        wanted = None if columns is None else [c for c in columns if c in dataset.schema.names]
        return dataset.to_table(columns=wanted, filter=filter)


def open_delta(path: str) -> DeltaSnapshot | None:
    """The latest version of the Delta table at ``path``; None when nothing is there.

    A folder that holds files but no Delta log (plain Parquet from before the migration, or a
    table written by another tool) is refused with one sentence naming the table: reading its
    files would read whatever is there, removed files included.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = table_uri(path)
    options = storage_options(path)
    try:
        table = DeltaTable(uri, storage_options=options or None)
    except TableNotFoundError:
        if _holds_files(path):
            raise JobError(
                f"{table_label(path)} at {path} holds files but is not a Delta table (no "
                "_delta_log); rewrite it with the pipeline (or CONVERT TO DELTA) before it is read"
            ) from None
        return None
    actions = pa.table(table.get_add_actions(flatten=True))
    relative = tuple(actions.column("path").to_pylist())
    counts = actions.column("num_records").to_pylist()
    partition_columns = tuple(table.metadata().partition_columns)
    values = {c: actions.column(f"partition.{c}").to_pylist() for c in partition_columns}
    file_partitions = tuple(
        {c: _partition_text(values[c][i]) for c in partition_columns} for i in range(len(relative))
    )
    return DeltaSnapshot(
        path=path,
        version=table.version(),
        files=tuple(table.file_uris()),
        relative_files=relative,
        partition_columns=partition_columns,
        rows=None if any(n is None for n in counts) else int(sum(counts)),
        table=table,
        file_partitions=file_partitions,
        file_rows=tuple(None if n is None else int(n) for n in counts),
    )


def _partition_text(value: object) -> str | None:
    """A partition value as Delta writes it in the log (dates as ``YYYY-MM-DD``)."""
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def row_count(path: str) -> int | None:
    """Rows in the latest version of the table at ``path`` (None when there is no table).

    From the log's per-file ``num_records``; the files are scanned only when a writer left
    no statistics.
    """
    snapshot = open_delta(path)
    if snapshot is None:
        return None
    if snapshot.rows is not None:
        return snapshot.rows
    return snapshot.dataset().count_rows()


def _holds_files(path: str) -> bool:
    """True when the folder at ``path`` holds a file that is not hidden (:func:`is_hidden_path`,
    Spark's rule)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(table_uri(path))
    root = root.rstrip("/")
    try:
        if not fs.isdir(root):
            return False
        found = fs.find(root, withdirs=False)
    except (FileNotFoundError, OSError):
        return False
    return any(not is_hidden_path(file[len(root) :]) for file in found)
