"""Recurring tasks: completing an occurrence creates exactly one next occurrence."""

from __future__ import annotations

from event_handlers.deps import HandlerDeps
from event_handlers.idempotency import claim
from event_handlers.intake import Outcome, TaskEvent
from mcp_server.events import TASK_COMPLETED

CONSUMER = "recurring"


async def handle(event: TaskEvent, deps: HandlerDeps) -> Outcome:
    """On `task.completed` of a repeating task: the next one (same series, next index), once.

    The (series, occurrence) unique constraint makes a second completion of the same occurrence
    (after a reopen) or a redelivery create nothing; COUNT and UNTIL end the series.
    """
    if event.type == TASK_COMPLETED and event.data.recurrence:
        data = event.data.model_dump()
        await deps.service.create_occurrence(event.user_id, data, claim=claim(CONSUMER, event.id))
    return Outcome.SUCCESS
