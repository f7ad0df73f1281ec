"""Initial schema: searches, trials, attempts, checkpoints, metrics, events, lease.

Revision ID: 0001
Revises: 
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('controller_lease',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=127), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('heartbeat_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_controller_lease'))
    )
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('kind', sa.String(length=31), nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=True),
    sa.Column('trial_id', sa.Integer(), nullable=True),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_search_id'), ['search_id'], unique=False)

    op.create_table('searches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('strategy', sa.String(length=63), nullable=False),
    sa.Column('objective_metric', sa.String(length=127), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('max_trials', sa.Integer(), nullable=False),
    sa.Column('priority', sa.String(length=63), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_searches'))
    )
    with op.batch_alter_table('searches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_searches_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_searches_team'), ['team'], unique=False)

    op.create_table('trials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('config_key', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('value_special', sa.String(length=8), nullable=True),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('decided_step', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('infra_failures', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('queued_at', sa.Float(), nullable=False),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['search_id'], ['searches.id'], name=op.f('fk_trials_search_id_searches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trials')),
    sa.UniqueConstraint('search_id', 'config_key', name='uq_trials_search_config'),
    sa.UniqueConstraint('search_id', 'number', name='uq_trials_search_number')
    )
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.create_index('ix_trials_search_state', ['search_id', 'state'], unique=False)

    op.create_table('attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('search_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('executor', sa.String(length=31), nullable=False),
    sa.Column('pool', sa.String(length=63), nullable=False),
    sa.Column('node', sa.String(length=63), nullable=False),
    sa.Column('slots', sa.JSON(), nullable=False),
    sa.Column('devices', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('last_report_at', sa.Float(), nullable=True),
    sa.Column('start_step', sa.Integer(), nullable=False),
    sa.Column('end_step', sa.Integer(), nullable=True),
    sa.Column('checkpoint_in_id', sa.Integer(), nullable=True),
    sa.Column('checkpoint_out_id', sa.Integer(), nullable=True),
    sa.Column('stop_requested', sa.String(length=16), nullable=True),
    sa.Column('stop_requested_at', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('failure_kind', sa.String(length=16), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('progress_lost', sa.Integer(), nullable=False),
    sa.Column('data_versions', sa.JSON(), nullable=False),
    sa.Column('worker_pid', sa.Integer(), nullable=True),
    sa.Column('worker_started_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['search_id'], ['searches.id'], name=op.f('fk_attempts_search_id_searches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trial_id'], ['trials.id'], name=op.f('fk_attempts_trial_id_trials'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts')),
    sa.UniqueConstraint('trial_id', 'number', name='uq_attempts_trial_number')
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempts_search_id'), ['search_id'], unique=False)
        batch_op.create_index('ix_attempts_state', ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempts_trial_id'), ['trial_id'], unique=False)

    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('uri', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name=op.f('fk_checkpoints_attempt_id_attempts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trial_id'], ['trials.id'], name=op.f('fk_checkpoints_trial_id_trials'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints'))
    )
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoints_trial_id'), ['trial_id'], unique=False)

    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=127), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('value_special', sa.String(length=8), nullable=True),
    sa.Column('reported_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name=op.f('fk_metrics_attempt_id_attempts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trial_id'], ['trials.id'], name=op.f('fk_metrics_trial_id_trials'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics'))
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index('ix_metrics_trial_name_step', ['trial_id', 'name', 'step'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_metrics_trial_name_step')

    op.drop_table('metrics')
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoints_trial_id'))

    op.drop_table('checkpoints')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempts_trial_id'))
        batch_op.drop_index('ix_attempts_state')
        batch_op.drop_index(batch_op.f('ix_attempts_search_id'))

    op.drop_table('attempts')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_index('ix_trials_search_state')

    op.drop_table('trials')
    with op.batch_alter_table('searches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_searches_team'))
        batch_op.drop_index(batch_op.f('ix_searches_state'))

    op.drop_table('searches')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_search_id'))
        batch_op.drop_index(batch_op.f('ix_events_at'))

    op.drop_table('events')
    op.drop_table('controller_lease')
