"""The agent loop with `agents.testing.ScriptedModel` driving the REAL MCP tools on the real database.

What the scripted "LLM" does is fixed; everything else is the production path: ChatService, the
Agents SDK runner, the in-process MCP server acting for the person, TaskService, and memory in the
SDK session on the migrated tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai
import pytest
from agents.mcp.util import MCPUtil
from agents.models.interface import ModelTracing
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call

from agent.chat import (
    INTERRUPTED_OUTPUT,
    ChatService,
    DoneEvent,
    ErrorEvent,
    ToolCallEvent,
    ToolResultEvent,
    TranscriptMessage,
)
from agent.config import ChatConfig
from agent.mcp_link import ChatUser
from agent.memory import ConversationStore
from mcp_server.db import Database
from mcp_server.schemas import TaskCreate, TaskQuery
from mcp_server.service import Caller, TaskService
from tests.agent.test_chat_http import chat_app, in_process, user_id
from tests.conftest import FixedClock

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def items_of(call: ModelCall) -> list[dict[str, Any]]:
    assert isinstance(call.input, list)
    return [dict(item) for item in call.input]


def last_output(call: ModelCall) -> dict[str, Any]:
    """The most recent tool output the model was given, parsed."""
    outputs = [item["output"] for item in items_of(call) if item.get("type") == "function_call_output"]
    return dict(json.loads(outputs[-1]))


async def stored_items(chat: ChatService, conversation_id: str) -> list[dict[str, Any]]:
    return [dict(item) for item in await chat.sessions(conversation_id).get_items()]


def service_for(db: Database, tasks: TaskService, model: ScriptedModel, **config: Any) -> ChatService:
    clock = FixedClock(NOW)
    return ChatService(
        model,
        in_process(tasks),
        ConversationStore(db.engine, clock=clock),
        clock=clock,
        config=ChatConfig(**config),
    )


async def open_titles(tasks: TaskService, user: str, status: str = "all") -> list[tuple[str, bool]]:
    page = await tasks.list_tasks(Caller(user), TaskQuery.model_validate({"status": status, "sort": "title"}))
    return [(task.title, task.completed) for task in page.tasks]


async def test_two_turns_with_memory_and_a_restart(
    db: Database, service: TaskService, database_url: str
) -> None:
    user = ChatUser(user_id(), None, "America/New_York")

    def complete_the_task_from_turn_one(call: ModelCall) -> list[Any]:
        # "complete it": the id comes from the add_task output stored in the first turn.
        return [function_call("complete_task", {"task_id": last_output(call)["id"]}, call_id="c2")]

    model = ScriptedModel(
        [
            [function_call("add_task", {"title": "Buy milk", "due": "tomorrow 9am"}, call_id="c1")],
            [assistant_message('Added "Buy milk" for Sat 28 Nov, 09:00.')],
            ModelStep.respond(complete_the_task_from_turn_one),
            [assistant_message('Marked "Buy milk" done.')],
        ]
    )
    chat = service_for(db, service, model)
    first = await chat.turn(user, "add buy milk tomorrow 9am")
    assert first.error is None and first.reply == 'Added "Buy milk" for Sat 28 Nov, 09:00.'
    (added,) = first.tool_calls
    assert added.name == "add_task" and added.arguments == {"title": "Buy milk", "due": "tomorrow 9am"}
    assert added.output["due"] == "2026-11-28T09:00:00-05:00"

    second = await chat.turn(user, "complete it", first.conversation_id)
    assert second.conversation_id == first.conversation_id and second.reply == 'Marked "Buy milk" done.'
    assert [(c.name, c.output["completed"]) for c in second.tool_calls] == [("complete_task", True)]
    assert await open_titles(service, user.user_id) == [("Buy milk", True)]

    calls = model.calls
    assert len(calls) == 4 and model.remaining_steps == 0
    first_call = calls[0]
    assert "Current time: 2026-11-27T10:00:00-05:00 (time zone: America/New_York)" in str(
        first_call.system_instructions
    )
    assert first_call.tracing == ModelTracing.DISABLED
    assert {tool.name for tool in first_call.tools} >= {"add_task", "complete_task", "list_tasks"}
    history = items_of(calls[2])  # the second request's first model call
    kinds = [item.get("type") or item.get("role") for item in history]
    assert kinds == ["user", "function_call", "function_call_output", "message", "user"]
    assert history[0]["content"] == "add buy milk tomorrow 9am" and history[-1]["content"] == "complete it"

    # A restart: a new engine, store and service continue the same conversation from the database.
    again = Database(database_url)
    try:
        model2 = ScriptedModel(
            [
                ModelStep.respond(
                    lambda call: [
                        function_call("reopen_task", {"task_id": last_output(call)["id"]}, call_id="c3")
                    ]
                ),
                [assistant_message("Reopened.")],
            ]
        )
        restarted = service_for(again, TaskService(again, clock=lambda: NOW), model2)
        third = await restarted.turn(user, "oops, reopen it", first.conversation_id)
        assert third.error is None and third.reply == "Reopened."
        resumed = items_of(model2.calls[0])
        assert [item.get("type") or item.get("role") for item in resumed][:9] == [
            "user",
            "function_call",
            "function_call_output",
            "message",
            "user",
            "function_call",
            "function_call_output",
            "message",
            "user",
        ]
        assert await open_titles(service, user.user_id) == [("Buy milk", False)]
        listed = await restarted.conversations(user)
        assert [c.id for c in listed] == [first.conversation_id] and listed[0].message_count == 6
    finally:
        await again.dispose()


def rate_limited() -> openai.RateLimitError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/responses")
    response = httpx2.Response(429, request=request, headers={"retry-after": "1"})
    body = {
        "message": "Rate limit reached. Key sk-secret-value",
        "type": "requests",
        "code": "rate_limit_exceeded",
    }
    return openai.RateLimitError("Rate limit reached. Key sk-secret-value", response=response, body=body)


async def test_a_model_failure_after_a_tool_call_leaves_consistent_memory(
    db: Database, service: TaskService
) -> None:
    user = ChatUser(user_id(), None, "UTC")
    model = ScriptedModel(
        [
            [function_call("add_task", {"title": "Call mom"}, call_id="c1")],
            rate_limited(),
            [assistant_message('Sorry about that: I had added "Call mom".')],
        ]
    )
    chat = service_for(db, service, model)
    failed = await chat.turn(user, "add call mom")
    assert failed.error is not None and failed.error.kind == "rate_limited" and failed.error.status == 429
    assert failed.reply == "The AI model is rate-limited right now (429). Please try again in a moment."
    assert "sk-secret" not in json.dumps(failed.error.as_dict())
    assert [c.name for c in failed.tool_calls] == ["add_task"]  # what did happen is reported
    assert await open_titles(service, user.user_id) == [("Call mom", False)]

    later = await chat.turn(user, "did that work?", failed.conversation_id)
    assert later.error is None
    history = items_of(model.calls[-1])
    assert [item.get("type") or item.get("role") for item in history] == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
        "user",
    ]
    assert history[3]["content"] == failed.reply

    messages = await chat.messages(user, failed.conversation_id)
    assert [getattr(m, "role", None) for m in messages] == ["user", "tool", "assistant", "user", "assistant"]


async def test_the_stream_reports_a_failure_then_done(db: Database, service: TaskService) -> None:
    user = ChatUser(user_id(), None, "UTC")
    model = ScriptedModel(
        [[function_call("list_tasks", {}, call_id="c1")], RuntimeError("provider exploded")]
    )
    chat = service_for(db, service, model)
    events = [event async for event in chat.stream(user, "what's on my list?")]
    names = [event.name for event in events]
    assert names == ["conversation", "tool_call", "tool_result", "error", "done"]
    error = events[3]
    assert isinstance(error, ErrorEvent) and error.error.kind == "internal"
    assert "exploded" not in error.error.message
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.reply == error.error.message
    assert isinstance(events[1], ToolCallEvent) and isinstance(events[2], ToolResultEvent)
    assert events[2].output == {"tasks": [], "total": 0, "next_cursor": None}


async def test_a_dangling_tool_call_is_closed_when_a_turn_fails(db: Database, service: TaskService) -> None:
    """History must never keep a call without output: both OpenAI APIs reject such a history."""
    user = ChatUser(user_id(), None, "UTC")
    model = ScriptedModel([RuntimeError("down"), [assistant_message("Back.")]])
    chat = service_for(db, service, model)
    conversation = await chat.store.create(user.user_id, "earlier")
    await chat.sessions(conversation.id).add_items(
        [
            {"role": "user", "content": "earlier"},
            {"type": "function_call", "call_id": "lost", "name": "list_tasks", "arguments": "{}"},
        ]
    )
    failed = await chat.turn(user, "hello?", conversation.id)
    assert failed.error is not None
    stored = await stored_items(chat, conversation.id)
    outputs = [item for item in stored if item.get("type") == "function_call_output"]
    assert outputs == [{"type": "function_call_output", "call_id": "lost", "output": INTERRUPTED_OUTPUT}]
    assert stored[-1] == {"role": "assistant", "content": failed.reply}
    assert sum(1 for item in stored if item.get("role") == "user") == 2
    assert (await chat.turn(user, "again", conversation.id)).reply == "Back."


async def test_too_many_steps_and_unknown_tools(db: Database, service: TaskService) -> None:
    user = ChatUser(user_id(), None, "UTC")
    looping: list[Any] = [
        [function_call("no_such_tool", {}, call_id="c0")],
        *[[function_call("list_tasks", {}, call_id=f"c{n}")] for n in range(1, 4)],
    ]
    model = ScriptedModel(looping)
    chat = service_for(db, service, model, max_turns=3)
    result = await chat.turn(user, "list forever")
    assert result.error is not None and result.error.kind == "too_many_steps"
    assert "not found" in json.dumps(items_of(model.calls[1])[-1]).lower()  # the model was told, not crashed
    stored = await stored_items(chat, result.conversation_id)
    calls = {item["call_id"] for item in stored if item.get("type") == "function_call"}
    outputs = {item["call_id"] for item in stored if item.get("type") == "function_call_output"}
    assert calls == outputs and stored[-1]["role"] == "assistant"


async def test_scripted_turns_over_http(db: Database, service: TaskService, clock: FixedClock) -> None:
    model = ScriptedModel(
        [
            [function_call("add_task", {"title": "Pay rent", "repeat": "monthly"}, call_id="c1")],
            [assistant_message("Added, every month.")],
        ]
    )
    async with chat_app(db, model, connector=in_process(service), clock=clock) as app:
        alice = user_id()
        reply = await app.send(alice, "pay rent monthly")
        assert reply["reply"] == "Added, every month." and reply["error"] is None
        (call,) = reply["tool_calls"]
        assert call["name"] == "add_task" and call["output"]["repeat"] == "FREQ=MONTHLY"


Responder = Callable[[ModelCall], Any]


def kinds_and_text(call: ModelCall) -> list[tuple[str, str]]:
    """What the model was given, as (kind, the message text or the call id) pairs."""
    shown = []
    for item in items_of(call):
        kind = item.get("type") or item.get("role")
        if kind in ("function_call", "function_call_output"):
            shown.append((kind, str(item["call_id"])))
        elif item.get("role") == "user":
            shown.append(("user", str(item["content"])))
        else:
            shown.append(("assistant", str(item["content"][0]["text"])))
    return shown


async def test_the_model_sees_the_latest_whole_turns_and_the_conversation_keeps_all(
    db: Database, service: TaskService
) -> None:
    user = ChatUser(user_id(), None, "UTC")
    steps: list[Any] = []
    for turn in range(1, 5):
        steps.append([function_call("list_tasks", {}, call_id=f"c{turn}")])
        steps.append([assistant_message(f"answer {turn}")])
    model = ScriptedModel(steps)
    chat = service_for(db, service, model, history_items=6)
    conversation = None
    for turn in range(1, 5):
        result = await chat.turn(user, f"question {turn}", conversation)
        assert result.error is None and result.reply == f"answer {turn}"
        conversation = result.conversation_id
    assert conversation is not None

    # Turn 4: the last 6 stored items begin inside turn 2, so the model gets turn 3 whole, then
    # the new message; each tool output still comes with its call.
    assert kinds_and_text(model.calls[6]) == [
        ("user", "question 3"),
        ("function_call", "c3"),
        ("function_call_output", "c3"),
        ("assistant", "answer 3"),
        ("user", "question 4"),
    ]
    # Within a turn the model sees its own steps after that history.
    assert [kind for kind, _ in kinds_and_text(model.calls[7])][-3:] == [
        "user",
        "function_call",
        "function_call_output",
    ]
    assert len(await stored_items(chat, conversation)) == 16
    shown = await chat.messages(user, conversation)
    asked = [item.content for item in shown if isinstance(item, TranscriptMessage) and item.role == "user"]
    assert asked == [f"question {n}" for n in range(1, 5)]


async def test_a_turn_longer_than_the_window_is_given_whole(db: Database, service: TaskService) -> None:
    user = ChatUser(user_id(), None, "UTC")
    model = ScriptedModel(
        [
            [function_call("list_tasks", {}, call_id="a"), function_call("list_tasks", {}, call_id="b")],
            [function_call("list_tasks", {"status": "done"}, call_id="c")],
            [assistant_message("Listed three ways.")],
            [assistant_message("Hello again.")],
        ]
    )
    chat = service_for(db, service, model, history_items=3)
    first = await chat.turn(user, "list everything")
    assert first.error is None and len(first.tool_calls) == 3
    second = await chat.turn(user, "hi", first.conversation_id)
    assert second.reply == "Hello again."
    assert kinds_and_text(model.calls[3]) == [
        ("user", "list everything"),
        ("function_call", "a"),
        ("function_call", "b"),
        ("function_call_output", "a"),
        ("function_call_output", "b"),
        ("function_call", "c"),
        ("function_call_output", "c"),
        ("assistant", "Listed three ways."),
        ("user", "hi"),
    ]


async def test_a_turn_converts_the_mcp_tools_once(
    db: Database, service: TaskService, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversions = 0
    convert = MCPUtil.get_all_function_tools.__func__  # type: ignore[attr-defined]

    async def counted(cls: type[MCPUtil], *args: Any, **kwargs: Any) -> Any:
        nonlocal conversions
        conversions += 1
        return await convert(cls, *args, **kwargs)

    monkeypatch.setattr(MCPUtil, "get_all_function_tools", classmethod(counted))
    model = ScriptedModel(
        [
            [function_call("list_tasks", {}, call_id="a")],
            [function_call("list_tasks", {"status": "done"}, call_id="b")],
            [assistant_message("Nothing yet.")],
            [assistant_message("Hello.")],
            [function_call("list_tasks", {}, call_id="c")],
            [assistant_message("Yours are empty too.")],
        ]
    )
    chat = service_for(db, service, model)
    user = ChatUser(user_id(), None, "UTC")
    await service.create(Caller(user.user_id), TaskCreate(title="The first person's task"))
    first = await chat.turn(user, "what do I have?")
    assert first.reply == "Nothing yet." and len(model.calls) == 3
    assert first.tool_calls[0].output["total"] == 1
    assert all({tool.name for tool in call.tools} >= {"list_tasks", "add_task"} for call in model.calls)
    assert conversions == 1
    await chat.turn(user, "hi", first.conversation_id)
    assert conversions == 1  # in process, the person's tool server (and its tools) are kept
    other = ChatUser(user_id(), None, "UTC")
    third = await chat.turn(other, "and mine?")
    assert third.reply == "Yours are empty too." and conversions == 2  # another person: their own tools
    assert third.tool_calls[0].output["total"] == 0  # acting for them, not for the first person
