"""WebSocket push: every open client of a user receives that user's events, numbered by `seq`.

A client that reconnects with `?after=<seq>` first gets what it missed (from the audit log and the
outbox), then the live stream; nothing is lost across a reconnect and nothing is sent twice. Each
connection has a bounded queue: a client too slow to drain it is cut off (close code 4408) rather
than slowing the others. Heartbeats keep idle connections (and proxies) alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from event_handlers.deps import HandlerDeps
from event_handlers.intake import Outcome, TaskEvent
from event_handlers.metrics import WEBSOCKET_CONNECTIONS
from mcp_server.db import Database
from mcp_server.history import missed_events
from todo_chatbot.settings import Settings

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY = 4429
CLOSE_TOO_BIG = 1009
CLIENT_MESSAGE_MAX = 4096
SUBPROTOCOL = "todo.bearer"

Replay = Callable[[str, int], Awaitable[list[dict[str, Any]]]]


@dataclass(eq=False)
class Connection:
    user_id: str
    queue: asyncio.Queue[dict[str, Any]]
    cut_off: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.cut_off.set()


class PushHub:
    """The sockets of this process, by user."""

    def __init__(
        self,
        *,
        queue_size: int = 256,
        heartbeat_seconds: float = 20.0,
        max_connections_per_user: int = 10,
    ) -> None:
        """`queue_size`: events a client may fall behind before it is cut off."""
        self.queue_size = queue_size
        self.heartbeat_seconds = heartbeat_seconds
        self.max_connections_per_user = max_connections_per_user
        self._connections: dict[str, set[Connection]] = {}
        self._last_seq: dict[str, int] = {}

    def connections(self, user_id: str | None = None) -> int:
        if user_id is not None:
            return len(self._connections.get(user_id, ()))
        return sum(len(group) for group in self._connections.values())

    def publish(self, user_id: str, message: dict[str, Any]) -> None:
        """Hand an event to the user's sockets (a repeated delivery of the same `seq` is ignored)."""
        seq = int(message["seq"])
        if seq <= self._last_seq.get(user_id, 0):
            return
        self._last_seq[user_id] = seq
        for connection in list(self._connections.get(user_id, ())):
            connection.offer(message)

    async def serve(self, websocket: WebSocket, user_id: str, *, after: int | None, replay: Replay) -> None:
        """Stream a user's events to an accepted socket until it closes."""
        group = self._connections.setdefault(user_id, set())
        if len(group) >= self.max_connections_per_user:
            await websocket.close(
                CLOSE_TOO_MANY, f"at most {self.max_connections_per_user} connections per user"
            )
            return
        connection = Connection(user_id, asyncio.Queue(self.queue_size))
        group.add(connection)  # buffer live events before replaying, so none falls in between
        WEBSOCKET_CONNECTIONS.inc()
        streaming = asyncio.create_task(self._stream(websocket, connection, after, replay))
        cut = asyncio.create_task(connection.cut_off.wait())
        try:
            done, _ = await asyncio.wait({streaming, cut}, return_when=asyncio.FIRST_COMPLETED)
            if streaming not in done:  # too slow: stop writing to it, even mid-send
                streaming.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await streaming
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        websocket.close(CLOSE_TOO_SLOW, "client too slow; reconnect with ?after=<seq>"), 1.0
                    )
        finally:
            WEBSOCKET_CONNECTIONS.dec()
            cut.cancel()
            group.discard(connection)
            if not group:
                self._connections.pop(user_id, None)

    async def _stream(
        self, websocket: WebSocket, connection: Connection, after: int | None, replay: Replay
    ) -> None:
        last = after or 0
        reader = asyncio.create_task(self._read(websocket))
        try:
            if after is not None:
                for message in await replay(connection.user_id, after):
                    await websocket.send_json(message)
                    last = max(last, int(message["seq"]))
            while True:
                getter = asyncio.create_task(connection.queue.get())
                done, _ = await asyncio.wait(
                    {getter, reader}, timeout=self.heartbeat_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                if reader in done:
                    code = reader.result()
                    if code is not None and websocket.application_state == WebSocketState.CONNECTED:
                        await websocket.close(code, "message too large")
                    return
                if getter in done:
                    message = getter.result()
                    if int(message["seq"]) > last:
                        await websocket.send_json(message)
                        last = int(message["seq"])
                else:
                    await websocket.send_json({"type": "heartbeat", "seq": last})
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            return
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    @staticmethod
    async def _read(websocket: WebSocket) -> int | None:
        """Read (and ignore) what the client sends; returns a close code for an abusive message."""
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            size = len(message.get("text") or message.get("bytes") or b"")
            if size > CLIENT_MESSAGE_MAX:
                return CLOSE_TOO_BIG


def hub_from(settings: Settings) -> PushHub:
    return PushHub(
        queue_size=settings.ws_queue_size,
        heartbeat_seconds=settings.ws_heartbeat_seconds,
        max_connections_per_user=settings.ws_max_connections_per_user,
    )


def replay_from(db: Database) -> Replay:
    """What a reconnecting client missed, read from the audit log (and the outbox)."""

    async def replay(user_id: str, after: int) -> list[dict[str, Any]]:
        async with db.transaction() as session:
            return await missed_events(session, user_id, after)

    return replay


def push_message(event: TaskEvent) -> dict[str, Any]:
    return {**event.document, "seq": event.seq}


async def handle(event: TaskEvent, deps: HandlerDeps) -> Outcome:
    assert deps.hub is not None, "the push handler needs a hub"
    deps.hub.publish(event.user_id, push_message(event))
    return Outcome.SUCCESS
