"""Cost attribution and budgets.

Metering turns attempt records into device-seconds per team, search and
pool (``metering``, pure). Pricing multiplies them by each pool's price and
billing weight, and reports idle devices apart (``report``, pure). The
controller's ``AccountingService`` accrues cost as attempts run and enforces
budgets. ``cost_report`` and ``budget_status`` are the read API for the CLI,
the REST API and monitoring.
"""

from neurfly.accounting.budgeting import (
    DEFAULT_THRESHOLDS,
    Basis,
    BudgetEvaluation,
    BudgetLevel,
    BudgetRule,
    Period,
    PeriodKind,
    month_period,
)
from neurfly.accounting.budgets import (
    BudgetError,
    BudgetStatus,
    budget_history,
    budget_status,
    list_budgets,
    remove_budget,
    set_budget,
)
from neurfly.accounting.export import report_csv_rows, report_to_dict
from neurfly.accounting.history import BudgetTimeline, budget_timeline
from neurfly.accounting.metering import AttemptRecord, Cause, MeteredAttempt, WasteReason, meter
from neurfly.accounting.models import Budget, BudgetChange, BudgetState
from neurfly.accounting.pricing import PoolRate, pool_rates
from neurfly.accounting.queries import cost_report, to_timestamp
from neurfly.accounting.report import CostReport, PoolLine, TeamLine, UsageLine, WasteLine, build_report
from neurfly.accounting.service import AccountingService

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AccountingService",
    "AttemptRecord",
    "Basis",
    "Budget",
    "BudgetChange",
    "BudgetError",
    "BudgetEvaluation",
    "BudgetLevel",
    "BudgetRule",
    "BudgetState",
    "BudgetStatus",
    "BudgetTimeline",
    "Cause",
    "CostReport",
    "MeteredAttempt",
    "Period",
    "PeriodKind",
    "PoolLine",
    "PoolRate",
    "TeamLine",
    "UsageLine",
    "WasteLine",
    "WasteReason",
    "budget_history",
    "budget_status",
    "budget_timeline",
    "build_report",
    "cost_report",
    "list_budgets",
    "meter",
    "month_period",
    "pool_rates",
    "remove_budget",
    "report_csv_rows",
    "report_to_dict",
    "set_budget",
    "to_timestamp",
]
