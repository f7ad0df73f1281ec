"""Resource sampling of a worker process tree, and folding samples into stored buckets.

``ProcessSampler`` is what an executor uses to sample its workers: CPU,
resident memory and disk I/O through psutil, and device load through the
``neurfly.hardware`` backend of the attempt's hardware. On a host without
the backend's driver the device part is left empty and the rest works.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from neurfly.core.detectors import DeviceSample, ResourceSample

_logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")

DeviceReader = Callable[[Sequence[int]], tuple[DeviceSample, ...]]
_readers: dict[str, DeviceReader | None] = {}


def device_reader(hardware: str) -> DeviceReader | None:
    """Return a function that reads the load of ``hardware`` devices, or ``None`` when there is none.

    ``cpu`` slots have no device of their own, so their load comes from the
    worker's CPU use instead. Other kinds use the registered hardware
    backend of that name, or NVML directly for ``cuda`` when the backend
    registry is not installed.
    """
    if hardware not in _readers:
        _readers[hardware] = None if hardware == "cpu" else _backend_reader(hardware)
    return _readers[hardware]


def _backend_reader(hardware: str) -> DeviceReader | None:
    try:
        from neurfly.hardware import HardwareError, backends
    except ImportError:
        return _nvml_reader() if hardware == "cuda" else None

    from neurfly.errors import NeurflyError

    try:
        backend = backends.get(hardware)()
    except NeurflyError as exc:
        _logger.warning("no hardware backend %r to read device load (%s); device utilisation is not sampled", hardware, exc)
        return None
    warned: list[bool] = []

    def read(slots: Sequence[int]) -> tuple[DeviceSample, ...]:
        try:
            readings = backend.utilisation(list(slots))
        except (HardwareError, ValueError) as exc:
            if not warned:
                warned.append(True)
                _logger.warning("reading %s devices %s failed (%s); device utilisation is not sampled", hardware, list(slots), exc)
            return ()
        return tuple(DeviceSample(r.index, r.utilisation, r.memory_used_bytes, r.memory_total_bytes) for r in readings)

    return read


def _nvml_reader() -> DeviceReader | None:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - no driver, no library or no device: sample without GPUs
        _logger.info("NVML is not available (%s); GPU utilisation is not sampled", exc)
        return None

    def read(slots: Sequence[int]) -> tuple[DeviceSample, ...]:
        samples = []
        try:
            for slot in slots:
                handle = pynvml.nvmlDeviceGetHandleByIndex(slot)
                rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                samples.append(DeviceSample(slot, rates.gpu / 100.0, int(memory.used), int(memory.total)))
        except pynvml.NVMLError as exc:
            _logger.debug("NVML read of slots %s failed: %s", list(slots), exc)
            return ()
        return tuple(samples)

    return read


class ProcessSampler:
    """Samples one worker process and its children.

    Args:
        pid: The worker's process id.
        hardware: The hardware kind of the attempt's pool.
        slots: The device slots the attempt holds.

    Raises:
        psutil.NoSuchProcess: The process is already gone.
    """

    def __init__(self, pid: int, hardware: str, slots: Sequence[int]) -> None:
        self.process = psutil.Process(pid)
        self.hardware = hardware
        self.slots = tuple(slots)
        self._reader = device_reader(hardware)
        self._last_io: tuple[float, int, int] | None = None
        # Only the worker is primed here, because listing its children reads
        # every process of the host and a launch must stay fast. Children
        # found at the first sample report 0 CPU until the next one.
        self._tree: dict[int, psutil.Process] = {pid: self.process}
        _cpu(self.process)

    def sample(self, attempt_id: int, now: float) -> ResourceSample | None:
        """Return the current resource use, or ``None`` when the worker has exited."""
        try:
            status = self.process.status()
            # A killed worker stays a zombie until it is reaped, with no memory to read.
            if status == psutil.STATUS_ZOMBIE:
                return None
            processes = self._tree_processes()
            cpu = sum(_cpu(p) for p in processes)
            memory = sum(_rss(p) for p in processes)
            blocked = status == psutil.STATUS_DISK_SLEEP
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        read_rate, write_rate = self._io_rates(processes, now)
        devices = self._devices(cpu)
        return ResourceSample(attempt_id, now, cpu, memory, memory_limit(self.process), read_rate, write_rate, blocked, devices)

    def _tree_processes(self) -> list[psutil.Process]:
        current = [self.process, *self.process.children(recursive=True)]
        known = {}
        for process in current:
            # cpu_percent needs the same Process object between calls; a new one returns 0.0 first.
            known[process.pid] = self._tree.get(process.pid, process)
        self._tree = known
        return list(known.values())

    def _io_rates(self, processes: list[psutil.Process], now: float) -> tuple[float | None, float | None]:
        read, written = 0, 0
        for process in processes:
            try:
                counters = process.io_counters()
            except (psutil.Error, AttributeError):
                continue
            read += counters.read_bytes
            written += counters.write_bytes
        previous, self._last_io = self._last_io, (now, read, written)
        if previous is None or now <= previous[0]:
            return None, None
        elapsed = now - previous[0]
        return max(0, read - previous[1]) / elapsed, max(0, written - previous[2]) / elapsed

    def _devices(self, cpu_percent: float) -> tuple[DeviceSample, ...]:
        if self._reader is not None:
            return self._reader(self.slots)
        if self.hardware != "cpu" or not self.slots:
            return ()
        # A cpu slot stands for a share of the CPUs, so its load is the worker's CPU use per slot.
        share = min(1.0, cpu_percent / 100.0 / len(self.slots))
        return tuple(DeviceSample(slot, share) for slot in self.slots)


def _cpu(process: psutil.Process) -> float:
    try:
        return process.cpu_percent(interval=None)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0.0


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return 0


def memory_limit(process: psutil.Process) -> int | None:
    """Return the lowest memory limit of ``process``: its address-space rlimit, its cgroup, or the host's memory."""
    limits = [psutil.virtual_memory().total]
    try:
        soft, _hard = process.rlimit(psutil.RLIMIT_AS)
        if soft not in (psutil.RLIM_INFINITY, -1) and soft > 0:
            limits.append(soft)
    except (psutil.Error, AttributeError, OSError):
        pass
    cgroup = _cgroup_memory_max(process.pid)
    if cgroup is not None:
        limits.append(cgroup)
    return min(limits)


def _cgroup_dir(pid: int) -> Path | None:
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return CGROUP_ROOT / line[3:].lstrip("/")
    return None


def _cgroup_memory_max(pid: int) -> int | None:
    folder = _cgroup_dir(pid)
    if folder is None:
        return None
    try:
        value = (folder / "memory.max").read_text().strip()
    except OSError:
        return None
    return int(value) if value.isdigit() else None


def oom_kill_count(pid: int | None = None) -> int | None:
    """Return the kernel's out-of-memory kill count of a process's cgroup (v2), or ``None`` where unreadable."""
    folder = _cgroup_dir(pid or os.getpid())
    if folder is None:
        return None
    try:
        lines = (folder / "memory.events").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(" ")
        if name == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


@dataclass
class Bucket:
    """Samples of one attempt within one time bucket, folded into means and maxima."""

    attempt_id: int
    start: float
    width_s: float
    samples: int = 0
    last_at: float = 0.0
    cpu_sum: float = 0.0
    cpu_max: float = 0.0
    memory_max: int = 0
    memory_limit: int | None = None
    device_sum: float = 0.0
    device_count: int = 0
    device_max: float | None = None
    device_memory_max: int | None = None
    device_memory_total: int | None = None
    read_sum: float = 0.0
    write_sum: float = 0.0
    io_count: int = 0
    row_id: int | None = None

    def add(self, sample: ResourceSample) -> None:
        self.samples += 1
        self.last_at = sample.at
        self.cpu_sum += sample.cpu_percent
        self.cpu_max = max(self.cpu_max, sample.cpu_percent)
        self.memory_max = max(self.memory_max, sample.memory_bytes)
        self.memory_limit = sample.memory_limit_bytes
        if sample.read_bytes_per_s is not None:
            self.read_sum += sample.read_bytes_per_s
            self.write_sum += sample.write_bytes_per_s or 0.0
            self.io_count += 1
        self._add_devices(sample)

    def _add_devices(self, sample: ResourceSample) -> None:
        utilisation = sample.device_utilisation
        if utilisation is None:
            return
        self.device_sum += utilisation
        self.device_count += 1
        self.device_max = utilisation if self.device_max is None else max(self.device_max, utilisation)
        used = [d.memory_used_bytes for d in sample.devices if d.memory_used_bytes is not None]
        if used:
            self.device_memory_max = max(self.device_memory_max or 0, sum(used))
            self.device_memory_total = sum(d.memory_total_bytes or 0 for d in sample.devices)

    def values(self) -> dict[str, object]:
        """Return the column values of the bucket's ``resource_samples`` row."""
        return {
            "bucket_start": self.start, "bucket_s": self.width_s, "samples": self.samples, "last_at": self.last_at,
            "cpu_percent_mean": self.cpu_sum / self.samples, "cpu_percent_max": self.cpu_max,
            "memory_bytes_max": self.memory_max, "memory_limit_bytes": self.memory_limit,
            "device_utilisation_mean": self.device_sum / self.device_count if self.device_count else None,
            "device_utilisation_max": self.device_max, "device_memory_bytes_max": self.device_memory_max,
            "device_memory_total_bytes": self.device_memory_total,
            "read_bytes_per_s_mean": self.read_sum / self.io_count if self.io_count else None,
            "write_bytes_per_s_mean": self.write_sum / self.io_count if self.io_count else None,
        }


__all__ = ["Bucket", "DeviceReader", "ProcessSampler", "device_reader", "memory_limit", "oom_kill_count"]
