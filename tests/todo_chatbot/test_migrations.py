"""The migrations create exactly what the models declare, on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from mcp_server.db import database_url
from todo_chatbot.schema import metadata

# Indexes only PostgreSQL has (GIN on tags, trigram search), created by the migration by hand.
POSTGRES_ONLY = {"ix_tasks_tags", "ix_tasks_title_trgm", "ix_tasks_description_trgm"}


def differences(url: str) -> list[Any]:
    engine = create_engine(database_url(url, asynchronous=False))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            found = compare_metadata(context, metadata)
    finally:
        engine.dispose()

    def expected(diff: Any) -> bool:
        """PostgreSQL-only indexes, and alembic's own table (SQLite cannot reflect lower(title))."""
        if not isinstance(diff, tuple):
            return False
        kind, item = diff[0], diff[1]
        return (kind == "remove_index" and item.name in POSTGRES_ONLY) or (
            kind == "remove_table" and item.name == "alembic_version"
        )

    return [diff for diff in found if not expected(diff)]


def test_models_and_migrations_agree(database_url: str) -> None:
    assert differences(database_url) == []
