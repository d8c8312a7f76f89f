"""Idempotency records: `(consumer, key)` claimed in the same transaction as the side effect."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from event_handlers.models import ProcessedEvent
from mcp_server.db import Database, insert_ignoring
from mcp_server.models import utcnow
from mcp_server.service import Claim

PROCESSED: Table = ProcessedEvent.__table__  # type: ignore[attr-defined]
_SEEN = select(PROCESSED.c.consumer).where(
    PROCESSED.c.consumer == bindparam("consumer"), PROCESSED.c.event_id == bindparam("key")
)


def claim(consumer: str, key: str) -> Claim:
    """A claim to run inside a transaction: True the first time, False for a duplicate."""

    async def run(session: AsyncSession) -> bool:
        return bool(await claim_many(session, consumer, [key]))

    return run


async def claim_many(session: AsyncSession, consumer: str, keys: Sequence[str]) -> set[str]:
    """Claim `keys` inside the caller's transaction: returns those claimed for the first time."""
    if not keys:
        return set()
    now = utcnow()
    statement = insert_ignoring(PROCESSED, session.get_bind().dialect.name).returning(PROCESSED.c.event_id)
    rows = [{"consumer": consumer, "event_id": key, "processed_at": now} for key in keys]
    return set((await session.scalars(statement, rows)).all())


async def seen(db: Database, consumer: str, key: str) -> bool:
    async with db.transaction() as session:
        found = await session.scalar(_SEEN, {"consumer": consumer, "key": key})
    return found is not None


async def record(db: Database, consumer: str, key: str) -> None:
    async with db.transaction() as session:
        await claim(consumer, key)(session)
