"""Idempotency records: `(consumer, key)` claimed in the same transaction as the side effect."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from event_handlers.models import ProcessedEvent
from mcp_server.db import Database
from mcp_server.models import utcnow
from mcp_server.service import Claim


def claim(consumer: str, key: str) -> Claim:
    """A claim to run inside a transaction: True the first time, False for a duplicate."""

    async def run(session: AsyncSession) -> bool:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(ProcessedEvent)
            .values(consumer=consumer, event_id=key, processed_at=utcnow())
            .on_conflict_do_nothing()
            .returning(col(ProcessedEvent.consumer))
        )
        return (await session.execute(statement)).first() is not None

    return run


async def seen(db: Database, consumer: str, key: str) -> bool:
    async with db.transaction() as session:
        found = await session.scalar(
            select(col(ProcessedEvent.consumer)).where(
                col(ProcessedEvent.consumer) == consumer, col(ProcessedEvent.event_id) == key
            )
        )
    return found is not None


async def record(db: Database, consumer: str, key: str) -> None:
    async with db.transaction() as session:
        await claim(consumer, key)(session)
