"""The embedded mode's durable scheduler: jobs due together fire as one batch, each reminder once;
failed triggers are retried and then dropped; a job rescheduled while it fired is kept; jobs due
within the timer's lead are handed over with their due time, and reminders written ahead commit at
it, never before."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from event_handlers import reminders
from event_handlers.deps import HandlerDeps
from event_handlers.models import ScheduledJob
from event_handlers.scheduling import EmbeddedScheduler
from mcp_server.db import Database
from mcp_server.models import OutboxEvent
from mcp_server.schemas import TaskCreate, TaskOut, TaskPatch
from mcp_server.service import Caller, TaskService
from tests.conftest import FixedClock


def past_clock() -> FixedClock:
    """Long before any job other tests leave in the table falls due (they use the real time)."""
    return FixedClock(datetime(2020, 3, 2, 9, 0, tzinfo=UTC))


async def jobs_named(db: Database, names: list[str]) -> list[ScheduledJob]:
    async with db.sessions() as session:
        found = await session.scalars(select(ScheduledJob).where(col(ScheduledJob.name).in_(names)))
        return list(found.all())


async def reminder_events(db: Database, user_id: str) -> list[OutboxEvent]:
    async with db.sessions() as session:
        found = await session.scalars(
            select(OutboxEvent)
            .where(col(OutboxEvent.user_id) == user_id, col(OutboxEvent.event_type) == "reminder.due")
            .order_by(col(OutboxEvent.id))
        )
        return list(found.all())


async def test_reminders_due_together_fire_once_each_in_one_batch(db: Database, new_caller: Any) -> None:
    clock = past_clock()
    service = TaskService(db, source="/tests", clock=clock)
    scheduler = EmbeddedScheduler(db, clock=clock)
    deps = HandlerDeps(db=db, service=service, scheduler=scheduler, clock=clock)
    batches: list[int] = []

    async def trigger(jobs: list[tuple[str, dict[str, Any]]], at: datetime) -> set[str]:
        batches.append(len(jobs))
        return await reminders.trigger_many(jobs, deps, at=at)

    scheduler.trigger = trigger
    alice, bob = new_caller(), new_caller()
    remind = (clock.now + timedelta(minutes=5)).isoformat()
    owned = [
        (alice, await service.create(alice, TaskCreate(title=f"a{n}", remind=remind))) for n in range(30)
    ]
    owned += [(bob, await service.create(bob, TaskCreate(title=f"b{n}", remind=remind))) for n in range(5)]
    for caller, task in owned:  # what the reminders handler does on `task.created`
        await reminders.reconcile(caller.user_id, str(task.id), deps)
    names = [reminders.job_name(str(task.id)) for _, task in owned]
    jobs = [(job.name, job.data) for job in await jobs_named(db, names)]
    assert len(jobs) == 35

    # Two jobs go stale without being rescheduled: the task was completed, the reminder snoozed.
    completed, snoozed = owned[0][1], owned[1][1]
    await service.complete(alice, completed.id)
    later = (clock.now + timedelta(hours=1)).isoformat()
    await service.update(alice, snoozed.id, TaskPatch(remind=later))

    clock.now += timedelta(minutes=5)
    next_due = await scheduler.fire_due()

    assert batches == [35]  # one trigger for every job due now
    assert await jobs_named(db, names) == []
    assert next_due is None or next_due > clock.now
    alice_fired = await reminder_events(db, alice.user_id)
    assert sorted(event.payload["subject"] for event in alice_fired) == sorted(
        str(task.id) for _, task in owned[2:30]
    )
    # Numbered after her 32 earlier events, one after another, in outbox order.
    assert [event.seq for event in alice_fired] == list(range(33, 61))
    assert len({event.event_id for event in alice_fired}) == 28
    assert {event.payload["time"] for event in alice_fired} == {clock.now.isoformat().replace("+00:00", "Z")}
    assert len(await reminder_events(db, bob.user_id)) == 5

    # The jobs are delivered again (at least once): nothing fires twice, every trigger is handled.
    assert await reminders.trigger_many(jobs, deps) == set(names)
    assert len(await reminder_events(db, alice.user_id)) == 28
    assert len(await reminder_events(db, bob.user_id)) == 5


async def test_failed_triggers_are_retried_then_dropped(db: Database) -> None:
    clock = past_clock()
    scheduler = EmbeddedScheduler(db, clock=clock, max_attempts=2, retry_seconds=3)
    run = uuid.uuid4().hex[:8]
    ok, failing = f"ok-{run}", f"failing-{run}"
    seen: list[str] = []

    async def trigger(jobs: list[tuple[str, dict[str, Any]]], at: datetime) -> set[str]:
        seen.extend(name for name, _ in jobs)
        return {name for name, _ in jobs if name == ok}

    scheduler.trigger = trigger
    await scheduler.schedule(ok, clock.now, {"n": 1})
    await scheduler.schedule(failing, clock.now, {"n": 2})

    await scheduler.fire_due()
    [left] = await jobs_named(db, [ok, failing])
    assert (left.name, left.attempts, left.due_at) == (failing, 1, clock.now + timedelta(seconds=3))

    assert await scheduler.fire_due() == clock.now + timedelta(seconds=3)  # not due yet: not fired
    clock.now += timedelta(seconds=3)
    await scheduler.fire_due()
    assert await jobs_named(db, [ok, failing]) == []  # dropped after its second attempt
    assert sorted(seen) == sorted([ok, failing, failing])


async def test_a_job_rescheduled_while_it_fires_is_kept(db: Database) -> None:
    clock = past_clock()
    scheduler = EmbeddedScheduler(db, clock=clock)
    name = f"snoozed-{uuid.uuid4().hex[:8]}"
    later = clock.now + timedelta(minutes=10)

    async def trigger(jobs: list[tuple[str, dict[str, Any]]], at: datetime) -> set[str]:
        await scheduler.schedule(name, later, {"snoozed": True})  # e.g. the user snoozed it just now
        return {job_name for job_name, _ in jobs}

    scheduler.trigger = trigger
    await scheduler.schedule(name, clock.now, {"snoozed": False})
    assert await scheduler.fire_due() == later
    [job] = await jobs_named(db, [name])
    assert (job.due_at, job.data) == (later, {"snoozed": True})


async def test_a_job_set_anew_for_the_same_time_while_it_fires_is_kept(db: Database) -> None:
    """E.g. the task was edited at its reminder time: the stale trigger must not take the new job
    (same name, same due time, the new version in its data) with it."""
    clock = past_clock()
    scheduler = EmbeddedScheduler(db, clock=clock)
    name = f"edited-{uuid.uuid4().hex[:8]}"
    fired: list[dict[str, Any]] = []

    async def trigger(jobs: list[tuple[str, dict[str, Any]]], at: datetime) -> set[str]:
        fired.extend(data for _, data in jobs)
        if len(fired) == 1:
            await scheduler.schedule(name, clock.now, {"version": 2})
        return {job_name for job_name, _ in jobs}

    scheduler.trigger = trigger
    await scheduler.schedule(name, clock.now, {"version": 1})
    await scheduler.fire_due()
    assert [(job.due_at, job.data) for job in await jobs_named(db, [name])] == [(clock.now, {"version": 2})]
    await scheduler.fire_due()
    assert fired == [{"version": 1}, {"version": 2}] and await jobs_named(db, [name]) == []


async def test_the_timer_hands_over_jobs_due_within_its_lead_with_their_due_time(db: Database) -> None:
    clock = past_clock()
    scheduler = EmbeddedScheduler(db, clock=clock, lead_seconds=0.25)
    run = uuid.uuid4().hex[:8]
    calls: list[tuple[datetime, list[str]]] = []

    async def trigger(jobs: list[tuple[str, dict[str, Any]]], at: datetime) -> set[str]:
        calls.append((at, sorted(name for name, _ in jobs)))
        return {name for name, _ in jobs}

    scheduler.trigger = trigger
    soon, later = clock.now + timedelta(milliseconds=100), clock.now + timedelta(seconds=1)
    await scheduler.schedule(f"overdue-{run}", clock.now - timedelta(seconds=5), {})
    await scheduler.schedule(f"soon-{run}", soon, {})
    await scheduler.schedule(f"later-{run}", later, {})

    assert await scheduler.fire_due() == later  # beyond the lead: left for the next timer
    assert sorted(calls) == [(clock.now, [f"overdue-{run}"]), (soon, [f"soon-{run}"])]
    await scheduler.delete(f"later-{run}")  # the other tests here expect no job of 2020 left


@dataclass
class DueSoon:
    """A task with a reminder about two seconds ahead, and its job, real time."""

    service: TaskService
    deps: HandlerDeps
    caller: Caller
    due: datetime
    task: TaskOut
    job: ScheduledJob


async def reminder_due_soon(db: Database, caller: Caller, title: str) -> DueSoon:
    service = TaskService(db, source="/tests")
    deps = HandlerDeps(db=db, service=service, scheduler=EmbeddedScheduler(db))
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    task = await service.create(caller, TaskCreate(title=title, remind=due.isoformat()))
    await reminders.reconcile(caller.user_id, str(task.id), deps)
    [job] = await jobs_named(db, [reminders.job_name(str(task.id))])
    return DueSoon(service, deps, caller, due, task, job)


async def test_reminders_written_ahead_are_committed_at_their_due_time(db: Database, new_caller: Any) -> None:
    """The scheduler calls a moment ahead: nothing is visible before the due time, and the event
    carries the due time as its `time`."""
    soon = await reminder_due_soon(db, new_caller(), "Stand up")

    firing = asyncio.create_task(
        reminders.trigger_many([(soon.job.name, soon.job.data)], soon.deps, at=soon.due)
    )
    while datetime.now(UTC) < soon.due - timedelta(milliseconds=200):
        assert await reminder_events(db, soon.caller.user_id) == [] and not firing.done()
        await asyncio.sleep(0.05)
    assert await firing == {soon.job.name}
    assert datetime.now(UTC) >= soon.due  # never before it
    [event] = await reminder_events(db, soon.caller.user_id)
    assert event.payload["subject"] == str(soon.task.id)
    assert event.payload["time"] == soon.due.isoformat().replace("+00:00", "Z")
    await soon.deps.scheduler.delete(soon.job.name)  # triggered by hand: the scheduler did not remove it


async def test_an_edit_while_reminders_wait_to_commit_comes_after_them(db: Database, new_caller: Any) -> None:
    """PostgreSQL writes them ahead with the tasks locked: what fires is the task as it was at the
    due time, and the edit follows it (SQLite starts the transaction at the due time instead)."""
    if not db.is_postgres:
        pytest.skip("SQLite writes at the due time, with nothing held before it")
    soon = await reminder_due_soon(db, new_caller(), "Call back")

    firing = asyncio.create_task(
        reminders.trigger_many([(soon.job.name, soon.job.data)], soon.deps, at=soon.due)
    )
    await asyncio.sleep(0.5)  # the reminder is written and waits for its time
    editing = asyncio.create_task(
        soon.service.update(soon.caller, soon.task.id, TaskPatch(title="Call back later"))
    )
    await asyncio.sleep(0.3)
    assert not editing.done()  # it waits for the reminder's commit
    await firing
    edited = await editing
    assert datetime.now(UTC) >= soon.due and edited.title == "Call back later"
    async with db.sessions() as session:
        kinds = (
            await session.scalars(
                select(OutboxEvent.event_type)
                .where(col(OutboxEvent.user_id) == soon.caller.user_id)
                .order_by(col(OutboxEvent.seq))
            )
        ).all()
    assert list(kinds) == ["task.created", "reminder.due", "task.updated"]
    await soon.deps.scheduler.delete(soon.job.name)


async def test_a_big_batch_late_at_its_due_time_makes_the_next_one_go_earlier(db: Database) -> None:
    # A clock in 2020 that ticks: no job of another test is due, and lateness is real.
    origin, started = datetime(2020, 3, 2, 9, 0, tzinfo=UTC), asyncio.get_running_loop().time()

    def clock() -> datetime:
        return origin + timedelta(seconds=asyncio.get_running_loop().time() - started)

    scheduler = EmbeddedScheduler(db, clock=clock, lead_seconds=0.25)
    run = uuid.uuid4().hex[:8]
    calls: list[tuple[datetime, datetime, int]] = []

    async def slow_trigger(jobs: list[tuple[str, dict[str, Any]]], at: datetime) -> set[str]:
        calls.append((clock(), at, len(jobs)))
        await asyncio.sleep(0.5)  # writing takes 5 ms a job: the first batch ends well after its time
        return {name for name, _ in jobs}

    scheduler.trigger = slow_trigger
    first = clock() + timedelta(seconds=4)  # after the 200 jobs are set, on a slow machine too
    second = first + timedelta(seconds=3)
    for index in range(100):
        await scheduler.schedule(f"slow-{run}-a{index}", first, {})
        await scheduler.schedule(f"slow-{run}-b{index}", second, {})
    timer = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(15):
            while len(calls) < 2:
                await asyncio.sleep(0.05)
    finally:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
    (called_first, at_first, size_first), (called_second, at_second, size_second) = calls
    assert (at_first, size_first, at_second, size_second) == (first, 100, second, 100)
    assert at_first - called_first <= timedelta(seconds=0.3)  # the usual lead
    assert scheduler.write_seconds_per_job >= 0.004
    assert at_second - called_second >= timedelta(seconds=0.6)  # twice 100 jobs x 5 ms, at most 2 s
    assert scheduler.lead_for(1) == timedelta(seconds=0.25)  # a small batch keeps the usual lead
