"""Failure classification: each failed attempt gets a class, a cause and evidence."""

from __future__ import annotations

import pytest

from neurfly.core.detectors import ResourceSample
from neurfly.monitoring.failures import FailureCategory, FailureFacts, classify_failure

NEAR_LIMIT = ResourceSample(1, 100.0, 50.0, memory_bytes=950, memory_limit_bytes=1000)
FAR_FROM_LIMIT = ResourceSample(1, 100.0, 50.0, memory_bytes=100, memory_limit_bytes=1000)


@pytest.mark.parametrize(
    ("facts", "category", "cause"),
    [
        (FailureFacts("failed", "user", "RuntimeError: boom"), FailureCategory.USER_CODE, "exception:RuntimeError"),
        (FailureFacts("failed", "user", "ModuleNotFoundError: No module named 'trainer'"), FailureCategory.CONFIGURATION, "entrypoint_import"),
        (FailureFacts("failed", "user", "the trial returned without reporting the objective metric 'acc'; call ..."),
         FailureCategory.CONFIGURATION, "objective_not_reported"),
        (FailureFacts("failed", "data", "DataError: column 'y' missing", dataset="s3://d"), FailureCategory.DATA, "data_error"),
        (FailureFacts("failed", "infrastructure", "worker process killed by signal 9"), FailureCategory.INFRASTRUCTURE, "killed_by_SIGKILL"),
        (FailureFacts("failed", "infrastructure", "worker process killed by signal 9", last_sample=NEAR_LIMIT),
         FailureCategory.INFRASTRUCTURE, "out_of_memory"),
        (FailureFacts("failed", "infrastructure", "worker process killed by signal 9", last_sample=FAR_FROM_LIMIT, oom_kills=1),
         FailureCategory.INFRASTRUCTURE, "out_of_memory"),
        (FailureFacts("failed", "infrastructure", "worker process killed by signal 15", last_sample=NEAR_LIMIT),
         FailureCategory.INFRASTRUCTURE, "killed_by_SIGTERM"),
        (FailureFacts("failed", "infrastructure", "worker lost its controller"), FailureCategory.INFRASTRUCTURE, "worker_lost"),
        (FailureFacts("lost", "infrastructure", "the controller stopped before this attempt ended"), FailureCategory.INFRASTRUCTURE, "worker_lost"),
        (FailureFacts("failed", "infrastructure", "launch failed: no fork server"), FailureCategory.INFRASTRUCTURE, "launch_failed"),
        (FailureFacts("failed", "infrastructure", "worker process exited with status 3 without a result"),
         FailureCategory.INFRASTRUCTURE, "worker_exited"),
        (FailureFacts("failed", "timeout", "report timeout"), FailureCategory.USER_CODE, "report_timeout"),
        (FailureFacts("failed", "timeout", "report timeout", io_stalled=True), FailureCategory.INFRASTRUCTURE, "io_stalled"),
    ],
)
def test_failure_classes(facts: FailureFacts, category: FailureCategory, cause: str) -> None:
    result = classify_failure(facts)

    assert result.category is category
    assert result.cause == cause
    assert result.evidence["reason"] == facts.reason


def test_memory_evidence_recorded() -> None:
    result = classify_failure(FailureFacts("failed", "infrastructure", "worker process killed by signal 9", last_sample=NEAR_LIMIT, oom_kills=0))

    assert result.evidence["last_memory_bytes"] == 950
    assert result.evidence["memory_limit_bytes"] == 1000
    assert result.evidence["oom_kills"] == 0


def test_data_failure_names_dataset() -> None:
    result = classify_failure(FailureFacts("failed", "data", "DataError: empty", dataset="sklearn:digits"))

    assert result.evidence["dataset"] == "sklearn:digits"
    assert result.evidence["exception"] == "DataError"


def test_registered_dataset_owner_wins(store) -> None:
    from neurfly.governance.models import Dataset
    from neurfly.monitoring.service import _registered_owner

    with store.session() as session:
        session.add(Dataset(team="data-eng", name="images", sensitivity="internal", tags=[], regions=[], description="",
                            created_at=0.0, created_by="alice"))
        session.commit()
        registered = _registered_owner(session, "data-eng/images@v3")
        unregistered = _registered_owner(session, "data-eng/other")
        not_a_reference = _registered_owner(session, "sklearn:digits")

    assert registered == "data-eng"
    assert unregistered is None
    assert not_a_reference is None
