"""The ``cuda`` backend: NVIDIA GPUs read through NVML (the ``nvidia-ml-py`` package)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType

from neurfly.hardware.base import DeviceInfo, DeviceReading, HardwareBackend, HardwareError, check_known, check_slots

_logger = logging.getLogger(__name__)

try:
    import pynvml
except ImportError:  # The backend then reports no devices instead of breaking imports.
    pynvml = None


class CudaBackend(HardwareBackend):
    """NVIDIA GPUs of this host, indexed as NVML indexes them.

    NVML does not promise that its index order matches the CUDA runtime's
    (see ``nvmlDeviceGetIndex`` in the NVML API reference). So ``launch_env``
    names devices by UUID in ``CUDA_VISIBLE_DEVICES`` once ``discover`` has
    read them. Before that it passes indices with
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, which makes CUDA count devices in PCI
    bus order, the order nvidia-smi shows. Utilisation is NVML's ``gpu``
    rate: the fraction of the last sample period, between 1/6 s and 1 s
    depending on the product, in which a kernel ran.

    NVML is initialised on first use and stays initialised. Without the
    driver or the NVML library, ``discover`` returns no devices and
    ``utilisation`` raises ``HardwareError``.
    """

    name = "cuda"

    def __init__(self) -> None:
        self._ready = False
        self._uuids: dict[int, str] = {}

    def discover(self) -> list[DeviceInfo]:
        try:
            nvml = self._nvml()
            count = nvml.nvmlDeviceGetCount()
            devices = [self._info(nvml, index) for index in range(count)]
        except HardwareError as exc:
            _logger.info("no NVIDIA devices found: %s", exc)
            return []
        self._uuids = {device.index: device.uuid for device in devices if device.uuid}
        return devices

    def utilisation(self, device_ids: Sequence[int]) -> list[DeviceReading]:
        nvml = self._nvml()
        try:
            devices = check_known(device_ids, nvml.nvmlDeviceGetCount())
            return [self._reading(nvml, index) for index in devices]
        except nvml.NVMLError as exc:
            raise HardwareError(f"reading NVIDIA device utilisation through NVML failed: {exc}") from exc

    def launch_env(self, slots: Sequence[int]) -> dict[str, str]:
        values = check_slots(slots)
        indices = ",".join(str(slot) for slot in values)
        if all(slot in self._uuids for slot in values):
            visible = ",".join(self._uuids[slot] for slot in values)
        else:
            visible = indices
        return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": visible, "NEURFLY_DEVICE_SLOTS": indices}

    def _nvml(self) -> ModuleType:
        if pynvml is None:
            raise HardwareError("the nvidia-ml-py package is not installed; install it with `pip install nvidia-ml-py`")
        if not self._ready:
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as exc:
                raise HardwareError(
                    f"NVML could not start ({exc}); install the NVIDIA driver on this host or use the cpu backend"
                ) from exc
            self._ready = True
        return pynvml

    @staticmethod
    def _info(nvml: ModuleType, index: int) -> DeviceInfo:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        return DeviceInfo(index, _text(nvml.nvmlDeviceGetName(handle)), _text(nvml.nvmlDeviceGetUUID(handle)), int(memory.total))

    @staticmethod
    def _reading(nvml: ModuleType, index: int) -> DeviceReading:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        rates = nvml.nvmlDeviceGetUtilizationRates(handle)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        return DeviceReading(index, min(1.0, max(0.0, rates.gpu / 100.0)), int(memory.used), int(memory.total))


def _text(value: str | bytes) -> str:
    # Some nvidia-ml-py releases return bytes for names and UUIDs, so both are accepted.
    return value.decode() if isinstance(value, bytes) else value
