"""The shapes tasks take on the way in and out, shared by the MCP tools and the REST API.

Input models hold the rules that need no context (lengths, enums, tag normalisation); rules that
need the caller's time zone and clock (dates, reminders, repeats) are applied by `TaskService`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

TITLE_MAX = 200
DESCRIPTION_MAX = 4_000
TAGS_MAX = 20
TAG_MAX = 40
QUERY_MAX = 200
PAGE_MAX = 100
PHRASE_MAX = 100  # the longest date, reminder or repeat phrase understood (mcp_server.dates.MAX_PHRASE)
TAGS_SENT_MAX = 100  # tags one request may name (before de-duplication)

Priority = Literal["none", "low", "medium", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("none", "low", "medium", "high", "urgent")
Status = Literal["open", "done", "all"]
SortKey = Literal["due", "priority", "created", "updated", "title"]

# Control characters (but tab, newline, carriage return) and lone surrogates: neither a database nor
# a person can use them, and PostgreSQL refuses NUL outright.
_UNUSABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def usable_text(value: str) -> str:
    """`value` if it is text a person could have typed; ValueError naming the rule otherwise."""
    found = _UNUSABLE.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain control characters or lone surrogates (found U+{ord(found[0]):04X})"
        )
    return value


Text = Annotated[str, AfterValidator(usable_text)]
# Phrases resolved later in the user's time zone: "tomorrow 5pm", "30 minutes before", "every weekday".
Phrase = Annotated[str, Field(max_length=PHRASE_MAX), AfterValidator(usable_text)]
TagList = Annotated[list[str], Field(max_length=TAGS_SENT_MAX)]


# Nullable output fields as `"type": [T, "null"]` rather than pydantic's `anyOf`: the same meaning,
# and a client that validates every result against the output schema does half the work.
def _nullable(json_type: str, **extra: str) -> WithJsonSchema:
    return WithJsonSchema({"type": [json_type, "null"], **extra})


OptionalText = Annotated[str | None, _nullable("string")]
OptionalInt = Annotated[int | None, _nullable("integer")]
OptionalMoment = Annotated[datetime | None, _nullable("string", format="date-time")]
OptionalId = Annotated[UUID | None, _nullable("string", format="uuid")]


def clean_title(value: str) -> str:
    title = " ".join(usable_text(value).split())
    if not 1 <= len(title) <= TITLE_MAX:
        raise ValueError(f"must be 1-{TITLE_MAX} characters after trimming (got {len(title)})")
    return title


def clean_description(value: str | None) -> str | None:
    if value is None:
        return None
    text = usable_text(value).strip()
    if len(text) > DESCRIPTION_MAX:
        raise ValueError(f"must be at most {DESCRIPTION_MAX} characters (got {len(text)})")
    return text or None


def clean_tags(values: list[str] | None, *, limit: int = TAGS_MAX) -> list[str] | None:
    """Lower-case, trimmed, without a leading '#', de-duplicated in first-seen order."""
    if values is None:
        return None
    tags: dict[str, None] = {}  # ordered, with constant-time membership
    for raw in values:
        tag = " ".join(usable_text(raw).strip().lstrip("#").lower().split())
        if not 1 <= len(tag) <= TAG_MAX:
            raise ValueError(f"each tag must be 1-{TAG_MAX} characters (got {raw[:50]!r})")
        tags[tag] = None
    if len(tags) > limit:
        raise ValueError(f"at most {limit} tags per task (got {len(tags)})")
    return list(tags)


class TaskFields(BaseModel):
    """Fields a caller may set when adding or changing a task."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, description=f"Details, up to {DESCRIPTION_MAX} characters.")
    priority: Priority | None = Field(None, description="none, low, medium, high or urgent.")
    due: Phrase | None = Field(
        None, description="When it is due: ISO 8601 or words such as 'tomorrow 5pm', 'next friday'."
    )
    remind: Phrase | None = Field(
        None,
        description="When to remind: a time ('today 6pm') or an offset before due ('30 minutes before').",
    )
    repeat: Phrase | None = Field(
        None,
        description="An RFC 5545 RRULE or a phrase: 'daily', 'every weekday', 'every 2 weeks on mon,wed'.",
    )

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        return clean_description(value)


class TaskCreate(TaskFields):
    title: str = Field(description=f"What to do, 1-{TITLE_MAX} characters.")
    tags: TagList | None = Field(None, description=f"Up to {TAGS_MAX} labels such as 'work' or 'errands'.")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return clean_title(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return clean_tags(value)


class TaskPatch(TaskFields):
    """A partial change. For `description`, `due`, `remind` and `repeat`, an empty string clears the field."""

    title: str | None = None
    tags: TagList | None = Field(None, description="Replace all tags with these.")
    add_tags: TagList | None = Field(None, description="Tags to add.")
    remove_tags: TagList | None = Field(None, description="Tags to remove.")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else clean_title(value)

    @field_validator("tags", "add_tags", "remove_tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return clean_tags(value)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        # "" must survive as "clear the description" rather than becoming "no change".
        return "" if value is not None and not value.strip() else clean_description(value)


class TaskQuery(BaseModel):
    """Filters, order and page of a task listing."""

    model_config = ConfigDict(extra="forbid")

    status: Status = "open"
    priority: Priority | None = None
    tag: Text | None = Field(None, max_length=TAG_MAX)
    due_before: Phrase | None = None
    due_after: Phrase | None = None
    overdue: bool | None = None
    done_after: Phrase | None = None
    done_before: Phrase | None = None
    query: Text | None = Field(None, max_length=QUERY_MAX)
    sort: SortKey = "due"
    limit: int = Field(20, ge=1, le=PAGE_MAX)
    cursor: Text | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _completion_means_done(self) -> TaskQuery:
        """Only done tasks have a completion time: with `done_after`/`done_before`, "open" (the
        default) lists the done ones ("what did I finish this week")."""
        if (self.done_after or self.done_before) and self.status == "open":
            self.status = "done"
        return self


class TaskOut(BaseModel):
    """A task as callers see it. Times are ISO 8601 in the user's time zone."""

    id: UUID
    title: str
    description: OptionalText
    completed: bool
    completed_at: OptionalMoment
    priority: Priority
    tags: list[str]
    due: OptionalMoment
    remind_at: OptionalMoment = Field(description="When the reminder fires, if any.")
    remind_before_minutes: OptionalInt = Field(description="Set when the reminder follows the due time.")
    repeat: OptionalText = Field(description="RFC 5545 RRULE of a repeating task.")
    repeat_text: OptionalText = Field(description="The repeat rule in words.")
    series_id: OptionalId
    occurrence: OptionalInt
    created_at: datetime
    updated_at: datetime
    version: int


class TaskSummary(BaseModel):
    """A task in a listing: enough to choose one; `get_task` returns all fields."""

    id: UUID
    title: str
    completed: bool
    priority: Priority
    tags: list[str]
    due: OptionalMoment
    remind_at: OptionalMoment
    repeat_text: OptionalText
    version: int


class TaskPage(BaseModel):
    # Inlined rather than a `$ref`: clients validating each page resolve no reference per task.
    tasks: Annotated[
        list[TaskSummary], WithJsonSchema({"type": "array", "items": TaskSummary.model_json_schema()})
    ]
    total: int = Field(description="How many tasks match the filters, across all pages.")
    next_cursor: OptionalText = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DeletedTask(BaseModel):
    id: UUID
    title: str
    deleted: bool = True
