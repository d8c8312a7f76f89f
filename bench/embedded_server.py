"""`todo-chatbot serve`'s app, for benchmarks (migrations are applied by the bench itself)."""

from __future__ import annotations

import argparse

from mcp_server.telemetry import configure_logging
from todo_chatbot.app import create_app, run_server
from todo_chatbot.settings import Settings

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)  # as `todo-chatbot serve` does
    app = create_app(settings, role="embedded")
    run_server(app, host="127.0.0.1", port=args.port, log_level="warning")  # as the CLI does
