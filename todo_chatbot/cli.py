"""`todo-chatbot`: run the service embedded, or one of its parts as it runs in Kubernetes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from todo_chatbot.settings import Settings

ENVIRONMENT_HELP = """\
environment (also read from ./.env):
  DATABASE_URL     postgresql://user:pass@host/db[?sslmode=require] or sqlite:///path
                   (default: a SQLite file in your user data directory)
  DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW   PostgreSQL connections kept open (default 20)
                   and opened beyond them in a burst, closed after use (default 10)
  AUTH_SECRET      HS256 key for bearer JWTs (with AUTH_JWKS_URL: RS/ES/EdDSA keys);
                   neither set = one local user, loopback only
  AUTH_ISSUER, AUTH_AUDIENCE   required `iss` / `aud` of tokens, when set
  TODO_USER        the local user when auth is off (default: local)
  TODO_TIMEZONE    the local user's IANA time zone (stdio MCP)
  ENVIRONMENT      development (default) or production (refuses placeholder secrets)
  LOG_LEVEL        DEBUG, INFO (default), WARNING
"""

DAPR_HELP = """\
  DAPR_HTTP_PORT   the Dapr sidecar's HTTP port (default 3500)
  DAPR_API_TOKEN   sent to the sidecar;  APP_API_TOKEN  required from the sidecar
  PUBSUB_NAME      Dapr pub/sub component (default taskpubsub);  TOPIC (default task-events)
"""


def _configure_logging(settings: Settings) -> None:
    from mcp_server.telemetry import configure_logging

    configure_logging(settings.log_level, settings.log_format)


def _refuse_open_binding(settings: Settings, host: str) -> None:
    from todo_chatbot.app import is_loopback

    if not settings.auth_enabled and not is_loopback(host):
        sys.exit(
            f"refusing to listen on {host}: authentication is off (set AUTH_SECRET or AUTH_JWKS_URL), "
            "so anyone who can reach this address would act as the local user"
        )
    if not settings.auth_enabled and settings.environment == "production":
        sys.exit("ENVIRONMENT=production needs authentication: set AUTH_SECRET or AUTH_JWKS_URL")


AGENT_HELP = """\
  OPENAI_API_KEY   any OpenAI-compatible endpoint's key; unset = the built-in offline model
  OPENAI_BASE_URL  e.g. http://localhost:11434/v1 (Ollama), a vLLM or LiteLLM proxy, Azure
  OPENAI_MODEL     model name (default gpt-4.1-mini)
  MCP_URL          the MCP server the agent's tools come from (todo-chatbot agent only)
"""


def _migrate(settings: Settings) -> None:
    """Apply the migrations; a database that cannot be reached ends the command with one clear line."""
    from sqlalchemy import make_url

    from mcp_server.db import is_unavailable
    from todo_chatbot import migrate

    try:
        migrate.upgrade(settings.database_url)
    except Exception as error:
        if not is_unavailable(error):
            raise
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        sys.exit(
            f"cannot reach the database at {where}: {reason}\n"
            "Start it, or point DATABASE_URL at one (see `todo-chatbot --help`)."
        )


def _serve(settings: Settings, host: str, port: int, role: str, *, open_browser: bool = False) -> None:
    import threading
    import webbrowser

    from todo_chatbot.app import create_app, run_server

    _refuse_open_binding(settings, host)
    if role == "embedded":
        _migrate(settings)
    app = create_app(settings, role=role, host=host)  # type: ignore[arg-type]  # one of our roles
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    logging.getLogger(__name__).info("serving %s at %s", role, url)
    if open_browser:  # after uvicorn has had a moment to bind
        threading.Timer(1.5, webbrowser.open, [url]).start()
    run_server(app, host=host, port=port, log_level=settings.log_level.lower(), proxy_headers=True)


def _serve_handler(settings: Settings, name: str, host: str, port: int) -> None:
    from event_handlers.app import create_handler_app
    from todo_chatbot.app import run_server

    if name == "push":
        _refuse_open_binding(settings, host)
    app = create_handler_app(name, settings)  # type: ignore[arg-type]  # argparse checked the choice
    logging.getLogger(__name__).info("serving the %s handler at http://%s:%s", name, host, port)
    run_server(app, host=host, port=port, log_level=settings.log_level.lower())


def _stdio(settings: Settings) -> None:
    import anyio

    from mcp_server.service import Caller, TaskService
    from mcp_server.tools import build_mcp_server

    _migrate(settings)
    service = TaskService(settings.open_database(), source="/todo-chatbot/mcp-stdio")
    mcp = build_mcp_server(service, local_caller=Caller(settings.todo_user, settings.todo_timezone))
    anyio.run(mcp.run_stdio_async)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="todo-chatbot",
        description="Manage tasks by talking to an AI agent. Start with `todo-chatbot serve`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ENVIRONMENT_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str, extra_env: str = "") -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=ENVIRONMENT_HELP + extra_env,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    serve = command(
        "serve",
        "run everything in one process (migrates first)",
        "Run the embedded all-in-one service: the web UI at /, the chat at /api/chat, MCP at /mcp, "
        "REST at /api/tasks, live updates at /ws/tasks, with SQLite by default. Applies migrations on start.",
        AGENT_HELP,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--open", action="store_true", help="open the web UI in a browser once serving")

    command(
        "mcp",
        "MCP over stdio for Claude Desktop and other local clients",
        "Serve the task tools over stdio as the local user (TODO_USER). Logs go to stderr.",
    )

    mcp_server = command(
        "mcp-server",
        "the MCP + REST service alone, as in Kubernetes",
        "Serve MCP (/mcp) and REST (/api/tasks) beside a Dapr sidecar. Run `todo-chatbot migrate` first.",
        DAPR_HELP,
    )
    mcp_server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    mcp_server.add_argument("--port", type=int, default=8000, help="port (default 8000)")

    agent = command(
        "agent",
        "the chat API and web UI alone, as in Kubernetes",
        "Serve the chat (/api/chat, /api/conversations) and the web UI; its tools come from the MCP "
        "server at MCP_URL, called with the user's own token. Run `todo-chatbot migrate` first.",
        AGENT_HELP,
    )
    agent.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    agent.add_argument("--port", type=int, default=8000, help="port (default 8000)")

    handler = command(
        "handler",
        "one event handler alone, as in Kubernetes",
        "Serve one handler of task events beside a Dapr sidecar: audit (the history), reminders (Dapr "
        "Jobs API), recurring (next occurrences) or push (the /ws/tasks WebSocket).",
        DAPR_HELP + "  SUBSCRIPTIONS    programmatic (default: /dapr/subscribe) or declarative\n",
    )
    handler.add_argument("name", choices=["audit", "reminders", "recurring", "push"], help="which handler")
    handler.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    handler.add_argument("--port", type=int, default=8000, help="port (default 8000)")

    command("migrate", "apply database migrations", "Create or upgrade the database schema at DATABASE_URL.")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = Settings()
    _configure_logging(settings)
    match args.command:
        case "serve":
            _serve(settings, args.host, args.port, "embedded", open_browser=args.open)
        case "mcp-server" | "agent":
            _serve(settings, args.host, args.port, args.command)
        case "handler":
            _serve_handler(settings, args.name, args.host, args.port)
        case "mcp":
            _stdio(settings)
        case "migrate":
            _migrate(settings)
            print(f"migrated {settings.database_url.split('@')[-1]}")


if __name__ == "__main__":
    main()
