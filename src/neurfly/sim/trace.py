"""The neutral trace format: one row per job, read from and written to CSV or Parquet.

Columns (see docs/simulator.md):

==============  ========  ===================================================
column          required  meaning
==============  ========  ===================================================
arrival         yes       submission time: seconds (any origin) or ISO 8601
team            yes       the team that owns the job
devices         yes       devices the job needs at once, on one node
duration        yes       seconds of run time without interruptions
priority        no        a priority class name of the cluster
search_id       no        jobs with the same id belong to one search
hardware        no        the hardware type of the pools it may run on
max_concurrent  no        the most attempts of its search that may run at once
job_id          no        an id to find the job in the per-job output
==============  ========  ===================================================

ISO times without an offset are read as UTC. Parquet needs ``pyarrow``.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from neurfly.errors import NeurflyError

_logger = logging.getLogger(__name__)

COLUMNS = ("job_id", "arrival", "team", "devices", "duration", "priority", "search_id", "hardware", "max_concurrent")
REQUIRED_COLUMNS = ("arrival", "team", "devices", "duration")
_MAX_PROBLEMS = 20


class TraceError(NeurflyError, ValueError):
    """A trace file is missing, unreadable or has invalid rows.

    Attributes:
        problems: One line per problem, each naming the row, the column and the value.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid trace {source}:\n{lines}")


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace.

    Attributes:
        arrival: Submission time in seconds; epoch seconds when the trace gave ISO times.
        team: Owning team.
        devices: Devices needed at once, on one node.
        duration: Seconds of run time on those devices without interruptions.
        priority: Priority class name, or ``None`` to derive one.
        search_id: Search the job belongs to, or ``None`` to derive one.
        hardware: Hardware type, or ``None`` to derive one from the cluster.
        max_concurrent: Limit on running attempts of its search, or ``None`` for no limit.
        job_id: Id in the per-job output; the 1-based row number when the trace has none.
    """

    arrival: float
    team: str
    devices: int
    duration: float
    priority: str | None = None
    search_id: str | None = None
    hardware: str | None = None
    max_concurrent: int | None = None
    job_id: str = ""


def parse_time(value: str) -> float:
    """Parse seconds (``"3600"``, ``"12.5"``) or an ISO 8601 time into seconds.

    ISO times become seconds since the Unix epoch; a time without an offset is UTC.

    Raises:
        ValueError: The value is neither a finite number nor an ISO time.
    """
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()

    if not math.isfinite(seconds):
        raise ValueError(f"time must be finite, got {value!r}")
    return seconds


def read_trace(path: str | Path, limit: int | None = None) -> list[TraceJob]:
    """Read a neutral trace from CSV (``.csv``) or Parquet (``.parquet``, ``.pq``).

    Args:
        path: The trace file.
        limit: Keep only the first ``limit`` jobs by arrival time (ties by row order).

    Returns:
        The jobs sorted by arrival time, ties in row order.

    Raises:
        TraceError: The file is missing, lacks a required column, or has invalid rows.
        ValueError: ``limit`` is less than 1.
    """
    path = Path(path)
    _check_limit(limit)
    if not path.is_file():
        raise TraceError(str(path), [f"file not found: {path}"])

    rows = _read_parquet_rows(path) if path.suffix.lower() in (".parquet", ".pq") else _read_csv_rows(path)
    jobs = _parse_rows(rows, str(path))
    _logger.info("read %d jobs from %s", len(jobs), path)
    return take_first(jobs, limit)


def take_first(jobs: Sequence[TraceJob], limit: int | None) -> list[TraceJob]:
    """Sort ``jobs`` by arrival (stable) and keep the first ``limit`` (all when ``None``).

    Raises:
        ValueError: ``limit`` is less than 1.
    """
    _check_limit(limit)
    ordered = sorted(jobs, key=lambda job: job.arrival)
    return ordered if limit is None else ordered[:limit]


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}")


def write_trace(jobs: Iterable[TraceJob], path: str | Path) -> Path:
    """Write jobs in the neutral format, as Parquet if the suffix is ``.parquet`` or ``.pq``, else CSV.

    Returns:
        The path written.

    Raises:
        TraceError: Parquet was requested but ``pyarrow`` is not installed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [_to_record(job) for job in jobs]

    if path.suffix.lower() in (".parquet", ".pq"):
        _write_parquet(records, path)
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(records)
    _logger.info("wrote %d jobs to %s", len(records), path)
    return path


def read_header(path: Path) -> list[str]:
    """Return the column names of a CSV file, stripped and lower-cased."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    return [name.strip().lower() for name in header]


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        _check_columns(header, str(path))
        reader.fieldnames = header
        return list(reader)


def _read_parquet_rows(path: Path) -> list[dict[str, str]]:
    parquet = _import_parquet(str(path))
    table = parquet.read_table(path)
    header = [name.lower() for name in table.column_names]
    _check_columns(header, str(path))
    columns = {name.lower(): table.column(name).to_pylist() for name in table.column_names}
    return [
        {name: "" if values[row] is None else str(values[row]) for name, values in columns.items()}
        for row in range(table.num_rows)
    ]


def _write_parquet(records: list[dict[str, str]], path: Path) -> None:
    parquet = _import_parquet(str(path))
    import pyarrow

    arrays = {name: [record[name] if record[name] != "" else None for record in records] for name in COLUMNS}
    table = pyarrow.table(
        {
            "job_id": pyarrow.array(arrays["job_id"], pyarrow.string()),
            "arrival": pyarrow.array([float(value) for value in arrays["arrival"]], pyarrow.float64()),
            "team": pyarrow.array(arrays["team"], pyarrow.string()),
            "devices": pyarrow.array([int(value) for value in arrays["devices"]], pyarrow.int64()),
            "duration": pyarrow.array([float(value) for value in arrays["duration"]], pyarrow.float64()),
            "priority": pyarrow.array(arrays["priority"], pyarrow.string()),
            "search_id": pyarrow.array(arrays["search_id"], pyarrow.string()),
            "hardware": pyarrow.array(arrays["hardware"], pyarrow.string()),
            "max_concurrent": pyarrow.array(
                [None if value is None else int(value) for value in arrays["max_concurrent"]], pyarrow.int64()
            ),
        }
    )
    parquet.write_table(table, path)


def _import_parquet(source: str):
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        problem = "Parquet needs pyarrow, which is not installed; pip install pyarrow, or use CSV"
        raise TraceError(source, [problem]) from None
    return parquet


def _check_columns(header: list[str], source: str) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise TraceError(source, [f"missing column(s) {missing}; the header is {header}"])
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        _logger.warning("%s: ignoring unknown column(s) %s", source, unknown)


def _parse_rows(rows: list[dict[str, str]], source: str) -> list[TraceJob]:
    jobs: list[TraceJob] = []
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        try:
            jobs.append(_parse_row(row, number))
        except ValueError as exc:
            problems.append(f"row {number}: {exc}")
            if len(problems) >= _MAX_PROBLEMS:
                problems.append("(more problems not shown)")
                break
    if problems:
        raise TraceError(source, problems)
    return jobs


def _parse_row(row: dict[str, str], number: int) -> TraceJob:
    arrival = _field(row, "arrival", parse_time)
    team = (row.get("team") or "").strip()
    if not team:
        raise ValueError("team is empty; every job needs an owning team")

    devices = _field(row, "devices", _parse_count)
    duration = _field(row, "duration", float)
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a finite number of seconds above 0, got {row.get('duration')!r}")

    max_concurrent = _optional(row, "max_concurrent")
    return TraceJob(
        arrival=arrival,
        team=team,
        devices=devices,
        duration=duration,
        priority=_optional(row, "priority"),
        search_id=_optional(row, "search_id"),
        hardware=_optional(row, "hardware"),
        max_concurrent=None if max_concurrent is None else _field(row, "max_concurrent", _parse_count),
        job_id=_optional(row, "job_id") or str(number),
    )


def _parse_count(value: str) -> int:
    number = float(value)
    if not number.is_integer() or number < 1:
        raise ValueError(f"must be a whole number of 1 or more, got {value!r}")
    return int(number)


def _field(row: dict[str, str], name: str, parse):
    value = row.get(name)
    if value is None or value.strip() == "":
        raise ValueError(f"{name} is empty")
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"{name} {value!r} is invalid: {exc}") from None


def _optional(row: dict[str, str], name: str) -> str | None:
    value = (row.get(name) or "").strip()
    return value or None


def _to_record(job: TraceJob) -> dict[str, str]:
    return {
        "job_id": job.job_id,
        "arrival": repr(job.arrival),
        "team": job.team,
        "devices": str(job.devices),
        "duration": repr(job.duration),
        "priority": job.priority or "",
        "search_id": job.search_id or "",
        "hardware": job.hardware or "",
        "max_concurrent": "" if job.max_concurrent is None else str(job.max_concurrent),
    }


def with_job_ids(jobs: Sequence[TraceJob]) -> list[TraceJob]:
    """Return ``jobs`` with an empty ``job_id`` replaced by the 1-based position."""
    return [job if job.job_id else replace(job, job_id=str(index)) for index, job in enumerate(jobs, start=1)]


__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "TraceError",
    "TraceJob",
    "parse_time",
    "read_header",
    "read_trace",
    "take_first",
    "with_job_ids",
    "write_trace",
]
