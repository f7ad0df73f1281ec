"""A real Ray cluster on 127.0.0.1 for the executor tests: a head and a second node.

The head runs ``ray start --head --block``; the second node, which stands for
a second machine, runs ``ray_node.py`` beside this file. Every process either
starts is ended by the fixture's finalizer, also when a test fails. The
finalizer signals the process it started and then kills what is left of that
process's own tree, so it touches no other Ray process on this machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml

# Ray on Linux replaces a loopback address with the machine's outward address
# unless this is "0", and the tests keep every Ray server and client on 127.0.0.1.
# Ray reads it at import, and CLI subprocesses inherit it from here.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# Token authentication with a token of this session only: Ray would otherwise read or create ~/.ray/auth_token.
os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
if "ray" in sys.modules:
    import ray._private.ray_constants

    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False

RAY = str(Path(sys.executable).with_name("ray"))
NODE_SCRIPT = Path(__file__).with_name("ray_node.py")
OBJECT_STORE_BYTES = 100 * 1024 * 1024
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
# The GCS declares a node dead after this many missed health checks of this period,
# about 2 s here instead of Ray's default of about 15 s.
HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RayNodeProcess:
    """A Ray node this test session started, and the process that owns its processes."""

    process: subprocess.Popen
    node_id: str = ""
    raylet_pid: int | None = None
    tree: set[int] = field(default_factory=set)

    def remember_tree(self) -> None:
        try:
            self.tree |= {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return

    def kill_raylet(self) -> None:
        """Kill this node's raylet, as a machine that loses power would."""
        self.remember_tree()
        os.kill(self.raylet_pid, signal.SIGKILL)

    def stop(self) -> None:
        """End the node: SIGTERM to its owner, then SIGKILL to whatever of its tree is left."""
        self.remember_tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        for pid in self.tree:
            try:
                process = psutil.Process(pid)
                process.kill()
            except psutil.NoSuchProcess:
                continue


@dataclass
class RayHead:
    address: str
    temp_dir: str
    node: RayNodeProcess


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A Ray head on 127.0.0.1 whose node is NeurFly node ``head`` (2 devices)."""
    temp_dir = tempfile.mkdtemp(prefix="nf-ray-", dir="/tmp")
    port = free_port()
    log = Path(temp_dir) / "head.log"
    command = [
        RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--num-cpus", "2", "--resources", json.dumps({"neurfly_node_head": 2}), "--include-dashboard", "false",
        "--temp-dir", temp_dir, "--object-store-memory", str(OBJECT_STORE_BYTES), "--disable-usage-stats",
        "--min-worker-port", "0", "--max-worker-port", "0", "--dashboard-agent-listen-port", str(free_port()),
        # Free ports in place of Ray's fixed defaults, so concurrent test sessions do not collide.
        "--dashboard-port", str(free_port()),
        "--system-config", json.dumps(HEALTH_CHECKS),
    ]
    with log.open("w") as output:
        node = RayNodeProcess(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT))
    try:
        _wait_for_text(node.process, log, "block forever")
        node.remember_tree()
        yield RayHead(f"127.0.0.1:{port}", temp_dir, node)
    finally:
        node.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def start_ray_node(ray_head: RayHead) -> Iterator[Callable[[str, int], RayNodeProcess]]:
    """Start a second Ray node carrying ``neurfly_node_<name>``; every node is stopped after the test."""
    started: list[RayNodeProcess] = []

    def start(name: str, devices: int = 2) -> RayNodeProcess:
        options = {
            "gcs_address": ray_head.address,
            "temp_dir": ray_head.temp_dir,
            "resources": {f"neurfly_node_{name}": devices},
            "object_store_memory": OBJECT_STORE_BYTES,
        }
        process = subprocess.Popen(
            [sys.executable, str(NODE_SCRIPT), json.dumps(options)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        node = RayNodeProcess(process)
        started.append(node)
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"Ray node {name!r} did not start (exit status {process.wait(STOP_TIMEOUT_S)})")
        ready = json.loads(line)
        node.node_id, node.raylet_pid = ready["node_id"], ready["raylet_pid"]
        node.remember_tree()
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def ray_driver() -> Iterator[None]:
    """Disconnect this process from Ray after the test, whatever the executor left behind."""
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def two_node_cluster(tmp_path: Path, ray_head: RayHead) -> Path:
    """A cluster file with NeurFly nodes ``head`` and ``worker`` in two pools, run by the Ray executor."""
    document = {
        "pools": [
            {"name": "head-pool", "region": "eu-west", "price_per_device_hour": 1.0, "nodes": [{"name": "head", "devices": 2}]},
            {"name": "worker-pool", "region": "eu-west", "price_per_device_hour": 1.0, "nodes": [{"name": "worker", "devices": 2}]},
        ],
        "executor": "ray",
        "executor_options": {"address": ray_head.address, "node_refresh_s": 0.5},
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _wait_for_text(process: subprocess.Popen, log: Path, text: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with status {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"ray start did not report ready within {START_TIMEOUT_S:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")
