"""Reminders through the Jobs API, no polling: one job `reminder-<taskId>` per open task whose
reminder has not fired yet.

On any change of a task the job is reconciled with the task as it is NOW (so late or repeated
events cannot undo newer state): scheduled (with overwrite) for a pending reminder, deleted
otherwise. A reminder set in the past fires at once. When the job triggers, `reminder.due` is
written only if the task is still open with the same reminder and version, and only once per
reminder time (a snooze sets a new time, which may fire again).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from event_handlers import idempotency
from event_handlers.deps import HandlerDeps
from event_handlers.intake import Outcome, TaskEvent
from event_handlers.metrics import REMINDERS_FIRED, REMINDERS_SCHEDULED, REMINDERS_STALE
from event_handlers.scheduling import JobFailed
from event_handlers.subscriptions import REMINDER_JOB_PREFIX
from mcp_server.errors import StoreUnavailable
from mcp_server.events import TASK_UPDATED, epoch
from mcp_server.service import DueReminder

log = logging.getLogger(__name__)

CONSUMER = "reminders"
RECONCILE_ROUNDS = 5  # calls to set one job before the event is retried instead
FIRED = "reminders.fired"  # idempotency records of fired reminders: "<taskId>:<remindAt>"


def job_name(task_id: str) -> str:
    return f"{REMINDER_JOB_PREFIX}{task_id}"


def fired_key(task_id: str, remind_at: int) -> str:
    return f"{task_id}:{remind_at}"


def concerns_reminders(event: TaskEvent) -> bool:
    """Whether the event can change a reminder job: the task has a reminder, or lost one just now."""
    if event.data.remindAt is not None:
        return True
    return event.type == TASK_UPDATED and bool({"remind", "due"} & set(event.data.changed or ()))


async def handle(event: TaskEvent, deps: HandlerDeps) -> Outcome:
    if not concerns_reminders(event) or await idempotency.seen(deps.db, CONSUMER, event.id):
        return Outcome.SUCCESS
    await reconcile(event.user_id, event.task_id, deps)
    await idempotency.record(deps.db, CONSUMER, event.id)
    return Outcome.SUCCESS


async def reconcile(user_id: str, task_id: str, deps: HandlerDeps) -> None:
    """Make the task's job match its reminder now (idempotent; safe in any order and at once).

    Two reconciles of one task can overlap (a redelivery while the first is still at work, or
    two replicas), and the sidecar may apply their calls in either order. So after each call the
    task is read again and, if it changed meanwhile, the job is set once more: whichever call
    lands last is followed by a read that sees the newest state. A task that keeps changing
    raises JobFailed after a few rounds, so the event is retried rather than left behind.
    """
    assert deps.scheduler is not None, "the reminders handler needs a scheduler"
    name = job_name(task_id)
    wanted = await _wanted_job(user_id, task_id, deps)
    for _ in range(RECONCILE_ROUNDS):
        if wanted is None:
            await deps.scheduler.delete(name)
        else:
            remind_at, data = wanted
            await deps.scheduler.schedule(name, max(remind_at, deps.clock()), data)
            REMINDERS_SCHEDULED.inc()
        latest = await _wanted_job(user_id, task_id, deps)
        if latest == wanted:
            return
        wanted = latest
    raise JobFailed(f"{name}: the task kept changing while its job was set")


async def _wanted_job(
    user_id: str, task_id: str, deps: HandlerDeps
) -> tuple[datetime, dict[str, Any]] | None:
    """The reminder time and job data the task should have now, or None for no job."""
    state = await deps.service.reminder_state(user_id, task_id)
    if state is None or state.completed or state.remind_at is None:
        return None
    remind_at = epoch(state.remind_at)
    assert remind_at is not None
    fired = fired_key(task_id, remind_at)
    if state.remind_at <= deps.clock() and await idempotency.seen(deps.db, FIRED, fired):
        return None  # that reminder was delivered already
    data = {"taskId": task_id, "userId": user_id, "remindAt": remind_at, "version": state.version}
    return state.remind_at, data


Job = tuple[str, Any]  # a due job: its name and its data


def due_reminder(name: str, data: Any) -> tuple[str, DueReminder] | None:
    """The (user id, reminder) a job trigger is for, or None when it is not one of ours."""
    task_id = name.removeprefix(REMINDER_JOB_PREFIX)
    if (
        not name.startswith(REMINDER_JOB_PREFIX)
        or not isinstance(data, dict)
        or data.get("taskId") != task_id
    ):
        return None
    user_id, remind_at, version = data.get("userId"), data.get("remindAt"), data.get("version")
    if not isinstance(user_id, str) or not isinstance(remind_at, int) or not isinstance(version, int):
        return None
    try:
        return user_id, DueReminder(uuid.UUID(task_id), remind_at, version)
    except ValueError:
        return None


async def trigger(name: str, data: Any, deps: HandlerDeps) -> bool:
    """A due job (`POST /job/<name>` with the job's data): True once handled (stale, foreign or
    empty triggers are acknowledged and do nothing); False when it must be tried again (the
    database is down)."""
    return name in await trigger_many([(name, data)], deps)


async def trigger_many(
    jobs: Sequence[Job], deps: HandlerDeps, *, at: datetime | None = None, concurrency: int = 16
) -> set[str]:
    """Jobs that fell due together (the embedded scheduler fires a batch): each user's reminders
    in one transaction, committed at `at` (the embedded scheduler calls a moment ahead of the
    due time; default now). Returns the names handled; the others failed and are to be retried."""
    handled: set[str] = set()
    by_user: dict[str, dict[str, DueReminder]] = {}
    for name, data in jobs:
        if (found := due_reminder(name, data)) is None:
            log.info("ignored a job trigger that is not one of ours: %r", name[:100])
            handled.add(name)
        else:
            user_id, reminder = found
            by_user.setdefault(user_id, {})[name] = reminder
    limit = asyncio.Semaphore(concurrency)

    async def fire(user_id: str, due: dict[str, DueReminder]) -> None:
        keys = {
            reminder.task_id: fired_key(str(reminder.task_id), reminder.remind_at)
            for reminder in due.values()
        }

        async def claim(session: AsyncSession, task_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
            claimed = await idempotency.claim_many(session, FIRED, [keys[task_id] for task_id in task_ids])
            return {task_id for task_id in task_ids if keys[task_id] in claimed}

        async with limit:
            try:
                fired = await deps.service.fire_reminders(user_id, list(due.values()), claim=claim, at=at)
            except Exception as error:
                log.warning(
                    "could not fire %d reminders (%s); they will be retried",
                    len(due),
                    type(error).__name__,
                    exc_info=not isinstance(error, StoreUnavailable),  # an outage needs no traceback
                )
                return
        REMINDERS_FIRED.inc(len(fired))
        if stale := len(due) - len(fired):
            REMINDERS_STALE.inc(stale)
            log.info("%d stale or repeated reminder triggers for user %s", stale, user_id)
        handled.update(due)

    await asyncio.gather(*(fire(user_id, due) for user_id, due in by_user.items()))
    return handled
