"""HTTP faces of the task domain: REST `/api/tasks`, MCP Streamable HTTP at `/mcp`, health routes.

Each route only parses input, calls `TaskService`, and shapes the output.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mcp_server.auth import Authenticator, unauthorized_body
from mcp_server.db import Database
from mcp_server.errors import InvalidInput, NotAuthenticated, StoreUnavailable, TaskNotFound
from mcp_server.history import TaskHistory
from mcp_server.schemas import DeletedTask, TaskCreate, TaskOut, TaskPage, TaskPatch, TaskQuery
from mcp_server.service import Caller, TaskService
from mcp_server.tools import CALLER_SCOPE_KEY

RETRY_AFTER_SECONDS = "2"
MCP_MAX_BODY_BYTES = 256 * 1024

REQUEST_BODY_MAX = 256 * 1024  # bytes; a task is a few KiB at most

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON (or not UTF-8)."},
    401: {"description": "Missing or invalid bearer token."},
    404: {"description": "No such task for this user."},
    422: {"description": "An argument broke a rule; the body names the field and the rule."},
    503: {"description": "The database is unreachable; nothing changed; retry after `Retry-After` seconds."},
}


# Documents the bearer scheme in OpenAPI; `caller_dependency` does the checking.
BEARER = Security(HTTPBearer(auto_error=False, description="A JWT; `sub` is the user id."))


def caller_dependency(auth: Authenticator) -> Any:
    async def current_caller(request: Request) -> Caller:
        return await auth.caller(request.headers)

    return Depends(current_caller)


def task_router(service: TaskService, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=_ERRORS, dependencies=[BEARER])
    authenticated = caller_dependency(auth)

    @router.get("", response_model=TaskPage, summary="List or search tasks")
    async def list_tasks(query: Annotated[TaskQuery, Query()], caller: Caller = authenticated) -> TaskPage:
        return await service.list_tasks(caller, query)

    @router.post("", response_model=TaskOut, status_code=status.HTTP_201_CREATED, summary="Add a task")
    async def add_task(fields: TaskCreate, caller: Caller = authenticated) -> TaskOut:
        return await service.create(caller, fields)

    @router.get("/{task_id}", response_model=TaskOut, summary="Get a task")
    async def get_task(task_id: str, caller: Caller = authenticated) -> TaskOut:
        return await service.get(caller, task_id)

    @router.patch("/{task_id}", response_model=TaskOut, summary="Change some fields of a task")
    async def update_task(task_id: str, patch: TaskPatch, caller: Caller = authenticated) -> TaskOut:
        return await service.update(caller, task_id, patch)

    @router.post("/{task_id}/complete", response_model=TaskOut, summary="Mark a task done")
    async def complete_task(task_id: str, caller: Caller = authenticated) -> TaskOut:
        return await service.complete(caller, task_id)

    @router.post("/{task_id}/reopen", response_model=TaskOut, summary="Mark a task not done")
    async def reopen_task(task_id: str, caller: Caller = authenticated) -> TaskOut:
        return await service.reopen(caller, task_id)

    @router.delete("/{task_id}", response_model=DeletedTask, summary="Delete a task")
    async def delete_task(task_id: str, caller: Caller = authenticated) -> DeletedTask:
        return await service.delete(caller, task_id)

    @router.get("/{task_id}/history", response_model=TaskHistory, summary="What happened to a task")
    async def task_history(
        task_id: str, limit: Annotated[int, Query(ge=1, le=200)] = 50, caller: Caller = authenticated
    ) -> TaskHistory:
        return await service.history(caller, task_id, limit)

    return router


def health_router(db: Database) -> APIRouter:
    """`/healthz`, `/readyz` and the Prometheus metrics at `/metrics`."""
    router = APIRouter(tags=["health"])

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="The database answers", responses={503: {"description": "Not ready"}})
    async def readyz() -> JSONResponse:
        if await db.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "database unreachable"}, status_code=503)

    return router


def install_error_handlers(app: FastAPI) -> None:
    """Domain errors as HTTP answers: 422 naming the field, 404, 401, 503 with Retry-After."""

    @app.exception_handler(RequestValidationError)
    async def unreadable(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer, without echoing what was refused (a 2 MB title need not come back).
        detail = [
            {key: value for key, value in item.items() if key not in ("input", "ctx", "url")}
            for item in error.errors()[:20]
        ]
        return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)

    @app.exception_handler(InvalidInput)
    async def invalid(request: Request, error: InvalidInput) -> JSONResponse:
        detail = [{"loc": ["body", error.field], "msg": error.rule, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(TaskNotFound)
    async def not_found(request: Request, error: TaskNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(NotAuthenticated)
    async def unauthenticated(request: Request, error: NotAuthenticated) -> JSONResponse:
        return JSONResponse(
            {"detail": f"not authenticated: {error}"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, error: StoreUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": str(error)}, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS}
        )


class McpEndpoint:
    """Streamable HTTP for the MCP server (stateless JSON, so any replica can answer any request).

    Authenticates each request and hands the caller to the tools through the ASGI scope.
    """

    def __init__(self, mcp: MCPServer, auth: Authenticator, *, loopback: bool) -> None:
        if loopback:  # DNS-rebinding protection when only this machine may call us
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        else:
            security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        # Building the SDK's app creates its session manager; we serve requests through it ourselves.
        mcp.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=security,
            max_request_body_size=MCP_MAX_BODY_BYTES,
        )
        self.manager: StreamableHTTPSessionManager = mcp.session_manager
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            scope[CALLER_SCOPE_KEY] = await self.auth.caller(headers)
        except NotAuthenticated as error:
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": unauthorized_body(error)})
            return
        await self.manager.asgi_app(scope, receive, send)

    def route(self, path: str = "/mcp") -> Route:
        return Route(path, endpoint=self, methods=["GET", "POST", "DELETE"])

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield
