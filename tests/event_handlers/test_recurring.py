"""The recurring handler's two rules, on the service it calls: completing an occurrence makes the
next one once; reopening it withdraws that next one once, if it is as its completion made it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from event_handlers.idempotency import claim
from mcp_server.events import task_data
from mcp_server.models import Task
from mcp_server.schemas import TaskCreate, TaskOut
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


async def _daily(
    service: TaskService, caller: Caller, title: str
) -> tuple[TaskOut, uuid.UUID, dict[str, Any]]:
    """A new daily task: the task, its series id, and its event data (what the handler is given)."""
    first = await service.create(caller, TaskCreate(title=title, repeat="daily", due="2030-01-10 08:00"))
    async with service.db.transaction() as session:
        task = await session.get(Task, first.id)
        assert task is not None
        data = task_data(task)
    return first, uuid.UUID(str(first.series_id)), data


async def test_a_reopen_redelivered_after_the_next_completion_withdraws_nothing(
    service: TaskService, new_caller: Any
) -> None:
    caller: Caller = new_caller()
    first, series, data = await _daily(service, caller, "Water plants")

    async def deliver(kind: str, event_id: str) -> None:
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


async def test_a_late_reopen_does_not_withdraw_the_next_occurrence_of_one_done_again(
    service: TaskService, new_caller: Any
) -> None:
    """Events can arrive out of order (a redelivery overtaken by a newer one): each rule goes by the
    occurrence as it is now, so the series ends right whichever is handled last."""
    caller: Caller = new_caller()
    first, series, data = await _daily(service, caller, "Stretch")

    await service.complete(caller, first.id)
    await service.create_occurrence(caller.user_id, data, claim=claim("recurring", "done-1"))
    await service.reopen(caller, first.id)
    await service.complete(caller, first.id)  # its reopen and completion are handled late, out of order
    await service.create_occurrence(caller.user_id, data, claim=claim("recurring", "done-2"))
    await service.withdraw_occurrence(caller.user_id, data, claim=claim("recurring", "reopened-1"))
    assert await _open_occurrences(service, caller, series) == [2]  # done: its next one stays

    await service.reopen(caller, first.id)
    await service.withdraw_occurrence(caller.user_id, data, claim=claim("recurring", "reopened-2"))
    await service.create_occurrence(caller.user_id, data, claim=claim("recurring", "done-2-again"))
    assert await _open_occurrences(service, caller, series) == [1]  # open again: no next one


async def test_a_reopen_handled_after_the_occurrence_was_deleted_still_withdraws_the_next_one(
    service: TaskService, new_caller: Any
) -> None:
    """Reopened, then deleted before the handler got to the reopen: the reopen is the last word on
    whether it is done, so the untouched next occurrence goes, as it would have a moment earlier."""
    caller: Caller = new_caller()
    first, series, data = await _daily(service, caller, "Stretch")
    await service.complete(caller, first.id)
    await service.create_occurrence(caller.user_id, data, claim=claim("recurring", "done"))
    await service.reopen(caller, first.id)
    await service.delete(caller, first.id)
    assert await service.withdraw_occurrence(caller.user_id, data, claim=claim("recurring", "reopened"))
    assert await _open_occurrences(service, caller, series) == []


async def _next_after_completing(service: TaskService, caller: Caller, fields: TaskCreate) -> TaskOut:
    """The occurrence the recurring handler makes when the first one of `fields` is completed."""
    first = await service.create(caller, fields)
    await service.complete(caller, first.id)
    async with service.db.transaction() as session:
        task = await session.get(Task, first.id)
        assert task is not None
        data = task_data(task)
    made = await service.create_occurrence(caller.user_id, data)
    assert made is not None and made.occurrence == 2
    return made


async def test_the_next_occurrence_reminds_as_long_before_its_due_time(
    service: TaskService, new_caller: Any
) -> None:
    """An offset carries over as an offset; a reminder set as a time carries over as the same lead
    ('every morning at 8, remind me' reminds every morning); one after the due time (a snooze) not."""
    caller: Caller = new_caller()
    offset = await _next_after_completing(
        service,
        caller,
        TaskCreate(title="Standup", repeat="daily", due="2030-01-10 09:00", remind="15 minutes before"),
    )
    assert offset.due is not None and offset.remind_at == offset.due - timedelta(minutes=15)
    assert offset.remind_before_minutes == 15
    at_due = await _next_after_completing(
        service,
        caller,
        TaskCreate(title="Vitamins", repeat="daily", due="2030-01-10 08:00", remind="2030-01-10 08:00"),
    )
    assert at_due.due is not None and at_due.remind_at == at_due.due
    assert at_due.remind_before_minutes is None  # still a time, not an offset
    day_before = await _next_after_completing(
        service,
        caller,
        TaskCreate(title="Rent", repeat="monthly", due="2030-01-10 09:00", remind="2030-01-09 18:00"),
    )
    assert day_before.due is not None and day_before.remind_at == day_before.due - timedelta(hours=15)
    snoozed = await _next_after_completing(
        service,
        caller,
        TaskCreate(title="Plants", repeat="daily", due="2030-01-10 09:00", remind="2030-01-10 09:30"),
    )
    assert snoozed.remind_at is None
    none = await _next_after_completing(
        service, caller, TaskCreate(title="Read", repeat="daily", due="2030-01-10 21:00")
    )
    assert none.remind_at is None
