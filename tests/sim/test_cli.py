"""The simulator's command line and report, end to end on small files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from neurfly.sim.cli import app
from neurfly.sim.runner import load_cluster, resolve_policies
from neurfly.sim.trace import read_trace

runner = CliRunner()


def simulate(trace, cluster, out, *extra: str):
    arguments = ["simulate", "--trace", str(trace), "--cluster", str(cluster), "--out", str(out), *extra]
    if "--plots" not in extra:
        arguments.append("--no-plots")
    return runner.invoke(app, arguments)


def test_compares_policies_in_one_run(small_trace_file, small_cluster_file, tmp_path):
    out = tmp_path / "report"

    result = simulate(small_trace_file, small_cluster_file, out, "--policy", "fifo", "--policy", "priority")
    report = json.loads((out / "report.json").read_text())

    assert result.exit_code == 0, result.output
    assert list(report["policies"]) == ["fifo", "priority"]
    assert report["policies"]["fifo"]["rejected"] == 1
    assert report["policies"]["fifo"]["completed"] == 4
    assert (out / "jobs-fifo.csv").is_file()
    assert "## Against `fifo`" in (out / "report.md").read_text()


def test_all_policies_and_plots(small_trace_file, small_cluster_file, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"

    result = simulate(small_trace_file, small_cluster_file, out, "--policy", "all", "--plots")
    markdown = (out / "report.md").read_text()

    assert result.exit_code == 0, result.output
    for name in ("jct_cdf.png", "utilisation.png", "share.png"):
        assert (out / name).stat().st_size > 0
        assert f"]({name})" in markdown
    for name in resolve_policies(["all"]):
        assert f"## Per team: `{name}`" in markdown


def test_same_seed_same_report(small_trace_file, small_cluster_file, tmp_path):
    first = simulate(small_trace_file, small_cluster_file, tmp_path / "one", "--policy", "all", "--seed", "5")
    second = simulate(small_trace_file, small_cluster_file, tmp_path / "two", "--policy", "all", "--seed", "5")
    reports = [json.loads((tmp_path / name / "report.json").read_text()) for name in ("one", "two")]
    for report in reports:
        report.pop("timings")

    assert first.exit_code == second.exit_code == 0
    assert reports[0] == reports[1]
    assert (tmp_path / "one" / "jobs-fifo.csv").read_text() == (tmp_path / "two" / "jobs-fifo.csv").read_text()


def test_derivation_printed_in_report(tmp_path, small_cluster_file):
    trace = tmp_path / "bare.csv"
    trace.write_text("arrival,team,devices,duration\n0,a,1,10\n5,a,1,10\n", encoding="utf-8")
    out = tmp_path / "report"

    result = simulate(trace, small_cluster_file, out, "--policy", "fifo", "--seed", "9")
    markdown = (out / "report.md").read_text()

    assert result.exit_code == 0, result.output
    assert "## Derived fields" in markdown
    assert "seed 9" in markdown


def test_unknown_policy_named(small_trace_file, small_cluster_file, tmp_path):
    result = simulate(small_trace_file, small_cluster_file, tmp_path / "out", "--policy", "lottery")

    assert result.exit_code == 2
    assert "lottery" in result.output
    assert "fifo" in result.output


def test_missing_cluster_named(small_trace_file, tmp_path):
    result = simulate(small_trace_file, tmp_path / "absent.yaml", tmp_path / "out")

    assert result.exit_code == 2
    assert "absent.yaml" in result.output


def test_convert_philly_with_derivation(tmp_path):
    source = tmp_path / "philly.csv"
    source.write_text(
        "timestamp,duration,num_gpus,gpu_time,cluster\n"
        "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
        "2017-10-09 07:02:05,70.0,1,70.0,11cb48\n",
        encoding="utf-8",
    )
    target = tmp_path / "neutral.csv"

    result = runner.invoke(app, ["convert-philly", str(source), str(target), "--derive-with", "philly"])
    jobs = read_trace(target)

    assert result.exit_code == 0, result.output
    assert [job.priority for job in jobs] == ["search", "search"]
    assert jobs[0].search_id == jobs[1].search_id
    assert {job.hardware for job in jobs} == {"gpu"}


def test_generate_automl_then_simulate(tmp_path):
    trace = tmp_path / "automl.csv"

    generated = runner.invoke(app, ["generate-automl", str(trace), "--hours", "2", "--trials", "8", "--seed", "1"])
    simulated = simulate(trace, "automl", tmp_path / "out", "--policy", "fifo", "--policy", "fair-share")
    report = json.loads((tmp_path / "out" / "report.json").read_text())

    assert generated.exit_code == 0, generated.output
    assert simulated.exit_code == 0, simulated.output
    assert report["policies"]["fifo"]["unfinished"] == 0
    assert report["policies"]["fair-share"]["completed"] == len(read_trace(trace))


def test_packaged_clusters_load():
    philly, _ = load_cluster("philly")
    automl, _ = load_cluster("automl")

    assert sum(pool.devices for pool in philly.pools) == 2490
    assert len(philly.teams) == 15
    assert sum(pool.devices for pool in automl.pools) == 128


def test_report_states_published_anchor(small_trace_file, small_cluster_file, tmp_path):
    out = tmp_path / "report"

    result = simulate(small_trace_file, small_cluster_file, out, "--policy", "all")
    markdown = (out / "report.md").read_text()
    anchor = markdown.split("## Against the published anchor", 1)[1].split("\n## ", 1)[0]

    assert result.exit_code == 0, result.output
    assert "5.5x" in anchor
    for name in ("fifo", "priority", "fair-share"):
        assert f"than under `{name}`" in anchor
    assert "What `default` gives up for fairness and priority:" in anchor


def test_report_without_default_has_no_anchor(small_trace_file, small_cluster_file, tmp_path):
    out = tmp_path / "report"

    simulate(small_trace_file, small_cluster_file, out, "--policy", "fifo", "--policy", "priority")

    assert "published anchor" not in (out / "report.md").read_text()
