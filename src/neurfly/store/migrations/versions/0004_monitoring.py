"""Monitoring: alert acknowledgement and escalation, deliveries, failure classes, resource samples.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _add_alert_columns()
    _create_deliveries()
    _create_failures()
    _create_resource_samples()


def _add_alert_columns() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("escalated_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("escalated_to", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("notify_round", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("notified_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("notified_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index("ix_alerts_state", ["state"], unique=False)


def _create_deliveries() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=15), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=15), nullable=False),
        sa.Column("route", sa.String(length=63), nullable=False),
        sa.Column("notifier", sa.String(length=31), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=15), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_deliveries_alert_id_alerts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("alert_id", "reason", "round", "party", "route", name="uq_alert_deliveries_round"),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["state", "next_try_at"], unique=False)
    op.create_index(op.f("ix_alert_deliveries_alert_id"), "alert_deliveries", ["alert_id"], unique=False)


def _create_failures() -> None:
    op.create_table(
        "attempt_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("category", sa.String(length=31), nullable=False),
        sa.Column("cause", sa.String(length=63), nullable=False),
        sa.Column("owner", sa.String(length=63), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("classified_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], name=op.f("fk_attempt_failures_attempt_id_attempts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempt_failures")),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_attempt_failures_attempt_id")),
    )
    op.create_index(op.f("ix_attempt_failures_search_id"), "attempt_failures", ["search_id"], unique=False)
    op.create_index(op.f("ix_attempt_failures_team"), "attempt_failures", ["team"], unique=False)


def _create_resource_samples() -> None:
    op.create_table(
        "resource_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sa.Float(), nullable=False),
        sa.Column("bucket_s", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("cpu_percent_mean", sa.Float(), nullable=False),
        sa.Column("cpu_percent_max", sa.Float(), nullable=False),
        sa.Column("memory_bytes_max", sa.BigInteger(), nullable=False),
        sa.Column("memory_limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("device_utilisation_mean", sa.Float(), nullable=True),
        sa.Column("device_utilisation_max", sa.Float(), nullable=True),
        sa.Column("device_memory_bytes_max", sa.BigInteger(), nullable=True),
        sa.Column("device_memory_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("read_bytes_per_s_mean", sa.Float(), nullable=True),
        sa.Column("write_bytes_per_s_mean", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], name=op.f("fk_resource_samples_attempt_id_attempts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_samples")),
        sa.UniqueConstraint("attempt_id", "bucket_start", name="uq_resource_samples_bucket"),
    )
    op.create_index(op.f("ix_resource_samples_attempt_id"), "resource_samples", ["attempt_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_resource_samples_attempt_id"), table_name="resource_samples")
    op.drop_table("resource_samples")
    op.drop_index(op.f("ix_attempt_failures_team"), table_name="attempt_failures")
    op.drop_index(op.f("ix_attempt_failures_search_id"), table_name="attempt_failures")
    op.drop_table("attempt_failures")
    op.drop_index(op.f("ix_alert_deliveries_alert_id"), table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_due", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_state")
        for column in ("notified_count", "notified_at", "notify_round", "escalated_to", "escalated_at", "escalation_level",
                       "resolved_by", "resolved_at", "acknowledged_by", "acknowledged_at", "attempt_id"):
            batch_op.drop_column(column)
