"""Monitoring: alerts with an owner, raised by detectors, budgets and failure analysis.

The controller runs ``neurfly.monitoring.service.MonitoringService``;
``neurfly.monitoring.metrics`` serves Prometheus metrics of a store.
"""

from neurfly.monitoring.alerts import (
    Alert,
    AlertCategory,
    AlertState,
    Severity,
    acknowledge_alert,
    raise_alert,
    resolve_alert,
    resolve_key,
)
from neurfly.monitoring.failures import FailureCategory, FailureClass, FailureFacts, classify_failure
from neurfly.monitoring.records import AttemptFailure, Delivery, DeliveryReason, DeliveryState, ResourceBucket

__all__ = [
    "Alert",
    "AlertCategory",
    "AlertState",
    "AttemptFailure",
    "Delivery",
    "DeliveryReason",
    "DeliveryState",
    "FailureCategory",
    "FailureClass",
    "FailureFacts",
    "ResourceBucket",
    "Severity",
    "acknowledge_alert",
    "classify_failure",
    "raise_alert",
    "resolve_alert",
    "resolve_key",
]
