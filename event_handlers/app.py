"""One handler as its own service beside a Dapr sidecar: `todo-chatbot handler NAME`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from event_handlers.deps import HandlerDeps
from event_handlers.http import dapr_router, push_router
from event_handlers.intake import MAX_EVENT_BYTES
from event_handlers.push import DatabaseHistory, hub_from
from event_handlers.scheduling import DaprJobScheduler
from event_handlers.subscriptions import HandlerName
from mcp_server.auth import Authenticator
from mcp_server.http import health_router
from mcp_server.service import TaskService
from mcp_server.telemetry import TraceMiddleware, trace_context
from todo_chatbot.settings import Settings

# Deliveries up to this size reach the routes, which drop an oversized event to the dead-letter
# topic (an HTTP 413 would make the sidecar retry it instead).
DELIVERY_BODY_MAX = 4 * MAX_EVENT_BYTES


def create_handler_app(name: HandlerName, settings: Settings) -> FastAPI:
    """The FastAPI app of handler `name`: Dapr routes, health, and its own extras (jobs, WebSocket)."""
    db = settings.open_database()
    service = TaskService(db, source=f"/todo-chatbot/{name}", traceparent=trace_context.get)
    deps = HandlerDeps(db=db, service=service)
    scheduler = None
    if name == "reminders":
        token = settings.dapr_api_token.get_secret_value() if settings.dapr_api_token else None
        deps.scheduler = scheduler = DaprJobScheduler(port=settings.dapr_http_port, api_token=token)
    if name == "push":
        deps.hub = hub_from(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if scheduler is not None:
            await scheduler.aclose()
        await db.dispose()

    app = FastAPI(
        title=f"Todo Chatbot {name} handler",
        version="0.1.0",
        max_body_size=DELIVERY_BODY_MAX,
        lifespan=lifespan,
    )
    app.state.deps = deps
    app.add_middleware(TraceMiddleware)
    app.include_router(health_router(db))
    app.include_router(dapr_router(name, deps, settings))
    if deps.hub is not None:
        app.include_router(push_router(deps.hub, Authenticator(settings), DatabaseHistory(db)))
    return app
