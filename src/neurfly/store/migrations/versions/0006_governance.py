"""Data governance: datasets, versions, grants, artifacts, lineage inputs and the append-only audit log.

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = ("governance",)
depends_on = None

AUDIT = "data_access_audit"


def upgrade() -> None:
    _datasets()
    _grants_and_audit()
    _artifacts_and_inputs()
    _protect_audit()


def _datasets() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("sensitivity", sa.String(length=15), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("team", "name", name="uq_datasets_team_name"),
    )
    op.create_index(op.f("ix_datasets_team"), "datasets", ["team"], unique=False)
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=31), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=15), nullable=False),
        sa.Column("uri", sa.Text(), nullable=True),
        sa.Column("format", sa.String(length=15), nullable=True),
        sa.Column("label_column", sa.String(length=255), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_versions_dataset_id_datasets"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint("dataset_id", "algorithm", "digest", name="uq_dataset_versions_digest"),
    )
    op.create_index(op.f("ix_dataset_versions_dataset_id"), "dataset_versions", ["dataset_id"], unique=False)


def _grants_and_audit() -> None:
    op.create_table(
        "data_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_kind", sa.String(length=15), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=127), nullable=False),
        sa.Column("owner_team", sa.String(length=63), nullable=False),
        sa.Column("grantee_team", sa.String(length=63), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("granted_by", sa.String(length=63), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("revoked_by", sa.String(length=63), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_grants")),
    )
    op.create_index("ix_data_grants_resource", "data_grants", ["resource_kind", "resource_id"], unique=False)
    op.create_index(op.f("ix_data_grants_grantee_team"), "data_grants", ["grantee_team"], unique=False)
    op.create_table(
        AUDIT,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=63), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("action", sa.String(length=15), nullable=False),
        sa.Column("resource_kind", sa.String(length=15), nullable=False),
        sa.Column("resource", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=160), nullable=True),
        sa.Column("decision", sa.String(length=7), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_access_audit")),
    )
    op.create_index(op.f("ix_data_access_audit_at"), AUDIT, ["at"], unique=False)
    op.create_index(op.f("ix_data_access_audit_team"), AUDIT, ["team"], unique=False)
    op.create_index(op.f("ix_data_access_audit_resource"), AUDIT, ["resource"], unique=False)


def _artifacts_and_inputs() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=15), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=63), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("team", "name", "digest", name="uq_artifacts_team_name_digest"),
    )
    op.create_index(op.f("ix_artifacts_team"), "artifacts", ["team"], unique=False)
    op.create_table(
        "search_data_inputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=15), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=True),
        sa.Column("artifact_id", sa.Integer(), nullable=True),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["search_id"], ["searches.id"], name=op.f("fk_search_data_inputs_search_id_searches"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_version_id"], ["dataset_versions.id"], name=op.f("fk_search_data_inputs_dataset_version_id_dataset_versions")),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], name=op.f("fk_search_data_inputs_artifact_id_artifacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_data_inputs")),
        sa.UniqueConstraint("search_id", "role", name="uq_search_data_inputs_role"),
    )
    op.create_index(op.f("ix_search_data_inputs_search_id"), "search_data_inputs", ["search_id"], unique=False)
    op.create_table(
        "attempt_data_inputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=15), nullable=False),
        sa.Column("dataset_version_id", sa.Integer(), nullable=True),
        sa.Column("artifact_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], name=op.f("fk_attempt_data_inputs_attempt_id_attempts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempt_data_inputs")),
    )
    op.create_index(op.f("ix_attempt_data_inputs_attempt_id"), "attempt_data_inputs", ["attempt_id"], unique=False)


def _protect_audit() -> None:
    """Make the database itself reject UPDATE and DELETE on the audit log."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {AUDIT}_no_{statement.lower()} BEFORE {statement} ON {AUDIT} "
                f"BEGIN SELECT RAISE(ABORT, '{AUDIT} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {AUDIT}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{AUDIT} is append-only'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {AUDIT}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {AUDIT} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {AUDIT}_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {AUDIT}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {AUDIT}_no_delete")
    elif dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {AUDIT}_append_only ON {AUDIT}")
        op.execute(f"DROP FUNCTION IF EXISTS {AUDIT}_append_only()")
    for table in ("attempt_data_inputs", "search_data_inputs", "artifacts", AUDIT, "data_grants", "dataset_versions", "datasets"):
        op.drop_table(table)
