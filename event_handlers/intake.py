"""CloudEvent intake: what a delivery must look like before a handler sees it, and the answers.

A delivery is our structured CloudEvent plus what the sidecar adds (`topic`, `pubsubname`,
`traceparent`, `traceid`, `tracestate`, `expiration`); `data` may come as `data_base64`. Anything
malformed becomes `Malformed`, which the routes answer with DROP (to the dead-letter topic).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from pydantic import BaseModel, ConfigDict, ValidationError

from mcp_server.events import EVENT_TYPES

MAX_EVENT_BYTES = 256 * 1024
SIDECAR_ATTRIBUTES = frozenset({"topic", "pubsubname", "tracestate", "expiration"})
_FORMAT = JSONFormat()


class Outcome(enum.Enum):
    """What a handler answers the sidecar (and the in-process bus): the message's fate."""

    SUCCESS = "SUCCESS"  # done, or a duplicate
    RETRY = "RETRY"  # a transient failure: deliver again later
    DROP = "DROP"  # malformed or unprocessable: to the dead-letter topic


class TaskSnapshot(BaseModel):
    """The `data` of every task event (timestamps in epoch seconds)."""

    model_config = ConfigDict(extra="allow")

    taskId: str
    userId: str
    title: str
    description: str | None = None
    completed: bool
    priority: str
    tags: list[str]
    dueDate: int | None = None
    remindAt: int | None = None
    remindOffset: int | None = None
    recurrence: str | None = None
    seriesId: str | None = None
    occurrence: int | None = None
    createdAt: int
    updatedAt: int
    version: int
    changed: list[str] | None = None


@dataclass(frozen=True)
class TaskEvent:
    id: str
    type: str
    subject: str
    time: datetime
    seq: int
    data: TaskSnapshot
    document: dict[str, Any]  # the CloudEvent as published, for forwarding to clients

    @property
    def user_id(self) -> str:
        return self.data.userId

    @property
    def task_id(self) -> str:
        return self.data.taskId


@dataclass(frozen=True)
class Malformed:
    reason: str
    event_id: str | None = None


def parse(body: bytes | str | dict[str, Any]) -> TaskEvent | Malformed:
    """A delivery (raw bytes from the sidecar, or a dict on the in-process bus) as a `TaskEvent`."""
    try:
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
    except (ValueError, TypeError, RecursionError):
        return Malformed("event cannot be written as JSON")
    if len(raw) > MAX_EVENT_BYTES:
        return Malformed(f"event larger than {MAX_EVENT_BYTES} bytes")
    try:
        event = _FORMAT.read(None, raw)
    except Exception as error:  # the library raises several kinds for bad JSON and bad attributes
        return Malformed(f"not a CloudEvent: {type(error).__name__}: {str(error)[:200]}")
    event_id = event.get_id()
    if event.get_type() not in EVENT_TYPES:
        return Malformed(f"unknown event type {event.get_type()[:64]!r}", event_id)
    data = event.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            return Malformed("data is not JSON", event_id)
    try:
        snapshot = TaskSnapshot.model_validate(data)
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, item["loc"])) or "data" for item in error.errors()[:5])
        return Malformed(f"data has the wrong shape ({fields})", event_id)
    try:
        seq = int(str(event.get_extension("sequence")))
    except (TypeError, ValueError):
        return Malformed("missing or bad `sequence` attribute", event_id)
    time = event.get_time()
    if time is None or seq < 1 or event.get_subject() != snapshot.taskId:
        return Malformed("missing `time`, bad `sequence` or `subject` not the task id", event_id)
    document = {
        key: value for key, value in json.loads(_FORMAT.write(event)).items() if key not in SIDECAR_ATTRIBUTES
    }
    document["data"] = snapshot.model_dump(mode="json", exclude_unset=True)  # the data as published
    return TaskEvent(event_id, event.get_type(), snapshot.taskId, time, seq, snapshot, document)
