"""Reading the audit log: a task's history, recent activity, and the events a client missed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from mcp_server.models import AuditEntry, UserAccount
from mcp_server.outbox import OUTBOX, document
from mcp_server.schemas import OptionalText

HISTORY_MAX = 200


class HistoryEntry(BaseModel):
    seq: int = Field(description="The user's event number; later events have larger numbers.")
    type: str = Field(
        description="task.created, task.updated, task.completed, task.reopened, task.deleted or reminder.due"
    )
    task_id: uuid.UUID
    title: str
    at: datetime = Field(description="When it happened, in the user's time zone.")
    changed: list[str] | None = Field(description="For task.updated: the fields that changed.")
    detail: OptionalText = Field(description="A short description of the change.")


class TaskHistory(BaseModel):
    entries: list[HistoryEntry]


@dataclass(frozen=True)
class Recorded:
    """An event as the history shows it."""

    seq: int
    type: str
    task_id: str
    at: datetime
    event: dict[str, Any]


async def recorded_events(
    session: AsyncSession, user_id: str, task_id: uuid.UUID | None, limit: int
) -> list[Recorded]:
    """Newest first: one task's events, or the user's recent activity.

    From the audit log, completed from the outbox with what the audit handler has not recorded yet
    (it lags behind commits, and while the sidecar is down it sees nothing at all).
    """
    limit = min(limit, HISTORY_MAX)
    audited = select(AuditEntry).where(col(AuditEntry.user_id) == user_id)
    pending = select(OUTBOX.c.seq, OUTBOX.c.event_type, OUTBOX.c.payload, OUTBOX.c.created_at).where(
        OUTBOX.c.user_id == user_id
    )
    if task_id is not None:
        audited = audited.where(col(AuditEntry.task_id) == str(task_id))
        pending = pending.where(OUTBOX.c.payload["subject"].as_string() == str(task_id))
    found: dict[int, Recorded] = {
        entry.seq: Recorded(entry.seq, entry.event_type, entry.task_id, entry.occurred_at, entry.event)
        for entry in await session.scalars(audited.order_by(col(AuditEntry.seq).desc()).limit(limit))
    }
    for seq, kind, payload, created_at in await session.execute(
        pending.order_by(OUTBOX.c.seq.desc()).limit(limit)
    ):
        found.setdefault(seq, Recorded(seq, kind, str(payload.get("subject")), created_at, payload))
    return [found[seq] for seq in sorted(found, reverse=True)[:limit]]


async def latest_seq(session: AsyncSession, user_id: str) -> int:
    """The sequence number of the user's latest event (0 before the first)."""
    seq = await session.scalar(select(col(UserAccount.last_seq)).where(col(UserAccount.user_id) == user_id))
    return int(seq or 0)


async def missed_events(
    session: AsyncSession, user_id: str, after: int, limit: int = 500
) -> list[dict[str, Any]]:
    """The user's events with a sequence number above `after`, in order, each with its `seq`.

    From the audit log, and from the outbox for events not audited yet (the audit handler may lag
    behind the push service), so a reconnecting client misses nothing.
    """
    audited = await session.execute(
        select(col(AuditEntry.seq), col(AuditEntry.event))
        .where(col(AuditEntry.user_id) == user_id, col(AuditEntry.seq) > after)
        .order_by(col(AuditEntry.seq))
        .limit(limit)
    )
    events: dict[int, dict[str, Any]] = {seq: event for seq, event in audited.all()}
    pending = await session.execute(
        select(OUTBOX.c.seq, OUTBOX.c.payload)
        .where(OUTBOX.c.user_id == user_id, OUTBOX.c.seq > after)
        .order_by(OUTBOX.c.seq)
        .limit(limit)
    )
    for seq, payload in pending.all():
        events.setdefault(seq, document(payload, seq))
    return [{**events[seq], "seq": seq} for seq in sorted(events)[:limit]]
