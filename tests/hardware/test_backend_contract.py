"""The contract of ``HardwareBackend``, run over every registered backend."""

from __future__ import annotations

import pytest

from neurfly.hardware import DeviceInfo, DeviceReading, HardwareBackend, HardwareError, backends

BACKEND_NAMES = backends.names()


def test_builtin_backends_are_registered():
    assert "cpu" in BACKEND_NAMES
    assert "cuda" in BACKEND_NAMES


@pytest.fixture(params=BACKEND_NAMES)
def backend(request) -> HardwareBackend:
    plugin = backends.get(request.param)
    assert issubclass(plugin, HardwareBackend)
    return plugin()


def test_name_matches_registry(backend):
    assert backend.name in BACKEND_NAMES
    assert backends.get(backend.name) is type(backend)


def test_discover_lists_indexed_devices(backend):
    devices = backend.discover()

    assert isinstance(devices, list)
    assert all(isinstance(device, DeviceInfo) for device in devices)
    assert [device.index for device in devices] == list(range(len(devices)))
    for device in devices:
        assert device.name
        assert device.memory_total_bytes is None or device.memory_total_bytes > 0


def test_utilisation_reads_every_requested_device(backend):
    devices = backend.discover()
    if not devices:
        pytest.skip(f"no {backend.name} devices on this host")
    wanted = [device.index for device in reversed(devices)]

    readings = backend.utilisation(wanted)

    assert [reading.index for reading in readings] == wanted
    for reading in readings:
        assert isinstance(reading, DeviceReading)
        assert 0.0 <= reading.utilisation <= 1.0
        assert 0 <= reading.memory_used_bytes <= reading.memory_total_bytes


def test_utilisation_of_unknown_device_raises(backend):
    missing = len(backend.discover())

    with pytest.raises((ValueError, HardwareError)):
        backend.utilisation([missing])


def test_launch_env_pins_slots(backend):
    environment = backend.launch_env([0])

    assert environment
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in environment.items())


@pytest.mark.parametrize("slots", [[], [-1], [0, 0], ["0"]])
def test_launch_env_rejects_bad_slots(backend, slots):
    with pytest.raises(ValueError):
        backend.launch_env(slots)
