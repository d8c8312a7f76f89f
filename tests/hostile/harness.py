"""What the hostile-input tests share: the embedded app served for real, users with tokens, readers.

Everything runs on loopback: uvicorn serves `create_app(...)` (auth on, the offline model), clients
are httpx, the official MCP client and `websockets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from mcp.types import CallToolResult
from sqlalchemy import select
from sqlmodel import col

from mcp_server.db import Database
from mcp_server.models import OutboxEvent
from tests.helpers import TEST_SECRET, serving, token
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def app_settings(database_url: str, **overrides: Any) -> Settings:
    """Auth on (HS256 with TEST_SECRET), no OpenAI key: the offline model answers the chat."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "auth_secret": TEST_SECRET,
        "openai_api_key": None,
        "openai_base_url": None,
    }
    return Settings(**(values | overrides))


def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgres")


@dataclass(frozen=True)
class User:
    id: str = field(default_factory=lambda: f"hostile-{uuid.uuid4().hex[:12]}")

    @property
    def token(self) -> str:
        return token(self.id)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


@dataclass
class Served:
    """An app served on loopback, with an httpx client on its base URL."""

    app: FastAPI
    url: str
    http: httpx.AsyncClient

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/tasks"

    async def add(self, user: User, **fields: Any) -> dict[str, Any]:
        response = await self.http.post("/api/tasks", json=fields, headers=user.headers())
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def tasks(self, user: User, **query: Any) -> list[dict[str, Any]]:
        """Every task of `user` (open and done), in a stable order."""
        params = {"status": "all", "sort": "created", "limit": 100, **query}
        response = await self.http.get("/api/tasks", params=params, headers=user.headers())
        assert response.status_code == 200, response.text
        return list(response.json()["tasks"])

    async def chat(self, user: User, message: str, conversation_id: str | None = None) -> dict[str, Any]:
        """One chat turn answered as JSON; asserts 200 and no failed turn."""
        response = await self.http.post(
            "/api/chat",
            params={"stream": "false"},
            json={"message": message, "conversation_id": conversation_id},
            headers=user.headers(),
        )
        assert response.status_code == 200, response.text
        reply = dict(response.json())
        assert reply["error"] is None, reply
        return reply


@contextlib.asynccontextmanager
async def embedded(database_url: str, **overrides: Any) -> AsyncIterator[Served]:
    """The embedded app (`todo-chatbot serve`) with auth on, served for real."""
    app = create_app(app_settings(database_url, **overrides))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield Served(app, url, http)


class ThreadedServer:
    """An app served on loopback from its own thread and event loop, for synchronous clients
    (schemathesis calls `requests`, which would block a server running in the test's own loop)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with serving(self.app) as url:
                self.url = url
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by __enter__ / __exit__
            self._error = error
            self._ready.set()

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError("the app did not start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the app did not stop"


@contextlib.contextmanager
def threaded(database_url: str, **overrides: Any) -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(app_settings(database_url, **overrides))) as server:
        yield server


# ------------------------------------------------------------------------------------- readers


def tool_text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def tool_ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, tool_text(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


def without(text: str, *ids: str) -> str:
    """`text` with the given ids replaced by a placeholder (to compare answers modulo the id)."""
    for value in ids:
        text = text.replace(value, "<id>")
    return text


async def outbox_events(
    database_url: str, *user_ids: str, event_type: str | None = None
) -> list[OutboxEvent]:
    """The outbox rows (kept after publishing) of these users, oldest first."""
    database = Database(database_url)
    try:
        async with database.transaction() as session:
            statement = select(OutboxEvent).where(col(OutboxEvent.user_id).in_(user_ids))
            if event_type is not None:
                statement = statement.where(col(OutboxEvent.event_type) == event_type)
            return list((await session.scalars(statement.order_by(col(OutboxEvent.id)))).all())
    finally:
        await database.dispose()
