"""Shared fixtures: a migrated PostgreSQL database and a migrated SQLite file per test session.

Tests stay independent by acting as fresh users (`new_caller`), since every query is scoped by user.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from mcp_server.db import Database
from mcp_server.service import Caller, TaskService
from todo_chatbot import migrate

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["postgres", "sqlite"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A new, migrated database on the server at TEST_DATABASE_URL, dropped afterwards."""
    server = make_url(TEST_DATABASE_URL)
    name = f"todo_test_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL at {TEST_DATABASE_URL} is not reachable ({error}); start it or set TEST_DATABASE_URL"
        )
    url = server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "todo.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for a database runs once on PostgreSQL and once on SQLite."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


class FixedClock:
    """A clock tests set by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # Friday 10:00 in New York


@pytest.fixture
def service(db: Database, clock: FixedClock) -> TaskService:
    return TaskService(db, source="/todo-chatbot/tests", clock=clock)


@pytest.fixture
def new_caller() -> type[Caller] | object:
    """A factory of callers with fresh user ids: `new_caller()` or `new_caller("Europe/Berlin")`."""

    def make(timezone: str | None = None) -> Caller:
        return Caller(f"user-{uuid.uuid4().hex[:10]}", timezone)

    return make
