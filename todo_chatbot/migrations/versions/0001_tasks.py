"""Tasks, users and the transactional outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("completed_at", WHEN, nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("due_at", WHEN, nullable=True),
        sa.Column("remind_at", WHEN, nullable=True),
        sa.Column("remind_offset_s", sa.Integer(), nullable=True),
        sa.Column("recurrence", sa.String(500), nullable=True),
        sa.Column("series_id", sa.Uuid(), nullable=True),
        sa.Column("occurrence", sa.Integer(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("series_id", "occurrence", name="uq_tasks_series_occurrence"),
    )
    op.create_index("ix_tasks_user_due", "tasks", ["user_id", "completed", "due_at", "id"])
    op.create_index("ix_tasks_user_priority", "tasks", ["user_id", "completed", "priority", "due_at"])
    op.create_index("ix_tasks_user_created", "tasks", ["user_id", "created_at"])
    op.create_index("ix_tasks_user_updated", "tasks", ["user_id", "updated_at"])
    op.create_index("ix_tasks_user_title", "tasks", ["user_id", sa.text("lower(title)")])
    op.create_table(
        "outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("published_at", WHEN, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_outbox_published", "outbox", ["published_at"])

    if op.get_bind().dialect.name == "postgresql":
        # Tag filters and word search stay index scans at 100,000 tasks per user. pg_trgm is a
        # trusted extension on PostgreSQL 13+ (and on Neon and Azure); without it, search scans.
        op.create_index(
            "ix_tasks_tags",
            "tasks",
            ["tags"],
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        )
        op.execute(
            """
            DO $$
            BEGIN
                CREATE EXTENSION IF NOT EXISTS pg_trgm;
                CREATE INDEX ix_tasks_title_trgm ON tasks USING gin (title gin_trgm_ops);
                CREATE INDEX ix_tasks_description_trgm ON tasks USING gin (description gin_trgm_ops);
            EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_file THEN
                RAISE NOTICE 'pg_trgm is not available; text search will scan';
            END $$;
            """
        )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("tasks")
    op.drop_table("users")
