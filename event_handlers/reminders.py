"""Reminders through the Jobs API, no polling: one job `reminder-<taskId>` per open task whose
reminder has not fired yet.

On any change of a task the job is reconciled with the task as it is NOW (so late or repeated
events cannot undo newer state): scheduled (with overwrite) for a pending reminder, deleted
otherwise. A reminder set in the past fires at once. When the job triggers, `reminder.due` is
written only if the task is still open with the same reminder and version, and only once per
reminder time (a snooze sets a new time, which may fire again).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from event_handlers import idempotency
from event_handlers.deps import HandlerDeps
from event_handlers.intake import Outcome, TaskEvent
from event_handlers.metrics import REMINDERS_FIRED, REMINDERS_SCHEDULED, REMINDERS_STALE
from event_handlers.subscriptions import REMINDER_JOB_PREFIX
from mcp_server.events import TASK_UPDATED, epoch

log = logging.getLogger(__name__)

CONSUMER = "reminders"
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
    """Make the task's job match its reminder now (idempotent; safe in any order)."""
    assert deps.scheduler is not None, "the reminders handler needs a scheduler"
    state = await deps.service.reminder_state(user_id, task_id)
    name = job_name(task_id)
    if state is None or state.completed or state.remind_at is None:
        await deps.scheduler.delete(name)
        return
    remind_at = epoch(state.remind_at)
    assert remind_at is not None
    now = deps.clock()
    if state.remind_at <= now and await idempotency.seen(deps.db, FIRED, fired_key(task_id, remind_at)):
        await deps.scheduler.delete(name)  # that reminder was delivered already
        return
    data = {"taskId": task_id, "userId": user_id, "remindAt": remind_at, "version": state.version}
    await deps.scheduler.schedule(name, max(state.remind_at, now), data)
    REMINDERS_SCHEDULED.inc()


async def trigger(name: str, data: Any, deps: HandlerDeps) -> bool:
    """A due job (`POST /job/<name>` with the job's data). Always handled, unless the database is down.

    Stale, foreign or empty triggers are acknowledged and do nothing.
    """
    task_id = name.removeprefix(REMINDER_JOB_PREFIX)
    if (
        not name.startswith(REMINDER_JOB_PREFIX)
        or not isinstance(data, dict)
        or data.get("taskId") != task_id
    ):
        log.info("ignored a job trigger that is not one of ours: %r", name[:100])
        return True
    user_id, remind_at, version = data.get("userId"), data.get("remindAt"), data.get("version")
    if not isinstance(user_id, str) or not isinstance(remind_at, int) or not isinstance(version, int):
        return True
    try:
        uuid.UUID(task_id)
    except ValueError:
        return True
    fired = await deps.service.fire_reminder(
        user_id,
        task_id,
        remind_at=remind_at,
        version=version,
        claim=idempotency.claim(FIRED, fired_key(task_id, remind_at)),
    )
    if fired:
        REMINDERS_FIRED.inc()
    else:
        REMINDERS_STALE.inc()
        log.info("stale or repeated reminder trigger for task %s", task_id)
    return True
