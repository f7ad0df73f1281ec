"""Prices per pool: the cluster's price per device-hour times a billing weight per hardware type."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from neurfly.accounting.money import to_decimal
from neurfly.core.cluster import ClusterConfig


@dataclass(frozen=True, slots=True)
class PoolRate:
    """Price per device-hour of one pool, and the number of devices it has.

    Attributes:
        pool: Pool name.
        hardware: Hardware type of the pool.
        devices: Devices in the pool (the sum over its nodes).
        list_price: ``price_per_device_hour`` from the cluster file.
        weight: Billing weight of the pool's hardware type (1 when unlisted).
        price_per_device_hour: ``list_price * weight``, what metering charges.
    """

    pool: str
    hardware: str
    devices: int
    list_price: Decimal
    weight: Decimal
    price_per_device_hour: Decimal


def pool_rates(cluster: ClusterConfig) -> dict[str, PoolRate]:
    """Return the rate of every pool of ``cluster``, by pool name."""
    rates = {}
    for pool in cluster.pools:
        list_price = to_decimal(pool.price_per_device_hour)
        weight = to_decimal(cluster.billing_weights.get(pool.hardware, 1.0))
        rates[pool.name] = PoolRate(pool.name, pool.hardware, pool.devices, list_price, weight, list_price * weight)
    return rates
