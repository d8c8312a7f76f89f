"""The mcp-server app plus a no-op MCP tool behind the same transport settings (bench only)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from mcp_server.http import McpEndpoint
from mcp_server.telemetry import configure_logging
from todo_chatbot.app import create_app, run_server
from todo_chatbot.settings import Settings


class Pong(BaseModel):
    ok: bool


def bench_app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)  # as `todo-chatbot mcp-server` does
    app = create_app(settings, role="mcp-server", host="127.0.0.1")
    noop_server = MCPServer("bench-noop")

    @noop_server.tool()
    async def noop() -> Pong:
        """Do nothing: the cost of the SDK, transport and authentication alone."""
        return Pong(ok=True)

    endpoint = McpEndpoint(noop_server, app.state.core.auth, loopback=True)
    app.router.routes.append(endpoint.route("/noop/mcp"))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with endpoint.running(), inner(app):
            yield

    app.router.lifespan_context = lifespan
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run_server(bench_app(), host="127.0.0.1", port=args.port, log_level="warning")  # as the CLI does
