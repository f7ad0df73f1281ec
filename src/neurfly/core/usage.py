"""Device usage decayed with a half-life, as fair share reads it.

A team's decayed usage at time ``t`` is the sum over every device-second it
used at time ``s <= t`` of ``0.5 ** ((t - s) / half_life_s)``. The controller
(on wall time) and the simulator (on simulated time) both fill
``Team.decayed_usage`` with it, so both feed the policy the same number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

_LN2 = math.log(2.0)


def decay(usage: float, elapsed_s: float, half_life_s: float) -> float:
    """Decay ``usage`` over ``elapsed_s`` seconds.

    Args:
        usage: Decayed device-seconds as of the start of the interval.
        elapsed_s: Length of the interval in seconds, 0 or more.
        half_life_s: Time in seconds after which usage counts half, more than 0.

    Returns:
        The usage as of the end of the interval.

    Raises:
        ValueError: ``elapsed_s`` is negative or ``half_life_s`` is not positive.
    """
    _check_interval(elapsed_s, half_life_s)

    return usage * 0.5 ** (elapsed_s / half_life_s)


def accrue(devices: float, elapsed_s: float, half_life_s: float) -> float:
    """Return the decayed usage of ``devices`` held for ``elapsed_s`` seconds, as of the end.

    This is the exact integral of ``devices * 0.5 ** ((end - s) / half_life_s)``
    over the interval, so accruing in many short steps gives the same value as
    one long step.

    Raises:
        ValueError: ``devices`` or ``elapsed_s`` is negative, or ``half_life_s`` is not positive.
    """
    _check_interval(elapsed_s, half_life_s)
    if devices < 0:
        raise ValueError(f"devices must be 0 or more, got {devices}")

    if elapsed_s == 0 or devices == 0:
        return 0.0
    return devices * half_life_s / _LN2 * -math.expm1(-elapsed_s * _LN2 / half_life_s)


def _check_interval(elapsed_s: float, half_life_s: float) -> None:
    if elapsed_s < 0:
        raise ValueError(f"elapsed_s must be 0 or more, got {elapsed_s}")
    if half_life_s <= 0:
        raise ValueError(f"half_life_s must be more than 0, got {half_life_s}")


class UsageAccumulator:
    """Decayed usage per team, advanced in time by its owner.

    The owner calls ``advance(now, devices_by_team)`` whenever a team's device
    count changes, passing the counts in force since the previous call. It
    may also add lump sums with ``add``, such as an attempt's device-seconds
    reported at its end. Values are as of ``now``, the time of the last ``advance``.

    Args:
        half_life_s: Half-life of usage in seconds, more than 0.
        start: Time of the first interval, in seconds on the owner's clock.

    Raises:
        ValueError: ``half_life_s`` is not positive.
    """

    def __init__(self, half_life_s: float, start: float = 0.0) -> None:
        if half_life_s <= 0:
            raise ValueError(f"half_life_s must be more than 0, got {half_life_s}")
        self.half_life_s = half_life_s
        self.now = start
        self._usage: dict[str, float] = {}

    def advance(self, now: float, devices_by_team: Mapping[str, float] | None = None) -> None:
        """Decay every team's usage to ``now`` and accrue the devices held since the last call.

        Raises:
            ValueError: ``now`` is earlier than the last call.
        """
        elapsed = now - self.now
        if elapsed < 0:
            raise ValueError(f"time must not go backwards: now={now} is before {self.now}")

        if elapsed > 0:
            factor = 0.5 ** (elapsed / self.half_life_s)
            for team in self._usage:
                self._usage[team] *= factor
            for team, devices in (devices_by_team or {}).items():
                if devices:
                    self._usage[team] = self._usage.get(team, 0.0) + accrue(devices, elapsed, self.half_life_s)
        self.now = now

    def add(self, team: str, device_seconds: float, at: float | None = None) -> None:
        """Add ``device_seconds`` used at time ``at`` (default: now), decayed to now.

        Raises:
            ValueError: ``device_seconds`` is negative or ``at`` is after now.
        """
        if device_seconds < 0:
            raise ValueError(f"device_seconds must be 0 or more, got {device_seconds}")
        when = self.now if at is None else at
        if when > self.now:
            raise ValueError(f"usage at {when} is after the accumulator's time {self.now}; advance first")

        self._usage[team] = self._usage.get(team, 0.0) + decay(device_seconds, self.now - when, self.half_life_s)

    def usage(self, team: str) -> float:
        """Return the team's decayed device-seconds as of now (0 for a team never seen)."""
        return self._usage.get(team, 0.0)

    def teams(self) -> Iterable[str]:
        return self._usage.keys()


__all__ = ["UsageAccumulator", "accrue", "decay"]
