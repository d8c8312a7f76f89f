"""The migrations create exactly what the models declare, on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from mcp_server.db import database_url
from mcp_server.models import LISTING_INDEXES
from todo_chatbot.schema import metadata

# Indexes only PostgreSQL has (GIN on tags, trigram search), created by the migration by hand.
POSTGRES_ONLY = {"ix_tasks_tags", "ix_tasks_title_trgm", "ix_tasks_description_trgm"}


# SQLite's reflection drops the direction of an index column, so alembic cannot compare the
# listing indexes there (they are checked below with SQLite's own PRAGMA).
LISTINGS = {index.name for index in LISTING_INDEXES}


def differences(url: str) -> list[Any]:
    engine = create_engine(database_url(url, asynchronous=False))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            found = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    sqlite = url.startswith("sqlite")

    def expected(diff: Any) -> bool:
        """PostgreSQL-only indexes, and alembic's own table (SQLite cannot reflect lower(title))."""
        if not isinstance(diff, tuple):
            return False
        kind, item = diff[0], diff[1]
        return (
            (kind == "remove_index" and item.name in POSTGRES_ONLY)
            or (kind == "remove_table" and item.name == "alembic_version")
            or (sqlite and kind in ("add_index", "remove_index") and item.name in LISTINGS)
        )

    return [diff for diff in found if not expected(diff)]


def test_models_and_migrations_agree(database_url: str) -> None:
    assert differences(database_url) == []


def test_the_listing_indexes_hold_their_columns_in_order_and_direction(sqlite_url: str) -> None:
    """What alembic cannot compare on SQLite: (column, descending) of each listing index."""
    engine = create_engine(database_url(sqlite_url, asynchronous=False))
    try:
        with engine.connect() as connection:
            found = {
                name: [
                    (row.name or "<expression>", bool(row.desc))
                    for row in connection.execute(text(f"PRAGMA index_xinfo('{name}')"))
                    if row.key
                ]
                for name in sorted(LISTINGS)
            }
    finally:
        engine.dispose()
    ascending, descending = False, True
    assert found == {
        "ix_tasks_user_created": [
            ("user_id", ascending),
            ("completed", ascending),
            ("created_at", descending),
            ("id", descending),
        ],
        "ix_tasks_user_due": [
            ("user_id", ascending),
            ("completed", ascending),
            ("due_at", ascending),
            ("priority", descending),
            ("id", ascending),
        ],
        "ix_tasks_user_priority": [
            ("user_id", ascending),
            ("completed", ascending),
            ("priority", descending),
            ("due_at", ascending),
        ],
        "ix_tasks_user_title": [
            ("user_id", ascending),
            ("completed", ascending),
            ("<expression>", ascending),
            ("id", ascending),
        ],
        "ix_tasks_user_updated": [
            ("user_id", ascending),
            ("completed", ascending),
            ("updated_at", descending),
            ("id", descending),
        ],
    }
