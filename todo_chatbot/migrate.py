"""Apply the Alembic migrations (`todo-chatbot migrate`, and `serve` on start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool

from mcp_server.db import database_url, prepare_sqlite_file

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    sync_url = database_url(url, asynchronous=False).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    config = alembic_config(url)
    engine = create_engine(database_url(url, asynchronous=False), poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        prepare_sqlite_file(engine.url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()
