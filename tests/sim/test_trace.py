"""The neutral trace format: reading, writing and validation."""

from __future__ import annotations

import pytest

from neurfly.sim.trace import TraceError, TraceJob, parse_time, read_trace, write_trace

JOBS = [
    TraceJob(10.0, "a", 2, 100.0, "search", "s1", "gpu", 4, "j1"),
    TraceJob(5.0, "b", 1, 30.5, None, None, None, None, "j2"),
]


def test_csv_round_trip_sorts_by_arrival(tmp_path):
    path = write_trace(JOBS, tmp_path / "trace.csv")

    loaded = read_trace(path)

    assert loaded == [JOBS[1], JOBS[0]]


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    path = write_trace(JOBS, tmp_path / "trace.parquet")

    assert read_trace(path) == [JOBS[1], JOBS[0]]


def test_parquet_without_pyarrow_says_so(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def refuse_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_pyarrow)

    with pytest.raises(TraceError, match="pip install pyarrow"):
        write_trace(JOBS, tmp_path / "trace.parquet")


def test_minimal_columns_and_iso_times(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text(
        "Arrival,Team,Devices,Duration\n2017-10-09 07:01:55,a,1,66\n2017-10-09T07:02:55+00:00,b,2,10\n",
        encoding="utf-8",
    )

    first, second = read_trace(path)

    assert first.arrival == parse_time("2017-10-09T07:01:55Z")
    assert second.arrival - first.arrival == 60
    assert (first.job_id, second.job_id) == ("1", "2")
    assert first.priority is None
    assert first.search_id is None
    assert first.hardware is None


def test_limit_keeps_earliest(tmp_path):
    path = write_trace(JOBS, tmp_path / "trace.csv")

    assert [job.job_id for job in read_trace(path, limit=1)] == ["j2"]


def test_missing_column_named(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("arrival,team,duration\n0,a,1\n", encoding="utf-8")

    with pytest.raises(TraceError, match=r"missing column\(s\) \['devices'\]"):
        read_trace(path)


@pytest.mark.parametrize(
    "row, message",
    [
        ("x,a,1,10", "arrival 'x' is invalid"),
        ("0,,1,10", "team is empty"),
        ("0,a,0,10", "devices '0' is invalid"),
        ("0,a,1.5,10", "whole number"),
        ("0,a,1,-3", "duration must be"),
        ("0,a,1,nan", "duration must be"),
        ("inf,a,1,1", "finite"),
    ],
)
def test_invalid_rows_named(tmp_path, row, message):
    path = tmp_path / "trace.csv"
    path.write_text(f"arrival,team,devices,duration\n{row}\n", encoding="utf-8")

    with pytest.raises(TraceError, match=message) as raised:
        read_trace(path)

    assert raised.value.problems[0].startswith("row 1:")


def test_missing_file_named(tmp_path):
    with pytest.raises(TraceError, match="file not found"):
        read_trace(tmp_path / "absent.csv")


def test_limit_below_one_rejected(tmp_path):
    path = write_trace(JOBS, tmp_path / "trace.csv")

    with pytest.raises(ValueError, match="limit must be 1 or more"):
        read_trace(path, limit=0)
