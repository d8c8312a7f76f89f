"""Real servers on loopback, tokens and MCP clients for tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.types import ASGIApp

from todo_chatbot.app import SERVER_OPTIONS

TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, *, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in this event loop; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **SERVER_OPTIONS)
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 15
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def token(sub: str, *, secret: str = TEST_SECRET, expires_in: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + expires_in, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


@contextlib.asynccontextmanager
async def mcp_over_http(url: str, bearer: str | None = None, **headers: str) -> AsyncIterator[Client]:
    """The official MCP client over Streamable HTTP, authenticated as `bearer`."""
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http)) as client,
    ):
        yield client


async def eventually(condition: Callable[[], bool], *, timeout: float = 5.0, interval: float = 0.02) -> None:
    """Wait until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def start_serve(env: dict[str, str], port: int | None = None, *, attempts: int = 3) -> tuple[Any, str]:
    """`todo-chatbot serve` as a subprocess; returns (process, base URL) once it answers.

    A port picked free can be taken by another test before the server binds it: the server then
    exits, and another port is tried (the answer checked is one only our app gives).
    """
    import subprocess
    import sys
    from pathlib import Path

    command = str(Path(sys.executable).with_name("todo-chatbot"))
    for attempt in range(attempts):
        chosen = port if port is not None and attempt == 0 else free_port()
        process = subprocess.Popen(
            [command, "serve", "--port", str(chosen)], env=env, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{chosen}"
        deadline = time.monotonic() + 60
        try:
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    if httpx2.get(base + "/api/tasks", timeout=1).status_code in (200, 401):
                        return process, base
                except httpx2.HTTPError:
                    pass
                time.sleep(0.1)
        except BaseException:
            process.kill()
            process.wait(timeout=10)
            raise
        process.kill()  # never leave a server running: its relay would serve other tests' outbox
        process.wait(timeout=10)
    raise RuntimeError("todo-chatbot serve did not start")


@dataclass
class SseEvent:
    event: str
    data: Any


def parse_sse(lines: Iterable[str]) -> list[SseEvent]:
    """`event:`/`data:` fields, a blank line ends an event, `:` lines are comments; data is JSON."""
    events: list[SseEvent] = []
    name, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data:
                events.append(SseEvent(name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
    assert not data, "the stream ended inside an event"
    return events
