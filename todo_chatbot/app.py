"""Composition root: builds the HTTP apps each command serves from the packages' parts.

- `embedded` (`todo-chatbot serve`): everything in one process; the outbox relay publishes to the
  in-process bus, which runs the four handlers; reminders use the durable in-process scheduler.
- `mcp-server` (`todo-chatbot mcp-server`): MCP + REST; the relay publishes through the Dapr sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer

from event_handlers import reminders
from event_handlers.bus import InProcessBus
from event_handlers.deps import HandlerDeps
from event_handlers.http import push_router
from event_handlers.push import hub_from, replay_from
from event_handlers.scheduling import EmbeddedScheduler
from mcp_server.auth import Authenticator
from mcp_server.db import Database
from mcp_server.http import McpEndpoint, health_router, install_error_handlers, task_router
from mcp_server.models import utcnow
from mcp_server.publishing import DaprPublisher, EventPublisher
from mcp_server.relay import OutboxRelay
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
    background: list[Callable[[], Any]] = field(default_factory=list)  # coroutines run for the app's life


def build_core(settings: Settings, *, source: str, clock: Callable[[], datetime] = utcnow) -> Core:
    db = Database(settings.database_url)
    service = TaskService(db, source=source, clock=clock)
    return Core(settings, db, service, Authenticator(settings), build_mcp_server(service))


def dapr_publisher(settings: Settings) -> DaprPublisher:
    token = settings.dapr_api_token.get_secret_value() if settings.dapr_api_token else None
    return DaprPublisher(
        port=settings.dapr_http_port, pubsub=settings.pubsub_name, topic=settings.topic, api_token=token
    )


def add_relay(core: Core, publisher: EventPublisher) -> OutboxRelay:
    relay = OutboxRelay(core.db, publisher, retention=timedelta(hours=core.settings.outbox_retention_hours))
    core.service.on_commit(relay.wake)
    core.background.append(relay.run)
    return relay


def create_app(
    settings: Settings,
    *,
    role: Role = "embedded",
    host: str = "127.0.0.1",
    clock: Callable[[], datetime] = utcnow,
    publisher: EventPublisher | None = None,
) -> FastAPI:
    """The HTTP app of `role`: MCP at /mcp, REST at /api/tasks, health; embedded adds /ws/tasks."""
    core = build_core(settings, source=f"/todo-chatbot/{role}", clock=clock)
    mcp_endpoint = McpEndpoint(core.mcp, core.auth, loopback=is_loopback(host))
    app = FastAPI(
        title="Todo Chatbot",
        version="0.1.0",
        summary="Tasks you manage by talking to an agent; MCP at /mcp.",
        lifespan=_lifespan(core, mcp_endpoint),
    )
    app.state.core = core
    install_error_handlers(app)
    app.include_router(health_router(core.db))
    app.include_router(task_router(core.service, core.auth))
    app.router.routes.append(mcp_endpoint.route())

    if role == "embedded":
        hub = hub_from(settings)
        scheduler = EmbeddedScheduler(core.db, clock=clock)
        deps = HandlerDeps(db=core.db, service=core.service, scheduler=scheduler, hub=hub, clock=clock)
        scheduler.trigger = lambda name, data: reminders.trigger(name, data, deps)
        app.state.relay = add_relay(core, publisher or InProcessBus(deps))
        app.state.scheduler, app.state.hub = scheduler, hub
        core.background.append(scheduler.run)
        app.include_router(push_router(hub, core.auth, replay_from(core.db)))
    else:
        app.state.relay = add_relay(core, publisher or dapr_publisher(settings))
    return app


def _lifespan(
    core: Core, mcp_endpoint: McpEndpoint
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run()) for run in core.background]
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await core.db.dispose()

    return lifespan
