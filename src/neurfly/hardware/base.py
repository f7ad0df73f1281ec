"""The hardware backend extension point."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from neurfly.errors import NeurflyError
from neurfly.registry import Registry


class HardwareError(NeurflyError):
    """A backend cannot reach its devices, for example because their driver is missing."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One local device as a backend discovered it.

    Attributes:
        index: The device's slot number on this host, 0-based; ``launch_env``
            and ``utilisation`` take these numbers.
        name: The product name, for example ``"NVIDIA H100 80GB HBM3"``.
        uuid: A stable identifier across reboots, or ``None`` when the
            backend has none.
        memory_total_bytes: Memory of the device in bytes, or ``None`` when unknown.
    """

    index: int
    name: str
    uuid: str | None = None
    memory_total_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """Utilisation of one device at one moment.

    Attributes:
        index: The device's slot number, as in ``DeviceInfo.index``.
        utilisation: Fraction of time the device was busy, from 0.0 to 1.0,
            over the backend's sampling period.
        memory_used_bytes: Memory in use on the device, in bytes.
        memory_total_bytes: Memory of the device, in bytes.
    """

    index: int
    utilisation: float
    memory_used_bytes: int
    memory_total_bytes: int


class HardwareBackend(ABC):
    """Knows how to find a kind of device on this host, read its load and pin a worker to it.

    A pool's ``hardware`` names the backend that serves it, so the executor
    uses the backend of the pool a trial was placed in.

    Contract:
        * ``name`` is the registry name and the pool ``hardware`` value it serves.
        * The constructor takes no required arguments and never touches the
          devices, so importing and creating a backend works on any host,
          including one without the backend's driver.
        * ``discover()`` returns the devices of this host, ordered by
          ``index`` with indices ``0..n-1``, or an empty list when the
          backend's driver or library is missing. It raises nothing for a
          missing driver.
        * ``utilisation(device_ids)`` returns one ``DeviceReading`` per
          requested index, in the order requested. It raises ``ValueError``
          for an index that ``discover()`` does not list, and
          ``HardwareError`` when the devices cannot be read.
        * ``launch_env(slots)`` returns the environment variables (names and
          values are strings) that restrict a worker process to the devices
          at those indices, for example ``CUDA_VISIBLE_DEVICES``. It does no
          I/O and raises ``ValueError`` for an empty, negative or repeated
          slot list, or for an index that the backend has no device for.
        * Methods may be called from one thread at a time; a caller that
          polls from several threads must lock around the backend.
    """

    name: ClassVar[str] = ""

    @abstractmethod
    def discover(self) -> list[DeviceInfo]:
        """Return the devices of this kind on this host; empty when the driver is missing."""

    @abstractmethod
    def utilisation(self, device_ids: Sequence[int]) -> list[DeviceReading]:
        """Read the current load of the devices at ``device_ids``.

        Raises:
            ValueError: An index is not a discovered device.
            HardwareError: The devices cannot be read.
        """

    @abstractmethod
    def launch_env(self, slots: Sequence[int]) -> dict[str, str]:
        """Return the environment variables that pin a worker to ``slots``.

        Raises:
            ValueError: ``slots`` is empty, or has a negative or repeated index.
        """


def check_slots(slots: Sequence[int]) -> tuple[int, ...]:
    """Return ``slots`` as a tuple after checking they are distinct indices, 0 or more.

    Raises:
        ValueError: ``slots`` is empty, or has a negative, repeated or non-integer index.
    """
    values = tuple(slots)
    if not values:
        raise ValueError("slots must name at least one device index, got an empty sequence")
    for slot in values:
        if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
            raise ValueError(f"slots must be integers of 0 or more, got {slot!r} in {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"slots must be distinct, got {values}")
    return values


def check_known(device_ids: Sequence[int], known: int) -> tuple[int, ...]:
    """Return ``device_ids`` as a tuple after checking each is an index below ``known``.

    Raises:
        ValueError: An index is not an integer from 0 to ``known - 1``.
    """
    values = tuple(device_ids)
    for device in values:
        if isinstance(device, bool) or not isinstance(device, int) or not 0 <= device < known:
            raise ValueError(f"device index {device!r} is not one of the {known} discovered device(s) 0..{known - 1}")
    return values


backends: Registry[HardwareBackend] = Registry("neurfly.hardware", "hardware backend")
