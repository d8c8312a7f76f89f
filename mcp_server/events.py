"""The CloudEvents every task change produces (structured JSON, CloudEvents 1.0)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from uuid6 import uuid7

from mcp_server.models import Priority, Task

TASK_CREATED: Final = "task.created"
TASK_UPDATED: Final = "task.updated"
TASK_COMPLETED: Final = "task.completed"
TASK_REOPENED: Final = "task.reopened"
TASK_DELETED: Final = "task.deleted"
REMINDER_DUE: Final = "reminder.due"
EVENT_TYPES: Final = (TASK_CREATED, TASK_UPDATED, TASK_COMPLETED, TASK_REOPENED, TASK_DELETED, REMINDER_DUE)

_FORMAT = JSONFormat()


def epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def task_data(task: Task) -> dict[str, Any]:
    """The task snapshot carried in `data` (timestamps in epoch seconds)."""
    return {
        "taskId": str(task.id),
        "userId": task.user_id,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "priority": Priority(task.priority).name,
        "tags": list(task.tags),
        "dueDate": epoch(task.due_at),
        "remindAt": epoch(task.remind_at),
        "remindOffset": task.remind_offset_s,
        "recurrence": task.recurrence,
        "seriesId": None if task.series_id is None else str(task.series_id),
        "occurrence": task.occurrence,
        "completedAt": epoch(task.completed_at),
        "createdAt": epoch(task.created_at),
        "updatedAt": epoch(task.updated_at),
        "version": task.version,
    }


def new_event_id() -> str:
    """UUIDv7: unique, and sorts by creation time."""
    return str(uuid7())


def build_event(
    event_type: str,
    data: dict[str, Any],
    *,
    source: str,
    subject: str,
    user_id: str,
    time: datetime,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> dict[str, Any]:
    """A validated structured CloudEvent as a JSON-ready dict.

    Extensions: `partitionkey` (the user id), `traceparent`/`traceid` when the change came with a
    trace; `sequence` (the user's event number) is added from the outbox row when published.
    """
    attributes: dict[str, Any] = {
        "id": event_id or new_event_id(),
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "partitionkey": user_id,
    }
    if traceparent:
        attributes["traceparent"] = traceparent
        attributes["traceid"] = traceparent
    event = CloudEvent(attributes, data)
    document: dict[str, Any] = json.loads(_FORMAT.write(event))
    return document
