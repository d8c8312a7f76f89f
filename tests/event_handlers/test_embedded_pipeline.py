"""End to end in the embedded mode: MCP over HTTP -> outbox -> relay -> in-process bus -> handlers
-> WebSocket, with real reminders on the durable in-process scheduler."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from mcp_server.db import Database
from mcp_server.models import AuditEntry, OutboxEvent
from tests.helpers import TEST_SECRET, mcp_over_http, serving, token
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings


@pytest.fixture
async def embedded(database_url: str) -> AsyncIterator[str]:
    settings = Settings(database_url=database_url, auth_secret=TEST_SECRET)
    async with serving(create_app(settings, role="embedded")) as url:
        yield url


def ws_url(base: str, user: str, **query: Any) -> str:
    params = "&".join(f"{key}={value}" for key, value in {"token": token(user), **query}.items())
    return base.replace("http://", "ws://") + "/ws/tasks?" + params


async def next_event(
    socket: ClientConnection, *, timeout: float = 5.0, skip_heartbeats: bool = True
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(
            await asyncio.wait_for(socket.recv(), timeout=max(0.01, deadline - time.monotonic()))
        )
        if not (skip_heartbeats and message.get("type") == "heartbeat"):
            return dict(message)


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def test_reminder_reaches_the_websocket_on_time(embedded: str, new_caller: Any) -> None:
    user = new_caller().user_id
    async with connect(ws_url(embedded, user)) as socket, mcp_over_http(embedded, token(user)) as mcp:
        remind_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0) + timedelta(seconds=1)
        task = ok(await mcp.call_tool("add_task", {"title": "Stretch", "remind": remind_at.isoformat()}))

        created = await next_event(socket, timeout=2)
        assert created["type"] == "task.created" and created["subject"] == task["id"]
        assert created["seq"] == 1 and created["data"]["title"] == "Stretch"

        due = await next_event(socket, timeout=6)
        arrived = datetime.now(UTC)
        assert due["type"] == "reminder.due" and due["subject"] == task["id"] and due["seq"] == 2
        assert remind_at <= arrived < remind_at + timedelta(seconds=1), (remind_at, arrived)


async def test_daily_task_completion_makes_one_next_occurrence(
    embedded: str, new_caller: Any, database_url: str
) -> None:
    user = new_caller().user_id
    async with connect(ws_url(embedded, user)) as socket, mcp_over_http(embedded, token(user)) as mcp:
        first = ok(
            await mcp.call_tool(
                "add_task",
                {
                    "title": "Water plants",
                    "repeat": "daily",
                    "due": "2030-01-10 08:00",
                    "tags": ["home"],
                    "priority": "low",
                    "remind": "15 minutes before",
                },
            )
        )
        await next_event(socket)  # created
        ok(await mcp.call_tool("complete_task", {"task_id": first["id"]}))
        completed, made = [await next_event(socket) for _ in range(2)]
        assert (completed["type"], made["type"]) == ("task.completed", "task.created")
        # Reopened (an undo of "done"), it takes back the untouched next occurrence its completion made:
        # a series has one open occurrence at a time.
        ok(await mcp.call_tool("reopen_task", {"task_id": first["id"]}))
        reopened, withdrawn = [await next_event(socket) for _ in range(2)]
        assert (reopened["type"], withdrawn["type"]) == ("task.reopened", "task.deleted")
        assert withdrawn["subject"] == made["subject"]
        open_now = ok(await mcp.call_tool("list_tasks", {"status": "open"}))["tasks"]
        assert [task["id"] for task in open_now] == [first["id"]]
        # Completed again, it makes the next one anew: still exactly one.
        ok(await mcp.call_tool("complete_task", {"task_id": first["id"]}))
        assert [(await next_event(socket))["type"] for _ in range(2)] == ["task.completed", "task.created"]
        await asyncio.sleep(0.5)
        page = ok(await mcp.call_tool("list_tasks", {"status": "open"}))
        [second] = page["tasks"]
        full = ok(await mcp.call_tool("get_task", {"task_id": second["id"]}))
    assert (
        full["title"] == "Water plants"
        and full["occurrence"] == 2
        and full["series_id"] == first["series_id"]
    )
    assert full["due"].startswith("2030-01-11T08:00") and full["remind_before_minutes"] == 15
    assert full["tags"] == ["home"] and full["priority"] == "low"


async def test_reopening_keeps_a_next_occurrence_someone_has_changed_or_finished(
    embedded: str, new_caller: Any, database_url: str
) -> None:
    user = new_caller().user_id
    async with connect(ws_url(embedded, user)) as socket, mcp_over_http(embedded, token(user)) as mcp:

        async def next_occurrence_of(title: str) -> tuple[str, str]:
            """Add a daily task and complete it: (its id, the next occurrence's id)."""
            first = ok(
                await mcp.call_tool("add_task", {"title": title, "repeat": "daily", "due": "2030-01-10"})
            )
            await next_event(socket)  # created
            ok(await mcp.call_tool("complete_task", {"task_id": first["id"]}))
            _, made = [await next_event(socket) for _ in range(2)]  # completed, the next one created
            return first["id"], made["subject"]

        edited_first, edited = await next_occurrence_of("Stretch")
        ok(await mcp.call_tool("update_task", {"task_id": edited, "title": "Stretch longer"}))
        await next_event(socket)  # updated: the person's work now
        finished_first, finished = await next_occurrence_of("Read")
        ok(await mcp.call_tool("complete_task", {"task_id": finished}))
        await next_event(socket)  # completed
        await next_event(socket)  # and the occurrence after it created
        for first in (edited_first, finished_first):
            ok(await mcp.call_tool("reopen_task", {"task_id": first}))
            assert (await next_event(socket))["type"] == "task.reopened"
        await asyncio.sleep(0.5)  # the handler would have deleted them by now
        for kept in (edited, finished):
            ok(await mcp.call_tool("get_task", {"task_id": kept}))
        history = ok(await mcp.call_tool("task_history", {"limit": 50}))
    assert "task.deleted" not in {entry["type"] for entry in history["entries"]}


async def test_history_lists_every_event_and_reconnect_replays(
    embedded: str, new_caller: Any, database_url: str
) -> None:
    user = new_caller().user_id
    async with mcp_over_http(embedded, token(user)) as mcp:
        async with connect(ws_url(embedded, user)) as socket:
            task = ok(await mcp.call_tool("add_task", {"title": "Read"}))
            assert (await next_event(socket))["seq"] == 1
        # Offline for a while: three more changes.
        ok(await mcp.call_tool("update_task", {"task_id": task["id"], "title": "Read a book"}))
        ok(await mcp.call_tool("complete_task", {"task_id": task["id"]}))
        ok(await mcp.call_tool("delete_task", {"task_id": task["id"]}))
        async with connect(ws_url(embedded, user, after=1)) as socket:
            replayed = [await next_event(socket) for _ in range(3)]
        assert [(m["seq"], m["type"]) for m in replayed] == [
            (2, "task.updated"),
            (3, "task.completed"),
            (4, "task.deleted"),
        ]
        await asyncio.sleep(0.3)
        history = ok(await mcp.call_tool("task_history", {"task_id": task["id"]}))
        recent = ok(await mcp.call_tool("task_history", {}))
    assert [entry["type"] for entry in history["entries"]] == [
        "task.deleted",
        "task.completed",
        "task.updated",
        "task.created",
    ]
    assert history["entries"][1]["title"] == "Read a book"
    assert [entry["seq"] for entry in recent["entries"]] == [4, 3, 2, 1]
    database = Database(database_url)
    try:
        async with database.sessions() as session:
            audited = await session.scalar(select(func.count()).where(AuditEntry.user_id == user))
            pending = await session.scalar(
                select(func.count()).where(OutboxEvent.user_id == user, OutboxEvent.published_at.is_(None))
            )
    finally:
        await database.dispose()
    assert audited == 4 and pending == 0


async def test_a_live_message_equals_its_replay_from_the_audit_log(
    embedded: str, new_caller: Any, database_url: str
) -> None:
    """Live, the service hands its own events to the sockets at commit; a client that reconnects
    later gets them from the audit log, as the intake parsed them. Both must be the same message,
    for every kind of event."""
    user = new_caller().user_id
    async with connect(ws_url(embedded, user)) as socket, mcp_over_http(embedded, token(user)) as mcp:
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        task = ok(await mcp.call_tool("add_task", {"title": "Pay rent", "tags": ["home"], "remind": past}))
        live = [
            await next_event(socket) for _ in range(2)
        ]  # created; the reminder was past: it fires at once
        ok(
            await mcp.call_tool(
                "update_task", {"task_id": task["id"], "title": "Pay the rent", "priority": "high"}
            )
        )
        ok(await mcp.call_tool("complete_task", {"task_id": task["id"]}))
        ok(await mcp.call_tool("reopen_task", {"task_id": task["id"]}))
        ok(await mcp.call_tool("delete_task", {"task_id": task["id"]}))
        live += [await next_event(socket) for _ in range(4)]
    assert [message["type"] for message in live] == [
        "task.created",
        "reminder.due",
        "task.updated",
        "task.completed",
        "task.reopened",
        "task.deleted",
    ]
    database = Database(database_url)
    try:
        for _ in range(100):  # until the relay has handed all six to the audit log
            async with database.sessions() as session:
                audited = await session.scalar(select(func.count()).where(AuditEntry.user_id == user))
            if audited == 6:
                break
            await asyncio.sleep(0.05)
    finally:
        await database.dispose()
    assert audited == 6
    async with connect(ws_url(embedded, user, after=0)) as socket:
        replayed = [await next_event(socket) for _ in range(6)]
    assert replayed == live


async def test_websocket_refuses_a_bad_token(embedded: str) -> None:
    url = embedded.replace("http://", "ws://") + "/ws/tasks?token=not-a-token"
    async with connect(url) as socket:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), timeout=5)
    assert socket.close_code == 4401
