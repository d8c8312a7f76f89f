"""The in-process bus: a user's batch goes to the sockets first, to the audit log in one
transaction, a malformed or poison event to the dead letters alone, and an outage is a retry."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from event_handlers.bus import InProcessBus
from event_handlers.deps import HandlerDeps
from event_handlers.models import DeadLetter
from event_handlers.push import PushHub
from mcp_server.db import Database
from mcp_server.models import AuditEntry, OutboxEvent
from mcp_server.outbox import document
from mcp_server.publishing import PublishFailed
from mcp_server.schemas import TaskCreate
from mcp_server.service import Caller, TaskService


async def events_of(db: Database, service: TaskService, caller: Caller, count: int) -> list[dict[str, Any]]:
    """`count` real events of the caller, as the relay hands them to the bus."""
    for index in range(count):
        await service.create(caller, TaskCreate(title=f"task {index}"))
    async with db.sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(col(OutboxEvent.user_id) == caller.user_id)
            .order_by(col(OutboxEvent.id))
        )
        return [document(row.payload, row.seq) for row in rows]


async def audited(db: Database, user_id: str) -> list[str]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(col(AuditEntry.event_id))
            .where(col(AuditEntry.user_id) == user_id)
            .order_by(col(AuditEntry.seq))
        )
        return list(rows.all())


async def dead_letters(db: Database, event_ids: list[str]) -> list[tuple[str, str | None]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(col(DeadLetter.consumer), col(DeadLetter.event_id)).where(
                col(DeadLetter.event_id).in_(event_ids)
            )
        )
        return [(consumer, event_id) for consumer, event_id in rows.all()]


def bus_for(db: Database, service: TaskService, hub: PushHub | None = None) -> InProcessBus:
    return InProcessBus(HandlerDeps(db=db, service=service, hub=hub or PushHub()))


async def test_a_batch_is_audited_whole_and_delivered(
    db: Database, service: TaskService, new_caller: Any
) -> None:
    caller = new_caller()
    events = await events_of(db, service, caller, 40)
    delivered = await bus_for(db, service).publish(caller.user_id, events)
    assert delivered == {event["id"] for event in events}
    assert await audited(db, caller.user_id) == [event["id"] for event in events]
    # Delivered again (at least once): nothing is recorded twice.
    assert await bus_for(db, service).publish(caller.user_id, events) == delivered
    assert await audited(db, caller.user_id) == [event["id"] for event in events]


async def test_a_malformed_event_is_dead_lettered_and_the_rest_delivered(
    db: Database, service: TaskService, new_caller: Any
) -> None:
    caller = new_caller()
    events = await events_of(db, service, caller, 3)
    broken = {**events[1], "sequence": "not a number"}
    delivered = await bus_for(db, service).publish(caller.user_id, [events[0], broken, events[2]])
    assert delivered == {event["id"] for event in events}  # dropped counts as delivered
    assert await audited(db, caller.user_id) == [events[0]["id"], events[2]["id"]]
    # Each consumer it was for drops it to the dead letters, as each Dapr subscription would.
    assert sorted(await dead_letters(db, [broken["id"]])) == [
        (consumer, broken["id"]) for consumer in ("audit", "push", "reminders")
    ]


async def test_a_poison_event_is_dropped_alone(db: Database, service: TaskService, new_caller: Any) -> None:
    if not db.is_postgres:
        pytest.skip("SQLite does not enforce column lengths, so nothing here poisons its insert")
    caller = new_caller()
    events = await events_of(db, service, caller, 3)
    poison = {**events[1], "id": "x" * 100}  # well-formed, but longer than the audit log's event id column
    delivered = await bus_for(db, service).publish(caller.user_id, [events[0], poison, events[2]])
    assert delivered == {events[0]["id"], poison["id"], events[2]["id"]}
    assert await audited(db, caller.user_id) == [events[0]["id"], events[2]["id"]]
    assert await dead_letters(db, [poison["id"]]) == [("audit", poison["id"])]


async def test_an_outage_is_a_retry_after_the_sockets_had_their_events(
    service: TaskService, db: Database, new_caller: Any
) -> None:
    caller = new_caller()
    events = await events_of(db, service, caller, 2)
    down = Database("postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1})
    hub = PushHub()
    pushed: list[dict[str, Any]] = []
    hub.publish = lambda user_id, message: pushed.append(message)  # type: ignore[method-assign]
    try:
        with pytest.raises(PublishFailed):
            await InProcessBus(HandlerDeps(db=down, service=service, hub=hub)).publish(caller.user_id, events)
    finally:
        await down.dispose()
    assert [message["seq"] for message in pushed] == [1, 2]
