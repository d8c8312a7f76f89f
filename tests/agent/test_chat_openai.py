"""The OpenAI-compatible path: the real `openai` client and Agents SDK models against a fake server on
loopback, for Chat Completions and Responses, streamed and not, driving the real MCP tools."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import pytest
from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel

from agent.config import ChatConfig
from agent.llm import ToolsUnavailable, build_model, describe_error
from agent.memory import MemoryUnavailable
from agent.offline_model import OfflineModel
from mcp_server.db import Database
from mcp_server.service import TaskService
from tests.agent.test_chat_http import ChatApp, chat_app, in_process, user_id
from tests.conftest import FixedClock
from tests.fakes.openai_server import FakeOpenAI, RecordedRequest, Text

STYLES = ["chat_completions", "responses"]


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI()
    async with server.serving() as base_url:
        yield server, base_url


@pytest.fixture
def fake(fake_server: tuple[FakeOpenAI, str]) -> tuple[FakeOpenAI, str]:
    """The module's fake server, with an empty script and no requests recorded yet."""
    fake_server[0].reset()
    return fake_server


def config_for(base_url: str, api_style: Any, *, key: str | None = None, **options: Any) -> ChatConfig:
    return ChatConfig(
        openai_api_key=key or FakeOpenAI().api_key,
        openai_base_url=base_url,
        openai_model="fake-model",
        api_style=api_style,
        **options,
    )


async def turn(
    app: ChatApp, user: str, message: str, stream: bool, conversation_id: str | None = None
) -> Any:
    """One turn; for a stream, checks the framing and returns the same shape as the JSON answer."""
    if not stream:
        return await app.send(user, message, conversation_id)
    events = await app.stream(user, message, conversation_id)
    assert events[0].event == "conversation" and events[-1].event == "done"
    deltas = "".join(e.data["text"] for e in events if e.event == "delta")
    errors = [e.data for e in events if e.event == "error"]
    done = events[-1].data
    if not errors:
        assert deltas == done["reply"]
    calls = {e.data["id"]: e.data for e in events if e.event == "tool_call"}
    results = {e.data["id"]: e.data for e in events if e.event == "tool_result"}
    assert calls.keys() == results.keys()
    return {
        "conversation_id": done["conversation_id"],
        "reply": done["reply"],
        "tool_calls": [{**calls[i], "output": results[i]["output"]} for i in calls],
        "error": errors[0] if errors else None,
    }


def added_reply(request: RecordedRequest) -> Text:
    """The 'model' reads the tool output it was sent and confirms from it."""
    task = json.loads(request.tool_outputs()[-1])
    return Text(f'Added "{task["title"]}" (due {task["due"]}).')


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("style", STYLES)
async def test_tool_round_trip_and_memory(
    fake: tuple[FakeOpenAI, str],
    db: Database,
    service: TaskService,
    clock: FixedClock,
    style: str,
    stream: bool,
) -> None:
    server, base_url = fake
    model = build_model(config_for(base_url, style))
    assert isinstance(model, OpenAIResponsesModel if style == "responses" else OpenAIChatCompletionsModel)
    server.call("add_task", {"title": "Buy milk", "due": "tomorrow 9am", "tags": ["errands"]})
    server.respond(added_reply)
    server.say("You asked me to add buy milk, and I did.")

    async with chat_app(db, model, connector=in_process(service), clock=clock) as app:
        alice = user_id()
        first = await turn(app, alice, "add buy milk tomorrow 9am #errands", stream)
        assert first["error"] is None
        assert first["reply"] == 'Added "Buy milk" (due 2026-11-28T09:00:00Z).'
        (call,) = first["tool_calls"]
        assert call["name"] == "add_task" and call["output"]["tags"] == ["errands"]
        second = await turn(app, alice, "what did I ask you?", stream, first["conversation_id"])
        assert second["reply"] == "You asked me to add buy milk, and I did." and second["tool_calls"] == []

    requests = server.requests
    assert len(requests) == 3 and server.remaining == 0
    for request in requests:
        assert request.api == style and request.streamed is stream
        assert request.headers["authorization"] == f"Bearer {server.api_key}"
        assert request.body["model"] == "fake-model"
        assert "Current time: 2026-11-27T15:00:00+00:00 (time zone: UTC)" in json.dumps(request.body)
    offered = requests[0]
    assert set(offered.tool_names) >= {"add_task", "list_tasks", "complete_task", "delete_task"}
    schema = offered.tool_schema("add_task")
    assert schema["required"] == ["title"] and "user_id" not in schema["properties"]
    assert {"title", "due", "tags", "priority", "remind", "repeat"} <= set(schema["properties"])
    # The tool result went back to the model, and the next turn carries the whole first turn.
    assert json.loads(requests[1].tool_outputs()[0])["id"] == call["output"]["id"]
    assert requests[2].user_messages() == ["add buy milk tomorrow 9am #errands", "what did I ask you?"]
    assert call["output"]["id"] in requests[2].history_text()
    assert 'Added \\"Buy milk\\"' in requests[2].history_text()


@pytest.mark.parametrize("style", STYLES)
async def test_rate_limit_is_retried(
    fake: tuple[FakeOpenAI, str], db: Database, service: TaskService, clock: FixedClock, style: str
) -> None:
    server, base_url = fake
    server.fail(429, retry_after_ms=20).say("Hello again.")
    async with chat_app(
        db, build_model(config_for(base_url, style)), connector=in_process(service), clock=clock
    ) as app:
        reply = await app.send(user_id(), "hello")
    assert reply["error"] is None and reply["reply"] == "Hello again."
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("style", STYLES)
async def test_server_errors_become_a_clear_reply(
    fake: tuple[FakeOpenAI, str],
    db: Database,
    service: TaskService,
    clock: FixedClock,
    style: str,
    stream: bool,
) -> None:
    server, base_url = fake
    server.fail(500, times=2, retry_after_ms=10)
    server.say("Working again.")
    model = build_model(config_for(base_url, style, max_retries=1))
    async with chat_app(db, model, connector=in_process(service), clock=clock) as app:
        alice = user_id()
        failed = await turn(app, alice, "what's due today?", stream)
        assert failed["reply"] == "The AI model service had a problem (500). Please try again in a moment."
        assert failed["error"] == {"kind": "unavailable", "message": failed["reply"], "status": 500}
        assert len(server.requests) == 2  # the first try and one retry
        recovered = await turn(app, alice, "try again", stream, failed["conversation_id"])
        assert recovered["reply"] == "Working again." and recovered["error"] is None
    # The failed turn is in memory: the person's message and the error reply, nothing dangling.
    assert server.requests[-1].user_messages() == ["what's due today?", "try again"]
    assert failed["reply"] in server.requests[-1].history_text()


@pytest.mark.parametrize("style", STYLES)
async def test_a_bad_key_is_a_clear_reply_without_the_key(
    fake: tuple[FakeOpenAI, str], db: Database, service: TaskService, clock: FixedClock, style: str
) -> None:
    server, base_url = fake
    wrong = "sk-wrong-key-9876543210"
    model = build_model(config_for(base_url, style, key=wrong))
    async with chat_app(db, model, connector=in_process(service), clock=clock) as app:
        response = await app.post(user_id(), "hello", stream=False)
        events = await app.stream(user_id(), "hello")
    assert response.status_code == 200
    body = response.json()
    assert body["error"] == {
        "kind": "auth",
        "status": 401,
        "message": "The AI model refused our API key (401). The administrator needs to check OPENAI_API_KEY.",
    }
    assert [e.event for e in events][-2:] == ["error", "done"]
    assert wrong not in response.text and "9876" not in response.text
    assert wrong not in json.dumps([e.data for e in events])
    assert len(server.requests) == 2  # a 401 is not retried


def test_api_style_and_model_choice() -> None:
    assert isinstance(build_model(ChatConfig()), OfflineModel)
    assert isinstance(build_model(ChatConfig(openai_api_key="")), OfflineModel)
    official = ChatConfig(openai_api_key="sk-x")
    assert official.resolved_api_style == "responses" and official.tracing_enabled
    assert isinstance(build_model(official), OpenAIResponsesModel)
    assert (
        ChatConfig(openai_api_key="k", openai_base_url="https://api.openai.com/v1").resolved_api_style
        == "responses"
    )
    ollama = ChatConfig(
        openai_api_key="ollama", openai_base_url="http://127.0.0.1:11434/v1", openai_model="llama3.2"
    )
    assert ollama.resolved_api_style == "chat_completions" and not ollama.tracing_enabled
    assert isinstance(build_model(ollama), OpenAIChatCompletionsModel)
    forced = ChatConfig(
        openai_api_key="k", openai_base_url="http://gw.local/v1", api_style="responses", tracing=False
    )
    assert isinstance(build_model(forced), OpenAIResponsesModel) and not forced.tracing_enabled
    assert not ChatConfig().tracing_enabled
    assert "sk-x" not in repr(official)
    with pytest.raises(ValueError, match="api_style"):
        ChatConfig(api_style="grpc")  # type: ignore[arg-type]


def _status(cls: type[openai.APIStatusError], status: int, code: str | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://model.test/v1/chat/completions")
    response = httpx2.Response(status, request=request)
    body = {"message": "Incorrect API key provided: sk-abc...xyz", "type": "error", "code": code}
    return cls("Incorrect API key provided: sk-abc...xyz", response=response, body=body)


REQUEST = httpx2.Request("POST", "http://model.test/v1/responses")


@pytest.mark.parametrize(
    ("error", "kind", "status", "words"),
    [
        (_status(openai.RateLimitError, 429), "rate_limited", 429, "rate-limited right now (429)"),
        (_status(openai.RateLimitError, 429, "insufficient_quota"), "quota", 429, "quota is used up"),
        (_status(openai.AuthenticationError, 401), "auth", 401, "refused our API key (401)"),
        (_status(openai.PermissionDeniedError, 403), "forbidden", 403, "refused access (403)"),
        (_status(openai.NotFoundError, 404), "model_not_found", 404, "OPENAI_MODEL"),
        (
            _status(openai.BadRequestError, 400, "context_length_exceeded"),
            "too_long",
            400,
            "start a new conversation",
        ),
        (_status(openai.BadRequestError, 400), "bad_request", 400, "could not handle this request (400)"),
        (_status(openai.InternalServerError, 503), "unavailable", 503, "had a problem (503)"),
        (openai.APITimeoutError(REQUEST), "timeout", None, "did not answer in time"),
        (openai.APIConnectionError(request=REQUEST), "unreachable", None, "could not be reached"),
        (MaxTurnsExceeded("Max turns (10) exceeded"), "too_many_steps", None, "more steps than I may take"),
        (ModelBehaviorError("bad json"), "model_behavior", None, "could not use"),
        (ToolsUnavailable("ConnectError"), "tools_unavailable", None, "task list could not be reached"),
        (MemoryUnavailable(), "memory_unavailable", None, "could not be saved"),
        (RuntimeError("sk-secret in a traceback"), "internal", None, "Something went wrong"),
    ],
)
def test_error_messages(error: BaseException, kind: str, status: int | None, words: str) -> None:
    described = describe_error(error)
    assert (described.kind, described.status) == (kind, status) and words in described.message
    assert "sk-" not in described.message
    wrapped = RuntimeError("wrapper")  # the same, wrapped by the SDK or by us
    wrapped.__cause__ = error
    assert describe_error(wrapped).kind == kind
