"""WebSocket push limits: heartbeats, connections per user, client message size, slow clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from event_handlers.push import Connection, PushHub
from tests.helpers import TEST_SECRET, eventually, serving, token
from todo_chatbot import migrate
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings


async def read_until_closed(client: ClientConnection, timeout: float = 5.0) -> None:
    """Read until the server closes the connection (fails after `timeout`)."""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionClosed):
            async for _ in client:
                pass


@pytest.fixture
async def app_and_url(sqlite_url: str) -> AsyncIterator[tuple[FastAPI, str]]:
    settings = Settings(
        database_url=sqlite_url,
        auth_secret=TEST_SECRET,
        ws_heartbeat_seconds=0.3,
        ws_queue_size=8,
        ws_max_connections_per_user=2,
    )
    app = create_app(settings)
    async with serving(app) as url:
        yield app, url.replace("http://", "ws://") + "/ws/tasks"


async def test_idle_sockets_get_heartbeats(app_and_url: tuple[FastAPI, str]) -> None:
    _, url = app_and_url
    async with connect(url + f"?token={token('beat')}") as socket:
        first = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
        second = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
    assert first == second == {"type": "heartbeat", "seq": 0}


async def test_connections_per_user_are_limited(app_and_url: tuple[FastAPI, str]) -> None:
    _, url = app_and_url
    user_url = url + f"?token={token('busy')}"
    async with connect(user_url), connect(user_url), connect(user_url) as third:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(third.recv(), timeout=2)
        assert third.close_code == 4429
    async with connect(url + f"?token={token('other')}") as socket:  # others are not affected
        assert json.loads(await asyncio.wait_for(socket.recv(), timeout=2))["type"] == "heartbeat"


async def test_oversized_client_messages_close_the_socket(app_and_url: tuple[FastAPI, str]) -> None:
    _, url = app_and_url
    async with connect(url + f"?token={token('chatty')}") as socket:
        await socket.send("x" * 10_000)
        await read_until_closed(socket)
    assert socket.close_code == 1009


async def test_a_slow_client_is_cut_off_without_slowing_the_others(app_and_url: tuple[FastAPI, str]) -> None:
    app, url = app_and_url
    hub: PushHub = app.state.hub
    user_url = url + f"?token={token('sharer')}"
    # Big, incompressible messages (WebSockets deflate) fill the buffers of a client that does not read.
    padding = base64.b64encode(os.urandom(75_000)).decode()
    received: list[int] = []

    async def healthy() -> None:
        async with connect(user_url, max_size=None) as client:
            while len(received) < 150:
                message: dict[str, Any] = json.loads(await client.recv())
                if "seq" in message and message.get("type") != "heartbeat":
                    received.append(message["seq"])

    # A client that reads nothing, with a small receive buffer (no kernel autotuning to hide it).
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
    small.connect(("127.0.0.1", int(url.split(":")[2].split("/")[0])))
    async with connect(user_url, max_queue=1, max_size=None, sock=small) as stuck:
        reader = asyncio.create_task(healthy())
        await eventually(lambda: hub.connections("sharer") == 2)
        for seq in range(1, 151):
            hub.publish("sharer", {"type": "task.updated", "seq": seq, "data": {"padding": padding}})
            await asyncio.sleep(0.02)
        await asyncio.wait_for(reader, timeout=20)
        assert received == list(range(1, 151))  # the healthy client got everything, in order
        await eventually(lambda: hub.connections("sharer") == 0, timeout=5)  # the stuck one was cut off
        await read_until_closed(stuck)
    assert stuck.close_code in (4408, 1006)  # 4408 if the close frame got through the full buffers


def test_an_event_offered_twice_takes_one_place_in_a_sockets_queue() -> None:
    """The embedded service offers each event at commit and again when the relay delivers it."""
    connection = Connection("someone", limit=2)
    for seq in (1, 1, 2, 1, 2):
        connection.offer({"type": "task.updated", "seq": seq})
    assert [message["seq"] for message in connection.pending] == [1, 2] and not connection.too_slow
    connection.offer({"type": "task.updated", "seq": 3})
    assert connection.too_slow  # a third distinct event did not fit


class HungPubSub:
    """A pub/sub that takes the relay's events and never answers, as a hung broker would."""

    def __init__(self) -> None:
        self.offered: list[str] = []
        self.answer = asyncio.Event()

    async def publish(self, user_id: str, events: Sequence[dict[str, Any]]) -> set[str]:
        self.offered.extend(str(event["id"]) for event in events)
        await self.answer.wait()
        return set()


async def test_the_embedded_service_pushes_a_change_at_commit_without_waiting_for_the_relay(
    tmp_path: Path,
) -> None:
    # A database of its own: the relay offers at most 8 users' events at once, and with the session's
    # database, rows other tests left unpublished could take all 8 places in front of this one.
    url = f"sqlite:///{tmp_path / 'push.db'}"
    migrate.upgrade(url)
    pubsub = HungPubSub()
    app = create_app(Settings(database_url=url, auth_secret=TEST_SECRET), publisher=pubsub)
    async with serving(app) as base:
        ws = base.replace("http://", "ws://") + f"/ws/tasks?token={token('prompt')}"
        async with (
            connect(ws) as socket,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token('prompt')}"}) as http,
        ):
            created = (await http.post("/api/tasks", json={"title": "Right now"})).json()
            pushed = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
        assert (pushed["type"], pushed["subject"], pushed["seq"]) == ("task.created", created["id"], 1)
        # The relay is stuck publishing it.
        await eventually(lambda: pushed["id"] in pubsub.offered)
        async with connect(ws + "&after=0") as again:  # as a client that missed it gets it later
            replayed = json.loads(await asyncio.wait_for(again.recv(), timeout=2))
            assert replayed == pushed
        pubsub.answer.set()
