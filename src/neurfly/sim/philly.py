"""Converter from the Philly trace columns to the neutral trace format.

The Philly CSV (Microsoft's Philly GPU cluster, 2017, as flattened to one file
per job) has the columns ``timestamp`` (submission, UTC), ``duration``
(seconds of run time), ``num_gpus``, ``gpu_time`` (GPU-seconds) and
``cluster`` (the virtual cluster, which owns the job). The mapping is:

=============  ==========================================
neutral        Philly
=============  ==========================================
arrival        ``timestamp`` as epoch seconds (UTC)
team           ``cluster``
devices        ``num_gpus``
duration       ``duration``
job_id         the 1-based data row number
=============  ==========================================

Priority, search and hardware are not in the trace; ``neurfly.sim.derive``
fills them by a stated rule.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

from neurfly.sim.trace import TraceError, TraceJob, parse_time, read_header, take_first

_logger = logging.getLogger(__name__)

PHILLY_COLUMNS = ("timestamp", "duration", "num_gpus", "cluster")
_MAX_PROBLEMS = 20
_GPU_TIME_TOLERANCE_S = 1.0


def is_philly_csv(path: str | Path) -> bool:
    """Return whether the CSV header has the Philly columns."""
    path = Path(path)
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    header = read_header(path)
    return all(name in header for name in PHILLY_COLUMNS)


def read_philly(path: str | Path, limit: int | None = None) -> list[TraceJob]:
    """Read a Philly CSV and convert each row to a neutral ``TraceJob``.

    A row whose ``gpu_time`` differs from ``duration * num_gpus`` by more than
    one second is kept as it is, with ``duration`` taken as the truth, and the
    count of such rows is logged as a warning.

    Args:
        path: The Philly CSV file.
        limit: Keep only the first ``limit`` jobs by submission time.

    Returns:
        The jobs sorted by arrival time, ties in row order.

    Raises:
        TraceError: The file is missing, lacks a Philly column, or has invalid rows.
        ValueError: ``limit`` is less than 1.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(str(path), [f"file not found: {path}"])

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in PHILLY_COLUMNS if name not in header]
        if missing:
            raise TraceError(str(path), [f"missing Philly column(s) {missing}; the header is {header}"])
        reader.fieldnames = header
        jobs, mismatched = _convert_rows(reader, str(path))

    if mismatched:
        _logger.warning("%s: %d row(s) have gpu_time != duration * num_gpus; using duration", path, mismatched)
    _logger.info("read %d Philly jobs from %s", len(jobs), path)
    return take_first(jobs, limit)


def _convert_rows(rows, source: str) -> tuple[list[TraceJob], int]:
    jobs: list[TraceJob] = []
    problems: list[str] = []
    mismatched = 0
    for number, row in enumerate(rows, start=1):
        try:
            job = _convert_row(row, number)
        except ValueError as exc:
            problems.append(f"row {number}: {exc}")
            if len(problems) >= _MAX_PROBLEMS:
                problems.append("(more problems not shown)")
                break
            continue
        jobs.append(job)
        gpu_time = (row.get("gpu_time") or "").strip()
        if gpu_time and abs(float(gpu_time) - job.duration * job.devices) > _GPU_TIME_TOLERANCE_S:
            mismatched += 1

    if problems:
        raise TraceError(source, problems)
    return jobs, mismatched


def _convert_row(row: dict[str, str], number: int) -> TraceJob:
    try:
        arrival = parse_time(row["timestamp"])
    except ValueError as exc:
        raise ValueError(f"timestamp {row['timestamp']!r} is invalid: {exc}") from None

    gpus = float(row["num_gpus"])
    if not gpus.is_integer() or gpus < 1:
        raise ValueError(f"num_gpus must be a whole number of 1 or more, got {row['num_gpus']!r}")

    duration = float(row["duration"])
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a finite number of seconds above 0, got {row['duration']!r}")

    team = row["cluster"].strip()
    if not team:
        raise ValueError("cluster is empty; it names the virtual cluster that owns the job")
    return TraceJob(arrival=arrival, team=team, devices=int(gpus), duration=duration, job_id=str(number))


__all__ = ["PHILLY_COLUMNS", "is_philly_csv", "read_philly"]
