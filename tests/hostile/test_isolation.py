"""Cross-user isolation on every surface of the embedded app (auth on), with two users A and B.

B attacks A's tasks and conversations through MCP over HTTP (every tool), REST (every route), the
WebSocket (live and replay), the chat (naming A's words and ids) and the conversation routes, and a
Dapr job trigger names A's task with B's user id. Nothing of A's changes, nothing of A's reaches B,
and B's answer for A's real id is the answer for a random id (same status, same body but the id), so
errors do not reveal whether A's ids exist. Each test also checks the positive case (A can), so
that it would notice a surface that answers nobody.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from event_handlers.app import create_handler_app
from mcp_server.events import REMINDER_DUE
from tests.helpers import mcp_over_http, serving
from tests.hostile.harness import (
    Served,
    User,
    app_settings,
    embedded,
    outbox_events,
    tool_ok,
    tool_text,
    without,
)

APP_TOKEN = "app-token-from-the-sidecar-0123456789"
SECRET_WORDS = "Zanzibar heist"  # only in A's tasks (B names them in attacks)
NEVER_TYPED = "launch codes 7f3a"  # in A's description only: B never types it


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[Served]:
    async with embedded(database_url) as served:
        yield served


@dataclass
class World:
    a: User
    b: User
    open_task: dict[str, Any]  # A's, with a due date, a reminder, tags, a description
    done_task: dict[str, Any]  # A's, completed
    conversation_id: str  # A's


async def a_snapshot(app: Served, world: World) -> dict[str, Any]:
    """What A sees: every task with all its fields, and A's history."""
    tasks = {}
    for task in await app.tasks(world.a):
        response = await app.http.get(f"/api/tasks/{task['id']}", headers=world.a.headers())
        assert response.status_code == 200
        tasks[task["id"]] = response.json()
    history = {}
    for task_id in tasks:
        response = await app.http.get(f"/api/tasks/{task_id}/history", headers=world.a.headers())
        assert response.status_code == 200
        history[task_id] = [entry["seq"] for entry in response.json()["entries"]]
    messages = await app.http.get(
        f"/api/conversations/{world.conversation_id}/messages", headers=world.a.headers()
    )
    assert messages.status_code == 200
    return {"tasks": tasks, "history": history, "messages": messages.json()}


@pytest.fixture
async def world(app: Served) -> World:
    a, b = User(), User()
    open_task = await app.add(
        a,
        title=f"{SECRET_WORDS} plan",
        description=f"the {SECRET_WORDS} {NEVER_TYPED}",
        tags=["secret", "zanzibar"],
        priority="urgent",
        due="2030-01-10 08:00",
        remind="30 minutes before",
    )
    done_task = await app.add(a, title=f"{SECRET_WORDS} recce")
    response = await app.http.post(f"/api/tasks/{done_task['id']}/complete", headers=a.headers())
    assert response.status_code == 200
    conversation = await app.chat(a, "show all")
    assert SECRET_WORDS in conversation["reply"]  # A's own chat sees A's tasks
    # The history is the audit log, written behind the outbox: wait until A's events are in it.
    for task, events in ((open_task, 1), (done_task, 2)):
        await settled_history(app, a, task["id"], events)
    return World(a, b, open_task, done_task, conversation["conversation_id"])


async def settled_history(app: Served, user: User, task_id: str, events: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        response = await app.http.get(f"/api/tasks/{task_id}/history", headers=user.headers())
        if response.status_code == 200 and len(response.json()["entries"]) >= events:
            return
        assert time.monotonic() < deadline, f"the audit log did not catch up: {response.text}"
        await asyncio.sleep(0.05)


def random_id() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------------------------- MCP

TASK_ID_TOOLS: dict[str, dict[str, Any]] = {
    "get_task": {},
    "update_task": {"title": "pwned by B", "priority": "none", "due": ""},
    "complete_task": {},
    "reopen_task": {},
    "delete_task": {},
    "task_history": {"limit": 200},
}


async def test_mcp_tools_never_reach_another_users_tasks(app: Served, world: World) -> None:
    before = await a_snapshot(app, world)
    async with mcp_over_http(app.url, world.b.token) as b:
        tools = {tool.name for tool in (await b.list_tools()).tools}
        assert tools == {*TASK_ID_TOOLS, "add_task", "list_tasks"}, "a new tool needs isolation tests"
        own = tool_ok(await b.call_tool("add_task", {"title": "B's own task", "tags": ["secret"]}))

        for name, extra in TASK_ID_TOOLS.items():
            for a_task in (world.open_task, world.done_task):
                stranger = random_id()
                theirs = await b.call_tool(name, {"task_id": a_task["id"], **extra})
                unknown = await b.call_tool(name, {"task_id": stranger, **extra})
                assert theirs.is_error and unknown.is_error, (name, tool_text(theirs))
                assert theirs.structured_content is None
                assert without(tool_text(theirs), a_task["id"]) == without(tool_text(unknown), stranger)
                assert SECRET_WORDS not in tool_text(theirs)

        for filters in (
            {"status": "all", "limit": 100},
            {"status": "all", "query": SECRET_WORDS},
            {"status": "done"},
            {"status": "all", "tag": "zanzibar"},
            {"status": "all", "priority": "urgent"},
            {"status": "all", "due_after": "2029-01-01", "sort": "title"},
            {"overdue": True},
        ):
            page = tool_ok(await b.call_tool("list_tasks", filters))
            assert {task["id"] for task in page["tasks"]} <= {own["id"]}, filters
            assert SECRET_WORDS not in json.dumps(page)
        activity = tool_ok(await b.call_tool("task_history", {"limit": 200}))
        assert {entry["task_id"] for entry in activity["entries"]} == {own["id"]}

    async with mcp_over_http(app.url, world.a.token) as a:  # A still sees and can act on A's own
        assert tool_ok(await a.call_tool("get_task", {"task_id": world.open_task["id"]}))["version"] == 1
    assert await a_snapshot(app, world) == before


# -------------------------------------------------------------------------------------------- REST

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/tasks/{id}", None),
    ("PATCH", "/api/tasks/{id}", {"title": "pwned by B", "add_tags": ["b"], "due": ""}),
    ("DELETE", "/api/tasks/{id}", None),
    ("POST", "/api/tasks/{id}/complete", None),
    ("POST", "/api/tasks/{id}/reopen", None),
    ("GET", "/api/tasks/{id}/history", None),
]


async def test_rest_routes_never_reach_another_users_tasks(app: Served, world: World) -> None:
    served = {
        (method.upper(), path.replace("{task_id}", "{id}"))
        for path, operations in app.app.openapi()["paths"].items()
        if path.startswith("/api/tasks/")
        for method in operations
    }
    assert served == {(method, path) for method, path, _ in ROUTES}, "a new route needs isolation tests"
    before = await a_snapshot(app, world)
    own = await app.add(world.b, title="B's own task", tags=["secret"])

    for method, path, body in ROUTES:
        for a_task in (world.open_task, world.done_task):
            stranger = random_id()
            answers = []
            for task_id in (a_task["id"], stranger):
                answers.append(
                    await app.http.request(
                        method, path.format(id=task_id), json=body, headers=world.b.headers()
                    )
                )
            theirs, unknown = answers
            assert theirs.status_code == unknown.status_code == 404, (method, path, theirs.text)
            assert without(theirs.text, a_task["id"]) == without(unknown.text, stranger)
            assert set(theirs.headers) - {"date", "content-length"} == set(unknown.headers) - {
                "date",
                "content-length",
            }

    queries: list[dict[str, Any]] = [
        {"status": "all", "limit": 100},
        {"status": "all", "query": SECRET_WORDS},
        {"status": "all", "tag": "zanzibar"},
        {"status": "done"},
        {"status": "all", "sort": "title", "priority": "urgent"},
    ]
    for query in queries:
        page = await app.http.get("/api/tasks", params=query, headers=world.b.headers())
        assert page.status_code == 200
        assert {task["id"] for task in page.json()["tasks"]} <= {own["id"]}, query
        assert SECRET_WORDS not in page.text
    assert await a_snapshot(app, world) == before


# --------------------------------------------------------------------------------------- WebSocket


async def next_event(socket: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), max(0.01, deadline - time.monotonic())))
        if message.get("type") != "heartbeat":
            return dict(message)


async def test_websocket_carries_only_the_users_own_events(app: Served, world: World) -> None:
    a_url, b_url = f"{app.ws}?token={world.a.token}", f"{app.ws}?token={world.b.token}"
    async with connect(a_url) as a_socket, connect(b_url) as b_socket:
        hub = app.app.state.hub
        deadline = time.monotonic() + 5
        while hub.connections(world.a.id) < 1 or hub.connections(world.b.id) < 1:
            assert time.monotonic() < deadline, "sockets not registered"
            await asyncio.sleep(0.02)
        changed = await app.add(world.a, title=f"{SECRET_WORDS} live")
        await app.http.patch(
            f"/api/tasks/{changed['id']}", json={"priority": "high"}, headers=world.a.headers()
        )
        await app.http.delete(f"/api/tasks/{changed['id']}", headers=world.a.headers())
        seen_by_a: list[str] = []  # (earlier events of A's may still arrive first: the relay may lag)
        while len(seen_by_a) < 3:
            event = await next_event(a_socket)
            assert event["data"]["userId"] == world.a.id
            if event["subject"] == changed["id"]:
                seen_by_a.append(event["type"])
        assert seen_by_a == ["task.created", "task.updated", "task.deleted"]

        own = await app.add(world.b, title="B's own task")
        first = await next_event(b_socket)  # anything of A's would have come before B's own event
        assert first["subject"] == own["id"] and first["data"]["userId"] == world.b.id, first
        assert first["seq"] == 1

    async with connect(f"{b_url}&after=0") as replaying:
        replayed = [await next_event(replaying)]
        with pytest.raises(TimeoutError):  # nothing else: B has one event
            await next_event(replaying, timeout=0.5)
    assert [(event["seq"], event["subject"]) for event in replayed] == [(1, own["id"])]
    assert all(SECRET_WORDS not in json.dumps(event) for event in replayed)

    async with connect(f"{a_url}&after=0") as replaying:  # A's replay has A's events (not B's)
        a_events = [await next_event(replaying) for _ in range(6)]
    assert {event["data"]["userId"] for event in a_events} == {world.a.id}


async def test_websocket_token_for_nobody_is_refused(app: Served) -> None:
    async with connect(f"{app.ws}?token=not-a-token&after=0") as socket:
        with pytest.raises(ConnectionClosed):  # closed with 4401 before any event
            await next_event(socket)
    assert socket.close_code == 4401


# -------------------------------------------------------------------------------------------- chat


async def test_chat_as_b_cannot_see_or_change_a_s_tasks(app: Served, world: World) -> None:
    before = await a_snapshot(app, world)
    own = await app.add(world.b, title="B's own task")
    messages = [
        "show all",
        "show done tasks",
        f"search {SECRET_WORDS}",
        "what's tagged zanzibar?",
        f"delete the {SECRET_WORDS} plan",
        f"mark {SECRET_WORDS} recce done",
        f"reopen the {SECRET_WORDS} recce",
        f"rename {SECRET_WORDS} plan to pwned",
        f"delete {world.open_task['id']}",
        f"complete {world.open_task['id']}",
        f"move {world.done_task['id']} to friday 3pm",
        "delete all tasks",
        "yes, delete all 2",
        "yes, delete all 3",
        "delete all completed tasks",
    ]
    conversation = None
    for message in messages:
        turn = await app.chat(world.b, message, conversation)
        conversation = turn["conversation_id"]
        assert NEVER_TYPED not in json.dumps(turn), turn
        for call in turn["tool_calls"]:
            output = call["output"]
            if isinstance(output, dict):  # what B's model is shown: B's tasks only
                shown = json.dumps(output)
                assert SECRET_WORDS not in shown and world.done_task["id"] not in shown, turn
                assert world.open_task["id"] not in shown, turn
            if call["name"] == "list_tasks":
                assert {task["id"] for task in output["tasks"]} <= {own["id"]}, turn
    assert await a_snapshot(app, world) == before
    assert [task["id"] for task in await app.tasks(world.b)] in ([own["id"]], [])


async def test_chat_answers_about_a_s_ids_as_about_random_ids(app: Served, world: World) -> None:
    for template in ("delete {id}", "show {id}", "mark {id} done", "rename {id} to pwned"):
        a_id, stranger = world.open_task["id"], random_id()
        theirs = await app.chat(world.b, template.format(id=a_id))
        unknown = await app.chat(world.b, template.format(id=stranger))
        for answer in (theirs, unknown):
            del answer["conversation_id"]
        assert without(json.dumps(theirs), a_id) == without(json.dumps(unknown), stranger), template


# ----------------------------------------------------------------------------------- conversations


async def test_conversations_are_private(app: Served, world: World) -> None:
    before = await a_snapshot(app, world)
    theirs, stranger = world.conversation_id, random_id()
    b = world.b.headers()
    for method, path, body in (
        ("GET", "/api/conversations/{id}/messages", None),
        ("DELETE", "/api/conversations/{id}", None),
        ("POST", "/api/chat?stream=false", {"message": "show all", "conversation_id": "{id}"}),
        ("POST", "/api/chat", {"message": "delete all tasks", "conversation_id": "{id}"}),
    ):
        answers = []
        for conversation_id in (theirs, stranger):
            payload = None if body is None else {**body, "conversation_id": conversation_id}
            answers.append(
                await app.http.request(method, path.format(id=conversation_id), json=payload, headers=b)
            )
        mine, unknown = answers
        assert mine.status_code == unknown.status_code == 404, (method, path, mine.text)
        assert without(mine.text, theirs) == without(unknown.text, stranger)
    listed = await app.http.get("/api/conversations", params={"limit": 100}, headers=b)
    assert listed.status_code == 200 and theirs not in listed.text
    own = await app.chat(world.b, "help")
    listed = await app.http.get("/api/conversations", params={"limit": 100}, headers=b)
    assert [item["id"] for item in listed.json()] == [own["conversation_id"]]
    mine = await app.http.get("/api/conversations", params={"limit": 100}, headers=world.a.headers())
    assert [item["id"] for item in mine.json()] == [theirs]
    assert await a_snapshot(app, world) == before  # A's conversation is intact


# ------------------------------------------------------------------------------------ job triggers


@pytest.fixture
async def reminders_handler(database_url: str) -> AsyncIterator[str]:
    """The reminders handler service as in Kubernetes, answering only its sidecar's APP_API_TOKEN."""
    settings = app_settings(database_url, app_api_token=APP_TOKEN)
    async with serving(create_handler_app("reminders", settings)) as url:
        yield url


async def test_a_job_trigger_naming_another_users_task_fires_nothing(
    app: Served, world: World, reminders_handler: str, database_url: str
) -> None:
    task = world.open_task
    remind_at = int(datetime.fromisoformat(task["remind_at"]).timestamp())
    job = f"{reminders_handler}/job/reminder-{task['id']}"
    forged = {"taskId": task["id"], "userId": world.b.id, "remindAt": remind_at, "version": task["version"]}
    async with httpx.AsyncClient(timeout=30) as http:
        for headers in ({}, {"dapr-api-token": "wrong"}):  # only the sidecar may trigger jobs
            response = await http.post(job, json={**forged, "userId": world.a.id}, headers=headers)
            assert response.status_code == 401
        response = await http.post(job, json=forged, headers={"dapr-api-token": APP_TOKEN})
        assert response.status_code == 200  # acknowledged, so the scheduler does not retry it
        stranger = random_id()
        unknown = await http.post(
            f"{reminders_handler}/job/reminder-{stranger}",
            json={**forged, "taskId": stranger},
            headers={"dapr-api-token": APP_TOKEN},
        )
        assert (unknown.status_code, unknown.content) == (response.status_code, response.content)
        assert await outbox_events(database_url, world.a.id, world.b.id, event_type=REMINDER_DUE) == []

        # The same trigger with the task's real owner fires once: the test above could have failed.
        response = await http.post(
            job, json={**forged, "userId": world.a.id}, headers={"dapr-api-token": APP_TOKEN}
        )
        assert response.status_code == 200
    fired = await outbox_events(database_url, world.a.id, world.b.id, event_type=REMINDER_DUE)
    assert [(event.user_id, event.payload["subject"]) for event in fired] == [(world.a.id, task["id"])]
