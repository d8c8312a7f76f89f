"""Listing indexes in the listings' own order: open tasks first, then the sort key and the id.

The indexes of 0001 left part of each order to a sort: by priority, every task of the top
priority was sorted to find a page (the index held `due_at` ascending under a descending
priority); by creation or update, the done tasks were read and skipped; and a listing of open and
done tasks together read all of the user's tasks. At 100,000 tasks for one user those took 20-50 ms
on PostgreSQL; each is now an index read of one page.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW: dict[str, Sequence[str | sa.TextClause]] = {
    "ix_tasks_user_due": ["user_id", "completed", "due_at", sa.text("priority DESC"), "id"],
    "ix_tasks_user_priority": ["user_id", "completed", sa.text("priority DESC"), "due_at"],
    "ix_tasks_user_created": ["user_id", "completed", sa.text("created_at DESC"), sa.text("id DESC")],
    "ix_tasks_user_updated": ["user_id", "completed", sa.text("updated_at DESC"), sa.text("id DESC")],
    "ix_tasks_user_title": ["user_id", "completed", sa.text("lower(title)"), "id"],
}
OLD: dict[str, Sequence[str | sa.TextClause]] = {
    "ix_tasks_user_due": ["user_id", "completed", "due_at", "id"],
    "ix_tasks_user_priority": ["user_id", "completed", "priority", "due_at"],
    "ix_tasks_user_created": ["user_id", "created_at"],
    "ix_tasks_user_updated": ["user_id", "updated_at"],
    "ix_tasks_user_title": ["user_id", sa.text("lower(title)")],
}


def _replace(indexes: dict[str, Sequence[str | sa.TextClause]]) -> None:
    for name, columns in indexes.items():
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", columns)


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    _replace(OLD)
