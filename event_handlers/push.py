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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from event_handlers.deps import HandlerDeps
from event_handlers.intake import Outcome, TaskEvent
from event_handlers.metrics import WEBSOCKET_CONNECTIONS
from mcp_server.aio import stop
from mcp_server.db import Database
from mcp_server.history import latest_seq, missed_events
from todo_chatbot.settings import Settings

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY = 4429
CLOSE_TOO_BIG = 1009
CLIENT_MESSAGE_MAX = 4096
SUBPROTOCOL = "todo.bearer"


class History(Protocol):
    """Where a client's missed events come from (the audit log and the outbox)."""

    async def replay(self, user_id: str, after: int) -> list[dict[str, Any]]:
        """The user's events numbered above `after`, in order, each with its `seq`."""
        ...

    async def latest(self, user_id: str) -> int:
        """The user's latest event number: a new client's starting point."""
        ...


@dataclass(eq=False)
class Connection:
    """One socket: the events waiting to be sent to it and the task that sends them.

    Two tasks per socket (a sender and a reader, beside the server's own) and no task per event:
    with 1,000 sockets open, every object a socket holds lengthens the garbage collector's full
    collections, which pause every socket of the process.
    """

    user_id: str
    limit: int  # events it may fall behind before it is cut off
    pending: deque[dict[str, Any]] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # `pending` has something
    too_slow: bool = False
    sender: asyncio.Task[None] | None = None
    offered: int = 0  # the highest `seq` queued: an event offered again (it comes twice) is not

    def offer(self, message: dict[str, Any]) -> None:
        seq = message.get("seq")
        if self.too_slow or (isinstance(seq, int) and seq <= self.offered):
            return
        if isinstance(seq, int):
            self.offered = seq
        if len(self.pending) >= self.limit:
            self.too_slow = True
            if self.sender is not None:
                self.sender.cancel()  # stop writing to it, even mid-send
            return
        self.pending.append(message)
        self.ready.set()


class PushHub:
    """The sockets of this process, by user."""

    def __init__(
        self,
        *,
        queue_size: int = 1000,
        heartbeat_seconds: float = 20.0,
        max_connections_per_user: int = 10,
    ) -> None:
        """`queue_size`: events a client may fall behind before it is cut off."""
        self.queue_size = queue_size
        self.heartbeat_seconds = heartbeat_seconds
        self.max_connections_per_user = max_connections_per_user
        self._connections: dict[str, set[Connection]] = {}

    def connections(self, user_id: str | None = None) -> int:
        if user_id is not None:
            return len(self._connections.get(user_id, ()))
        return sum(len(group) for group in self._connections.values())

    def publish(self, user_id: str, message: dict[str, Any]) -> None:
        """Hand an event to the user's sockets; each socket skips what it has sent and fills gaps."""
        for connection in list(self._connections.get(user_id, ())):
            connection.offer(message)

    async def serve(
        self,
        websocket: WebSocket,
        user_id: str,
        *,
        after: int | None,
        history: History,
        subprotocol: str | None = None,
    ) -> None:
        """Accept the socket and stream the user's events until it closes.

        The connection is registered (live events queue up) and, for a new client, its starting
        point read, before the handshake completes: whatever the client does once connected comes
        after that point, and nothing falls between the history and the live stream.
        """
        group = self._connections.setdefault(user_id, set())
        if len(group) >= self.max_connections_per_user:
            await websocket.accept(subprotocol=subprotocol)
            await websocket.close(
                CLOSE_TOO_MANY, f"at most {self.max_connections_per_user} connections per user"
            )
            return
        connection = Connection(user_id, self.queue_size)
        group.add(connection)  # buffer live events before replaying, so none falls in between
        WEBSOCKET_CONNECTIONS.inc()
        try:
            start = await history.latest(user_id) if after is None else after
            await websocket.accept(subprotocol=subprotocol)
        except Exception:  # e.g. the database is down: no socket rather than one with a wrong start
            WEBSOCKET_CONNECTIONS.dec()
            group.discard(connection)
            if not group:
                self._connections.pop(user_id, None)
            raise
        sender = connection.sender = asyncio.create_task(
            self._send(websocket, connection, start, after is not None, history)
        )
        if connection.too_slow:  # fell behind already while the handshake went on
            sender.cancel()
        reader = asyncio.create_task(self._read(websocket))
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
            if connection.too_slow:
                await close(websocket, CLOSE_TOO_SLOW, "client too slow; reconnect with ?after=<seq>")
            elif (code := abuse(reader)) is not None:
                await close(websocket, code, "message too large")
        finally:
            await stop(sender, reader)
            WEBSOCKET_CONNECTIONS.dec()
            group.discard(connection)
            if not group:
                self._connections.pop(user_id, None)

    async def _send(
        self, websocket: WebSocket, connection: Connection, last: int, replaying: bool, history: History
    ) -> None:
        """Send the user's events in `seq` order, each once, and a heartbeat when there are none."""
        pending = connection.pending
        try:
            if replaying:  # a reconnecting client: what it missed first
                for message in await history.replay(connection.user_id, last):
                    await websocket.send_json(message)
                    last = max(last, int(message["seq"]))
            while True:
                if not pending:
                    connection.ready.clear()
                    try:
                        async with asyncio.timeout(self.heartbeat_seconds):
                            await connection.ready.wait()
                    except TimeoutError:
                        await websocket.send_json({"type": "heartbeat", "seq": last})
                        continue
                message = pending.popleft()
                seq = int(message["seq"])
                if seq > last + 1:  # out of order after a partial publish: fill the gap in
                    for missed in await history.replay(connection.user_id, last):
                        if last < int(missed["seq"]) < seq:
                            await websocket.send_json(missed)
                            last = int(missed["seq"])
                if seq > last:  # a repeat (redelivery) is sent only once
                    await websocket.send_json(message)
                    last = seq
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            return

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


def abuse(reader: asyncio.Task[int | None]) -> int | None:
    """The close code the reader ended with for an abusive message, if it ended so."""
    if not reader.done() or reader.cancelled() or reader.exception() is not None:
        return None
    return reader.result()


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close the socket if it is still open, giving up after a second (a stuck client)."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await websocket.close(code, reason)


def hub_from(settings: Settings) -> PushHub:
    return PushHub(
        queue_size=settings.ws_queue_size,
        heartbeat_seconds=settings.ws_heartbeat_seconds,
        max_connections_per_user=settings.ws_max_connections_per_user,
    )


class DatabaseHistory:
    """`History` read from the database the service writes to."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def replay(self, user_id: str, after: int) -> list[dict[str, Any]]:
        async with self.db.reading() as session:
            return await missed_events(session, user_id, after)

    async def latest(self, user_id: str) -> int:
        async with self.db.reading() as session:
            return await latest_seq(session, user_id)


def push_message(event: TaskEvent) -> dict[str, Any]:
    return {**event.document, "seq": event.seq}


def push_at_commit(hub: PushHub) -> Callable[[str, list[dict[str, Any]]], None]:
    """Embedded: a listener of the service's committed events that hands them to the user's sockets
    at once, instead of after the relay's round trip through the bus. The events are the service's
    own, as the relay will publish them, so they need no intake: each message is the one a client
    that reconnects gets for it from the outbox. The relay's delivery follows and is a repeat, which
    sockets skip."""

    def push(user_id: str, events: list[dict[str, Any]]) -> None:
        if not hub.connections(user_id):
            return  # nobody is listening: spare the copies
        for document in events:
            hub.publish(user_id, {**document, "seq": int(document["sequence"])})

    return push


async def handle(event: TaskEvent, deps: HandlerDeps) -> Outcome:
    assert deps.hub is not None, "the push handler needs a hub"
    deps.hub.publish(event.user_id, push_message(event))
    return Outcome.SUCCESS
