"""Audit: an append-only log of every event, numbered per user (the events' `sequence`).

The audit row is its own idempotency record: its event id is unique, so a redelivered event
inserts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table

from event_handlers.deps import HandlerDeps
from event_handlers.intake import Outcome, TaskEvent
from mcp_server.db import insert_ignoring
from mcp_server.models import AuditEntry

AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]


async def handle(event: TaskEvent, deps: HandlerDeps) -> Outcome:
    return await handle_many([event], deps)


async def handle_many(events: Sequence[TaskEvent], deps: HandlerDeps) -> Outcome:
    """Record events at once (the in-process bus hands over a whole batch)."""
    recorded_at = deps.clock()
    rows = [
        {
            "user_id": event.user_id,
            "seq": event.seq,
            "event_id": event.id,
            "event_type": event.type,
            "task_id": event.task_id,
            "occurred_at": event.time,
            "recorded_at": recorded_at,
            "event": event.document,
        }
        for event in events
    ]
    statement = insert_ignoring(AUDIT, deps.db.engine.dialect.name)
    if len(rows) == 1:  # one statement is its own transaction: one round trip instead of three
        async with deps.db.autocommit() as connection:
            await connection.execute(statement, rows)
    else:  # several rows: one transaction, one commit
        async with deps.db.transaction() as session:
            await session.execute(statement, rows)
    return Outcome.SUCCESS
