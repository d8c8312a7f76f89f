"""Chat memory: conversations, and the Agents SDK's session tables (as its SQLAlchemySession defines them).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
# openai-agents 0.24 `SQLAlchemySession`: naive TIMESTAMPs filled by the database.
SDK_WHEN = sa.TIMESTAMP(timezone=False)
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("session_id", sa.String(), primary_key=True),
        sa.Column("created_at", SDK_WHEN, server_default=NOW, nullable=False),
        sa.Column("updated_at", SDK_WHEN, server_default=NOW, nullable=False),
    )
    op.create_table(
        "agent_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(),
            sa.ForeignKey("agent_sessions.session_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_data", sa.Text(), nullable=False),
        sa.Column("created_at", SDK_WHEN, server_default=NOW, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("idx_agent_messages_session_time", "agent_messages", ["session_id", "created_at"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(80), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_conversations_user_updated", "conversations", ["user_id", "updated_at"])


def downgrade() -> None:
    op.drop_table("conversations")
    op.drop_table("agent_messages")
    op.drop_table("agent_sessions")
