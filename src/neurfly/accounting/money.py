"""Money as integer micro-units, so totals add up exactly.

One micro-unit is a millionth of the currency unit the cluster file's prices
are written in. Every cost is rounded once, half to even, when it is
computed from device-seconds; sums of costs are exact integer sums.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
SECONDS_PER_HOUR = 3600

_ONE = Decimal(1)
_CENT_MICROS = 10_000


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Convert a number to a ``Decimal`` through its shortest text form, so 0.8 stays 0.8."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def parse_amount(text: str | float | int | Decimal) -> int:
    """Parse an amount of money such as ``"1250.50"`` into micro-units.

    Raises:
        ValueError: ``text`` is not a finite number, or has more than six decimals.
    """
    try:
        amount = to_decimal(text.strip() if isinstance(text, str) else text)
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a number; write it like 1250 or 1250.50") from None
    if not amount.is_finite():
        raise ValueError(f"amount {text!r} is not a finite number; write it like 1250 or 1250.50")
    micros = amount * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise ValueError(f"amount {text!r} has more than 6 decimals; round it to at most 6")
    return int(micros)


def cost_micros(device_seconds: Decimal, price_per_device_hour: Decimal) -> int:
    """Return the cost of ``device_seconds`` at ``price_per_device_hour``, rounded half to even to micro-units."""
    exact = device_seconds * price_per_device_hour * MICROS_PER_UNIT / SECONDS_PER_HOUR
    return int(exact.quantize(_ONE, rounding=ROUND_HALF_EVEN))


def micros_to_decimal(micros: int) -> Decimal:
    """Return ``micros`` as a ``Decimal`` amount with six decimals."""
    return Decimal(micros).scaleb(-6)


def format_micros(micros: int, places: int = 2) -> str:
    """Format ``micros`` as an amount with ``places`` decimals (rounded half to even), e.g. ``"12.35"``."""
    if not 0 <= places <= 6:
        raise ValueError(f"places must be between 0 and 6, got {places}")
    return str(micros_to_decimal(micros).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))


def format_money(micros: int) -> str:
    """Format ``micros`` for people: two decimals from one unit up, up to six below it (``"0.0025"``)."""
    if abs(micros) >= MICROS_PER_UNIT:
        return format_micros(micros, 2)
    text = format_micros(micros, 6).rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def round_to_cents(micros: int) -> int:
    """Round ``micros`` half to even to a whole number of cents, still in micro-units."""
    cents = (Decimal(micros) / _CENT_MICROS).quantize(_ONE, rounding=ROUND_HALF_EVEN)
    return int(cents) * _CENT_MICROS


def split_proportionally(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` micro-units over ``weights`` by the largest-remainder method.

    The parts add up to ``total`` exactly. Ties in the remainder go to the
    key that sorts first, so the split is deterministic.

    Raises:
        ValueError: A weight is negative, or every weight is 0.
    """
    if any(weight < 0 for weight in weights.values()):
        raise ValueError(f"weights must be 0 or more, got {weights}")
    whole = sum(weights.values())
    if whole <= 0:
        raise ValueError(f"at least one weight must be more than 0, got {weights}")

    floors = {key: total * weight // whole for key, weight in weights.items()}
    remainders = {key: total * weight - floors[key] * whole for key, weight in weights.items()}
    left = total - sum(floors.values())
    for key in sorted(weights, key=lambda k: (-remainders[k], k))[:left]:
        floors[key] += 1
    return floors
