"""The MCP tools through the official MCP client: in memory, over Streamable HTTP and over stdio."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from mcp_server.db import Database
from mcp_server.service import Caller, TaskService
from mcp_server.tools import build_mcp_server
from tests.helpers import TEST_SECRET, mcp_over_http, serving, token
from tests.mcp_server.test_service import outbox, task_count
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

NewCaller = Callable[..., Caller]
TOOLS = {
    "add_task": (False, False, False),
    "list_tasks": (True, False, True),
    "get_task": (True, False, True),
    "update_task": (False, False, True),
    "complete_task": (False, False, True),
    "reopen_task": (False, False, True),
    "delete_task": (False, True, True),
}


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)


async def full_cycle(client: Client) -> None:
    """add, list, update, complete, reopen, delete, as a model would call them."""
    added = ok(
        await client.call_tool(
            "add_task", {"title": "Buy milk", "tags": ["Errands"], "due": "tomorrow 9am", "priority": "high"}
        )
    )
    assert added["title"] == "Buy milk" and added["tags"] == ["errands"] and added["priority"] == "high"
    listed = ok(await client.call_tool("list_tasks", {"query": "milk"}))
    assert listed["total"] == 1 and listed["tasks"][0]["id"] == added["id"]
    updated = ok(
        await client.call_tool(
            "update_task", {"task_id": added["id"], "title": "Buy oat milk", "add_tags": ["shop"]}
        )
    )
    assert (
        updated["title"] == "Buy oat milk"
        and updated["tags"] == ["errands", "shop"]
        and updated["version"] == 2
    )
    assert ok(await client.call_tool("get_task", {"task_id": added["id"]}))["title"] == "Buy oat milk"
    assert ok(await client.call_tool("complete_task", {"task_id": added["id"]}))["completed"] is True
    assert ok(await client.call_tool("list_tasks", {}))["total"] == 0
    assert ok(await client.call_tool("list_tasks", {"status": "done"}))["total"] == 1
    assert ok(await client.call_tool("reopen_task", {"task_id": added["id"]}))["completed"] is False
    assert ok(await client.call_tool("delete_task", {"task_id": added["id"]})) == {
        "id": added["id"],
        "title": "Buy oat milk",
        "deleted": True,
    }
    assert "no task with id" in error_text(await client.call_tool("get_task", {"task_id": added["id"]}))


async def test_tools_list_has_annotations_and_output_schemas(
    service: TaskService, new_caller: NewCaller
) -> None:
    async with Client(build_mcp_server(service, local_caller=new_caller())) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(TOOLS) <= set(tools)
    for name, (read_only, destructive, idempotent) in TOOLS.items():
        tool = tools[name]
        assert tool.description and len(tool.description) > 20
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is read_only
        assert tool.annotations.destructive_hint is destructive
        assert tool.annotations.idempotent_hint is idempotent
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object"
        properties = tool.input_schema["properties"]
        assert not {"user", "user_id", "userId", "owner"} & set(properties), name
        assert all(prop.get("description") for key, prop in properties.items()), name
        assert tool.input_schema["additionalProperties"] is False, name
    assert tools["add_task"].input_schema["required"] == ["title"]
    assert tools["list_tasks"].input_schema["properties"]["status"]["enum"] == ["open", "done", "all"]


async def test_full_cycle_in_memory(service: TaskService, new_caller: NewCaller) -> None:
    async with Client(build_mcp_server(service, local_caller=new_caller())) as client:
        await full_cycle(client)


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("add_task", {"title": ""}, "title: must be 1-200 characters"),
        ("add_task", {"title": "x" * 10_000}, "title: must be 1-200 characters"),
        ("add_task", {"title": "ok", "priority": "critical"}, "priority"),
        ("add_task", {"title": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags: at most 20 tags"),
        ("add_task", {"title": "ok", "due": "when pigs fly"}, "due: could not understand"),
        ("add_task", {"title": "ok", "repeat": "FREQ=FORTNIGHTLY"}, "repeat:"),
        ("add_task", {}, "title"),
        ("get_task", {"task_id": "milk"}, "task_id: 'milk' is not a task id"),
        ("complete_task", {"task_id": "0190f3a0-0000-7000-8000-000000000000"}, "task_id: no task with id"),
        ("list_tasks", {"limit": 1000}, "limit"),
        ("list_tasks", {"sort": "random"}, "sort"),
        # An argument the tool does not have is refused, not dropped (the task would lose its due date).
        ("add_task", {"title": "ok", "due_date": "tomorrow"}, "due_date\n  Extra inputs are not permitted"),
        ("add_task", {"title": "ok", "user_id": "someone-else"}, "user_id\n  Extra inputs are not permitted"),
        ("list_tasks", {"tags": "work"}, "tags\n  Extra inputs are not permitted"),
    ],
)
async def test_bad_arguments_are_tool_errors_and_write_nothing(
    service: TaskService,
    db: Database,
    new_caller: NewCaller,
    tool: str,
    arguments: dict[str, Any],
    expected: str,
) -> None:
    caller = new_caller()
    async with Client(build_mcp_server(service, local_caller=caller)) as client:
        message = error_text(await client.call_tool(tool, arguments))
    assert expected in message
    assert await task_count(db, caller.user_id) == 0
    assert await outbox(db, caller.user_id) == []


@pytest.fixture
async def http_app_url(database_url: str) -> AsyncIterator[str]:
    settings = Settings(database_url=database_url, auth_secret=TEST_SECRET)
    async with serving(create_app(settings, role="mcp-server")) as url:
        yield url


async def test_full_cycle_over_streamable_http(http_app_url: str, new_caller: NewCaller) -> None:
    async with mcp_over_http(http_app_url, token(new_caller().user_id)) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} >= set(TOOLS)
        await full_cycle(client)


async def test_http_callers_are_isolated(http_app_url: str, new_caller: NewCaller) -> None:
    alice, bob = new_caller(), new_caller()
    async with mcp_over_http(
        http_app_url, token(alice.user_id), **{"X-Timezone": "Europe/Paris"}
    ) as as_alice:
        task = ok(await as_alice.call_tool("add_task", {"title": "Alice's secret", "due": "tomorrow 8am"}))
        assert task["due"].endswith("+01:00")
    async with mcp_over_http(http_app_url, token(bob.user_id)) as as_bob:
        assert ok(await as_bob.call_tool("list_tasks", {"status": "all"}))["total"] == 0
        assert ok(await as_bob.call_tool("list_tasks", {"query": "secret"}))["tasks"] == []
        for tool, extra in [
            ("get_task", {}),
            ("update_task", {"title": "Bob's now"}),
            ("complete_task", {}),
            ("reopen_task", {}),
            ("delete_task", {}),
        ]:
            message = error_text(await as_bob.call_tool(tool, {"task_id": task["id"], **extra}))
            assert "no task with id" in message, tool
    async with mcp_over_http(http_app_url, token(alice.user_id)) as as_alice:
        still = ok(await as_alice.call_tool("get_task", {"task_id": task["id"]}))
        assert still["title"] == "Alice's secret" and still["version"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "not-a-jwt",
        token("mallory", secret="another-secret-0123456789abcdef0123456789"),
        token("mallory", expires_in=-3600),
    ],
    ids=["missing", "garbage", "wrong-key", "expired"],
)
async def test_http_refuses_bad_tokens(http_app_url: str, bad: str | None) -> None:
    import httpx

    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if bad:
        headers["Authorization"] = f"Bearer {bad}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        response = await http.post(http_app_url + "/mcp", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "not authenticated" in response.json()["detail"]


async def test_stdio_server_for_claude_desktop(database_url: str, tmp_path: Path) -> None:
    user = f"stdio-{os.getpid()}-{tmp_path.name}"
    command = Path(sys.executable).with_name("todo-chatbot")
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TODO_USER": user,
        "TODO_TIMEZONE": "Asia/Tokyo",
        "AUTH_SECRET": "",
    }
    parameters = StdioServerParameters(command=str(command), args=["mcp"], env=environment, cwd=str(tmp_path))
    async with Client(parameters) as client:
        await full_cycle(client)
        added = ok(await client.call_tool("add_task", {"title": "Tokyo time", "due": "2026-12-01 09:00"}))
        assert added["due"] == "2026-12-01T09:00:00+09:00"
    assert json.dumps(added)
