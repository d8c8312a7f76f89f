"""`todo-chatbot serve`'s app, for benchmarks (migrations are applied by the bench itself)."""

from __future__ import annotations

import argparse

import uvicorn

from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(Settings(), role="embedded"), host="127.0.0.1", port=args.port, log_level="warning"
    )
