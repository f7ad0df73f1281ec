"""The ``cpu`` backend: simulated device slots on this host's CPUs."""

from __future__ import annotations

from collections.abc import Sequence

import psutil

from neurfly.hardware.base import DeviceInfo, DeviceReading, HardwareBackend, check_known, check_slots


class CpuBackend(HardwareBackend):
    """Treats each slot as a simulated device backed by a share of the CPUs.

    Slot ``i`` stands for the logical CPUs ``i, i + slots, i + 2 * slots, ...``
    (or for CPU ``i % cpus`` when there are more slots than CPUs), and for an
    equal share of the host's memory. Utilisation is the mean busy fraction
    of those CPUs since the previous ``utilisation`` call, as
    ``psutil.cpu_percent(percpu=True)`` measures it. The first reading covers
    the time since the backend was created.

    Args:
        slots: Number of simulated devices; ``None`` means one per logical CPU.

    Raises:
        ValueError: ``slots`` is less than 1.
    """

    name = "cpu"

    def __init__(self, slots: int | None = None) -> None:
        if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int) or slots < 1):
            raise ValueError(f"slots must be an integer of 1 or more, or None for one per CPU, got {slots!r}")

        self._cpus = psutil.cpu_count(logical=True) or 1
        self._slots = slots if slots is not None else self._cpus
        psutil.cpu_percent(interval=None, percpu=True)

    def discover(self) -> list[DeviceInfo]:
        share = psutil.virtual_memory().total // self._slots
        return [DeviceInfo(index, f"cpu slot {index}", None, share) for index in range(self._slots)]

    def utilisation(self, device_ids: Sequence[int]) -> list[DeviceReading]:
        devices = check_known(device_ids, self._slots)
        per_cpu = psutil.cpu_percent(interval=None, percpu=True) or [0.0] * self._cpus
        memory = psutil.virtual_memory()
        total = memory.total // self._slots
        used = min(total, (memory.total - memory.available) // self._slots)
        readings = []
        for device in devices:
            cpus = self._cpus_of(device, len(per_cpu))
            busy = sum(per_cpu[cpu] for cpu in cpus) / len(cpus) / 100.0
            readings.append(DeviceReading(device, min(1.0, max(0.0, busy)), used, total))
        return readings

    def launch_env(self, slots: Sequence[int]) -> dict[str, str]:
        values = check_slots(slots)
        check_known(values, self._slots)
        threads = sum(len(self._cpus_of(slot, self._cpus)) for slot in values)
        return {
            "NEURFLY_DEVICE_SLOTS": ",".join(str(slot) for slot in values),
            "OMP_NUM_THREADS": str(threads),
            # An empty list hides every GPU, so a cpu trial never takes one by accident.
            "CUDA_VISIBLE_DEVICES": "",
        }

    def _cpus_of(self, slot: int, cpus: int) -> list[int]:
        if self._slots >= cpus:
            return [slot % cpus]
        return list(range(slot, cpus, self._slots))
