"""The connection pool: sized by DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW, and by default large
enough that a burst of concurrent requests does not open (and close) a connection each."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from todo_chatbot.settings import Settings


async def opened_in_two_bursts(settings: Settings, requests: int, at_once: int) -> int:
    """PostgreSQL connections the settings' database opens for two bursts of `requests` queries,
    `at_once` of them holding their connections together (as concurrent requests do): each waits
    for the others, so no query can hand its connection on to a later one of the same burst."""
    db = settings.open_database()
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(db.engine.sync_engine, "connect", count)

    together = asyncio.Barrier(at_once)

    async def query() -> None:
        async with db.autocommit() as connection:
            await connection.execute(text("SELECT 1"))
            await together.wait()

    try:
        for _ in range(2):
            await asyncio.gather(*(query() for _ in range(requests)))
    finally:
        await db.dispose()
    return opened


async def test_the_default_pool_keeps_the_connections_of_sixteen_requests_at_once(postgres_url: str) -> None:
    """A burst above the pool opens connections that close again when returned, and the next burst
    forks new server processes for them: the default pool holds a burst of 16."""
    settings = Settings(database_url=postgres_url)
    assert await opened_in_two_bursts(settings, 16, at_once=16) == 16


async def test_the_pool_is_sized_by_the_settings(postgres_url: str) -> None:
    """DATABASE_POOL_SIZE=4 keeps four: a burst of six opens two more each time."""
    settings = Settings(database_url=postgres_url, database_pool_size=4, database_max_overflow=10)
    assert await opened_in_two_bursts(settings, 6, at_once=6) == 4 + 2 + 2


async def test_pool_settings_are_read_from_the_environment(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATABASE_POOL_SIZE=2 and DATABASE_MAX_OVERFLOW=0: a burst of four shares two connections."""
    monkeypatch.setenv("DATABASE_POOL_SIZE", "2")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
    assert await opened_in_two_bursts(Settings(database_url=postgres_url), 4, at_once=2) == 2
