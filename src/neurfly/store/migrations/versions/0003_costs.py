"""Budgets, their append-only audit log, and the controller's budget states.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("costs",)
depends_on = None

_APPEND_ONLY_MESSAGE = "budget_changes is append-only; record a new change instead"

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER budget_changes_no_update BEFORE UPDATE ON budget_changes
        BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END""",
    f"""CREATE TRIGGER budget_changes_no_delete BEFORE DELETE ON budget_changes
        BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY_MESSAGE}'); END""",
]

_POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION budget_changes_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '{_APPEND_ONLY_MESSAGE}'; END;
        $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER budget_changes_no_change BEFORE UPDATE OR DELETE ON budget_changes
        FOR EACH ROW EXECUTE FUNCTION budget_changes_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=127), nullable=False),
        sa.Column("team", sa.String(length=63), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Float(), nullable=True),
        sa.Column("period_end", sa.Float(), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("soft_limit_percent", sa.Float(), nullable=True),
        sa.Column("hard_limit_percent", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=127), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=127), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint("scope", name=op.f("uq_budgets_scope")),
    )
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budgets_team"), ["team"], unique=False)

    op.create_table(
        "budget_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=127), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=127), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_changes")),
    )
    with op.batch_alter_table("budget_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budget_changes_budget_id"), ["budget_id"], unique=False)

    op.create_table(
        "budget_states",
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Float(), nullable=False),
        sa.Column("spent_micros", sa.BigInteger(), nullable=False),
        sa.Column("forecast_micros", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"], ["budgets.id"], name=op.f("fk_budget_states_budget_id_budgets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("budget_id", name=op.f("pk_budget_states")),
    )

    for statement in _triggers(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS budget_changes_no_update")
        op.execute("DROP TRIGGER IF EXISTS budget_changes_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS budget_changes_no_change ON budget_changes")
        op.execute("DROP FUNCTION IF EXISTS budget_changes_append_only()")
    op.drop_table("budget_states")
    with op.batch_alter_table("budget_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_changes_budget_id"))
    op.drop_table("budget_changes")
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budgets_team"))
    op.drop_table("budgets")


def _triggers(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return _SQLITE_TRIGGERS
    if dialect == "postgresql":
        return _POSTGRESQL_TRIGGERS
    # NOTE: other databases get no trigger; the application never updates or deletes these rows.
    return []
