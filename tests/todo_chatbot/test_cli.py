"""The `todo-chatbot` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import start_serve

COMMAND = str(Path(sys.executable).with_name("todo-chatbot"))


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize("command", ["serve", "mcp", "mcp-server", "migrate"])
def test_every_command_explains_itself(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert "DATABASE_URL" in result.stdout and "AUTH_SECRET" in result.stdout


def test_refuses_to_listen_beyond_loopback_without_auth(tmp_path: Path) -> None:
    result = run(
        "serve", "--host", "0.0.0.0", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "AUTH_SECRET": ""}
    )
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0" in result.stderr


def test_production_refuses_placeholder_secrets(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "ENVIRONMENT": "production",
        "AUTH_SECRET": "changeme",
    }
    result = run("migrate", env=env)
    assert result.returncode != 0 and "AUTH_SECRET is a placeholder" in result.stderr


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_a_database_out_of_reach_is_one_clear_line(command: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://someone:s3cret@127.0.0.1:9/todo", "AUTH_SECRET": ""}
    result = run(command, env=env)
    assert result.returncode == 1
    assert "cannot reach the database at postgresql://someone:***@127.0.0.1:9/todo:" in result.stderr
    assert "Connection refused" in result.stderr and "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_starting_lists_the_migrations_not_alembic_s_plugins(tmp_path: Path) -> None:
    result = run("migrate", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert result.returncode == 0
    assert "Running upgrade" in result.stderr and "setup plugin" not in result.stderr


def test_migrate_then_serve_embedded_on_sqlite(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/data/todo.db",
        "AUTH_SECRET": "",
        "TODO_USER": "me",
    }
    assert run("migrate", env=env).returncode == 0
    server, base = start_serve(env)
    try:
        created = httpx.post(base + "/api/tasks", json={"title": "Local user task"}, timeout=10)
        assert created.status_code == 201
        listed = httpx.get(base + "/api/tasks", timeout=10).json()
        assert [task["title"] for task in listed["tasks"]] == ["Local user task"]
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_servers_start_with_their_start_up_heap_frozen() -> None:
    """What start-up made is left out of full garbage collections (shorter pauses under load)."""
    import gc

    from todo_chatbot.app import freeze_startup_heap

    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 10_000  # modules, classes and the rest of the start-up
    finally:
        gc.unfreeze()
