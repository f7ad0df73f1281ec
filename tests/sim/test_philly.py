"""The Philly converter, on rows written here and on the real trace when it is present."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from neurfly.sim.philly import is_philly_csv, read_philly
from neurfly.sim.trace import TraceError

PHILLY_TRACE = Path(__file__).resolve().parents[3] / "shared" / "data" / "traces" / "philly.csv"

ROWS = (
    "timestamp,duration,num_gpus,gpu_time,cluster\n"
    "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
    "2017-10-09 06:13:03,2951.0,2,5902.0,6214e9\n"
    "2017-09-29 07:58:32,860662.0,8,6885296.0,6c71a0\n"
)


@pytest.fixture
def philly_file(tmp_path):
    path = tmp_path / "philly.csv"
    path.write_text(ROWS, encoding="utf-8")
    return path


def test_rows_converted(philly_file):
    jobs = read_philly(philly_file)

    assert [job.job_id for job in jobs] == ["3", "2", "1"]
    assert [job.team for job in jobs] == ["6c71a0", "6214e9", "11cb48"]
    assert [job.devices for job in jobs] == [8, 2, 1]
    assert [job.duration for job in jobs] == [860662.0, 2951.0, 66.0]
    assert jobs[2].arrival == datetime(2017, 10, 9, 7, 1, 55, tzinfo=UTC).timestamp()
    assert all(job.priority is None and job.search_id is None for job in jobs)


def test_limit_takes_earliest(philly_file):
    assert [job.job_id for job in read_philly(philly_file, limit=2)] == ["3", "2"]


def test_header_detected(philly_file, tmp_path):
    neutral = tmp_path / "neutral.csv"
    neutral.write_text("arrival,team,devices,duration\n0,a,1,1\n", encoding="utf-8")

    assert is_philly_csv(philly_file)
    assert not is_philly_csv(neutral)


def test_gpu_time_mismatch_warned(tmp_path, caplog):
    path = tmp_path / "philly.csv"
    path.write_text("timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,66.0,2,66.0,a\n")

    jobs = read_philly(path)

    assert jobs[0].duration == 66.0
    assert "1 row(s) have gpu_time" in caplog.text


def test_bad_row_named(tmp_path):
    path = tmp_path / "philly.csv"
    path.write_text("timestamp,duration,num_gpus,gpu_time,cluster\nyesterday,66.0,1,66.0,a\n")

    with pytest.raises(TraceError, match="row 1: timestamp 'yesterday' is invalid"):
        read_philly(path)


def test_missing_column_named(tmp_path):
    path = tmp_path / "philly.csv"
    path.write_text("timestamp,duration,cluster\n2017-10-09 07:01:55,66.0,a\n")

    with pytest.raises(TraceError, match="num_gpus"):
        read_philly(path)


@pytest.mark.skipif(not PHILLY_TRACE.is_file(), reason="the Philly trace is not in shared/data/traces")
def test_real_trace_loads():
    jobs = read_philly(PHILLY_TRACE, limit=1000)

    assert len(jobs) == 1000
    assert all(jobs[i].arrival <= jobs[i + 1].arrival for i in range(len(jobs) - 1))
    assert all(job.devices >= 1 and job.duration > 0 and job.team for job in jobs)
