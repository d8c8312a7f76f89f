"""The mcp-server app plus two bench-only MCP servers behind the same transport settings:

- `/noop/mcp`: a no-op tool, the cost of the SDK, transport and authentication alone;
- `/unwritten/mcp`: our tools over a `TaskService` whose `create` answers with a task it keeps in
  memory, so `add_task` there costs what the tool layer and the SDK cost for a tool of its shape
  (its arguments checked, a task returned), without the write, its event or the relay's round.
"""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from mcp_server.http import McpEndpoint
from mcp_server.models import utcnow
from mcp_server.schemas import TaskCreate, TaskOut
from mcp_server.service import Caller, TaskService
from mcp_server.telemetry import configure_logging
from mcp_server.tools import build_mcp_server
from todo_chatbot.app import create_app, run_server
from todo_chatbot.settings import Settings


class Pong(BaseModel):
    ok: bool


class UnwrittenTasks(TaskService):
    """`create` answers at once with one task of the shape `add_task` returns (bench only)."""

    async def create(self, caller: Caller, fields: TaskCreate) -> TaskOut:
        now = utcnow()
        return TaskOut(
            id=uuid.uuid4(),
            title=fields.title,
            description=fields.description,
            completed=False,
            completed_at=None,
            priority=fields.priority or "none",
            tags=fields.tags or [],
            due=now + timedelta(days=1),
            remind_at=None,
            remind_before_minutes=None,
            repeat=None,
            repeat_text=None,
            series_id=None,
            occurrence=None,
            created_at=now,
            updated_at=now,
            version=1,
        )


def bench_app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)  # as `todo-chatbot mcp-server` does
    app = create_app(settings, role="mcp-server", host="127.0.0.1")
    core = app.state.core
    noop_server = MCPServer("bench-noop")

    @noop_server.tool()
    async def noop() -> Pong:
        """Do nothing: the cost of the SDK, transport and authentication alone."""
        return Pong(ok=True)

    endpoints = [
        McpEndpoint(noop_server, core.auth, loopback=True),
        McpEndpoint(build_mcp_server(UnwrittenTasks(core.db)), core.auth, loopback=True),
    ]
    for endpoint, path in zip(endpoints, ("/noop/mcp", "/unwritten/mcp"), strict=True):
        app.router.routes.append(endpoint.route(path))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for endpoint in endpoints:
                await stack.enter_async_context(endpoint.running())
            await stack.enter_async_context(inner(app))
            yield

    app.router.lifespan_context = lifespan
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run_server(bench_app(), host="127.0.0.1", port=args.port, log_level="warning")  # as the CLI does
