"""`/api/chat` and `/api/conversations` over real HTTP: SSE framing, validation, isolation between users.

Also the harness the other chat tests share: the real MCP tools over the real database, wired in
process exactly as the embedded app does, the chat router mounted on a served FastAPI app, JWT auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from agents.models.interface import Model
from fastapi import FastAPI, Request

from agent.chat import ChatService
from agent.config import ChatConfig
from agent.http import Unauthenticated, chat_router
from agent.mcp_link import ChatUser, McpConnector, in_process_connector
from agent.memory import ConversationStore
from agent.offline_model import OfflineModel
from mcp_server.auth import Authenticator
from mcp_server.db import Database
from mcp_server.errors import NotAuthenticated
from mcp_server.schemas import TaskQuery
from mcp_server.service import Caller, TaskService
from mcp_server.tools import acting_as, build_mcp_server
from tests.conftest import FixedClock
from tests.helpers import TEST_SECRET, SseEvent, parse_sse, serving, token
from todo_chatbot.settings import Settings

# ------------------------------------------------------------------------------------ harness


async def read_sse(response: httpx.Response) -> list[SseEvent]:
    return parse_sse([line async for line in response.aiter_lines()])


def user_id() -> str:
    return f"chat-{uuid.uuid4().hex[:10]}"


def in_process(service: TaskService) -> McpConnector:
    """The embedded wiring: the MCP server in this process, acting for the person chatting."""
    mcp = build_mcp_server(service)
    return in_process_connector(mcp, lambda user: acting_as(Caller(user.user_id, user.timezone)))


def jwt_authenticate(auth: Authenticator) -> Callable[[Request], Any]:
    async def authenticate(request: Request) -> ChatUser:
        try:
            caller = await auth.caller(request.headers)
        except NotAuthenticated as error:
            raise Unauthenticated(str(error)) from None
        _, _, bearer = request.headers.get("authorization", "").partition(" ")
        return ChatUser(caller.user_id, bearer.strip() or None, caller.timezone or "UTC")

    return authenticate


@dataclass
class ChatApp:
    url: str
    chat: ChatService
    store: ConversationStore
    http: httpx.AsyncClient

    def headers(self, user: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(user)}", **extra}

    async def send(
        self,
        user: str,
        message: str,
        conversation_id: str | None = None,
        timezone: str | None = None,
        **extra: str,
    ) -> dict[str, Any]:
        """One turn as JSON (`?stream=false`); asserts HTTP 200."""
        response = await self.post(user, message, conversation_id, timezone, stream=False, **extra)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def post(
        self,
        user: str,
        message: str,
        conversation_id: str | None = None,
        timezone: str | None = None,
        *,
        stream: bool = False,
        **extra: str,
    ) -> httpx.Response:
        body = {"message": message, "conversation_id": conversation_id, "timezone": timezone}
        return await self.http.post(
            "/api/chat",
            params={"stream": str(stream).lower()},
            json=body,
            headers=self.headers(user, **extra),
        )

    async def stream(
        self, user: str, message: str, conversation_id: str | None = None, timezone: str | None = None
    ) -> list[SseEvent]:
        body = {"message": message, "conversation_id": conversation_id, "timezone": timezone}
        async with self.http.stream("POST", "/api/chat", json=body, headers=self.headers(user)) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            return await read_sse(response)


@contextlib.asynccontextmanager
async def chat_app(
    db: Database,
    model: Model,
    *,
    connector: McpConnector,
    clock: Callable[[], datetime],
    config: ChatConfig | None = None,
) -> AsyncIterator[ChatApp]:
    store = ConversationStore(db.engine, clock=clock)
    chat = ChatService(model, connector, store, clock=clock, config=config or ChatConfig())
    auth = Authenticator(Settings(database_url=db.url, auth_secret=TEST_SECRET))
    app = FastAPI()
    app.include_router(chat_router(chat, jwt_authenticate(auth)))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield ChatApp(url, chat, store, http)
        await chat.close()


@pytest.fixture(scope="module")
async def app(db: Database) -> AsyncIterator[ChatApp]:
    """The offline model over the real MCP tools and database, as the embedded app runs it.

    One per module and backend (tests act as fresh users), at the `clock` fixture's fixed time.
    """
    clock = FixedClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    tasks = TaskService(db, source="/todo-chatbot/tests", clock=clock)
    async with chat_app(db, OfflineModel(), connector=in_process(tasks), clock=clock) as served:
        yield served


async def titles(service: TaskService, user: str, status: str = "all") -> list[str]:
    query = TaskQuery.model_validate({"status": status, "sort": "title", "limit": 100})
    page = await service.list_tasks(Caller(user), query)
    return [task.title for task in page.tasks]


# -------------------------------------------------------------------------------------- tests


async def test_sse_stream_framing_deltas_and_tool_events(app: ChatApp, service: TaskService) -> None:
    alice = user_id()
    events = await app.stream(alice, "add buy milk tomorrow at 9am #errands", timezone="America/New_York")
    names = [event.event for event in events]
    assert names[0] == "conversation" and names[-1] == "done" and "error" not in names
    conversation_id = events[0].data["conversation_id"]
    assert events[-1].data["conversation_id"] == conversation_id

    deltas = [event.data["text"] for event in events if event.event == "delta"]
    assert len(deltas) > 1, "the reply arrives in pieces"
    reply = events[-1].data["reply"]
    assert "".join(deltas) == reply and "Buy milk" in reply

    calls = [event.data for event in events if event.event == "tool_call"]
    results = [event.data for event in events if event.event == "tool_result"]
    assert [call["name"] for call in calls] == ["add_task"]
    assert [(r["id"], r["name"]) for r in results] == [(c["id"], c["name"]) for c in calls]
    assert names.index("tool_call") < names.index("tool_result") < len(names) - 1
    assert calls[0]["arguments"]["title"] == "Buy milk" and calls[0]["arguments"]["tags"] == ["errands"]
    task = results[0]["output"]
    assert task["title"] == "Buy milk" and task["due"] == "2026-11-28T09:00:00-05:00"
    assert await titles(service, alice) == ["Buy milk"]

    # The same conversation, continued by streaming again: it remembers the task.
    follow = await app.stream(alice, "mark the milk one done", conversation_id)
    assert follow[0].data == {"conversation_id": conversation_id}
    assert [e.data["name"] for e in follow if e.event == "tool_call"] == ["list_tasks", "complete_task"]
    assert await titles(service, alice, "done") == ["Buy milk"]


async def test_json_answer_and_conversation_routes(app: ChatApp) -> None:
    alice = user_id()
    first = await app.send(alice, "  add   call the plumber friday 3pm  ")
    assert set(first) == {"conversation_id", "reply", "tool_calls", "error"} and first["error"] is None
    assert [call["name"] for call in first["tool_calls"]] == ["add_task"]
    assert first["tool_calls"][0]["output"]["title"] == "Call the plumber"
    conversation_id = first["conversation_id"]
    await app.send(alice, "show all", conversation_id)
    other = await app.send(alice, "hello")

    listed = (await app.http.get("/api/conversations", headers=app.headers(alice))).json()
    assert [c["id"] for c in listed] == [other["conversation_id"], conversation_id]  # newest first
    assert listed[1]["title"] == "add call the plumber friday 3pm"
    assert set(listed[0]) == {"id", "title", "created_at", "updated_at"}
    assert datetime.fromisoformat(listed[0]["updated_at"]).utcoffset() is not None

    messages = (
        await app.http.get(f"/api/conversations/{conversation_id}/messages", headers=app.headers(alice))
    ).json()
    shape = [(m["role"], m.get("name")) for m in messages]
    assert shape == [
        ("user", None),
        ("tool", "add_task"),
        ("assistant", None),
        ("user", None),
        ("tool", "list_tasks"),
        ("assistant", None),
    ]
    assert messages[0]["content"] == "add   call the plumber friday 3pm"
    assert messages[1]["arguments"]["title"] == "Call the plumber"
    assert messages[1]["output"]["title"] == "Call the plumber"
    assert messages[4]["output"]["total"] == 1

    deleted = await app.http.delete(f"/api/conversations/{conversation_id}", headers=app.headers(alice))
    assert deleted.status_code == 204
    gone = await app.http.get(f"/api/conversations/{conversation_id}/messages", headers=app.headers(alice))
    assert gone.status_code == 404
    assert [
        c["id"] for c in (await app.http.get("/api/conversations", headers=app.headers(alice))).json()
    ] == [other["conversation_id"]]


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"message": ""}, "message", "must be 1-4000 characters after trimming (got 0)"),
        ({"message": "   \n "}, "message", "must be 1-4000 characters after trimming (got 0)"),
        ({"message": "x" * 4001}, "message", "must be 1-4000 characters after trimming (got 4001)"),
        ({"message": "hi", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone 'Mars/Olympus'"),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
async def test_bad_requests_are_422_naming_the_field(
    app: ChatApp, body: dict[str, Any], field: str, rule: str, stream: bool
) -> None:
    alice = user_id()
    response = await app.http.post(
        "/api/chat", params={"stream": str(stream).lower()}, json=body, headers=app.headers(alice)
    )
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", field] and rule in detail["msg"]
    assert (await app.http.get("/api/conversations", headers=app.headers(alice))).json() == []


async def test_missing_message_and_missing_token(app: ChatApp) -> None:
    response = await app.http.post("/api/chat", json={}, headers=app.headers(user_id()))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "message"]
    for path in ("/api/chat", "/api/conversations"):
        method = app.http.post if path == "/api/chat" else app.http.get
        kwargs: dict[str, Any] = {"json": {"message": "hi"}} if path == "/api/chat" else {}
        refused = await method(path, **kwargs)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "not authenticated" in refused.json()["detail"]


async def test_another_users_conversation_is_invisible(app: ChatApp, service: TaskService) -> None:
    alice, bob = user_id(), user_id()
    first = await app.send(alice, "add pay rent on the 1st every month")
    conversation_id = first["conversation_id"]
    before = await app.http.get(f"/api/conversations/{conversation_id}/messages", headers=app.headers(alice))

    unknown = str(uuid.uuid4())
    for target in (conversation_id, unknown):
        read = await app.http.get(f"/api/conversations/{target}/messages", headers=app.headers(bob))
        assert read.status_code == 404
        assert read.json() == {"detail": f"no conversation with id {target!r}"}  # same answer either way
        for stream in (True, False):
            cont = await app.post(bob, "delete all my tasks", target, stream=stream)
            assert cont.status_code == 404 and cont.json()["detail"] == f"no conversation with id {target!r}"
        removed = await app.http.delete(f"/api/conversations/{target}", headers=app.headers(bob))
        assert removed.status_code == 404
    assert (await app.http.get("/api/conversations", headers=app.headers(bob))).json() == []

    # Bob's own chat acts on Bob's tasks only, whatever he says.
    await app.send(bob, "add buy stamps")
    deleted = await app.send(bob, "delete everything")
    assert "delete" in deleted["reply"].lower()
    count = deleted["reply"]
    assert "1" in count or "one" in count.lower()
    await app.send(bob, "yes, delete all 1", deleted["conversation_id"])
    assert await titles(service, bob) == []
    assert await titles(service, alice) == ["Pay rent"]

    after = await app.http.get(f"/api/conversations/{conversation_id}/messages", headers=app.headers(alice))
    assert after.json() == before.json()
    assert [
        c["id"] for c in (await app.http.get("/api/conversations", headers=app.headers(alice))).json()
    ] == [conversation_id]


async def test_timezone_comes_from_the_body_then_the_client_header(
    app: ChatApp, service: TaskService
) -> None:
    alice = user_id()
    added = await app.send(alice, "add water plants tomorrow 8am", timezone="Asia/Tokyo")
    # 15:00 UTC on Friday is already Saturday in Tokyo, so "tomorrow" is Sunday there.
    assert added["tool_calls"][0]["output"]["due"] == "2026-11-29T08:00:00+09:00"
    bob = user_id()
    by_header = await app.send(bob, "add feed cat tomorrow 8am", **{"X-Timezone": "Europe/Berlin"})
    assert by_header["tool_calls"][0]["output"]["due"] == "2026-11-28T08:00:00+01:00"
    carol = user_id()
    default = await app.send(carol, "add jog tomorrow 8am")
    assert default["tool_calls"][0]["output"]["due"] == "2026-11-28T08:00:00Z"


async def test_openapi_documents_the_chat_routes(app: ChatApp) -> None:
    schema = (await app.http.get("/openapi.json")).json()
    chat = schema["paths"]["/api/chat"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatRequest")
    content = chat["responses"]["200"]["content"]
    assert "text/event-stream" in content and content["application/json"]["schema"]["$ref"].endswith(
        "/ChatReply"
    )
    assert {"404", "422", "401"} <= set(chat["responses"])
    components = schema["components"]["schemas"]
    assert set(components["ChatRequest"]["properties"]) == {"message", "conversation_id", "timezone"}
    assert set(components["ChatReply"]["properties"]) == {"conversation_id", "reply", "tool_calls", "error"}
    assert "/api/conversations/{conversation_id}/messages" in schema["paths"]
    assert "delete" in schema["paths"]["/api/conversations/{conversation_id}"]


async def test_a_multi_line_reply_streams_intact(app: ChatApp) -> None:
    alice = user_id()
    for title in ("Buy milk", "Call mom", "Pay rent"):
        await app.send(alice, f"add {title}")
    events = await app.stream(alice, "show all")
    reply = events[-1].data["reply"]
    assert reply.count("\n") == 3 and reply.startswith("You have 3 tasks")
    assert "".join(e.data["text"] for e in events if e.event == "delta") == reply


async def test_a_turn_finishes_and_is_remembered_when_the_client_goes_away(
    db: Database, service: TaskService, clock: FixedClock
) -> None:
    from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

    release = asyncio.Event()

    async def slow_answer(call: Any) -> Any:
        await release.wait()
        return [assistant_message("Added it.")]

    model = ScriptedModel(
        [[function_call("add_task", {"title": "Late task"}, call_id="c1")], ModelStep.respond(slow_answer)]
    )
    async with chat_app(db, model, connector=in_process(service), clock=clock) as served:
        alice = user_id()
        body = {"message": "add late task"}
        async with served.http.stream(
            "POST", "/api/chat", json=body, headers=served.headers(alice)
        ) as response:
            lines = response.aiter_lines()
            assert await anext(lines) == "event: conversation"
            conversation_id = json.loads((await anext(lines)).removeprefix("data: "))["conversation_id"]
        # The client hung up; the turn goes on and is stored whole.
        release.set()
        await served.chat.close()
        messages = (
            await served.http.get(
                f"/api/conversations/{conversation_id}/messages", headers=served.headers(alice)
            )
        ).json()
    assert [m["role"] for m in messages] == ["user", "tool", "assistant"]
    assert messages[-1]["content"] == "Added it." and messages[1]["output"]["title"] == "Late task"
    assert await titles(service, alice) == ["Late task"]


async def test_idle_streams_get_keep_alive_comments(
    db: Database, service: TaskService, clock: FixedClock
) -> None:
    from agents.testing import ModelStep, ScriptedModel, assistant_message

    async def thinking(call: Any) -> Any:
        await asyncio.sleep(0.35)
        return [assistant_message("Done thinking.")]

    store = ConversationStore(db.engine, clock=clock)
    chat = ChatService(
        ScriptedModel([ModelStep.respond(thinking)]), in_process(service), store, heartbeat_s=0.1
    )
    auth = Authenticator(Settings(database_url=db.url, auth_secret=TEST_SECRET))
    app = FastAPI()
    app.include_router(chat_router(chat, jwt_authenticate(auth)))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        headers = {"Authorization": f"Bearer {token(user_id())}"}
        async with http.stream("POST", "/api/chat", json={"message": "think"}, headers=headers) as response:
            raw = (await response.aread()).decode()
    assert raw.count(": ping\n\n") >= 2
    events = [block for block in raw.split("\n\n") if block and not block.startswith(":")]
    assert events[0].startswith("event: conversation\ndata: {")
    assert events[-1].startswith("event: done\ndata: {") and "Done thinking." in events[-1]


async def test_an_unreachable_store_is_503(service: TaskService, clock: FixedClock) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.helpers import free_port

    engine = create_async_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    store = ConversationStore(engine, clock=clock)
    chat = ChatService(OfflineModel(), in_process(service), store, clock=clock)
    auth = Authenticator(Settings(database_url="sqlite:///unused.db", auth_secret=TEST_SECRET))
    app = FastAPI()
    app.include_router(chat_router(chat, jwt_authenticate(auth)))
    try:
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
            headers = {"Authorization": f"Bearer {token(user_id())}"}
            for stream in ("true", "false"):
                refused = await http.post(
                    "/api/chat", params={"stream": stream}, json={"message": "hi"}, headers=headers
                )
                assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
                assert "unreachable" in refused.json()["detail"]
            listed = await http.get("/api/conversations", headers=headers)
            assert listed.status_code == 503
    finally:
        await engine.dispose()
