"""Reconciling a reminder job while another reconcile of the same task is still at work (a
redelivery, another replica): the job ends as the task is, whichever call the sidecar applies last."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from event_handlers import reminders
from event_handlers.deps import HandlerDeps
from event_handlers.scheduling import DaprJobScheduler, JobFailed
from mcp_server.db import Database
from mcp_server.schemas import TaskCreate, TaskPatch
from mcp_server.service import Caller, TaskService
from tests.fakes.sidecar import FakeSidecar


@dataclass
class World:
    sidecar: FakeSidecar
    service: TaskService
    deps: HandlerDeps
    alice: Caller

    async def reconcile(self, task_id: object) -> None:
        await reminders.reconcile(self.alice.user_id, str(task_id), self.deps)


@pytest.fixture
async def world(db: Database, new_caller: Any) -> AsyncIterator[World]:
    """The reminders handler's dependencies, with the Dapr job scheduler against a fake sidecar."""
    async with FakeSidecar() as sidecar:
        scheduler = DaprJobScheduler(port=sidecar.port)
        service = TaskService(db, source="/tests")
        try:
            yield World(
                sidecar, service, HandlerDeps(db=db, service=service, scheduler=scheduler), new_caller()
            )
        finally:
            await scheduler.aclose()


async def test_a_late_schedule_does_not_outlive_the_completion(world: World) -> None:
    remind = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    task = await world.service.create(world.alice, TaskCreate(title="Call the bank", remind=remind))
    # The first reconcile read an open task; its schedule call is slow to take effect.
    hold = world.sidecar.hold(["jobs"], times=1)
    first = asyncio.create_task(world.reconcile(task.id))
    await asyncio.wait_for(hold.until_waiting(), 10)
    # Meanwhile the task is completed and that event's reconcile deletes the job.
    await world.service.complete(world.alice, task.id)
    await world.reconcile(task.id)
    hold.release()  # now the stale schedule lands, after the delete
    await asyncio.wait_for(first, 10)

    name = reminders.job_name(str(task.id))
    assert name not in world.sidecar.jobs
    calls = [call.method for call in world.sidecar.job_calls if call.name == name]
    assert calls == ["DELETE", "POST", "DELETE"]  # the late schedule was undone


async def test_a_late_delete_does_not_remove_a_new_reminder(world: World) -> None:
    task = await world.service.create(world.alice, TaskCreate(title="Water the plants"))
    hold = world.sidecar.hold(["jobs"], times=1)
    first = asyncio.create_task(world.reconcile(task.id))
    await asyncio.wait_for(hold.until_waiting(), 10)  # a delete: the task has no reminder yet
    later = datetime.now(UTC) + timedelta(hours=3)
    updated = await world.service.update(world.alice, task.id, TaskPatch(remind=later.isoformat()))
    await world.reconcile(task.id)
    hold.release()
    await asyncio.wait_for(first, 10)

    job = world.sidecar.jobs[reminders.job_name(str(task.id))]
    assert job.data["version"] == updated.version


async def test_a_task_that_keeps_changing_is_retried_rather_than_left_behind(world: World) -> None:
    at = datetime.now(UTC) + timedelta(hours=1)
    task = await world.service.create(world.alice, TaskCreate(title="Moving target", remind=at.isoformat()))
    hold = world.sidecar.hold(["jobs"], times=1)
    reconciling = asyncio.create_task(world.reconcile(task.id))
    for _ in range(reminders.RECONCILE_ROUNDS):  # after every job call the task has changed
        await asyncio.wait_for(hold.until_waiting(), 10)
        at += timedelta(minutes=5)
        await world.service.update(world.alice, task.id, TaskPatch(remind=at.isoformat()))
        held, hold = hold, world.sidecar.hold(["jobs"], times=1)
        held.release()
    with pytest.raises(JobFailed, match="kept changing"):  # the event is delivered again
        await asyncio.wait_for(reconciling, 10)
    hold.release()
    await world.reconcile(task.id)  # the redelivery

    latest = await world.service.get(world.alice, task.id)
    assert world.sidecar.jobs[reminders.job_name(str(task.id))].data["version"] == latest.version
