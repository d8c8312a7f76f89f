"""Reconciling a reminder job while another reconcile of the same task is still at work (a
redelivery, another replica): the job ends as the task is, whichever call the sidecar applies last."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from event_handlers import reminders
from event_handlers.deps import HandlerDeps
from event_handlers.scheduling import DaprJobScheduler, JobFailed
from mcp_server.db import Database
from mcp_server.schemas import TaskCreate, TaskPatch
from mcp_server.service import TaskService
from tests.fakes.sidecar import FakeSidecar


async def test_a_late_schedule_does_not_outlive_the_completion(db: Database, new_caller: Any) -> None:
    async with FakeSidecar() as sidecar:
        scheduler = DaprJobScheduler(port=sidecar.port)
        service = TaskService(db, source="/tests")
        deps = HandlerDeps(db=db, service=service, scheduler=scheduler)
        alice = new_caller()
        remind = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        task = await service.create(alice, TaskCreate(title="Call the bank", remind=remind))
        name = reminders.job_name(str(task.id))
        try:
            # The first reconcile read an open task; its schedule call is slow to take effect.
            hold = sidecar.hold(["jobs"], times=1)
            first = asyncio.create_task(reminders.reconcile(alice.user_id, str(task.id), deps))
            await asyncio.wait_for(hold.until_waiting(), 10)
            # Meanwhile the task is completed and that event's reconcile deletes the job.
            await service.complete(alice, task.id)
            await reminders.reconcile(alice.user_id, str(task.id), deps)
            hold.release()  # now the stale schedule lands, after the delete
            await asyncio.wait_for(first, 10)
        finally:
            await scheduler.aclose()

        assert name not in sidecar.jobs
        calls = [call.method for call in sidecar.job_calls if call.name == name]
        assert calls == ["DELETE", "POST", "DELETE"]  # the late schedule was undone


async def test_a_late_delete_does_not_remove_a_new_reminder(db: Database, new_caller: Any) -> None:
    async with FakeSidecar() as sidecar:
        scheduler = DaprJobScheduler(port=sidecar.port)
        service = TaskService(db, source="/tests")
        deps = HandlerDeps(db=db, service=service, scheduler=scheduler)
        alice = new_caller()
        task = await service.create(alice, TaskCreate(title="Water the plants"))
        name = reminders.job_name(str(task.id))
        try:
            hold = sidecar.hold(["jobs"], times=1)
            first = asyncio.create_task(reminders.reconcile(alice.user_id, str(task.id), deps))
            await asyncio.wait_for(hold.until_waiting(), 10)  # a delete: the task has no reminder yet
            later = datetime.now(UTC) + timedelta(hours=3)
            updated = await service.update(alice, task.id, TaskPatch(remind=later.isoformat()))
            await reminders.reconcile(alice.user_id, str(task.id), deps)
            hold.release()
            await asyncio.wait_for(first, 10)
        finally:
            await scheduler.aclose()

        job = sidecar.jobs[name]
        assert job.data["version"] == updated.version


async def test_a_task_that_keeps_changing_is_retried_rather_than_left_behind(
    db: Database, new_caller: Any
) -> None:
    async with FakeSidecar() as sidecar:
        scheduler = DaprJobScheduler(port=sidecar.port)
        service = TaskService(db, source="/tests")
        deps = HandlerDeps(db=db, service=service, scheduler=scheduler)
        alice = new_caller()
        at = datetime.now(UTC) + timedelta(hours=1)
        task = await service.create(alice, TaskCreate(title="Moving target", remind=at.isoformat()))
        name = reminders.job_name(str(task.id))
        try:
            hold = sidecar.hold(["jobs"], times=1)
            reconciling = asyncio.create_task(reminders.reconcile(alice.user_id, str(task.id), deps))
            for _ in range(reminders.RECONCILE_ROUNDS):  # after every job call the task has changed
                await asyncio.wait_for(hold.until_waiting(), 10)
                at += timedelta(minutes=5)
                await service.update(alice, task.id, TaskPatch(remind=at.isoformat()))
                held, hold = hold, sidecar.hold(["jobs"], times=1)
                held.release()
            with pytest.raises(JobFailed, match="kept changing"):  # the event is delivered again
                await asyncio.wait_for(reconciling, 10)
            hold.release()
            await reminders.reconcile(alice.user_id, str(task.id), deps)  # the redelivery
        finally:
            await scheduler.aclose()

        latest = await service.get(alice, task.id)
        assert sidecar.jobs[name].data["version"] == latest.version
