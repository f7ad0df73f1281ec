"""Monitoring: alerts with an owner, raised by detectors, budgets and failure analysis."""
