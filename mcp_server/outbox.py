"""The transactional outbox: events written with the change they describe, published afterwards.

Appending takes the user's next sequence number, which locks the user's row until commit: one
user's changes commit one after another, so their outbox ids follow their sequence numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    Insert,
    Integer,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mcp_server.models import OutboxEvent, UserAccount

# Core statements on the tables (SQLModel declares `__table__` untyped).
OUTBOX: Table = OutboxEvent.__table__  # type: ignore[attr-defined]
USERS: Table = UserAccount.__table__  # type: ignore[attr-defined]


def _next_seq(insert_for: Any) -> Insert:
    """Upsert of the user's row that takes `count` sequence numbers and returns the last of them
    (and stores a new zone)."""
    zone = bindparam("timezone", type_=Text)
    count = bindparam("count", type_=Integer)
    upsert = insert_for(USERS).values(
        user_id=bindparam("user_id"),
        last_seq=count,
        timezone=func.coalesce(zone, "UTC"),
        created_at=bindparam("created_at"),
    )
    changes = {"last_seq": USERS.c.last_seq + count, "timezone": func.coalesce(zone, USERS.c.timezone)}
    statement: Insert = upsert.on_conflict_do_update(index_elements=["user_id"], set_=changes)
    return statement.returning(USERS.c.last_seq)


_SQLITE_NEXT_SEQ = _next_seq(sqlite.insert)
_POSTGRES_NEXT_SEQ = _next_seq(postgresql.insert)


def _postgres_append(written: CTE | None = None) -> Insert:
    """PostgreSQL: take the user's next sequence number and append the event, in one statement;
    with `written` (a CTE of a row being inserted), in the same statement as that row."""
    seq = _POSTGRES_NEXT_SEQ.cte("seq")
    values = select(
        bindparam("event_id"),
        bindparam("event_type"),
        bindparam("user_id"),
        seq.c.last_seq,
        bindparam("payload", type_=OUTBOX.c.payload.type),
        bindparam("created_at", type_=OUTBOX.c.created_at.type),
        literal_column("0"),
    )
    if written is not None:
        values = values.select_from(seq.join(written, true()))
    columns = ["event_id", "event_type", "user_id", "seq", "payload", "created_at", "attempts"]
    return insert(OUTBOX).from_select(columns, values).returning(OUTBOX.c.seq)


_POSTGRES_APPEND = _postgres_append()


@functools.cache
def _postgres_insert_with_event(table: Table) -> Insert:
    """One statement that inserts a row of `table` (parameters `row_<column>`), takes the user's
    next sequence number and appends the event: with no transaction around it, it is its own, and
    the whole change is one round trip."""
    row = insert(table).values({c.name: bindparam(f"row_{c.name}", type_=c.type) for c in table.columns})
    return _postgres_append(row.returning(*table.primary_key.columns).cte("written"))


async def insert_with_event(
    connection: AsyncConnection,
    table: Table,
    values: dict[str, Any],
    event: dict[str, Any],
    *,
    user_id: str,
    timezone: str | None,
    created_at: datetime,
) -> int:
    """PostgreSQL: insert `values` into `table` and append `event` in one statement (see above);
    returns the event's sequence number. Run it on an autocommit connection: it is atomic alone."""
    row = {f"row_{name}": value for name, value in values.items()}
    params = row | _append_params(event, user_id=user_id, timezone=timezone, created_at=created_at)
    return int((await connection.execute(_postgres_insert_with_event(table), params)).scalar_one())


def _append_params(
    event: dict[str, Any], *, user_id: str, timezone: str | None, created_at: datetime
) -> dict[str, Any]:
    """The parameters of `_postgres_append` for one event."""
    return {
        "event_id": event["id"],
        "event_type": event["type"],
        "user_id": user_id,
        "payload": event,
        "created_at": created_at,
        "timezone": timezone,
        "count": 1,
    }


async def append(
    session: AsyncSession, event: dict[str, Any], *, user_id: str, timezone: str | None, created_at: datetime
) -> int:
    """Add `event` to the outbox under the user's next sequence number, which it returns."""
    if session.get_bind().dialect.name == "postgresql":
        params = _append_params(event, user_id=user_id, timezone=timezone, created_at=created_at)
        return int((await session.execute(_POSTGRES_APPEND, params)).scalar_one())
    return (await append_many(session, [event], user_id=user_id, timezone=timezone, created_at=created_at))[0]


async def append_many(
    session: AsyncSession,
    events: Sequence[dict[str, Any]],
    *,
    user_id: str,
    timezone: str | None,
    created_at: datetime,
) -> list[int]:
    """Add `events` in this order under the user's next sequence numbers (one lock, two statements)."""
    if not events:
        return []
    next_seq = _POSTGRES_NEXT_SEQ if session.get_bind().dialect.name == "postgresql" else _SQLITE_NEXT_SEQ
    taken = {"user_id": user_id, "timezone": timezone, "created_at": created_at, "count": len(events)}
    last = int((await session.execute(next_seq, taken)).scalar_one())
    first = last - len(events) + 1
    rows = [
        {
            "event_id": event["id"],
            "event_type": event["type"],
            "user_id": user_id,
            "seq": first + offset,
            "payload": event,
            "created_at": created_at,
            "attempts": 0,
        }
        for offset, event in enumerate(events)
    ]
    await session.execute(insert(OUTBOX), rows)
    return list(range(first, last + 1))


def document(payload: dict[str, Any], seq: int) -> dict[str, Any]:
    """The CloudEvent as published: the stored event plus its `sequence` (the user's event number)."""
    return {**payload, "sequence": str(seq)}
