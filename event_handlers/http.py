"""The Dapr-facing routes (subscriptions, event deliveries, job triggers) and the WebSocket route.

Routes only translate: bytes in, `dispatch`/`trigger` called, the contract's answer out.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from event_handlers import reminders
from event_handlers.deps import HandlerDeps
from event_handlers.handlers import dispatch
from event_handlers.intake import MAX_EVENT_BYTES, Outcome
from event_handlers.push import CLOSE_UNAUTHORIZED, SUBPROTOCOL, History, PushHub
from event_handlers.subscriptions import JOB_ROUTE, SUBSCRIPTIONS, HandlerName, dapr_subscription
from mcp_server.auth import Authenticator
from mcp_server.errors import NotAuthenticated
from todo_chatbot.settings import Settings

log = logging.getLogger(__name__)


def app_token_check(expected: SecretStr | None) -> Any:
    """401 unless the sidecar sends our APP_API_TOKEN as `dapr-api-token` (when one is set)."""

    async def check(request: Request) -> None:
        if expected is None:
            return
        sent = request.headers.get("dapr-api-token", "").encode()
        if not hmac.compare_digest(sent, expected.get_secret_value().encode()):
            raise HTTPException(401, "missing or wrong dapr-api-token")

    return Depends(check)


def dapr_router(name: HandlerName, deps: HandlerDeps, settings: Settings) -> APIRouter:
    """`/dapr/subscribe`, this handler's event routes and, for reminders, `/job/{name}`."""
    router = APIRouter(tags=["dapr"], dependencies=[app_token_check(settings.app_api_token)])
    subscription = SUBSCRIPTIONS[name]

    @router.get("/dapr/subscribe", summary="Programmatic subscriptions (empty when the chart declares them)")
    async def subscribe() -> list[dict[str, Any]]:
        if settings.subscriptions == "declarative":
            return []
        return [
            dapr_subscription(
                subscription,
                pubsub_name=settings.pubsub_name,
                topic=settings.topic,
                dead_letter_topic=settings.dead_letter_topic,
            )
        ]

    async def deliver(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_EVENT_BYTES:
            return JSONResponse({"status": Outcome.DROP.value, "reason": "event too large"})
        outcome, reason = await dispatch(name, body, deps)
        return JSONResponse({"status": outcome.value, "reason": reason})

    router.add_api_route(subscription.path, deliver, methods=["POST"], summary=f"{name}: its event types")
    router.add_api_route(
        subscription.default_path, deliver, methods=["POST"], summary=f"{name}: other events"
    )

    if name == "reminders":

        @router.post(JOB_ROUTE, summary="A reminder job is due (Dapr Jobs API trigger)")
        async def job(name: str, request: Request) -> Response:
            body = await request.body()
            try:
                data = json.loads(body) if body else None
            except ValueError:
                data = None
            if not await reminders.trigger(name, data, deps):  # the sidecar retries per its policy
                return JSONResponse({"detail": "could not fire the reminder now"}, status_code=500)
            return Response(status_code=200)

    return router


def push_router(hub: PushHub, auth: Authenticator, history: History) -> APIRouter:
    router = APIRouter(tags=["push"])

    @router.websocket("/ws/tasks")
    async def tasks_socket(
        websocket: WebSocket,
        after: int | None = Query(None, ge=0, description="Last seq seen: replay what came after it."),
        token: str | None = Query(None, max_length=8192),
    ) -> None:
        offered = list(websocket.scope.get("subprotocols") or [])
        subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
        if subprotocol and offered.index(SUBPROTOCOL) + 1 < len(offered):
            token = token or offered[offered.index(SUBPROTOCOL) + 1]
        try:
            caller = await auth.caller(websocket.headers, token=token)
        except NotAuthenticated as error:
            await websocket.accept(subprotocol=subprotocol)
            await websocket.close(CLOSE_UNAUTHORIZED, f"not authenticated: {error}"[:120])
            return
        await hub.serve(websocket, caller.user_id, after=after, history=history, subprotocol=subprotocol)

    return router
