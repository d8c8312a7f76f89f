"""Composition root: builds the HTTP apps each command serves from the packages' parts.

- `embedded` (`todo-chatbot serve`): everything in one process; the outbox relay publishes to the
  in-process bus, which runs the four handlers; reminders use the durable in-process scheduler.
- `mcp-server` (`todo-chatbot mcp-server`): MCP + REST; the relay publishes through the Dapr sidecar.
- `agent` (`todo-chatbot agent`): the chat API and the web UI; tools over HTTP at `MCP_URL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import FastAPI, Request
from mcp.server.mcpserver import MCPServer

from agent.chat import ChatService
from agent.config import ChatConfig
from agent.http import Unauthenticated, chat_router
from agent.llm import build_model
from agent.mcp_link import ChatUser, McpConnector, http_connector, in_process_connector
from agent.memory import ConversationStore
from agent.web import web_router
from event_handlers import reminders
from event_handlers.bus import InProcessBus
from event_handlers.deps import HandlerDeps
from event_handlers.http import push_router
from event_handlers.push import DatabaseHistory, hub_from, push_at_commit
from event_handlers.scheduling import EmbeddedScheduler
from mcp_server.aio import stop
from mcp_server.auth import Authenticator
from mcp_server.db import Database
from mcp_server.errors import NotAuthenticated
from mcp_server.http import REQUEST_BODY_MAX, McpEndpoint, health_router, install_error_handlers, task_router
from mcp_server.models import utcnow
from mcp_server.publishing import DaprPublisher, EventPublisher
from mcp_server.relay import OutboxRelay
from mcp_server.service import Caller, TaskService
from mcp_server.telemetry import TraceMiddleware, trace_context
from mcp_server.tools import acting_as, build_mcp_server
from todo_chatbot.settings import Settings

Role = Literal["embedded", "mcp-server", "agent"]

# How uvicorn serves our apps. wsproto for WebSockets: it answers an oversized handshake (a long
# token, say) with a 4xx at once, where websockets-sansio leaves the connection hanging. No
# permessage-deflate: our messages are a kilobyte or so, and compressing them took about a third
# of the CPU time of each send and ~80 KiB more per socket (107 instead of 27 KiB, measured over
# 300 sockets).
SERVER_OPTIONS: dict[str, Any] = {
    "ws": "wsproto",
    "ws_max_size": 64 * 1024,
    "ws_per_message_deflate": False,
    "log_config": None,
}


def freeze_startup_heap() -> None:
    """Put what start-up made (modules, the app) out of the garbage collector's sight, just before
    serving: a full collection walks every object it tracks, and the pauses grow with them. In
    `bench/events.py`-style runs, fan-out p99 over 1,000 sockets went from 300-430 ms to 205-260 ms.
    """
    gc.collect()
    gc.freeze()


def run_server(app: Any, *, host: str, port: int, log_level: str, **options: Any) -> None:
    """Serve `app` with uvicorn and the project's server options, its start-up heap frozen first
    (what `todo-chatbot serve`, `mcp-server`, `agent` and `handler` do, and the bench servers)."""
    import uvicorn

    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, log_level=log_level, **SERVER_OPTIONS, **options)


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
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # run at shutdown
    # run at shutdown once the background coroutines have stopped (what they were using)
    released: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def build_core(settings: Settings, *, source: str, clock: Callable[[], datetime] = utcnow) -> Core:
    db = settings.open_database()
    service = TaskService(db, source=source, clock=clock, traceparent=trace_context.get)
    return Core(settings, db, service, Authenticator(settings), build_mcp_server(service))


def dapr_publisher(settings: Settings) -> DaprPublisher:
    token = settings.dapr_api_token.get_secret_value() if settings.dapr_api_token else None
    return DaprPublisher(
        port=settings.dapr_http_port, pubsub=settings.pubsub_name, topic=settings.topic, api_token=token
    )


def add_relay(core: Core, publisher: EventPublisher) -> OutboxRelay:
    relay = OutboxRelay(
        core.db,
        publisher,
        retention=timedelta(hours=core.settings.outbox_retention_hours),
        max_backoff_seconds=core.settings.relay_max_backoff_seconds,
    )
    core.service.on_commit(relay.wake)
    core.background.append(relay.run)
    return relay


def chat_config(settings: Settings) -> ChatConfig:
    return ChatConfig(
        openai_api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        openai_base_url=settings.openai_base_url,
        openai_model=settings.openai_model,
        api_style=settings.openai_api_style,
        max_message_chars=settings.chat_max_message_chars,
        request_timeout_s=settings.openai_timeout_seconds,
        max_retries=settings.openai_max_retries,
        max_turns=settings.chat_max_turns,
        history_items=settings.chat_history_items,
        tracing=settings.agent_tracing,
    )


def chat_authenticator(auth: Authenticator) -> Callable[[Request], Awaitable[ChatUser]]:
    """The chat's person: whoever the request's bearer token (or the local mode) names."""

    async def authenticate(request: Request) -> ChatUser:
        try:
            caller = await auth.caller(request.headers)
        except NotAuthenticated as error:
            raise Unauthenticated(str(error)) from None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        return ChatUser(caller.user_id, bearer, caller.timezone or "UTC")

    return authenticate


def add_chat(app: FastAPI, core: Core, connector: McpConnector, clock: Callable[[], datetime]) -> ChatService:
    """The chat API and the web UI on `app`, remembering conversations in `core.db`."""
    config = chat_config(core.settings)
    store = ConversationStore(core.db.engine, clock=clock)
    chat = ChatService(build_model(config), connector, store, clock=clock, config=config)
    core.closers.append(chat.close)
    app.include_router(chat_router(chat, chat_authenticator(core.auth)))
    app.include_router(web_router())
    return chat


def create_app(
    settings: Settings,
    *,
    role: Role = "embedded",
    host: str = "127.0.0.1",
    clock: Callable[[], datetime] = utcnow,
    publisher: EventPublisher | None = None,
) -> FastAPI:
    """The HTTP app of `role`: MCP at /mcp, REST at /api/tasks, health; embedded adds /ws/tasks,
    the chat and the web UI."""
    if role == "agent":
        return create_agent_app(settings, clock=clock)
    core = build_core(settings, source=f"/todo-chatbot/{role}", clock=clock)
    mcp_endpoint = McpEndpoint(core.mcp, core.auth, loopback=is_loopback(host))
    app = FastAPI(
        max_body_size=REQUEST_BODY_MAX,
        title="Todo Chatbot",
        version="0.1.0",
        summary="Tasks you manage by talking to an agent; MCP at /mcp.",
        lifespan=_lifespan(core, mcp_endpoint),
    )
    app.state.core = core
    app.add_middleware(TraceMiddleware)
    install_error_handlers(app)
    app.include_router(health_router(core.db))
    app.include_router(task_router(core.service, core.auth))
    app.router.routes.append(mcp_endpoint.route())

    if role == "embedded":
        hub = hub_from(settings)
        scheduler = EmbeddedScheduler(core.db, clock=clock)
        deps = HandlerDeps(db=core.db, service=core.service, scheduler=scheduler, hub=hub, clock=clock)
        scheduler.trigger = lambda jobs, at: reminders.trigger_many(jobs, deps, at=at)
        app.state.relay = add_relay(core, publisher or InProcessBus(deps))
        core.service.on_committed_events(push_at_commit(hub))  # no wait for the relay's round
        app.state.scheduler, app.state.hub = scheduler, hub
        core.background.append(scheduler.run)
        app.include_router(push_router(hub, core.auth, DatabaseHistory(core.db)))
        connector = in_process_connector(
            core.mcp, lambda user: acting_as(Caller(user.user_id, user.timezone))
        )
        app.state.chat = add_chat(app, core, connector, clock)
        core.closers.append(connector.aclose)  # after the chat's turns have finished
    else:
        if publisher is None:
            publisher = dapr_publisher(settings)
            core.released.append(publisher.aclose)
        app.state.relay = add_relay(core, publisher)
    return app


def create_agent_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """The chat API and web UI alone, as in Kubernetes: tools over Streamable HTTP at `MCP_URL`."""
    db = settings.open_database()
    core = Core(settings, db, TaskService(db), Authenticator(settings), MCPServer("unused"))
    app = FastAPI(
        title="Todo Chatbot agent",
        version="0.1.0",
        max_body_size=REQUEST_BODY_MAX,
        lifespan=_lifespan(core, None),
    )
    install_error_handlers(app)
    app.state.core = core
    app.add_middleware(TraceMiddleware)
    app.include_router(health_router(db))
    app.state.chat = add_chat(app, core, http_connector(settings.mcp_url), clock)
    return app


async def _each(steps: list[Callable[[], Awaitable[None]]]) -> None:
    """Run shutdown steps in order; one that fails is logged and the others still run."""
    for step in steps:
        try:
            await step()
        except Exception:
            logging.getLogger(__name__).warning("a shutdown step failed", exc_info=True)


def _lifespan(
    core: Core, mcp_endpoint: McpEndpoint | None
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run()) for run in core.background]
        try:
            async with contextlib.AsyncExitStack() as stack:
                if mcp_endpoint is not None:
                    await stack.enter_async_context(mcp_endpoint.running())
                yield
        finally:
            await _each(core.closers)
            await stop(*tasks)
            await _each(core.released)
            await core.db.dispose()

    return lifespan
