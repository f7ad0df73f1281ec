"""Behaviour of the ``cpu`` and ``cuda`` backends, with NVML replaced by a fake where a driver is needed."""

from __future__ import annotations

import types

import pytest

from neurfly.hardware import HardwareError
from neurfly.hardware import cuda as cuda_module
from neurfly.hardware.cpu import CpuBackend
from neurfly.hardware.cuda import CudaBackend

# -- cpu -----------------------------------------------------------------------------------------


def test_cpu_backend_has_requested_slots():
    backend = CpuBackend(slots=3)

    devices = backend.discover()

    assert [d.index for d in devices] == [0, 1, 2]


@pytest.mark.parametrize("slots", [0, -2, 1.5, True])
def test_cpu_backend_rejects_bad_slot_count(slots):
    with pytest.raises(ValueError, match="slots"):
        CpuBackend(slots=slots)


def test_cpu_launch_env_hides_gpus():
    environment = CpuBackend(slots=2).launch_env([1])

    assert environment["NEURFLY_DEVICE_SLOTS"] == "1"
    assert environment["CUDA_VISIBLE_DEVICES"] == ""
    assert int(environment["OMP_NUM_THREADS"]) >= 1


def test_cpu_launch_env_rejects_unknown_slot():
    with pytest.raises(ValueError, match="device index 2"):
        CpuBackend(slots=2).launch_env([2])


def test_cpu_utilisation_maps_slots_to_cpus(monkeypatch):
    monkeypatch.setattr("psutil.cpu_count", lambda logical=True: 4)
    monkeypatch.setattr("psutil.cpu_percent", lambda interval=None, percpu=True: [100.0, 0.0, 50.0, 50.0])
    backend = CpuBackend(slots=2)

    readings = backend.utilisation([0, 1])

    assert readings[0].utilisation == pytest.approx(0.75)
    assert readings[1].utilisation == pytest.approx(0.25)


# -- cuda ----------------------------------------------------------------------------------------


class _FakeNvmlError(Exception):
    pass


def _fake_nvml(devices: list[dict], init_error: Exception | None = None) -> types.SimpleNamespace:
    def init():
        if init_error is not None:
            raise init_error

    def handle(index):
        if not 0 <= index < len(devices):
            raise _FakeNvmlError(f"invalid index {index}")
        return devices[index]

    return types.SimpleNamespace(
        NVMLError=_FakeNvmlError,
        nvmlInit=init,
        nvmlDeviceGetCount=lambda: len(devices),
        nvmlDeviceGetHandleByIndex=handle,
        nvmlDeviceGetName=lambda h: h["name"],
        nvmlDeviceGetUUID=lambda h: h["uuid"],
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=h["total"], used=h["used"]),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=h["gpu"], memory=0),
    )


_GPUS = [
    {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-aaaa", "total": 80 * 2**30, "used": 2**30, "gpu": 87},
    {"name": b"NVIDIA H100 80GB HBM3", "uuid": b"GPU-bbbb", "total": 80 * 2**30, "used": 0, "gpu": 0},
]


def test_cuda_discovers_devices_through_nvml(monkeypatch):
    monkeypatch.setattr(cuda_module, "pynvml", _fake_nvml(_GPUS))

    devices = CudaBackend().discover()

    assert [d.index for d in devices] == [0, 1]
    assert devices[1].name == "NVIDIA H100 80GB HBM3"
    assert devices[1].uuid == "GPU-bbbb"
    assert devices[0].memory_total_bytes == 80 * 2**30


def test_cuda_reads_utilisation(monkeypatch):
    monkeypatch.setattr(cuda_module, "pynvml", _fake_nvml(_GPUS))

    readings = CudaBackend().utilisation([1, 0])

    assert [r.index for r in readings] == [1, 0]
    assert readings[1].utilisation == pytest.approx(0.87)
    assert readings[1].memory_used_bytes == 2**30


def test_cuda_unknown_device_raises_value_error(monkeypatch):
    monkeypatch.setattr(cuda_module, "pynvml", _fake_nvml(_GPUS))

    with pytest.raises(ValueError, match="device index 5"):
        CudaBackend().utilisation([5])


def test_cuda_without_driver_finds_nothing(monkeypatch):
    monkeypatch.setattr(cuda_module, "pynvml", _fake_nvml([], init_error=_FakeNvmlError("Driver Not Loaded")))
    backend = CudaBackend()

    assert backend.discover() == []
    with pytest.raises(HardwareError, match="install the NVIDIA driver"):
        backend.utilisation([0])


def test_cuda_without_package_finds_nothing(monkeypatch):
    monkeypatch.setattr(cuda_module, "pynvml", None)
    backend = CudaBackend()

    assert backend.discover() == []
    with pytest.raises(HardwareError, match="pip install nvidia-ml-py"):
        backend.utilisation([0])


def test_cuda_on_this_host_never_crashes():
    backend = CudaBackend()

    devices = backend.discover()

    if not devices:
        with pytest.raises(HardwareError):
            backend.utilisation([0])


def test_cuda_launch_env_orders_by_pci_bus():
    environment = CudaBackend().launch_env([2, 0])

    assert environment["CUDA_VISIBLE_DEVICES"] == "2,0"
    assert environment["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert environment["NEURFLY_DEVICE_SLOTS"] == "2,0"


def test_cuda_launch_env_uses_discovered_uuids(monkeypatch):
    monkeypatch.setattr(cuda_module, "pynvml", _fake_nvml(_GPUS))
    backend = CudaBackend()
    backend.discover()

    environment = backend.launch_env([1, 0])

    assert environment["CUDA_VISIBLE_DEVICES"] == "GPU-bbbb,GPU-aaaa"
    assert environment["NEURFLY_DEVICE_SLOTS"] == "1,0"
