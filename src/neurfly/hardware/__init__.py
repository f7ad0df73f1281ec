"""Hardware backends: find local devices, read their load, and pin workers to them."""

from neurfly.hardware.base import DeviceInfo, DeviceReading, HardwareBackend, HardwareError, backends

__all__ = ["DeviceInfo", "DeviceReading", "HardwareBackend", "HardwareError", "backends"]
