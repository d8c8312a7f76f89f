"""A transaction that only reads (`Database.reading`) never waits behind a writer on SQLite, where
every other transaction takes the write lock up front (BEGIN IMMEDIATE)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from event_handlers.push import DatabaseHistory
from mcp_server.db import Database


async def test_a_read_does_not_wait_for_a_writer_on_sqlite(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    writing, done = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock from here
            writing.set()
            await done.wait()

    writer = asyncio.create_task(hold_the_write_lock())
    blocked: asyncio.Task[None] | None = None
    try:
        await writing.wait()
        async with asyncio.timeout(5):  # the busy timeout is 30 s: a waiting read would time out here
            async with db.reading() as session:
                assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
            assert await DatabaseHistory(db).latest("nobody") == 0  # a WebSocket's starting point
        blocked = asyncio.create_task(_write(db))
        await asyncio.sleep(0.3)
        assert not blocked.done()  # a second writer does wait: the lock was really held
    finally:
        done.set()
        await writer
        if blocked is not None:
            await blocked
        await db.dispose()


async def _write(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
