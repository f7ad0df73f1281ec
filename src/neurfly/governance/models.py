"""Tables and enums of data governance: datasets, versions, grants, artifacts, lineage, audit.

The schema is created by the Alembic migration ``0006`` (branch ``governance``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from neurfly.store.models import Base


class Sensitivity(str, Enum):
    """Protection class of a dataset, from least to most protected.

    * ``public``: every team may see and use it without a grant.
    * ``internal``: every team may see it; use by another team needs a grant.
    * ``confidential`` and ``restricted``: invisible to other teams, and
      unusable by them, without a grant. A grant on a restricted dataset
      must carry an expiry of at most ``MAX_RESTRICTED_GRANT_DAYS`` days.
    """

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"

    @property
    def visible_to_all(self) -> bool:
        return self in (Sensitivity.PUBLIC, Sensitivity.INTERNAL)


class DataRole(str, Enum):
    """The role an input plays for an attempt."""

    TRAINING = "training"
    VALIDATION = "validation"
    WARM_START = "warm_start"
    CHECKPOINT = "checkpoint"


# Roles a grant can allow; a checkpoint of a trial is always its own team's.
GRANTABLE_ROLES = (DataRole.TRAINING, DataRole.VALIDATION, DataRole.WARM_START)


class VersionSource(str, Enum):
    """Origin of a dataset version, which also identifies who computed its id."""

    FILE = "file"
    SKLEARN = "sklearn"
    DVC = "dvc"
    LAKEFS = "lakefs"


class HashAlgorithm(str, Enum):
    """Method that computed a version id. Ids of different algorithms are never compared.

    * ``sha256``: SHA-256 of the file's bytes, computed by NeurFly.
    * ``sha256-ndarray``: SHA-256 of the feature and label arrays of a bundled
      scikit-learn set, with their dtypes and shapes.
    * ``md5``: the md5 that DVC recorded in a ``.dvc`` file or ``dvc.lock``.
    * ``lakefs-commit``: a lakeFS commit id.
    """

    SHA256 = "sha256"
    SHA256_NDARRAY = "sha256-ndarray"
    MD5 = "md5"
    LAKEFS_COMMIT = "lakefs-commit"


class ResourceKind(str, Enum):
    DATASET = "dataset"
    ARTIFACT = "artifact"
    # A trial's lineage; only audit records name trials.
    TRIAL = "trial"


class ArtifactKind(str, Enum):
    """Content kind of a published artifact."""

    CHECKPOINT = "checkpoint"
    MODEL = "model"
    SUPERNET = "supernet"


class AuditAction(str, Enum):
    REGISTER = "register"
    LIST = "list"
    READ = "read"
    TRAINING = "training"
    VALIDATION = "validation"
    WARM_START = "warm_start"
    PLACE = "place"
    CROSS = "cross"
    GRANT = "grant"
    REVOKE = "revoke"
    PUBLISH = "publish"
    LINEAGE = "lineage"


class Decision(str, Enum):
    ALLOW = "allow"
    DENY = "deny"


class Dataset(Base):
    """A logical dataset owned by a team."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("team", "name", name="uq_datasets_team_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    sensitivity: Mapped[str] = mapped_column(String(15))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Regions the data may be processed in; empty means any region.
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(63))

    @property
    def ref(self) -> str:
        return f"{self.team}/{self.name}"


class DatasetVersion(Base):
    """An immutable version of a dataset: ``algorithm:digest`` plus where to read it."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "algorithm", "digest", name="uq_dataset_versions_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    algorithm: Mapped[str] = mapped_column(String(31))
    digest: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(15))
    uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    format: Mapped[str | None] = mapped_column(String(15), nullable=True)
    label_column: Mapped[str | None] = mapped_column(String(255), nullable=True)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(63))

    @property
    def version(self) -> str:
        return f"{self.algorithm}:{self.digest}"


class Grant(Base):
    """A team's permission to use another team's dataset or artifact in some roles."""

    __tablename__ = "data_grants"
    __table_args__ = (Index("ix_data_grants_resource", "resource_kind", "resource_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_kind: Mapped[str] = mapped_column(String(15))
    resource_id: Mapped[int] = mapped_column(Integer)
    resource: Mapped[str] = mapped_column(String(127))
    owner_team: Mapped[str] = mapped_column(String(63))
    grantee_team: Mapped[str] = mapped_column(String(63), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    granted_by: Mapped[str] = mapped_column(String(63))
    granted_at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(63), nullable=True)

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuditRecord(Base):
    """One allow or deny decision about data. Append-only: no code path updates or deletes a row.

    The migration adds database triggers that reject UPDATE and DELETE on
    this table, and a ``before_flush`` listener below rejects ORM changes to
    a loaded row before they reach the database.
    """

    __tablename__ = "data_access_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(63))
    team: Mapped[str] = mapped_column(String(63), index=True)
    action: Mapped[str] = mapped_column(String(15))
    resource_kind: Mapped[str] = mapped_column(String(15))
    resource: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str | None] = mapped_column(String(160), nullable=True)
    decision: Mapped[str] = mapped_column(String(7))
    reason: Mapped[str] = mapped_column(Text)
    search_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@event.listens_for(Session, "before_flush")
def _reject_audit_changes(session: Session, _context: object, _instances: object) -> None:
    """Stop a flush that would update or delete an audit row."""
    for instance in (*session.dirty, *session.deleted):
        if isinstance(instance, AuditRecord) and (instance in session.deleted or session.is_modified(instance)):
            raise PermissionError(f"audit record {instance.id} is append-only; it cannot be changed or deleted")


class Artifact(Base):
    """A trial's checkpoint published under a name, with the provenance of the data behind it."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("team", "name", "digest", name="uq_artifacts_team_name_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team: Mapped[str] = mapped_column(String(63), index=True)
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(15))
    uri: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(80))
    checkpoint_id: Mapped[int] = mapped_column(Integer)
    search_id: Mapped[int] = mapped_column(Integer)
    trial_id: Mapped[int] = mapped_column(Integer)
    attempt_id: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    # Every dataset version behind the checkpoint, with its role and the chain of artifacts it came through.
    provenance: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(63))

    @property
    def ref(self) -> str:
        return f"{self.team}/{self.name}@{self.digest}"


class SearchInput(Base):
    """A dataset version or artifact a search was admitted with, pinned at submission."""

    __tablename__ = "search_data_inputs"
    __table_args__ = (UniqueConstraint("search_id", "role", name="uq_search_data_inputs_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(15))
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), nullable=True)
    artifact_id: Mapped[int | None] = mapped_column(ForeignKey("artifacts.id"), nullable=True)
    # Regions the search may run in, after every dataset behind it was checked; empty means any.
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)


class AttemptInput(Base):
    """A registered dataset version or artifact that an attempt was launched with, by role.

    The checkpoint an attempt resumes from is ``attempts.checkpoint_in_id``,
    and the data versions the trial itself reported are
    ``attempts.data_versions``. This table adds the inputs the platform passed in.
    """

    __tablename__ = "attempt_data_inputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    search_id: Mapped[int] = mapped_column(Integer)
    trial_id: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(15))
    dataset_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    artifact_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recorded_at: Mapped[float] = mapped_column(Float)
