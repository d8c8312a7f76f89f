"""The MCP face of the task domain: tools written for a model, no user id among their arguments.

The caller is whoever the transport authenticated: the bearer token over Streamable HTTP (put in
the ASGI scope by `mcp_server.http`), the configured local user over stdio, or the user an
in-process connection was opened for (`acting_as`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError, create_model

from mcp_server.errors import TaskError
from mcp_server.history import TaskHistory
from mcp_server.schemas import (
    PAGE_MAX,
    DeletedTask,
    Priority,
    SortKey,
    Status,
    TaskCreate,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskQuery,
)
from mcp_server.service import Caller, TaskService
from mcp_server.telemetry import TOOL_CALLS, TOOL_SECONDS

CALLER_SCOPE_KEY = "todo.caller"
_in_process_caller: ContextVar[Caller | None] = ContextVar("todo_in_process_caller", default=None)

INSTRUCTIONS = (
    "Task tools for one person's to-do list. Find a task's id with list_tasks (use `query` to search "
    "by words) before get/update/complete/reopen/delete; never guess ids. Dates and reminders accept "
    "ISO 8601 or everyday words ('tomorrow 5pm', '30 minutes before') in the user's time zone."
)

T = TypeVar("T")
ToolFunction = TypeVar("ToolFunction", bound=Callable[..., Awaitable[Any]])

TaskId = Annotated[str, Field(description="The task's id, from list_tasks or add_task.", max_length=64)]
Title = Annotated[str, Field(description="What to do, 1-200 characters.")]
Description = Annotated[str | None, Field(description="Details, up to 4,000 characters.")]
PriorityArg = Annotated[Priority | None, Field(description="none, low, medium, high or urgent.")]
Tags = Annotated[list[str] | None, Field(description="Labels such as 'work' or 'errands' (up to 20).")]
Due = Annotated[
    str | None,
    Field(
        description="Due date/time: ISO 8601 or words like 'tomorrow 5pm', 'next friday', 'in 2 hours', "
        "'end of the month', 'the first monday of december'."
    ),
]
Remind = Annotated[
    str | None,
    Field(
        description="Reminder: a time ('today 6pm') or an offset before the due time ('30 minutes before', "
        "'the day before')."
    ),
]
Repeat = Annotated[
    str | None,
    Field(
        description="Repeat rule: an RFC 5545 RRULE or words like 'daily', 'every weekday', 'every 2 weeks', "
        "'every sunday morning', 'every tuesday for 4 weeks'."
    ),
]

READ = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
ADD = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
DELETE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


@contextlib.contextmanager
def acting_as(caller: Caller) -> Iterator[None]:
    """Tool calls made through an in-process connection opened inside this block act for `caller`."""
    token = _in_process_caller.set(caller)
    try:
        yield
    finally:
        _in_process_caller.reset(token)


def describe_validation_error(error: ValidationError) -> str:
    """'title: must be 1-200 characters ...; priority: Input should be ...' for people and models."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "arguments"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


async def _domain(tool: str, call: Awaitable[T]) -> T:
    """Turn domain refusals into tool errors the model can read (other exceptions stay masked);
    count and time the call."""
    started = time.perf_counter()
    outcome = "error"
    try:
        result = await call
        outcome = "ok"
        return result
    except TaskError as error:
        raise ToolError(str(error)) from None
    finally:
        TOOL_CALLS.labels(tool, outcome).inc()
        TOOL_SECONDS.labels(tool).observe(time.perf_counter() - started)


def _build(model: Callable[..., T], **arguments: Any) -> T:
    try:
        return model(**{key: value for key, value in arguments.items() if value is not None})
    except ValidationError as error:
        raise ToolError(describe_validation_error(error)) from None


def refusing_unknown_arguments(tool: Tool) -> Tool:
    """`tool`, refusing argument names it does not have (`"additionalProperties": false`).

    The SDK drops unknown arguments silently, so a model that writes `due_date` for `due` would
    get a task saved without its due date; this way it gets a tool error naming the argument.
    """
    base = tool.fn_metadata.arg_model
    strict = cast(
        type[ArgModelBase],
        create_model(base.__name__, __base__=base, __cls_kwargs__={"extra": "forbid"}),
    )
    tool.fn_metadata.arg_model = strict  # read on every call
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


def build_mcp_server(service: TaskService, *, local_caller: Caller | None = None) -> MCPServer:
    """The MCP server over `service`; `local_caller` is who stdio and in-process calls act for."""
    tools: list[Tool] = []

    def tool(annotations: ToolAnnotations) -> Callable[[ToolFunction], ToolFunction]:
        def register(fn: ToolFunction) -> ToolFunction:
            tools.append(refusing_unknown_arguments(Tool.from_function(fn, annotations=annotations)))
            return fn

        return register

    def caller_of(ctx: Context) -> Caller:
        request = ctx.request_context.request
        if request is not None:
            caller = getattr(request, "scope", {}).get(CALLER_SCOPE_KEY)
        else:
            caller = _in_process_caller.get() or local_caller
        if not isinstance(caller, Caller):
            raise ToolError("not authenticated: no user is attached to this connection")
        return caller

    @tool(ADD)
    async def add_task(
        title: Title,
        ctx: Context,
        description: Description = None,
        priority: PriorityArg = None,
        tags: Tags = None,
        due: Due = None,
        remind: Remind = None,
        repeat: Repeat = None,
    ) -> TaskOut:
        """Add a task to the user's list. Returns the new task with its id."""
        fields = _build(
            TaskCreate,
            title=title,
            description=description,
            priority=priority,
            tags=tags,
            due=due,
            remind=remind,
            repeat=repeat,
        )
        return await _domain("add_task", service.create(caller_of(ctx), fields))

    @tool(READ)
    async def list_tasks(
        ctx: Context,
        status: Annotated[
            Status, Field(description="open (default), done or all (open ones first).")
        ] = "open",
        priority: PriorityArg = None,
        tag: Annotated[str | None, Field(description="Only tasks with this tag.")] = None,
        due_before: Annotated[
            str | None, Field(description="Due at or before this time (words or ISO).")
        ] = None,
        due_after: Annotated[
            str | None, Field(description="Due at or after this time (words or ISO).")
        ] = None,
        overdue: Annotated[
            bool | None, Field(description="Only open tasks whose due time has passed.")
        ] = None,
        done_after: Annotated[
            str | None,
            Field(
                description="Only tasks completed at or after this time, e.g. 'yesterday', 'last monday', "
                "'7 days ago' or ISO; lists done tasks."
            ),
        ] = None,
        done_before: Annotated[
            str | None, Field(description="Only tasks completed at or before this time (words or ISO).")
        ] = None,
        query: Annotated[str | None, Field(description="Words to find in the title or description.")] = None,
        sort: Annotated[
            SortKey, Field(description="due (default), priority, created, updated or title.")
        ] = "due",
        limit: Annotated[int, Field(description=f"Page size, 1-{PAGE_MAX}.")] = 20,
        cursor: Annotated[str | None, Field(description="`next_cursor` of the previous page.")] = None,
    ) -> TaskPage:
        """List or search the user's tasks with filters. Returns a page of tasks and the total count."""
        filters = _build(
            TaskQuery,
            status=status,
            priority=priority,
            tag=tag,
            due_before=due_before,
            due_after=due_after,
            overdue=overdue,
            done_after=done_after,
            done_before=done_before,
            query=query,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
        return await _domain("list_tasks", service.list_tasks(caller_of(ctx), filters))

    @tool(READ)
    async def get_task(task_id: TaskId, ctx: Context) -> TaskOut:
        """Get one task by its id, with all its fields."""
        return await _domain("get_task", service.get(caller_of(ctx), task_id))

    @tool(CHANGE)
    async def update_task(
        task_id: TaskId,
        ctx: Context,
        title: Annotated[str | None, Field(description="New title.")] = None,
        description: Annotated[
            str | None, Field(description="New details; empty string clears them.")
        ] = None,
        priority: PriorityArg = None,
        tags: Annotated[list[str] | None, Field(description="Replace all tags with these.")] = None,
        add_tags: Annotated[list[str] | None, Field(description="Tags to add.")] = None,
        remove_tags: Annotated[list[str] | None, Field(description="Tags to remove.")] = None,
        due: Annotated[
            str | None,
            Field(
                description="New due time (words or ISO); a day alone keeps the task's time of day; "
                "'+2 days', 'by a week' or '1 hour earlier' moves the current one; empty string clears it."
            ),
        ] = None,
        remind: Annotated[
            str | None,
            Field(
                description="New reminder time, or offset before the due time ('30 minutes before'); "
                "'+10 minutes' or 'by an hour' moves it (from now once it has fired: a snooze); '' clears it."
            ),
        ] = None,
        repeat: Annotated[
            str | None, Field(description="New repeat rule; empty string stops repeating.")
        ] = None,
    ) -> TaskOut:
        """Change some fields of a task; fields left out stay as they are. Use it to snooze a reminder."""
        patch = _build(
            TaskPatch,
            title=title,
            description=description,
            priority=priority,
            tags=tags,
            add_tags=add_tags,
            remove_tags=remove_tags,
            due=due,
            remind=remind,
            repeat=repeat,
        )
        return await _domain("update_task", service.update(caller_of(ctx), task_id, patch))

    @tool(CHANGE)
    async def complete_task(task_id: TaskId, ctx: Context) -> TaskOut:
        """Mark a task done. A repeating task gets its next occurrence added automatically."""
        return await _domain("complete_task", service.complete(caller_of(ctx), task_id))

    @tool(CHANGE)
    async def reopen_task(task_id: TaskId, ctx: Context) -> TaskOut:
        """Mark a done task as not done again."""
        return await _domain("reopen_task", service.reopen(caller_of(ctx), task_id))

    @tool(DELETE)
    async def delete_task(task_id: TaskId, ctx: Context) -> DeletedTask:
        """Delete one task for good. Confirm with the user first when the request is ambiguous."""
        return await _domain("delete_task", service.delete(caller_of(ctx), task_id))

    @tool(READ)
    async def task_history(
        ctx: Context,
        task_id: Annotated[
            str | None,
            Field(description="A task's id for its history; leave out for recent activity.", max_length=64),
        ] = None,
        limit: Annotated[int, Field(description="How many events, newest first (1-200).", ge=1, le=200)] = 20,
    ) -> TaskHistory:
        """What happened to one task (also after it was deleted), or the user's recent activity."""
        return await _domain("task_history", service.history(caller_of(ctx), task_id, limit))

    return MCPServer("todo-chatbot", instructions=INSTRUCTIONS, version="0.1.0", tools=tools)
