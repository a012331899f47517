"""Writing one day's extract of a table: CSV parts, a JSON-lines file, micro-batch files, and
each batch delivery folder's control file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from medallion.contracts.control import CONTROL_FILE
from medallion.generate import fmt
from medallion.generate.spec import COLUMNS, CSV_PART_ROWS


def partition_dir(landing_root: Path, table: str, day: dt.date) -> Path:
    """``landing/<source>/<table>/dt=YYYY-MM-DD``, created."""
    path = landing_root / table / f"dt={day.isoformat()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


WRITE_CHUNK_LINES = 100_000


def gather(lines: pa.Array | pa.ChunkedArray, wanted: np.ndarray) -> pa.Array:
    """``lines`` taken at ``wanted``. For a ChunkedArray, take from each chunk what it holds
    and put the pieces in order: a plain take would first concatenate every chunk."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if not isinstance(lines, pa.ChunkedArray):
        return lines.take(pa.array(wanted))
    bounds = np.cumsum([0] + [len(chunk) for chunk in lines.chunks])
    chunk_of = np.searchsorted(bounds, wanted, side="right") - 1
    pieces, positions = [pa.array([], lines.type)], [np.empty(0, np.int64)]
    for c, chunk in enumerate(lines.chunks):
        mine = np.flatnonzero(chunk_of == c)
        if len(mine):
            pieces.append(chunk.take(pa.array(wanted[mine] - bounds[c])))
            positions.append(mine)
    gathered = pa.concat_arrays(pieces)
    inverse = np.empty(len(wanted), dtype=np.int64)
    inverse[np.concatenate(positions)] = np.arange(len(wanted))
    return gathered.take(pa.array(inverse))


def _in_order(lines: pa.Array, order: np.ndarray | None, start: int, length: int) -> pa.Array:
    """Lines ``start .. start + length`` of the output, which is ``lines`` taken in ``order``
    when given: taking one chunk at a time never materialises the whole reordered text."""
    if order is None:
        return lines.slice(start, length)
    return gather(lines, order[start : start + length])


def write_lines(
    path: Path,
    lines: pa.Array,
    header: str | None = None,
    order: np.ndarray | None = None,
) -> None:
    """Write records (one per element, or ``lines`` taken in ``order``; a CSV record may hold
    quoted line breaks) with ``\\n`` line ends, UTF-8, a chunk at a time."""
    count = len(lines) if order is None else len(order)
    with path.open("wb") as out:
        if header is not None:
            out.write(header.encode("utf-8") + b"\n")
        for start in range(0, count, WRITE_CHUNK_LINES):
            chunk = _in_order(lines, order, start, min(WRITE_CHUNK_LINES, count - start))
            data, offsets = fmt.terminated_lines(chunk)
            out.write(memoryview(data)[offsets[0] : offsets[-1]])


def write_line_files(
    paths: list[Path], lines: pa.Array, order: np.ndarray, bounds: np.ndarray
) -> None:
    """Write output lines ``bounds[i] .. bounds[i + 1]`` (``lines`` taken in ``order``) to
    ``paths[i]``: many small files (Kafka micro-batches) from one joined buffer per chunk."""
    file_index = 0
    while file_index < len(paths):
        last = file_index
        while last + 1 < len(paths) and bounds[last + 2] - bounds[file_index] <= WRITE_CHUNK_LINES:
            last += 1
        first_line = int(bounds[file_index])
        chunk = _in_order(lines, order, first_line, int(bounds[last + 1]) - first_line)
        data, offsets = fmt.terminated_lines(chunk)
        view = memoryview(data)
        for f in range(file_index, last + 1):
            begin = offsets[bounds[f] - first_line]
            end = offsets[bounds[f + 1] - first_line]
            paths[f].write_bytes(view[begin:end])
        file_index = last + 1


def write_control(folder: Path, table: str, day: dt.date, records: dict[str, int]) -> None:
    """The delivery's control file: each data file's record count, as an export tool reports
    it (bronze reconciles its parsed records against it; see medallion.contracts.control)."""
    document = {"table": table, "date": day.isoformat(), "files": dict(sorted(records.items()))}
    (folder / CONTROL_FILE).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def write_csv(
    landing_root: Path, table: str, day: dt.date, records: pa.Array, order: np.ndarray
) -> int:
    """Write a day's CSV records, taken in ``order``, as ``part-NNNNN.csv`` files of at most
    CSV_PART_ROWS records, each with the pinned header. Returns the number of files."""
    folder = partition_dir(landing_root, table, day)
    header = ",".join(COLUMNS[table])
    parts = max(1, -(-len(order) // CSV_PART_ROWS))
    counts = {}
    for part in range(parts):
        part_order = order[part * CSV_PART_ROWS : (part + 1) * CSV_PART_ROWS]
        name = f"part-{part:05d}.csv"
        write_lines(folder / name, records, header, part_order)
        counts[name] = len(part_order)
    write_control(folder, table, day, counts)
    return parts
