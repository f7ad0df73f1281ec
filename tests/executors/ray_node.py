"""Run one non-head Ray node on 127.0.0.1 until SIGTERM; the tests start it as a second machine.

``ray start --address`` on Linux replaces a loopback node address with the
machine's outward address, and the tests keep every Ray server on loopback.
This script starts the same processes as ``ray start`` through
``ray._private.node.Node`` (what ``ray.cluster_utils`` does), with the node
address fixed to 127.0.0.1. It prints one JSON line with the node id and
the raylet's process id once the node is up. It ends all of the node's
processes and exits on SIGTERM, when any of them dies, or when its parent
process is gone.

Usage: python ray_node.py '{"gcs_address": "127.0.0.1:PORT", "temp_dir": ..., "resources": {...}}'
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

import ray._private.node
import ray._private.parameter

CHECK_INTERVAL_S = 0.2


def main() -> None:
    options = json.loads(sys.argv[1])
    params = ray._private.parameter.RayParams(
        node_ip_address="127.0.0.1",
        num_cpus=options.get("num_cpus", 2),
        num_gpus=0,
        object_store_memory=options.get("object_store_memory", 100 * 1024 * 1024),
        min_worker_port=0,
        max_worker_port=0,
        node_manager_port=0,
        include_log_monitor=False,
        dashboard_agent_listen_port=None,
        **{key: options[key] for key in ("gcs_address", "temp_dir", "resources")},
    )
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
    raylet = node.all_processes[ray._private.ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    print(json.dumps({"node_id": node.node_id, "raylet_pid": raylet}), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()
    while not stop.wait(CHECK_INTERVAL_S):
        # A dead process of this node, or a test session that died without stopping it.
        if node.dead_processes() or os.getppid() != parent:
            break
    node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)


if __name__ == "__main__":
    main()
