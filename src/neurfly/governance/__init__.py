"""Data governance: datasets and their versions, grants, residency, artifacts, lineage and audit.

A team owns its datasets and artifacts; another team uses them only through
an explicit, expiring grant. Every allow or deny decision is appended to the
audit log. A search on region-pinned data runs only on pools in those
regions, and a search that starts from an artifact is admitted only if its
team may use every dataset behind that artifact.
"""

import importlib
from typing import Any

# Public names and the modules that define them. They are imported on first
# use, so a trial's worker that reads data through ``neurfly.governance.loading``
# does not import the database and OpenLineage modules.
_EXPORTS = {
    "AccessDeniedError": "neurfly.governance.access",
    "Admission": "neurfly.governance.admission",
    "Artifact": "neurfly.governance.models",
    "ArtifactError": "neurfly.governance.artifacts",
    "ArtifactKind": "neurfly.governance.models",
    "AttemptInput": "neurfly.governance.models",
    "AuditAction": "neurfly.governance.models",
    "AuditEntry": "neurfly.governance.audit",
    "AuditRecord": "neurfly.governance.models",
    "Caller": "neurfly.governance.access",
    "DataRole": "neurfly.governance.models",
    "Dataset": "neurfly.governance.models",
    "DatasetError": "neurfly.governance.registry",
    "DatasetVersion": "neurfly.governance.models",
    "Decision": "neurfly.governance.models",
    "Exposure": "neurfly.governance.lineage",
    "GovernanceService": "neurfly.governance.service",
    "Grant": "neurfly.governance.models",
    "GrantNotFoundError": "neurfly.governance.access",
    "HashAlgorithm": "neurfly.governance.models",
    "LineageEmitter": "neurfly.governance.emitter",
    "LineageSettings": "neurfly.governance.emitter",
    "PoolsBusy": "neurfly.core.spec",
    "Ref": "neurfly.governance.access",
    "ResourceKind": "neurfly.governance.models",
    "SearchInput": "neurfly.governance.models",
    "Sensitivity": "neurfly.governance.models",
    "VersionInfo": "neurfly.governance.versions",
    "VersionSource": "neurfly.governance.models",
    "admit": "neurfly.governance.admission",
    "audit_trail": "neurfly.governance.audit",
    "check_artifact_use": "neurfly.governance.artifacts",
    "current_user": "neurfly.governance.access",
    "describe_dataset": "neurfly.governance.registry",
    "dvc_version": "neurfly.governance.versions",
    "exposures_of_artifact": "neurfly.governance.lineage",
    "exposures_of_checkpoint": "neurfly.governance.lineage",
    "exposures_of_trial": "neurfly.governance.lineage",
    "file_version": "neurfly.governance.versions",
    "find_artifact": "neurfly.governance.artifacts",
    "find_trial": "neurfly.governance.lineage",
    "find_version": "neurfly.governance.registry",
    "grant_access": "neurfly.governance.access",
    "lakefs_version": "neurfly.governance.versions",
    "list_artifacts": "neurfly.governance.artifacts",
    "list_datasets": "neurfly.governance.registry",
    "lineage_report": "neurfly.governance.report",
    "list_grants": "neurfly.governance.access",
    "parse_expiry": "neurfly.governance.access",
    "parse_ref": "neurfly.governance.access",
    "publish_artifact": "neurfly.governance.artifacts",
    "read_dataset": "neurfly.governance.registry",
    "register_version": "neurfly.governance.registry",
    "revoke_grant": "neurfly.governance.access",
    "sklearn_version": "neurfly.governance.versions",
    "update_dataset": "neurfly.governance.registry",
    "use_dataset": "neurfly.governance.registry",
    "versions_of": "neurfly.governance.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
