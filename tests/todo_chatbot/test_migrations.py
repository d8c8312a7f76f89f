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
        if isinstance(diff, tuple) and diff[0] == "remove_index" and diff[1].name in POSTGRES_ONLY:
            return True
        # Expression indexes (lower(title)) cannot be reflected on SQLite, and alembic_version is alembic's own.
        if isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == "alembic_version":
            return True
        return False

    return [diff for diff in found if not expected(diff)]


def test_models_and_migrations_agree(database_url: str) -> None:
    assert differences(database_url) == []
