"""Fair-share factor of a team, after the Slurm multifactor formula.

Slurm's classic fair-share factor is ``F = 2 ** (-U / S)``, where ``U`` is the
team's share of all (decayed) usage and ``S`` its share of all weights. Teams
here form one flat level, so ``U`` is the plain normalised usage. A team that
used exactly its share gets ``F = 0.5``, an idle team ``F = 1`` and a team far
above its share tends to 0. Source: "Classic Fairshare Algorithm",
https://slurm.schedmd.com/classic_fair_share.html (the default of Slurm's
priority/multifactor plugin before Slurm 19.05 switched to Fair Tree).

Because ``U`` and ``S`` divide by totals that are the same for every team,
ranking teams by ``F`` (highest first) is the same as ranking them by
``usage / weight`` (lowest first). The policy compares that ratio directly,
which also keeps apart teams whose ``F`` underflows to 0.0.
"""

from __future__ import annotations

import math


def fair_share_factor(usage: float, weight: float, total_usage: float, total_weight: float) -> float:
    """Compute ``F = 2 ** (-U / S)`` for one team, never NaN.

    Args:
        usage: The team's decayed usage in device-seconds, 0 or more.
        weight: The team's fair-share weight, 0 or more.
        total_usage: Sum of ``usage`` over all teams.
        total_weight: Sum of ``weight`` over all teams.

    Returns:
        A value in ``[0, 1]``: 0 for a team of weight 0, 1 for a team with a
        positive weight when nobody has used anything yet.

    Raises:
        ValueError: A value is negative, infinite or NaN, or a team's value
            is larger than its total.
    """
    for name, value in (("usage", usage), ("weight", weight), ("total_usage", total_usage), ("total_weight", total_weight)):
        _check_non_negative(name, value)
    if usage > total_usage or weight > total_weight:
        raise ValueError(
            f"a team's usage and weight must not exceed their totals, got usage={usage!r} of {total_usage!r} "
            f"and weight={weight!r} of {total_weight!r}"
        )

    if weight == 0 or total_weight == 0:
        return 0.0
    if total_usage == 0:
        return 1.0

    normalised_usage = usage / total_usage
    normalised_share = weight / total_weight
    if normalised_share == 0:
        # The share underflowed: the weight is negligible next to the total.
        return 0.0 if normalised_usage > 0 else 1.0
    return 2.0 ** (-normalised_usage / normalised_share)


def fair_share_rank(usage: float, weight: float) -> tuple[bool, float]:
    """Return a sort key that orders teams by descending fair-share factor.

    Teams of weight 0 sort after every team with a positive weight, and among
    themselves by usage, so no division by 0 happens.
    """
    if weight == 0:
        return (True, usage)
    return (False, usage / weight)


def check_team_values(name: str, weight: float, usage: float) -> None:
    """Raise ``ValueError`` unless a team's weight and decayed usage are finite and 0 or more."""
    _check_non_negative(f"team {name!r} weight", weight)
    _check_non_negative(f"team {name!r} decayed_usage", usage)


def _check_non_negative(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of 0 or more, got {value!r}")
