"""The recurring handler's two rules, on the service it calls: completing an occurrence makes the
next one once; reopening it withdraws that next one once, if it is as its completion made it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select

from event_handlers.idempotency import claim
from mcp_server.events import task_data
from mcp_server.models import Task
from mcp_server.schemas import TaskCreate
from mcp_server.service import Caller, TaskService


async def _open_occurrences(service: TaskService, caller: Caller, series: uuid.UUID) -> list[int]:
    async with service.db.transaction() as session:
        rows = await session.scalars(
            select(Task.occurrence).where(
                col(Task.user_id) == caller.user_id,
                col(Task.series_id) == series,
                col(Task.completed).is_(False),
            )
        )
        return sorted(int(row) for row in rows if row is not None)


async def test_a_reopen_redelivered_after_the_next_completion_withdraws_nothing(
    service: TaskService, new_caller: Any
) -> None:
    caller: Caller = new_caller()
    first = await service.create(
        caller, TaskCreate(title="Water plants", repeat="daily", due="2030-01-10 08:00")
    )
    series = uuid.UUID(str(first.series_id))

    async def deliver(kind: str, event_id: str) -> None:
        async with service.db.transaction() as session:
            task = await session.get(Task, first.id)
            assert task is not None
            data = task_data(task)
        if kind == "completed":
            await service.create_occurrence(caller.user_id, data, claim=claim("recurring", event_id))
        else:
            await service.withdraw_occurrence(caller.user_id, data, claim=claim("recurring", event_id))

    await service.complete(caller, first.id)
    await deliver("completed", "e1")
    assert await _open_occurrences(service, caller, series) == [2]
    await service.reopen(caller, first.id)
    await deliver("reopened", "e2")
    assert await _open_occurrences(service, caller, series) == [1]  # the untouched next one withdrawn
    await service.complete(caller, first.id)
    await deliver("completed", "e3")
    assert await _open_occurrences(service, caller, series) == [2]  # made anew
    await service.reopen(caller, first.id)
    await deliver("reopened", "e2")  # the first reopen, delivered again: already done, nothing more
    assert await _open_occurrences(service, caller, series) == [1, 2]
