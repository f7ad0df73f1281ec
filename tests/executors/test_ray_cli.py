"""Choosing the Ray executor on the command line and in the cluster file, and the errors for bad choices."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from neurfly.cli.runner import make_executor, with_executor
from neurfly.core.cluster import default_cluster
from neurfly.errors import NeurflyError, NotFoundError
from neurfly.executors.local import LocalExecutor
from neurfly.executors.ray import RayExecutor
from neurfly.store import Search, Store
from support import run_cli


def _cluster_file(tmp_path: Path, **fields: object) -> Path:
    document = {"pools": [{"name": "head-pool", "region": "eu-west", "nodes": [{"name": "head", "devices": 2}]}], **fields}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ray_address_selects_options() -> None:
    cluster = with_executor(default_cluster(), "ray", "10.0.0.5:6379")

    executor = make_executor(cluster)

    assert isinstance(executor, RayExecutor)
    assert executor.address == "10.0.0.5:6379"
    assert cluster.executor_options == {"address": "10.0.0.5:6379"}


def test_cluster_file_options_kept() -> None:
    cluster = default_cluster().model_copy(update={"executor": "ray", "executor_options": {"address": "head:6379", "fetch_wait_s": 2.0}})

    chosen = with_executor(cluster, None, None)

    assert chosen.executor_options == {"address": "head:6379", "fetch_wait_s": 2.0}
    assert make_executor(chosen).fetch_wait_s == 2.0


def test_other_executor_drops_options() -> None:
    cluster = default_cluster().model_copy(update={"executor": "ray", "executor_options": {"address": "head:6379"}})

    chosen = with_executor(cluster, "local", None)

    assert chosen.executor_options == {}
    assert isinstance(make_executor(chosen), LocalExecutor)


def test_ray_address_needs_ray_executor() -> None:
    with pytest.raises(NeurflyError, match="--ray-address applies to the ray executor"):
        with_executor(default_cluster(), "local", "10.0.0.5:6379")


def test_unknown_executor_lists_names() -> None:
    with pytest.raises(NotFoundError, match="local, ray"):
        with_executor(default_cluster(), "kubernetes", None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"adress": "head:6379"}, "has no option 'adress'"),
        ({"address": "head"}, "address must be host:port"),
        ({"address": ""}, "address must be host:port"),
        ({"node_refresh_s": 0}, "node_refresh_s must be a number of seconds above 0"),
        ({"fetch_wait_s": "soon"}, "fetch_wait_s must be a number of seconds above 0"),
        ({"actor_concurrency": 1}, "actor_concurrency must be an integer of 2 or more"),
        ({"runtime_env": ["pip"]}, "runtime_env must be a mapping"),
    ],
)
def test_invalid_options_rejected(options: dict, message: str) -> None:
    cluster = default_cluster().model_copy(update={"executor": "ray", "executor_options": options})

    with pytest.raises(NeurflyError, match=message):
        make_executor(cluster)


def test_cli_bad_option_submits_nothing(home: Path, store: Store, write_spec, tmp_path: Path) -> None:
    cluster = _cluster_file(tmp_path, executor="ray", executor_options={"adress": "127.0.0.1:6379"})

    result = run_cli(home, "run", str(write_spec()), "--cluster", str(cluster))

    assert result.returncode == 2
    assert "has no option 'adress'" in result.stderr
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Search)) == 0


def test_cli_ray_address_with_local(home: Path, write_spec) -> None:
    result = run_cli(home, "run", str(write_spec()), "--executor", "local", "--ray-address", "127.0.0.1:6379")

    assert result.returncode == 2
    assert "add --executor ray" in result.stderr


@pytest.mark.slow
def test_cli_unreachable_ray_cluster(home: Path, store: Store, write_spec, tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    cluster = _cluster_file(tmp_path)

    result = run_cli(home, "run", str(write_spec()), "--cluster", str(cluster), "--executor", "ray", "--ray-address", address, timeout=60)

    assert result.returncode == 2
    assert f"could not connect to the Ray cluster at '{address}'" in result.stderr
    assert "ray status --address" in result.stderr
    with store.session() as session:
        assert session.scalar(select(Search.state)) == "running"


def test_cli_executor_with_server(home: Path, write_spec) -> None:
    result = run_cli(home, "run", str(write_spec()), "--server", "http://127.0.0.1:9", "--executor", "ray")

    assert result.returncode == 2
    assert "the server's cluster file decides" in result.stderr
