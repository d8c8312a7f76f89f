"""Audit: an append-only log of every event, numbered per user (the events' `sequence`)."""

from __future__ import annotations

from event_handlers.deps import HandlerDeps
from event_handlers.idempotency import claim
from event_handlers.intake import Outcome, TaskEvent
from mcp_server.models import AuditEntry

CONSUMER = "audit"


async def handle(event: TaskEvent, deps: HandlerDeps) -> Outcome:
    async with deps.db.transaction() as session:
        if await claim(CONSUMER, event.id)(session):
            session.add(
                AuditEntry(
                    user_id=event.user_id,
                    seq=event.seq,
                    event_id=event.id,
                    event_type=event.type,
                    task_id=event.task_id,
                    occurred_at=event.time,
                    event=event.document,
                )
            )
    return Outcome.SUCCESS
