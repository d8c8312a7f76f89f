"""The event pipeline: audit log, idempotency records, embedded jobs, dead letters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", WHEN, nullable=False),
        sa.Column("recorded_at", WHEN, nullable=False),
        sa.Column("event", JSON, nullable=False),
        sa.UniqueConstraint("user_id", "seq", name="uq_audit_user_seq"),
    )
    op.create_index("ix_audit_user_task", "audit_log", ["user_id", "task_id", "seq"])
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("processed_at", WHEN, nullable=False),
    )
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_index("ix_scheduled_jobs_due", "scheduled_jobs", ["due_at"])
    op.create_table(
        "dead_letters",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )

    if op.get_bind().dialect.name == "postgresql":
        # Wake the outbox relay at commit, whichever process wrote the row (NOTIFY is transactional).
        op.execute(
            """
            CREATE FUNCTION todo_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('todo_outbox', '');
                RETURN NULL;
            END $$;
            CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
                FOR EACH STATEMENT EXECUTE FUNCTION todo_outbox_notify();
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TRIGGER IF EXISTS outbox_notify ON outbox; DROP FUNCTION IF EXISTS todo_outbox_notify()"
        )
    op.drop_table("dead_letters")
    op.drop_table("scheduled_jobs")
    op.drop_table("processed_events")
    op.drop_table("audit_log")
