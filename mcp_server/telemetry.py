"""What an operator sees: W3C trace context carried from a request through the outbox to the
handlers, structured JSON logs naming the trace and the CloudEvent, and Prometheus metrics.

The trace context of the work in hand lives in a ContextVar: the HTTP middleware sets it from the
request's `traceparent` (or starts a trace), `TaskService` writes it into each event, and the
handlers set it again from the event they receive.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

trace_context: ContextVar[str | None] = ContextVar("todo_traceparent", default=None)
event_context: ContextVar[str | None] = ContextVar("todo_event_id", default=None)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")

# ---- metrics of the task domain (handlers and the agent define their own) -----------------------

HTTP_REQUESTS = Counter("todo_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_SECONDS = Histogram("todo_http_request_seconds", "HTTP request duration", ["method", "route"])
TOOL_CALLS = Counter("todo_mcp_tool_calls_total", "MCP tool calls", ["tool", "outcome"])
TOOL_SECONDS = Histogram("todo_mcp_tool_seconds", "MCP tool call duration", ["tool"])
OUTBOX_BACKLOG = Gauge("todo_outbox_backlog", "Outbox events not yet published (seen by the leading relay)")
OUTBOX_OLDEST_AGE = Gauge("todo_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event")
OUTBOX_PUBLISHED = Counter("todo_outbox_published_total", "Outbox events published")
PUBLISH_FAILURES = Counter("todo_outbox_publish_failures_total", "Failed publish attempts")


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def valid_traceparent(value: str | None) -> str | None:
    """`value` if it is a usable W3C traceparent (version 00, non-zero ids), else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(0)


def trace_id(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None


class TraceMiddleware:
    """Continue (or start) the request's trace, and count and time the request by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = valid_traceparent(headers.get(b"traceparent", b"").decode("latin-1"))
        token = trace_context.set(incoming or new_traceparent())
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            trace_context.reset(token)
            if scope["type"] == "http":
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
                HTTP_SECONDS.labels(scope["method"], route).observe(time.perf_counter() - started)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the trace id and CloudEvent id of the work in hand."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (current := trace_id(trace_context.get())) is not None:
            entry["trace_id"] = current
        if (event_id := event_context.get()) is not None:
            entry["event_id"] = event_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, style: str) -> None:
    """Text for people at a terminal, JSON (`LOG_FORMAT=json`) for log collectors."""
    handler = logging.StreamHandler()  # stderr: stdout belongs to MCP over stdio
    if style == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO: one line per published event and per job call, which the
    # metrics count already. Its warnings and errors still show.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    # Alembic lists each of its autogenerate plugins at INFO before every migration run.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))
