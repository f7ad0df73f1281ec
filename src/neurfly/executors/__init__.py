"""Executors run attempts where the scheduling policy placed them."""

from neurfly.executors.base import Executor, executors
from neurfly.executors.protocol import LaunchSpec

__all__ = ["Executor", "LaunchSpec", "executors"]
