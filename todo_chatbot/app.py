"""Composition root: builds the HTTP apps each command serves from the packages' parts."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer

from mcp_server.auth import Authenticator
from mcp_server.db import Database
from mcp_server.http import McpEndpoint, health_router, install_error_handlers, task_router
from mcp_server.models import utcnow
from mcp_server.service import TaskService
from mcp_server.tools import build_mcp_server
from todo_chatbot.settings import Settings

Role = Literal["embedded", "mcp-server"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Core:
    """The task domain wired to one database: what every role starts from."""

    settings: Settings
    db: Database
    service: TaskService
    auth: Authenticator
    mcp: MCPServer


def build_core(settings: Settings, *, source: str, clock: Callable[[], datetime] = utcnow) -> Core:
    db = Database(settings.database_url)
    service = TaskService(db, source=source, clock=clock)
    return Core(settings, db, service, Authenticator(settings), build_mcp_server(service))


def create_app(
    settings: Settings,
    *,
    role: Role = "embedded",
    host: str = "127.0.0.1",
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The HTTP app of `role`: MCP at /mcp, REST at /api/tasks, /healthz and /readyz."""
    core = build_core(settings, source=f"/todo-chatbot/{role}", clock=clock)
    mcp_endpoint = McpEndpoint(core.mcp, core.auth, loopback=is_loopback(host))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp_endpoint.running():
            yield
        await core.db.dispose()

    app = FastAPI(
        title="Todo Chatbot",
        version="0.1.0",
        summary="Tasks you manage by talking to an agent; MCP at /mcp.",
        lifespan=lifespan,
    )
    app.state.core = core
    install_error_handlers(app)
    app.include_router(health_router(core.db))
    app.include_router(task_router(core.service, core.auth))
    app.router.routes.append(mcp_endpoint.route())
    return app
