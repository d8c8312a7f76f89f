"""The offline model: an Agents SDK `Model` that turns everyday task commands into MCP tool calls.

Stateless: every call re-reads the conversation (the SDK passes its latest whole turns). It parses
only the latest USER message (`offline_parser.parse`), replays its own earlier tool calls of this turn
to see how far it got, and answers with either the next tool call(s) or a final message written from
the tool results. A "which one?" or "yes, delete all 12" answer is resolved by replaying the previous
turn the same way, so no state is kept between calls. Tool outputs and task titles are shown, never
obeyed: nothing but the user's own message is parsed as a command.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from zoneinfo import ZoneInfo

from agents.items import ModelResponse, TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.models.interface import Model, ModelTracing
from agents.testing import assistant_message, function_call
from agents.tracing import generation_span
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from agent.instructions import parse_clock
from agent.offline_parser import (
    Act,
    Add,
    AddSeveral,
    BulkDelete,
    Confirm,
    Deny,
    Filters,
    Help,
    Intent,
    ListTasks,
    Select,
    Skip,
    Thanks,
    Undo,
    Unknown,
    parse,
    time_of_day,
)

if TYPE_CHECKING:
    from agents.agent_output import AgentOutputSchemaBase
    from agents.handoffs import Handoff
    from agents.model_settings import ModelSettings
    from agents.tool import Tool

OFFLINE_MODEL_NAME = "offline"

SHOWN = 10
"""Listings show this many tasks, then 'and N more'."""
SEARCH_LIMIT = 20
BULK_PAGE = 100
BULK_ROUNDS = 4
"""A confirmed bulk delete lists and deletes at most this many pages (9 model calls, within max_turns=10)."""
_REPLAY_DEPTH = 4
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_TOOL_ERROR_PREFIX = re.compile(
    r"^\s*(?:error\s+executing\s+tool\s+[\w.-]+\s*:\s*|error\s*:\s*)", re.IGNORECASE
)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EXAMPLES = (
    "add buy milk tomorrow at 9am #errands",
    "what's due today?",
    "mark the milk one done",
    "help",
)
HELP_TEXT = (
    "I can add, find, change, complete and delete your tasks. Try:\n"
    "- add buy milk tomorrow at 9am #errands\n"
    "- remind me to call mom at 6pm\n"
    "- pay rent on the 1st every month\n"
    "- what's due today? / what's overdue? / show all / search milk\n"
    "- mark the milk one done\n"
    "- move the dentist to friday 3pm / make the report urgent\n"
    "- rename the milk one to buy oat milk\n"
    "- delete the milk task\n"
    "- undo (takes back my last change)"
)


# ------------------------------------------------------------------------------- conversation


@dataclass(frozen=True)
class _Result:
    """One tool output: parsed JSON when it is JSON, else an error text."""

    ok: bool
    data: Any = None
    error: str = ""

    @classmethod
    def of(cls, output: object) -> _Result:
        text = _output_text(output)
        if text is None:
            return cls(False, error="the tool returned no result")
        try:
            data = json.loads(text)
        except ValueError:
            return cls(False, error=_clean_error(text))
        if isinstance(data, dict) and ("error" in data and "id" not in data and "tasks" not in data):
            return cls(False, error=_clean_error(str(data["error"])))
        if not isinstance(data, dict | list):
            return cls(False, error=_clean_error(text))
        return cls(True, data=data)


@dataclass
class _Step:
    name: str
    call_id: str
    arguments: str = ""
    """The call's arguments as sent (JSON), read only to undo an update."""
    result: _Result | None = None


@dataclass
class _Turn:
    text: str
    steps: list[_Step] = field(default_factory=list)


def _get(item: object, key: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(key)
    return getattr(item, key, None)


def _message_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [_get(part, "text") for part in content]
        return "\n".join(part for part in parts if isinstance(part, str))
    return ""


def _output_text(output: object) -> str | None:
    if output is None:
        return None
    if isinstance(output, str):
        return output
    if isinstance(output, Mapping) and "text" in output:
        return str(output["text"])
    if isinstance(output, Sequence):
        texts = [_get(part, "text") for part in output]
        joined = "".join(text for text in texts if isinstance(text, str))
        return joined or None
    return str(output)


def _clean_error(text: str) -> str:
    cleaned = _TOOL_ERROR_PREFIX.sub("", " ".join(text.split()))
    return (cleaned[:297] + "...") if len(cleaned) > 300 else cleaned


def _turns(items: str | list[TResponseInputItem], canonical: Mapping[str, str]) -> list[_Turn]:
    """Split the conversation at user messages; attach tool calls and their outputs to their turn."""
    if isinstance(items, str):
        return [_Turn(items)]
    turns: list[_Turn] = []
    by_call_id: dict[str, _Step] = {}
    for item in items:
        kind = _get(item, "type")
        role = _get(item, "role")
        if role == "user" and kind in (None, "message"):
            turns.append(_Turn(_message_text(_get(item, "content"))))
        elif not turns:
            continue
        elif kind == "function_call":
            name = str(_get(item, "name") or "")
            arguments = _get(item, "arguments")
            step = _Step(
                canonical.get(name, name),
                str(_get(item, "call_id") or ""),
                arguments if isinstance(arguments, str) else "",
            )
            turns[-1].steps.append(step)
            by_call_id[step.call_id] = step
        elif kind == "function_call_output":
            found = by_call_id.get(str(_get(item, "call_id") or ""))
            if found is not None:
                found.result = _Result.of(_get(item, "output"))
    return turns


# --------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class _Task:
    id: str
    title: str
    completed: bool = False
    priority: str = "none"
    tags: tuple[str, ...] = ()
    description: str | None = None
    due: datetime | None = None
    remind_at: datetime | None = None
    remind_before_minutes: int | None = None
    repeat: str | None = None
    repeat_text: str | None = None
    version: int | None = None
    full: bool = False
    """All fields known (`get_task` and changes answer so); a listing leaves out the description, the
    reminder's offset and the repeat rule itself."""

    @classmethod
    def of(cls, data: object) -> _Task | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str | int):
            return None
        tags = data.get("tags")
        minutes = data.get("remind_before_minutes")
        version = data.get("version")
        return cls(
            id=str(data["id"]),
            title=" ".join(str(data.get("title") or "").split()) or "(untitled)",
            completed=bool(data.get("completed")),
            priority=str(data.get("priority") or "none"),
            tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
            description=data.get("description") if isinstance(data.get("description"), str) else None,
            due=_datetime(data.get("due")),
            remind_at=_datetime(data.get("remind_at")),
            remind_before_minutes=minutes if isinstance(minutes, int) else None,
            repeat=data.get("repeat") if isinstance(data.get("repeat"), str) else None,
            repeat_text=data.get("repeat_text") if isinstance(data.get("repeat_text"), str) else None,
            version=version if isinstance(version, int) else None,
            full=all(key in data for key in ("description", "remind_before_minutes", "repeat")),
        )


@dataclass(frozen=True)
class _Page:
    tasks: tuple[_Task, ...]
    total: int


def _page(result: _Result) -> _Page | None:
    if (
        not result.ok
        or not isinstance(result.data, Mapping)
        or not isinstance(result.data.get("tasks"), list)
    ):
        return None
    tasks = tuple(task for task in (_Task.of(item) for item in result.data["tasks"]) if task is not None)
    total = result.data.get("total")
    return _Page(tasks, total if isinstance(total, int) and total >= len(tasks) else len(tasks))


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# -------------------------------------------------------------------------------------- words


@dataclass(frozen=True)
class _Clock:
    now: datetime
    tz: ZoneInfo


def _when(moment: datetime, clock: _Clock) -> str:
    local = moment.replace(tzinfo=clock.tz) if moment.tzinfo is None else moment.astimezone(clock.tz)
    text = f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month]}"
    if local.year != clock.now.year:
        text += f" {local.year}"
    if (local.hour, local.minute) != (0, 0):
        text += f", {local.hour:02d}:{local.minute:02d}"
    return text


def _minutes(count: int) -> str:
    if count and count % 1440 == 0:
        days = count // 1440
        return f"{days} day{'s' if days != 1 else ''}"
    if count and count % 60 == 0:
        hours = count // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{count} minute{'s' if count != 1 else ''}"


def _priority_words(priority: str) -> str:
    return "urgent" if priority == "urgent" else f"{priority} priority"


def _tags_words(tags: Iterable[str]) -> str:
    return " ".join(f"#{tag}" for tag in tags)


def _due_words(task: _Task, clock: _Clock) -> str | None:
    if task.due is None:
        return None
    text = f"due {_when(task.due, clock)}"
    if not task.completed and task.due < clock.now:
        text += ", overdue"
    return text


def _remind_words(task: _Task, clock: _Clock) -> str | None:
    if task.remind_before_minutes is not None:
        return f"reminder {_minutes(task.remind_before_minutes)} before"
    if task.remind_at is not None:
        return f"reminder {_when(task.remind_at, clock)}"
    return None


def _repeat_words(task: _Task) -> str | None:
    if task.repeat_text:
        return f"repeats {task.repeat_text}"
    return "repeats" if task.repeat else None


def _summary(task: _Task, clock: _Clock, *, full: bool) -> str:
    """'(due Sat 28 Nov, 09:00; high priority; #errands)' or '' when there is nothing to say."""
    parts = [_due_words(task, clock)]
    if full:
        parts += [_remind_words(task, clock), _repeat_words(task)]
    if task.priority not in ("none", ""):
        parts.append(_priority_words(task.priority))
    if task.tags:
        parts.append(_tags_words(task.tags))
    shown = [part for part in parts if part]
    return f" ({'; '.join(shown)})" if shown else ""


def _line(task: _Task, clock: _Clock) -> str:
    mark = "✓ " if task.completed else ""
    return f"- {mark}{task.title}{_summary(task, clock, full=False)}"


def _quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return f'"{text if len(text) <= limit else text[: limit - 3] + "..."}"'


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _describe(filters: Filters, window: str | None) -> str:
    """'overdue high-priority tasks tagged #work' for headers and empty answers (the noun is plural)."""
    words = []
    if filters.overdue:
        words.append("overdue")
    if filters.priority == "urgent":
        words.append("urgent")
    elif filters.priority is not None:
        words.append(f"{filters.priority}-priority")
    if filters.status == "done":
        words.append("completed")
    elif filters.status == "open" and not filters.overdue:
        words.append("open")
    words.append("tasks")
    if window:
        words.append(f"due {window}")
    elif filters.due_after or filters.due_before:
        words.append("due in that period")
    if filters.tag:
        words.append(f"tagged #{filters.tag}")
    if filters.query:
        words.append(f"matching {_quote(filters.query, 40)}")
    return " ".join(words)


# ------------------------------------------------------------------------------------- flows


@dataclass(frozen=True)
class _Call:
    name: str
    arguments: dict[str, object]


@dataclass(frozen=True)
class _Choose:
    """We asked "which one?" about `act`, listing `candidates` in this order."""

    act: Act
    candidates: tuple[_Task, ...]


@dataclass(frozen=True)
class _ConfirmBulk:
    """We asked for "yes, delete all `count`" before deleting everything matching `intent`."""

    intent: BulkDelete
    count: int


@dataclass(frozen=True)
class _ConfirmUndo:
    """We asked for "yes, delete all `count`" before the undo said at turn `asked` (`undo`), which
    deletes `count` tasks: an undo deletes several tasks only when told to, as a bulk delete does."""

    undo: Undo
    asked: int
    count: int


_Pending: TypeAlias = _Choose | _ConfirmBulk | _ConfirmUndo


@dataclass(frozen=True)
class _Shown:
    """The tasks an answer listed, in the order shown, and how many more it only counted."""

    tasks: tuple[_Task, ...]
    more: int = 0


@dataclass(frozen=True)
class _Reply:
    text: str
    pending: _Pending | None = None
    shown: _Shown | None = None


_Flow: TypeAlias = Generator[list[_Call], list[_Result], _Reply]


class _Diverged:
    """The recorded tool calls are not the ones this model would make (another model wrote them)."""


@dataclass(frozen=True)
class _Context:
    clock: _Clock
    tools: frozenset[str]
    turns: list[_Turn]


def _drive(flow: _Flow, steps: list[_Step]) -> list[_Call] | _Reply | _Diverged:
    """Feed the recorded results of `steps` to `flow`: the next calls to make, or its final reply."""
    position = 0
    try:
        batch = next(flow)
        while True:
            if position == len(steps):
                return batch
            recorded = steps[position : position + len(batch)]
            if [step.name for step in recorded] != [call.name for call in batch]:
                return _Diverged()
            position += len(batch)
            results = [step.result or _Result(False, error="the tool did not answer") for step in recorded]
            batch = flow.send(results)
    except StopIteration as stop:
        return cast(_Reply, stop.value)


def _just(reply: _Reply) -> _Flow:
    return reply
    yield []  # a generator that makes no calls


def _missing(tool: str) -> _Reply:
    return _Reply(f"I can't do that right now: the {tool} tool isn't available.")


def _plan(context: _Context, index: int, depth: int = 0) -> list[_Call] | _Reply | _Diverged:
    turn = context.turns[index]
    intent = parse(turn.text, now=context.clock.now, tz=context.clock.tz)
    return _drive(_flow(intent, context, index, depth), turn.steps)


def _reply_before(context: _Context, index: int, depth: int) -> _Reply | None:
    """Our answer to the previous user message, replayed from its recorded tool results."""
    if index == 0 or depth >= _REPLAY_DEPTH:
        return None
    outcome = _plan(context, index - 1, depth + 1)
    return outcome if isinstance(outcome, _Reply) else None


def _pending_before(context: _Context, index: int, depth: int) -> _Pending | None:
    """What our answer to the previous user message was waiting for, if anything."""
    before = _reply_before(context, index, depth)
    return before.pending if before is not None else None


def _flow(intent: Intent, context: _Context, index: int, depth: int) -> _Flow:
    if isinstance(intent, Add):
        return _add_flow(intent, context)
    if isinstance(intent, AddSeveral):
        return _add_several_flow(intent, context)
    if isinstance(intent, ListTasks):
        return _list_flow(intent, context)
    if isinstance(intent, Act):
        return _act_flow(intent, context, index, depth)
    if isinstance(intent, BulkDelete):
        return _bulk_ask_flow(intent, context)
    if isinstance(intent, Skip):
        return _skip_flow(intent, context, index)
    if isinstance(intent, Select):
        return _select_flow(intent, context, _reply_before(context, index, depth))
    if isinstance(intent, Confirm):
        return _confirm_flow(intent, context, _pending_before(context, index, depth))
    if isinstance(intent, Deny):
        return _just(_Reply("OK, I left everything as it was."))
    if isinstance(intent, Undo):
        return _undo_flow(intent, context, index, depth)
    if isinstance(intent, Help):
        return _just(_Reply(("Hi! " if intent.greeting else "") + HELP_TEXT))
    if isinstance(intent, Thanks):
        return _just(_Reply("You're welcome! Anything else for your list?"))
    return _just(_unknown_reply(intent))


def _unknown_reply(intent: Unknown) -> _Reply:
    if intent.reason.startswith("I didn't understand") or intent.suggestion is None:
        text = intent.reason
        if intent.suggestion:
            text += f' Did you mean "{intent.suggestion}"?'
        examples = "\n".join(f"- {example}" for example in _EXAMPLES)
        return _Reply(f"{text} I can add, list, complete, change and delete tasks. For example:\n{examples}")
    return _Reply(f'{intent.reason} For example: "{intent.suggestion}".')


def _add_flow(intent: Add, context: _Context) -> _Flow:
    if "add_task" not in context.tools:
        return _missing("add_task")
    (result,) = yield [_Call("add_task", intent.arguments())]
    if not result.ok:
        return _Reply(f"I couldn't add {_quote(intent.title)}: {result.error}")
    task = _Task.of(result.data)
    if task is None:
        return _Reply(f"Added {_quote(intent.title)}.")
    return _Reply(f"Added {_quote(task.title)}{_summary(task, context.clock, full=True)}.")


def _add_several_flow(intent: AddSeveral, context: _Context) -> _Flow:
    if "add_task" not in context.tools:
        return _missing("add_task")
    results = yield [_Call("add_task", add.arguments()) for add in intent.tasks]
    added, refused = [], []
    for add, result in zip(intent.tasks, results, strict=True):
        task = _Task.of(result.data) if result.ok else None
        if not result.ok:
            refused.append(f"I couldn't add {_quote(add.title)}: {result.error}")
        elif task is None:
            added.append(f"- {add.title}")
        else:
            added.append(f"- {task.title}{_summary(task, context.clock, full=True)}")
    lines = [f"Added {_plural(len(added), 'task')}:", *added] if added else []
    return _Reply("\n".join(lines + refused))


def _list_flow(intent: ListTasks, context: _Context) -> _Flow:
    if "list_tasks" not in context.tools:
        return _missing("list_tasks")
    limit = 1 if intent.ask == "next" else SEARCH_LIMIT
    (result,) = yield [_Call("list_tasks", intent.filters.arguments(limit=limit))]
    page = _page(result)
    if page is None:
        return _Reply(f"I couldn't list your tasks: {result.error or 'the answer was not a task list'}")
    if intent.ask == "when":
        return _when_reply(page, intent.filters.query or "", context.clock)
    if intent.ask == "finished":
        return _finished_reply(page, intent.window or "then", context.clock)
    if intent.ask == "next":
        return _next_reply(page, context.clock)
    what = _describe(intent.filters, intent.window)
    shown = _Shown(page.tasks[:SHOWN], max(0, page.total - SHOWN))
    if not page.tasks:
        hint = ' Add one with "add buy milk tomorrow at 9am".' if what == "open tasks" else ""
        return _Reply(f"You have no {what}.{hint}", shown=shown)
    lines = [_line(task, context.clock) for task in shown.tasks]
    if shown.more:
        lines.append(f"...and {shown.more} more.")
    header = f"You have {page.total} {what if page.total != 1 else _singular(what)}:"
    return _Reply(header + "\n" + "\n".join(lines), shown=shown)


def _next_reply(page: _Page, clock: _Clock) -> _Reply:
    """'what's next?': the open task due soonest (the listing is sorted by due, undated last)."""
    if not page.tasks:
        return _Reply('You have no open tasks. Add one with "add buy milk tomorrow at 9am".')
    task = page.tasks[0]
    if task.due is None and page.total == 1:
        return _Reply(f"Your only open task, {_quote(task.title)}, has no due date.")
    if task.due is None:
        return _Reply(f"None of your {page.total} open tasks has a due date.")
    shown = _Shown((task,))
    if task.due < clock.now:
        return _Reply(
            f"The open task due soonest is {_quote(task.title)}: it was due {_when(task.due, clock)},"
            " which has passed.",
            shown=shown,
        )
    return _Reply(f"Your next task is {_quote(task.title)}, due {_when(task.due, clock)}.", shown=shown)


def _when_reply(page: _Page, query: str, clock: _Clock) -> _Reply:
    """'when is the dentist?': the due time of the one task found, or the tasks to choose from."""
    matches = _narrow(page.tasks, query)
    if not matches:
        return _Reply(f'I couldn\'t find a task matching {_quote(query)}. Say "show all" to see your tasks.')
    if len(matches) > 1:
        shown = _Shown(tuple(matches[:SHOWN]), max(0, len(matches) - SHOWN))
        lines = [_line(task, clock) for task in shown.tasks]
        return _Reply(f"{len(matches)} tasks match {_quote(query)}:\n" + "\n".join(lines), shown=shown)
    task = matches[0]
    if task.due is None:
        return _Reply(f"{_quote(task.title)} has no due date.")
    if task.completed:
        return _Reply(f"{_quote(task.title)} is done; it was due {_when(task.due, clock)}.")
    late = ", which has passed" if task.due < clock.now else ""
    return _Reply(f"{_quote(task.title)} is due {_when(task.due, clock)}{late}.")


def _finished_reply(page: _Page, asked: str, clock: _Clock) -> _Reply:
    """'what did I finish yesterday': the done tasks completed then, most recently changed first."""
    if not page.tasks:
        return _Reply(f"You didn't complete any tasks {asked}.")
    shown = _Shown(page.tasks[:SHOWN], max(0, page.total - SHOWN))
    lines = [_line(task, clock) for task in shown.tasks]
    if shown.more:
        lines.append(f"...and {shown.more} more.")
    count = f"{page.total} task" + ("" if page.total == 1 else "s")
    return _Reply(f"You completed {count} {asked}:\n" + "\n".join(lines), shown=shown)


def _singular(what: str) -> str:
    return what.replace("tasks", "task", 1)


_ACTION_TOOLS = {
    "complete": "complete_task",
    "reopen": "reopen_task",
    "delete": "delete_task",
    "rename": "update_task",
    "update": "update_task",
}
_QUESTION_VERBS = {
    "complete": "mark done",
    "reopen": "reopen",
    "delete": "delete",
    "rename": "rename",
    "update": "change",
}
_EXAMPLE_COMMANDS = {
    "complete": "mark the milk one done",
    "reopen": "reopen the milk task",
    "delete": "delete the milk task",
    "rename": "rename the milk one to buy oat milk",
    "update": "move the dentist to friday 3pm",
}
_ACTION_VERBS = {
    "complete": "mark {} done",
    "reopen": "reopen {}",
    "delete": "delete {}",
    "rename": "rename {}",
    "update": "change {}",
}


def _recent_task(context: _Context, index: int) -> _Task | None:
    """The task the last few turns acted on or showed alone, for 'mark it done'."""
    acting = {"add_task", "update_task", "complete_task", "reopen_task", "get_task"}
    for turn in reversed(context.turns[max(0, index - 3) : index]):
        touched = {
            task.id
            for step in turn.steps
            if step.name in acting and step.result is not None and step.result.ok
            if (task := _Task.of(step.result.data)) is not None
        }
        if len(touched) > 1:
            return None  # several tasks added or changed at once: 'it' is ambiguous
        for step in reversed(turn.steps):
            if step.result is None or not step.result.ok:
                continue
            if step.name == "delete_task":
                return None
            if step.name in acting:
                return _Task.of(step.result.data)
            page = _page(step.result) if step.name == "list_tasks" else None
            if page is not None and page.tasks:
                return page.tasks[0] if len(page.tasks) == 1 else None  # several shown: 'it' is ambiguous
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _narrow(tasks: Sequence[_Task], ref: str) -> list[_Task]:
    """Tasks that hold every word of `ref`, and the one whose title is exactly `ref` if there is one."""
    wanted = _words(ref)
    exact = [task for task in tasks if _words(task.title) == wanted]
    if len(exact) == 1:
        return exact
    return _holding(tasks, ref) or list(tasks)


def _holding(tasks: Sequence[_Task], ref: str) -> list[_Task]:
    """Tasks whose title or description holds every word of `ref`, in any order."""
    wanted = _words(ref)
    return [
        task
        for task in tasks
        if all(word in _words(task.title + " " + (task.description or "")) for word in wanted)
    ]


def _act_flow(act: Act, context: _Context, index: int, depth: int) -> _Flow:
    tool = _ACTION_TOOLS[act.action]
    if tool not in context.tools:
        return _missing(tool)
    if act.position is not None:
        before = _reply_before(context, index, depth)
        if before is not None and before.shown is not None:
            listed = _listed(act, before.shown)
            if isinstance(listed, _Reply):
                return listed
            return (yield from _apply(act, listed, context))
        if act.ref != "it":  # "the last one" with no listing before may still be the task just named
            return _Reply(
                f"Which task should I {_QUESTION_VERBS[act.action]}? I count from a list only right after "
                f'showing one; name it by words from its title, e.g. "{_EXAMPLE_COMMANDS[act.action]}".'
            )
    if act.ref == "it":
        recent = _recent_task(context, index)
        if recent is None:
            example = _EXAMPLE_COMMANDS[act.action]
            return _Reply(
                f"Which task should I {_QUESTION_VERBS[act.action]}? "
                f'Name it by words from its title, e.g. "{example}".'
            )
        return (yield from _apply(act, recent, context))
    if _UUID.fullmatch(act.ref):
        return (yield from _apply(act, _Task(act.ref, act.ref), context))
    if "list_tasks" not in context.tools:
        return _missing("list_tasks")
    primary = {"complete": "open", "reopen": "done", "delete": "all"}.get(act.action, "open")
    (result,) = yield [_Call("list_tasks", {"query": act.ref, "status": primary, "limit": SEARCH_LIMIT})]
    page = _page(result)
    if page is None:
        return _Reply(
            f"I couldn't look up {_quote(act.ref)}: {result.error or 'the answer was not a task list'}"
        )
    matches = _narrow(page.tasks, act.ref)
    total = page.total if len(matches) == len(page.tasks) else len(matches)
    if not matches and primary != "all":
        (result,) = yield [_Call("list_tasks", {"query": act.ref, "status": "all", "limit": SEARCH_LIMIT})]
        others = _narrow((_page(result) or _Page((), 0)).tasks, act.ref)
        if others and act.action == "complete":
            return _Reply(_already(others, "already done"))
        if others and act.action == "reopen":
            return _Reply(_already(others, "not marked done"))
        matches, total = others, len(others)
    words = _words(act.ref)
    if not matches and len(words) > 1:  # "the bank call" for "Call bank": its words in any order
        longest = max(words, key=len)
        (result,) = yield [_Call("list_tasks", {"query": longest, "status": primary, "limit": SEARCH_LIMIT})]
        matches = _holding((_page(result) or _Page((), 0)).tasks, act.ref)
        total = len(matches)
    parts = _parts(act.ref) if act.action == "complete" else []
    if not matches and len(parts) > 1:  # "mark milk and eggs done": no task is called that, so each
        return (yield from _complete_each(parts, context))
    if not matches:
        state = {"complete": "open ", "reopen": "completed "}.get(act.action, "")
        return _Reply(
            f'I couldn\'t find any {state}task matching {_quote(act.ref)}. Say "show all" to see your tasks.'
        )
    if len(matches) > 1:
        return _ask_which(act, matches, total, context.clock)
    return (yield from _apply(act, matches[0], context))


def _place(position: int, shown: _Shown) -> _Task | str:
    """The task at `position` (1-based, -1 for the last) in the listing the person just saw, or why
    there is none."""
    count = len(shown.tasks)
    if position == -1 and shown.more:
        return f"I showed only {count} of {count + shown.more} tasks, so I can't tell which is the last"
    if not count:
        return "The list I just showed has no tasks"
    number = count if position == -1 else position
    if not 1 <= number <= count:
        return (
            f"The list I just showed has only {_plural(count, 'task')}, so there is no {_ordinal(number)} one"
        )
    return shown.tasks[number - 1]


def _listed(act: Act, shown: _Shown) -> _Task | _Reply:
    """The task at `act.position` in the listing the person just saw, or why there is none."""
    task = _place(act.position or 0, shown)
    if isinstance(task, str):
        verb = _QUESTION_VERBS[act.action]
        hint = f" Name the one to {verb} by words from its title." if shown.tasks else ""
        return _Reply(f"{task}. I changed nothing.{hint}")
    if act.action == "complete" and task.completed:
        return _Reply(_already([task], "already done"))
    if act.action == "reopen" and not task.completed:
        return _Reply(_already([task], "not marked done"))
    return task


def _ordinal(number: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number, "th")
    return f"{number}{suffix}"


def _skip_flow(intent: Skip, context: _Context, index: int) -> _Flow:
    """No tool skips one time, so say what can be done instead and change nothing."""
    if intent.ref == "it":
        recent = _recent_task(context, index)
        matches = [recent] if recent is not None else []
    elif "list_tasks" in context.tools:
        (result,) = yield [
            _Call("list_tasks", {"query": intent.ref, "status": "open", "limit": SEARCH_LIMIT})
        ]
        matches = _narrow((_page(result) or _Page((), 0)).tasks, intent.ref)
    else:
        return _missing("list_tasks")
    if len(matches) != 1:
        found = f"{len(matches)} open tasks match" if matches else "No open task matches"
        name = "it" if intent.ref == "it" else _quote(intent.ref)
        return _Reply(
            f"I can't skip a task just this once, and I changed nothing. {found} {name}; "
            'name one by words from its title to mark it done or move it, e.g. "move the gym to tomorrow".'
        )
    task = matches[0]
    name = _quote(task.title)
    ref = intent.ref  # the person's own words, which find this task again
    if task.repeat_text or task.repeat:
        how = f" (it repeats {task.repeat_text})" if task.repeat_text else " (it repeats)"
        return _Reply(
            f"I can't skip {name} just this once{how}, so I changed nothing. To move on to the next one, "
            f'say "mark {ref} done" (the next occurrence then comes), '
            f'or move this one: "move {ref} to tomorrow".'
        )
    return _Reply(
        f'I can\'t skip {name}, so I changed nothing. You can move it ("move {ref} to tomorrow"), '
        f'mark it done ("mark {ref} done") or delete it ("delete {ref}").'
    )


def _parts(ref: str) -> list[str]:
    """'milk, eggs and the bread one' -> ['milk', 'eggs', 'bread'] (at most SHOWN names)."""
    parts = re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*", ref, flags=re.IGNORECASE)
    cleaned = [
        re.sub(r"^(?:the|my)\s+|\s+(?:one|task)$", "", part.strip(), flags=re.IGNORECASE) for part in parts
    ]
    return [part for part in cleaned if _words(part)][:SHOWN]


def _complete_each(parts: Sequence[str], context: _Context) -> _Flow:
    """Mark each named task done, only when every name finds exactly one open task."""
    results = yield [
        _Call("list_tasks", {"query": part, "status": "open", "limit": SEARCH_LIMIT}) for part in parts
    ]
    found: list[_Task] = []
    problems: list[str] = []
    for part, result in zip(parts, results, strict=True):
        matches = _narrow((_page(result) or _Page((), 0)).tasks, part)
        if len(matches) == 1 and matches[0] not in found:
            found.append(matches[0])
        else:
            problems.append(f"{len(matches) or 'no'} open tasks match {_quote(part)}")
    if problems:
        return _Reply(
            f'I changed nothing: {"; ".join(problems)}. Name one task at a time, e.g. "mark {parts[0]} done".'
        )
    outcomes = yield [_Call("complete_task", {"task_id": task.id}) for task in found]
    done = [_quote(task.title) for task, outcome in zip(found, outcomes, strict=True) if outcome.ok]
    text = f"Marked {', '.join(done[:-1])} and {done[-1]} done." if len(done) > 1 else ""
    text = text or (f"Marked {done[0]} done." if done else "")
    failed = [outcome.error for outcome in outcomes if not outcome.ok]
    if failed:
        text += f" {_plural(len(failed), 'task')} could not be marked done: {failed[0]}"
    return _Reply(text.strip())


def _already(tasks: Sequence[_Task], state: str) -> str:
    if len(tasks) == 1:
        return f"{_quote(tasks[0].title)} is {state}."
    return (
        f"Every task matching that is {state}: " + ", ".join(_quote(task.title) for task in tasks[:5]) + "."
    )


def _ask_which(act: Act, matches: Sequence[_Task], total: int, clock: _Clock) -> _Reply:
    shown = tuple(matches[:SHOWN])
    lines = [
        f"{number}. {task.title}{_summary(task, clock, full=False)}" for number, task in enumerate(shown, 1)
    ]
    count = max(total, len(matches))
    text = f"{count} tasks match {_quote(act.ref)}. Which one should I {_QUESTION_VERBS[act.action]}?\n"
    text += "\n".join(lines)
    text += "\nReply with its number" + (", or be more specific." if total > len(shown) else ".")
    return _Reply(text, pending=_Choose(act, shown), shown=_Shown(shown, max(0, count - len(shown))))


def _apply(act: Act, task: _Task, context: _Context) -> _Flow:
    tool = _ACTION_TOOLS[act.action]
    if tool not in context.tools:
        return _missing(tool)
    arguments: dict[str, object] = {"task_id": task.id}
    if act.action in {"rename", "update"}:
        arguments.update(act.changes.arguments())
        clock = time_of_day(act.changes.due) if act.changes.due and task.due else None
        if clock is not None and task.due is not None:  # "move the dentist to 4pm": same day, new time
            arguments["due"] = f"{task.due:%Y-%m-%d}T{clock[0]:02d}:{clock[1]:02d}"
    (result,) = yield [_Call(tool, arguments)]
    name = _quote(task.title)
    if not result.ok:
        return _Reply(f"I couldn't {_ACTION_VERBS[act.action].format(name)}: {result.error}")
    if act.action == "delete":
        title = result.data.get("title") if isinstance(result.data, Mapping) else None
        return _Reply(f"Deleted {_quote(str(title)) if title else name}.")
    after = _Task.of(result.data) or task
    name = _quote(after.title) if act.action != "rename" else name
    if act.action == "complete":
        again = ""
        if after.repeat:
            how = f" {after.repeat_text}" if after.repeat_text else ""
            again = f" It repeats{how}, so the next one is on your list."
        return _Reply(f"Marked {name} done.{again}")
    if act.action == "reopen":
        return _Reply(f"Reopened {name}.")
    changes = _changed(set(act.changes.arguments()), after, context.clock)
    if act.action == "rename":
        rest = [change for change in changes if not change.startswith("renamed")]
        extra = f" ({'; '.join(rest)})" if rest else ""
        return _Reply(f"Renamed {name} to {_quote(after.title)}{extra}.")
    return _Reply(f"Updated {name}: {'; '.join(changes) or 'no changes'}.")


def _changed(fields: set[str], task: _Task, clock: _Clock) -> list[str]:
    """Words for what `task` now has in the fields an update set (`update_task` argument names)."""
    words: list[str] = []
    if "title" in fields:
        words.append(f"renamed to {_quote(task.title)}")
    if "due" in fields:
        words.append(_due_words(task, clock) or "no due date")
    if "remind" in fields:
        words.append(_remind_words(task, clock) or "no reminder")
    if "repeat" in fields:
        words.append(_repeat_words(task) or "no longer repeats")
    if "priority" in fields:
        words.append("no priority" if task.priority == "none" else f"priority {task.priority}")
    if fields & {"tags", "add_tags", "remove_tags"}:
        words.append(f"tags {_tags_words(task.tags)}" if task.tags else "no tags")
    if "description" in fields:
        words.append("notes updated" if task.description else "notes cleared")
    return words


def _select_flow(intent: Select, context: _Context, before: _Reply | None) -> _Flow:
    pending = before.pending if before is not None else None
    if isinstance(pending, _ConfirmBulk | _ConfirmUndo):
        return _Reply(f'To delete them, reply exactly "yes, delete all {pending.count}".', pending)
    if pending is None and before is not None and before.shown is not None and intent.index is not None:
        return (yield from _show_listed(intent.index, before.shown, context))
    if pending is None:
        return _Reply(
            "I'm not sure what you're choosing from. Tell me what to do, e.g. \"mark the milk one done\"."
        )
    candidates = pending.candidates
    chosen: _Task | None = None
    if intent.index is not None:
        position = len(candidates) if intent.index == -1 else intent.index
        if 1 <= position <= len(candidates):
            chosen = candidates[position - 1]
        else:
            return _Reply(f"Please reply with a number from 1 to {len(candidates)}.", pending)
    elif intent.hint:
        chosen = _match_hint(intent.hint, candidates, context.clock)
        if chosen is None:
            return _Reply(
                f"I couldn't tell which one you mean; reply with a number from 1 to {len(candidates)}.",
                pending,
            )
    if chosen is None:
        return _Reply(f"Please reply with a number from 1 to {len(candidates)}.", pending)
    return (yield from _apply(pending.act, chosen, context))


def _show_listed(position: int, shown: _Shown, context: _Context) -> _Flow:
    """'the second one' right after a listing: that task with all its fields.

    The answer keeps the listing, so 'the third one' next still counts in it."""
    task = _place(position, shown)
    if isinstance(task, str):
        numbers = f" Reply with a number from 1 to {len(shown.tasks)}." if shown.tasks else ""
        return _Reply(f"{task}.{numbers}", shown=shown)
    if "get_task" not in context.tools:
        return _missing("get_task")
    (result,) = yield [_Call("get_task", {"task_id": task.id})]
    found = _Task.of(result.data) if result.ok else None
    if found is None:
        error = result.error or "the answer was not a task"
        return _Reply(f"I couldn't get {_quote(task.title)}: {error}", shown=shown)
    return _Reply(_details(found, context.clock), shown=shown)


def _details(task: _Task, clock: _Clock) -> str:
    """'"Pay rent": open (due Sat 28 Nov, 18:00; high priority; #bills).' and its notes."""
    state = "done" if task.completed else "open"
    text = f"{_quote(task.title)}: {state}{_summary(task, clock, full=True)}."
    if task.description:
        text += f"\nNotes: {_quote(task.description, 300)}"
    return text


def _match_hint(hint: str, candidates: Sequence[_Task], clock: _Clock) -> _Task | None:
    filler = {
        "due",
        "on",
        "the",
        "one",
        "with",
        "tagged",
        "that",
        "is",
        "for",
        "about",
        "called",
        "named",
        "from",
        "in",
        "at",
        "a",
        "task",
    }
    wanted = [word for word in _words(hint) if word not in filler]
    if not wanted:
        return None

    def words_of(task: _Task) -> set[str]:
        words = set(_words(task.title)) | set(task.tags) | {task.priority}
        if task.due is not None:
            local = task.due.astimezone(clock.tz)
            day = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[
                local.weekday()
            ]
            words |= {day, day[:3], _MONTHS[local.month].lower(), str(local.day)}
            delta = (local.date() - clock.now.date()).days
            words |= {"today"} if delta == 0 else {"tomorrow"} if delta == 1 else set()
        words |= {"done", "completed"} if task.completed else {"open"}
        return words

    scored = [(sum(word in words_of(task) for word in wanted), task) for task in candidates]
    best = max(score for score, _ in scored)
    winners = [task for score, task in scored if score == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def _bulk_ask_flow(intent: BulkDelete, context: _Context) -> _Flow:
    for tool in ("list_tasks", "delete_task"):
        if tool not in context.tools:
            return _missing(tool)
    (result,) = yield [_Call("list_tasks", intent.filters.arguments(limit=BULK_PAGE))]
    page = _page(result)
    if page is None:
        return _Reply(f"I couldn't list those tasks: {result.error or 'the answer was not a task list'}")
    what = _describe(intent.filters, intent.window)
    if page.total == 0:
        return _Reply(f"There are no {what} to delete.")
    names = ", ".join(_quote(task.title, 40) for task in page.tasks[:5])
    if page.total > 5:
        names += f" and {page.total - 5} more"
    count = page.total
    noun = f"all {count} {what}" if count != 1 else f"the only {_singular(what)}"
    return _Reply(
        f"That would delete {noun}: {names}. This can't be undone. "
        f'To go ahead, reply "yes, delete all {count}"; anything else cancels.',
        pending=_ConfirmBulk(intent, count),
    )


def _confirm_flow(intent: Confirm, context: _Context, pending: _Pending | None) -> _Flow:
    if isinstance(pending, _Choose):
        return _Reply(
            f"Please reply with the number of the task you mean (1 to {len(pending.candidates)}).", pending
        )
    if pending is None:
        if intent.count is not None:
            return _Reply(
                "There's nothing waiting for confirmation, so I didn't delete anything. "
                'To delete tasks in bulk, say for example "delete all completed tasks".'
            )
        return _Reply('OK. What would you like to do next? Say "help" for examples.')
    if intent.count != pending.count:
        return _Reply(
            f'To delete them, reply exactly "yes, delete all {pending.count}". Nothing was deleted.', pending
        )
    if isinstance(pending, _ConfirmUndo):
        return (yield from _confirmed_undo(pending, context))
    return (yield from _bulk_delete(pending, context))


def _bulk_delete(pending: _ConfirmBulk, context: _Context) -> _Flow:
    for tool in ("list_tasks", "delete_task"):
        if tool not in context.tools:
            return _missing(tool)
    what = _describe(pending.intent.filters, pending.intent.window)
    deleted = 0
    errors: list[str] = []
    tried: set[str] = set()
    for round_number in range(BULK_ROUNDS):
        (result,) = yield [_Call("list_tasks", pending.intent.filters.arguments(limit=BULK_PAGE))]
        page = _page(result)
        if page is None:
            errors.append(result.error or "the answer was not a task list")
            break
        if round_number == 0 and page.total != pending.count:
            return _Reply(
                f"The number of {what} changed to {page.total} since you confirmed, so I deleted nothing. "
                f'To go ahead, reply "yes, delete all {page.total}".',
                _ConfirmBulk(pending.intent, page.total) if page.total else None,
            )
        batch = [task for task in page.tasks if task.id not in tried][: pending.count - len(tried)]
        if not batch:
            break
        tried.update(task.id for task in batch)
        results = yield [_Call("delete_task", {"task_id": task.id}) for task in batch]
        for outcome in results:
            if outcome.ok:
                deleted += 1
            else:
                errors.append(outcome.error)
        if len(tried) >= pending.count or page.total <= len(page.tasks):
            break
    text = f"Deleted {_plural(deleted, 'task')}."
    if not errors and deleted < pending.count:
        text += " Some are left; ask again to delete the rest."
    if errors:
        text += f" {_plural(len(errors), 'task')} could not be deleted: {errors[0]}"
    return _Reply(text)


# ----------------------------------------------------------------------------------------- undo

UNDO_MAX = 20
"""One undo reverts at most this many changes (adding a list makes up to 20 at once)."""
_CHANGING = frozenset({"add_task", "update_task", "complete_task", "reopen_task", "delete_task"})
_SHOWING_ONE = frozenset({"add_task", "get_task", "update_task", "complete_task", "reopen_task"})


@dataclass(frozen=True)
class _Sighting:
    """A task as a tool output of this conversation showed it, at step `step` of turn `turn`."""

    turn: int
    step: int
    task: _Task


@dataclass(frozen=True)
class _Revert:
    """How to undo one change: `change` is the tool that made it, `task` the task it concerns (as the
    change left it; for a delete, as last seen), `call` the call that reverts it."""

    change: str
    task: _Task
    call: _Call
    notes: tuple[str, ...] = ()


def _changes(turn: _Turn) -> list[_Step]:
    """The calls of `turn` that changed a task and succeeded."""
    return [
        step for step in turn.steps if step.name in _CHANGING and step.result is not None and step.result.ok
    ]


def _intent(context: _Context, index: int) -> Intent:
    return parse(context.turns[index].text, now=context.clock.now, tz=context.clock.tz)


def _is_undo(context: _Context, index: int) -> bool:
    """Whether turn `index` was an undo: "undo" itself, or the "yes, delete all N" that let an undo
    deleting several tasks go ahead (its words read as any confirmation; the turn that asked tells)."""
    intent = _intent(context, index)
    if isinstance(intent, Confirm):
        asker = _asker(context, index)
        return asker is not None and isinstance(_intent(context, asker), Undo)
    return isinstance(intent, Undo)


def _asker(context: _Context, index: int) -> int | None:
    """The turn whose question the confirmation at `index` answered: the one before it, or before the
    replies that only had the question asked again ("yes", a number; they change nothing).

    Read from the words rather than by replaying that turn: the model reads only the conversation's
    last items, and a replay missing the turns the question was worked out from answers differently."""
    for earlier in range(index - 1, -1, -1):
        if _changes(context.turns[earlier]) or not isinstance(_intent(context, earlier), Confirm | Select):
            return earlier
    return None


def _last_change(context: _Context, index: int) -> int | None:
    """The turn whose changes an undo at `index` reverts: the latest one not undone yet.

    Undos pair with the changes before them as a stack does, so a second "undo" reverts the change
    before the one the first undid, as Ctrl+Z does; nothing is ever redone."""
    undone = 0
    for earlier in range(index - 1, -1, -1):
        if not _changes(context.turns[earlier]):
            continue
        if _is_undo(context, earlier):
            undone += 1
        elif undone:
            undone -= 1
        else:
            return earlier
    return None


def _undo_target(intent: Undo, context: _Context, index: int) -> int | _Reply:
    """The turn to undo, or the answer saying why there is none."""
    if intent.just_now:  # "cancel that": the previous answer's change, never an older one
        previous = index - 1
        if previous < 0 or not _changes(context.turns[previous]):
            return _Reply(
                "My last answer changed nothing, so there is nothing to cancel. "
                'To undo an earlier change, say "undo".'
            )
        if _is_undo(context, previous):
            return _Reply("That was an undo, and I can't redo: to make the change again, say it again.")
        return previous
    target = _last_change(context, index)
    if target is not None:
        return target
    if any(_changes(turn) for turn in context.turns[:index]):
        return _Reply(
            "I have undone every change of this conversation that I remember, and I can't redo: "
            "to make a change again, say it again."
        )
    return _Reply(
        "There is nothing for me to undo: I haven't changed any of your tasks in this conversation lately. "
        'After a change, such as "mark the milk one done", say "undo" to take it back.'
    )


def _sightings(context: _Context, index: int) -> list[_Sighting]:
    """Every task the tool outputs before turn `index` showed, oldest first."""
    seen: list[_Sighting] = []
    for turn_number, turn in enumerate(context.turns[:index]):
        for step_number, step in enumerate(turn.steps):
            if step.result is None or not step.result.ok:
                continue
            if step.name == "list_tasks":
                tasks = (_page(step.result) or _Page((), 0)).tasks
            elif step.name in _SHOWING_ONE:
                one = _Task.of(step.result.data)
                tasks = (one,) if one is not None else ()
            else:
                continue
            seen.extend(_Sighting(turn_number, step_number, task) for task in tasks)
    return seen


def _seen_before(sightings: Sequence[_Sighting], task_id: str, turn: int, step: int) -> _Task | None:
    """The task as last shown before step `step` of turn `turn`. A listing leaves fields out, so a
    fuller sighting of the same version (the same state) is preferred."""
    seen = [
        sighting.task
        for sighting in sightings
        if (sighting.turn, sighting.step) < (turn, step) and sighting.task.id == task_id
    ]
    if not seen:
        return None
    latest = seen[-1]
    if latest.full or latest.version is None:
        return latest
    fuller = [task for task in seen if task.full and task.version == latest.version]
    return fuller[-1] if fuller else latest


def _last_version(sightings: Sequence[_Sighting], task_id: str) -> int | None:
    """The newest version of the task this conversation has seen."""
    versions = [s.task.version for s in sightings if s.task.id == task_id and s.task.version is not None]
    return max(versions, default=None)


def _asked(step: _Step) -> Mapping[str, object]:
    try:
        arguments = json.loads(step.arguments or "{}")
    except ValueError:
        return {}
    return arguments if isinstance(arguments, Mapping) else {}


def _restore_repeat(before: _Task, after: _Task) -> str | None:
    """The `repeat` argument that puts back the rule `before` had, "" for none; None when unchanged.
    Raises ValueError when the rule is not known exactly (a listing shows it only in words)."""
    if before.full and after.full:
        if before.repeat == after.repeat:
            return None
    elif before.repeat_text == after.repeat_text:
        return None
    if before.repeat is None and before.repeat_text is None:
        return ""
    if before.full and before.repeat:
        return before.repeat
    raise ValueError(f"its exact repeat rule (only its words: {before.repeat_text})")


def _restore_remind(before: _Task, after: _Task, asked: Mapping[str, object]) -> str | None:
    """The `remind` argument that puts back the reminder `before` had, "" for none; None when it needs
    no change (unchanged, or an offset that follows the due date back by itself)."""
    same_offset = not before.full or before.remind_before_minutes == after.remind_before_minutes
    if before.remind_at == after.remind_at and same_offset:
        return None
    if "remind" not in asked and after.remind_before_minutes is not None:
        return None  # only the due date moved, and this reminder moves with it
    if before.remind_at is None:
        return ""
    if before.full and before.remind_before_minutes is not None:
        return f"{before.remind_before_minutes} minutes before"
    return before.remind_at.isoformat()


def _restore(before: _Task, after: _Task, asked: Mapping[str, object]) -> dict[str, object]:
    """`update_task` arguments putting back exactly the fields that differ between `before` and
    `after`; ValueError naming the previous value that is not known ("its notes")."""
    arguments: dict[str, object] = {}
    if before.title != after.title:
        arguments["title"] = before.title
    if before.full:
        if before.description != after.description:
            arguments["description"] = before.description or ""
    elif "description" in asked:
        raise ValueError("its notes")
    if before.priority != after.priority:
        arguments["priority"] = before.priority
    if before.tags != after.tags:
        arguments["tags"] = list(before.tags)
    repeat = _restore_repeat(before, after)
    if repeat is not None:
        arguments["repeat"] = repeat
    if before.due != after.due:
        arguments["due"] = "" if before.due is None else before.due.isoformat()
    remind = _restore_remind(before, after, asked)
    if remind is not None:
        arguments["remind"] = remind
    return arguments


_NEVER_SEEN = "I never saw its details, so the copy has only its title."


def _copy_of(task: _Task, clock: _Clock) -> tuple[dict[str, object], tuple[str, ...]]:
    """`add_task` arguments for a copy of a deleted task as last seen, and what the copy lacks."""
    arguments: dict[str, object] = {"title": task.title}
    notes: list[str] = []
    if task.full and task.description:
        arguments["description"] = task.description
    elif not task.full:
        notes.append("If it had notes, they are lost: I never saw them.")
    if task.priority not in ("none", ""):
        arguments["priority"] = task.priority
    if task.tags:
        arguments["tags"] = list(task.tags)
    if task.due is not None:
        arguments["due"] = task.due.isoformat()
    if task.remind_at is not None and task.remind_at <= clock.now:
        notes.append("Its reminder time has passed, so the copy has no reminder (it would go off at once).")
    elif task.full and task.remind_before_minutes is not None and task.due is not None:
        arguments["remind"] = f"{task.remind_before_minutes} minutes before"
    elif task.remind_at is not None:
        arguments["remind"] = task.remind_at.isoformat()
    if task.repeat or task.repeat_text:
        how = f" {task.repeat_text}" if task.repeat_text else ""
        if task.completed:  # marking a repeating copy done would add a second next occurrence
            notes.append(f"It was done, so the copy doesn't repeat (it repeated{how}).")
        elif task.full and task.repeat:
            arguments["repeat"] = task.repeat
        else:
            notes.append(f"I never saw its exact repeat rule, so the copy doesn't repeat (it repeated{how}).")
    return arguments, tuple(notes)


def _revert(
    step: _Step, turn: int, position: int, sightings: Sequence[_Sighting], clock: _Clock
) -> _Revert | str | None:
    """How to undo the change `step` made: a revert, why it can't be undone, or None if it changed nothing."""
    task = _Task.of(step.result.data if step.result is not None else None)
    if task is None:
        return "I can't tell which task one of those changes was about."
    if step.name == "add_task":
        return _Revert(step.name, task, _Call("delete_task", {"task_id": task.id}))
    before = _seen_before(sightings, task.id, turn, position)
    if step.name == "delete_task":
        return _revert_delete(task, before, clock)
    if before is not None and before.version is not None and before.version == task.version:
        return None  # already so: the call changed nothing
    if step.name == "complete_task":
        repeats = bool(task.repeat or task.repeat_text)
        again = (
            f"{_quote(task.title)} repeats: the next occurrence that marking it done added goes too,"
            " unless it was changed or done since.",
        )
        return _Revert(step.name, task, _Call("reopen_task", {"task_id": task.id}), again if repeats else ())
    if step.name == "reopen_task":
        return _Revert(step.name, task, _Call("complete_task", {"task_id": task.id}))
    return _revert_update(step, task, before)


def _revert_delete(deleted: _Task, before: _Task | None, clock: _Clock) -> _Revert:
    """A copy of the deleted task as this conversation last saw it (only its title if never seen)."""
    if before is None:
        return _Revert("delete_task", deleted, _Call("add_task", {"title": deleted.title}), (_NEVER_SEEN,))
    arguments, notes = _copy_of(before, clock)
    return _Revert("delete_task", before, _Call("add_task", arguments), notes)


def _revert_update(step: _Step, after: _Task, before: _Task | None) -> _Revert | str | None:
    """The update putting back what `after` was just before `step`, as last seen (one version older)."""
    name = _quote(after.title)
    if before is None or after.version is None or before.version != after.version - 1:
        return f"I never saw {name} as it was just before that change, so I don't know what to put back."
    try:
        arguments = _restore(before, after, _asked(step))
    except ValueError as unknown:
        return f"I never saw {unknown} before that change to {name}, so I can't put it back."
    if not arguments:
        return None
    return _Revert(step.name, after, _Call("update_task", {"task_id": after.id, **arguments}))


@dataclass(frozen=True)
class _UndoPlan:
    """What an undo reverts: the changes of turn `target`, and every task the conversation saw before
    (to check each task is still as last seen)."""

    target: int
    reverts: list[_Revert]
    sightings: list[_Sighting]

    @property
    def deletes(self) -> list[_Revert]:
        """The reverts that delete a task (undoing an add)."""
        return [revert for revert in self.reverts if revert.call.name == "delete_task"]


def _undo_flow(intent: Undo, context: _Context, index: int, depth: int) -> _Flow:
    """Revert the changes of this conversation's last changing turn, all of them or none; ask first
    when that deletes several tasks."""
    before = _reply_before(context, index, depth)
    if before is not None and before.pending is not None:  # "undo" a question: drop it
        return _Reply("OK, I left everything as it was.")
    plan = _undo_plan(intent, context, index)
    if isinstance(plan, _Reply):
        return plan
    if len(plan.deletes) > 1:  # the rule for bulk deletes holds for an undo too: ask, naming the count
        # No tool call yet (the tasks are checked on the confirmation): the model reads only the
        # conversation's last items, and a short question keeps the change it undoes among them.
        return _undo_question(_ConfirmUndo(intent, index, len(plan.deletes)), plan, context)
    stale = yield from _unchanged_since(plan)
    if stale:
        return _Reply("I changed nothing: " + " ".join(stale))
    return (yield from _revert_all(plan, context))


def _undo_question(pending: _ConfirmUndo, plan: _UndoPlan, context: _Context) -> _Reply:
    """'Undoing my change "add tasks: ..." would delete the 3 tasks it added: ...', as a bulk delete asks."""
    # in the person's own words, so an add from some answers back is recognised
    said = _quote(context.turns[plan.target].text, 60)
    titles = [revert.task.title for revert in plan.deletes]
    return _Reply(
        f"Undoing my change {said} would delete the {pending.count} tasks it added: {_names(titles)}. "
        f'To go ahead, reply "yes, delete all {pending.count}"; anything else keeps them.',
        pending=pending,
    )


def _confirmed_undo(pending: _ConfirmUndo, context: _Context) -> _Flow:
    """The undo asked about, derived again from the conversation before the question (as the question
    was), and made only if its tasks are still as left: the person may have changed one meanwhile."""
    plan = _undo_plan(pending.undo, context, pending.asked)
    if isinstance(plan, _Reply):
        return plan
    stale = yield from _unchanged_since(plan)
    if stale:
        return _Reply("I changed nothing: " + " ".join(stale))
    return (yield from _revert_all(plan, context))


def _unchanged_since(plan: _UndoPlan) -> Generator[list[_Call], list[_Result], list[str]]:
    """Why the reverts must not be made: each task that still exists is fetched, and one gone or
    changed since this conversation last saw it (somewhere else) stops them all."""
    existing = [revert for revert in plan.reverts if revert.change != "delete_task"]
    if not existing:
        return []
    found = yield [_Call("get_task", {"task_id": revert.task.id}) for revert in existing]
    return [
        problem
        for revert, result in zip(existing, found, strict=True)
        if (problem := _moved_on(revert, result, _last_version(plan.sightings, revert.task.id)))
    ]


def _revert_all(plan: _UndoPlan, context: _Context) -> _Flow:
    """Make the reverts (checked already) and say what each did."""
    reverts = plan.reverts
    outcomes = yield [revert.call for revert in reverts]
    text = _undone(reverts, outcomes, context.clock)
    copies = [
        copy
        for revert, outcome in zip(reverts, outcomes, strict=True)
        if revert.change == "delete_task" and revert.task.completed and outcome.ok
        if (copy := _Task.of(outcome.data)) is not None
    ]
    if copies:  # a deleted task that was done comes back done
        finished = yield [_Call("complete_task", {"task_id": copy.id}) for copy in copies]
        text += "".join(
            f" I couldn't mark the copy of {_quote(copy.title)} done: {result.error}"
            for copy, result in zip(copies, finished, strict=True)
            if not result.ok
        )
    return _Reply(text)


def _undo_plan(intent: Undo, context: _Context, index: int) -> _UndoPlan | _Reply:
    """The reverts an undo at `index` makes (and what the conversation saw, to check them by), or the
    answer saying why it makes none."""
    target = _undo_target(intent, context, index)
    if isinstance(target, _Reply):
        return target
    turn = context.turns[target]
    changes = _changes(turn)
    deleted = [step for step in changes if step.name == "delete_task"]
    confirmed = isinstance(_intent(context, target), Confirm)
    if len(deleted) > 1 or (deleted and confirmed):  # the confirmation said it can't be undone
        return _bulk_undo_refused(deleted)
    if len(changes) > UNDO_MAX:
        return _Reply(f"That changed {len(changes)} tasks at once, more than I can undo; I changed nothing.")
    sightings = _sightings(context, index)
    reverts, problems = _reverts(turn, target, sightings, context.clock)
    if problems:
        return _Reply("I changed nothing: " + " ".join(problems))
    if not reverts:
        return _Reply("My last change made no difference to your tasks, so there is nothing to undo.")
    needed = {revert.call.name for revert in reverts}
    if any(revert.change != "delete_task" for revert in reverts):
        needed.add("get_task")
    if any(revert.change == "delete_task" and revert.task.completed for revert in reverts):
        needed.add("complete_task")
    missing = sorted(needed - context.tools)
    return _missing(missing[0]) if missing else _UndoPlan(target, reverts, sightings)


def _reverts(
    turn: _Turn, number: int, sightings: Sequence[_Sighting], clock: _Clock
) -> tuple[list[_Revert], list[str]]:
    """The reverts of the changes of `turn` (turn `number`), and what can't be undone."""
    reverts: list[_Revert] = []
    problems: list[str] = []
    for position, step in enumerate(turn.steps):
        if step.name not in _CHANGING or step.result is None or not step.result.ok:
            continue
        revert = _revert(step, number, position, sightings, clock)
        if isinstance(revert, str):
            problems.append(revert)
        elif revert is not None:
            reverts.append(revert)
    ids = [revert.task.id for revert in reverts]
    if len(set(ids)) < len(ids):  # one task changed twice in one answer: no order of reverts is sure
        problems.append("That answer changed the same task more than once, which I can't undo.")
    return reverts, problems


def _moved_on(revert: _Revert, result: _Result, version: int | None) -> str | None:
    """Why `revert` must not be made: its task is gone or has changed since this conversation saw it."""
    name = _quote(revert.task.title)
    if not result.ok:
        return f"I can't find {name} any more ({result.error})."
    now = _Task.of(result.data)
    if now is not None and version is not None and now.version != version:
        # an added task changed since may hold work the person wants to keep: not deleted
        refusal = "delete it" if revert.change == "add_task" else "put back what it was before"
        return f"{name} has changed since (somewhere else?), so I won't {refusal}."
    return None


def _names(titles: Sequence[str]) -> str:
    """'"Buy milk", "Call mom"': the first five titles, then how many more."""
    names = ", ".join(_quote(title, 40) for title in titles[:5])
    return names + (f" and {len(titles) - 5} more" if len(titles) > 5 else "")


def _bulk_undo_refused(steps: Sequence[_Step]) -> _Reply:
    count = _plural(len(steps), "task")
    titles = [
        str(step.result.data.get("title") or "(untitled)")
        for step in steps
        if step.result is not None and isinstance(step.result.data, Mapping)
    ]
    return _Reply(
        "I can't undo a bulk delete (as I said before you confirmed it), so I changed nothing. "
        f"It deleted {count}: {_names(titles)}. To get one back, add it again."
    )


_UNDID = {
    "add_task": ("adding {}", "deleted it"),
    "complete_task": ("marking {} done", "reopened it"),
    "reopen_task": ("reopening {}", "marked it done again"),
    "update_task": ("the change to {}", "put back: {}"),
    "delete_task": ("deleting {}", "added it back as a new task, with a new id"),
}


def _undone(reverts: Sequence[_Revert], outcomes: Sequence[_Result], clock: _Clock) -> str:
    """'Undid adding "Buy milk" (deleted it).', one line per change when there were several."""
    lines: list[str] = []
    failures: list[str] = []
    notes: list[str] = []
    for revert, outcome in zip(reverts, outcomes, strict=True):
        what, how = _UNDID[revert.change]
        what = what.format(_quote(revert.task.title))
        if not outcome.ok:
            failures.append(f"I couldn't undo {what}: {outcome.error}")
            continue
        if revert.change == "update_task":
            after = _Task.of(outcome.data) or revert.task
            how = how.format("; ".join(_restored(set(revert.call.arguments), after, clock)))
        elif revert.change == "delete_task" and revert.task.completed:
            how += ", marked done"
        lines.append(f"{what} ({how})")
        notes.extend(revert.notes)
    if len(lines) == 1:
        text = f"Undid {lines[0]}."
    elif lines:
        text = f"Undid {len(lines)} changes:\n" + "\n".join(f"- {line}" for line in lines)
    else:
        text = ""
    after_list = "\n" if len(lines) > 1 else " "  # not run on into the last line of the list
    return after_list.join(part for part in (text, *notes, *failures) if part)


def _restored(fields: set[str], task: _Task, clock: _Clock) -> list[str]:
    """The values an undone update put back: 'title "Buy milk"', 'due Sat 28 Nov, 15:00'."""
    title = [f"title {_quote(task.title)}"] if "title" in fields else []
    return title + _changed(fields - {"title"}, task, clock)


# ---------------------------------------------------------------------------------------- model


def _decide(
    system_instructions: str | None, input: str | list[TResponseInputItem], tools: Sequence[Tool]
) -> list[_Call] | str:
    clock_line = parse_clock(system_instructions or "")
    if clock_line is None:
        tz = ZoneInfo("UTC")
        clock = _Clock(datetime.now(UTC).astimezone(tz), tz)
    else:
        clock = _Clock(*clock_line)
    actual = _tool_names(tools)
    turns = _turns(input, {name: known for known, name in actual.items()})
    if not turns:
        return HELP_TEXT
    context = _Context(clock, frozenset(actual), turns)
    outcome = _plan(context, len(turns) - 1)
    if isinstance(outcome, _Reply):
        return outcome.text
    if isinstance(outcome, _Diverged):
        return "Sorry, I lost track of what I was doing. Could you say that again?"
    return [_Call(actual[call.name], call.arguments) for call in outcome]


TOOL_NAMES = (
    "add_task",
    "list_tasks",
    "get_task",
    "update_task",
    "complete_task",
    "reopen_task",
    "delete_task",
)


def _tool_names(tools: Sequence[Tool]) -> dict[str, str]:
    """Our tool names -> the names in `tools`, which may carry a server prefix ('mcp_todo__add_task')."""
    names = [name for name in (getattr(tool, "name", None) for tool in tools) if isinstance(name, str)]
    found: dict[str, str] = {}
    for known in TOOL_NAMES:
        if known in names:
            found[known] = known
            continue
        prefixed = [name for name in names if re.search(rf"(?:__|[./:]){known}$", name)]
        if len(prefixed) == 1:
            found[known] = prefixed[0]
    return found


def _output_items(decision: list[_Call] | str) -> list[TResponseOutputItem]:
    if isinstance(decision, str):
        return [assistant_message(decision, item_id=f"msg_{uuid.uuid4().hex}")]
    items: list[TResponseOutputItem] = []
    for call in decision:
        call_id = f"call_{uuid.uuid4().hex}"
        items.append(
            function_call(call.name, call.arguments, call_id=call_id, item_id=f"fc_{uuid.uuid4().hex}")
        )
    return items


class OfflineModel(Model):
    """A deterministic stand-in for an LLM: everyday task commands in, tool calls and plain answers out."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        output = self._respond(system_instructions, input, tools, tracing)
        return ModelResponse(output=output, usage=Usage(requests=1), response_id=f"resp_{uuid.uuid4().hex}")

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        output = self._respond(system_instructions, input, tools, tracing)
        for event in stream_events(output, response_id=f"resp_{uuid.uuid4().hex}"):
            yield event

    @staticmethod
    def _respond(
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        tools: Sequence[Tool],
        tracing: ModelTracing,
    ) -> list[TResponseOutputItem]:
        with generation_span(model=OFFLINE_MODEL_NAME, disabled=tracing.is_disabled()) as span:
            output = _output_items(_decide(system_instructions, input, tools))
            if tracing.include_data():
                span.span_data.output = [item.model_dump(exclude_unset=True) for item in output]
            return output


# ------------------------------------------------------------------------------------ streaming


def _text_chunks(text: str) -> list[str]:
    """Word-sized deltas, so a streamed answer appears as it would from an LLM."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def stream_events(output: Sequence[TResponseOutputItem], *, response_id: str) -> list[TResponseStreamEvent]:
    """The Responses stream for a finished `output`: created, per-item added/deltas/done, completed."""
    usage = ResponseUsage(
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        input_tokens_details=InputTokensDetails.model_validate({"cached_tokens": 0, "cache_write_tokens": 0}),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
    )
    response = Response(
        id=response_id,
        created_at=time.time(),
        model=OFFLINE_MODEL_NAME,
        object="response",
        output=list(output),
        tool_choice="auto",
        tools=[],
        top_p=None,
        parallel_tool_calls=True,
        status="completed",
        usage=usage,
    )
    started = response.model_copy(update={"output": [], "status": "in_progress", "usage": None})
    events: list[TResponseStreamEvent] = []

    def add(event: object) -> None:
        events.append(cast(TResponseStreamEvent, event))

    add(ResponseCreatedEvent(type="response.created", response=started, sequence_number=0))
    add(
        ResponseInProgressEvent(
            type="response.in_progress", response=copy.deepcopy(started), sequence_number=1
        )
    )
    for index, item in enumerate(output):
        if isinstance(item, ResponseFunctionToolCall):
            item_id = item.id or item.call_id
            add(
                ResponseOutputItemAddedEvent(
                    type="response.output_item.added",
                    output_index=index,
                    sequence_number=len(events),
                    item=item.model_copy(update={"arguments": "", "status": "in_progress"}),
                )
            )
            add(
                ResponseFunctionCallArgumentsDeltaEvent(
                    type="response.function_call_arguments.delta",
                    item_id=item_id,
                    output_index=index,
                    delta=item.arguments,
                    sequence_number=len(events),
                )
            )
            add(
                ResponseFunctionCallArgumentsDoneEvent.model_validate(
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item_id,
                        "output_index": index,
                        "arguments": item.arguments,
                        "name": item.name,
                        "sequence_number": len(events),
                    }
                )
            )
        elif isinstance(item, ResponseOutputMessage):
            add(
                ResponseOutputItemAddedEvent(
                    type="response.output_item.added",
                    output_index=index,
                    sequence_number=len(events),
                    item=item.model_copy(update={"content": [], "status": "in_progress"}),
                )
            )
            for part_index, part in enumerate(item.content):
                if not isinstance(part, ResponseOutputText):
                    continue
                add(
                    ResponseContentPartAddedEvent(
                        type="response.content_part.added",
                        item_id=item.id,
                        output_index=index,
                        content_index=part_index,
                        sequence_number=len(events),
                        part=ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[]),
                    )
                )
                for chunk in _text_chunks(part.text):
                    add(
                        ResponseTextDeltaEvent(
                            type="response.output_text.delta",
                            item_id=item.id,
                            output_index=index,
                            content_index=part_index,
                            delta=chunk,
                            logprobs=[],
                            sequence_number=len(events),
                        )
                    )
                add(
                    ResponseTextDoneEvent(
                        type="response.output_text.done",
                        item_id=item.id,
                        output_index=index,
                        content_index=part_index,
                        text=part.text,
                        logprobs=[],
                        sequence_number=len(events),
                    )
                )
                add(
                    ResponseContentPartDoneEvent(
                        type="response.content_part.done",
                        item_id=item.id,
                        output_index=index,
                        content_index=part_index,
                        part=copy.deepcopy(part),
                        sequence_number=len(events),
                    )
                )
        add(
            ResponseOutputItemDoneEvent(
                type="response.output_item.done",
                item=copy.deepcopy(item),
                output_index=index,
                sequence_number=len(events),
            )
        )
    add(ResponseCompletedEvent(type="response.completed", response=response, sequence_number=len(events)))
    return events
