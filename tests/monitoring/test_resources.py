"""Resource sampling of real processes, and folding samples into buckets."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from neurfly.core.detectors import DeviceSample, ResourceSample
from neurfly.monitoring.resources import Bucket, ProcessSampler, memory_limit


def test_sampler_reads_this_process() -> None:
    sampler = ProcessSampler(os.getpid(), "cpu", (0, 1))

    first = sampler.sample(7, time.time())
    sum(i * i for i in range(200_000))
    second = sampler.sample(7, time.time() + 0.01)

    assert first.attempt_id == 7
    assert first.memory_bytes > 0
    assert first.memory_limit_bytes >= first.memory_bytes
    assert first.read_bytes_per_s is None
    assert second.read_bytes_per_s is not None
    assert [d.index for d in second.devices] == [0, 1]
    assert all(0.0 <= d.utilisation <= 1.0 for d in second.devices)


def test_sampler_counts_child_processes() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(50_000_000); time.sleep(30)"])
    try:
        parent = ProcessSampler(os.getpid(), "cpu", (0,))
        alone = psutil.Process(os.getpid()).memory_info().rss
        deadline = time.monotonic() + 20
        while psutil.Process(child.pid).memory_info().rss < 50_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)

        sample = parent.sample(1, time.time())
    finally:
        child.kill()
        child.wait()

    assert sample.memory_bytes >= alone + 50_000_000


def test_gpu_sampling_degrades_without_driver() -> None:
    sampler = ProcessSampler(os.getpid(), "cuda", (0,))

    sample = sampler.sample(1, time.time())

    assert sample is not None
    assert sample.memory_bytes > 0
    if not _has_nvidia_driver():
        assert sample.devices == ()


def _has_nvidia_driver() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - any NVML failure means no usable driver
        return False
    return pynvml.nvmlDeviceGetCount() > 0


def test_sampler_returns_none_after_exit() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    sampler = ProcessSampler(child.pid, "cpu", (0,))
    child.wait()

    assert sampler.sample(1, time.time()) is None


def test_memory_limit_not_above_host() -> None:
    assert memory_limit(psutil.Process()) <= psutil.virtual_memory().total


def test_bucket_folds_means_and_maxima() -> None:
    bucket = Bucket(attempt_id=1, start=60.0, width_s=60.0)
    device = (DeviceSample(0, 0.2, 100, 1000),)
    bucket.add(ResourceSample(1, 61.0, 50.0, 300, 1000, None, None, False, device))
    bucket.add(ResourceSample(1, 66.0, 150.0, 500, 1000, 10.0, 4.0, False, (DeviceSample(0, 0.6, 400, 1000),)))

    values = bucket.values()

    assert values["samples"] == 2
    assert values["cpu_percent_mean"] == pytest.approx(100.0)
    assert values["cpu_percent_max"] == 150.0
    assert values["memory_bytes_max"] == 500
    assert values["device_utilisation_mean"] == pytest.approx(0.4)
    assert values["device_utilisation_max"] == 0.6
    assert values["device_memory_bytes_max"] == 400
    assert values["read_bytes_per_s_mean"] == 10.0
    assert values["last_at"] == 66.0
