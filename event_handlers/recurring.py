"""Recurring tasks: completing an occurrence creates exactly one next occurrence; reopening it
withdraws that next one again while nobody has touched it."""

from __future__ import annotations

from event_handlers.deps import HandlerDeps
from event_handlers.idempotency import claim
from event_handlers.intake import Outcome, TaskEvent
from mcp_server.events import TASK_COMPLETED, TASK_REOPENED

CONSUMER = "recurring"


async def handle(event: TaskEvent, deps: HandlerDeps) -> Outcome:
    """On `task.completed` of a repeating task: the next one (same series, next index), once.
    On `task.reopened` of one: that next one deleted again, if it is as its completion made it.

    The (series, occurrence) unique constraint makes a redelivery create nothing, and a completion
    after a reopen makes the next occurrence anew only if the reopen withdrew it; COUNT and UNTIL
    end the series.
    """
    if event.data.recurrence and event.type in (TASK_COMPLETED, TASK_REOPENED):
        data = event.data.model_dump()
        once = claim(CONSUMER, event.id)
        if event.type == TASK_COMPLETED:
            await deps.service.create_occurrence(event.user_id, data, claim=once)
        else:
            await deps.service.withdraw_occurrence(event.user_id, data, claim=once)
    return Outcome.SUCCESS
