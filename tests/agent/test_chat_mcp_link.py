"""The agent's tool source: the MCP server in process (identity through `bind`) and over Streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from agents.exceptions import UserError
from agents.testing import ScriptedModel, assistant_message, function_call
from mcp.server.mcpserver import MCPServer as McpSdkServer
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from agent.chat import ChatService
from agent.config import ChatConfig
from agent.mcp_link import ChatUser, InProcessConnector, InProcessMCPServer, http_connector, http_mcp
from agent.memory import ConversationStore
from mcp_server.db import Database
from mcp_server.service import Caller, TaskService
from mcp_server.tools import _in_process_caller, acting_as, build_mcp_server
from tests.conftest import FixedClock
from tests.helpers import TEST_SECRET, serving, token
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

NewCaller = Callable[..., Caller]
TOOLS = {"add_task", "list_tasks", "get_task", "update_task", "complete_task", "reopen_task", "delete_task"}


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def bound(mcp: McpSdkServer[Any], caller: Caller) -> InProcessMCPServer:
    return InProcessMCPServer(mcp, bind=lambda: acting_as(caller))


async def test_in_process_server_lists_and_calls_the_task_tools(
    service: TaskService, new_caller: NewCaller
) -> None:
    caller = new_caller("Europe/Paris")
    server = bound(build_mcp_server(service), caller)
    with pytest.raises(UserError, match="not connected"):
        await server.list_tools()
    await server.connect()
    try:
        tools = await server.list_tools()
        assert {tool.name for tool in tools} >= TOOLS
        assert server.cached_tools is not None and len(server.cached_tools) == len(tools)
        tools[0].name = "mutated"  # callers get copies
        assert {tool.name for tool in await server.list_tools()} >= TOOLS
        task = structured(await server.call_tool("add_task", {"title": "Buy milk", "due": "tomorrow 9am"}))
        assert task["due"] == "2026-11-28T09:00:00+01:00"
        error = await server.call_tool("get_task", {"task_id": "milk"})
        assert error.is_error and "task_id" in error.content[0].text  # type: ignore[union-attr]
        assert (await server.list_prompts()).prompts == []
        assert server.use_structured_content is True and server.name == "todo"
    finally:
        await server.cleanup()
    await server.cleanup()  # idempotent
    assert _in_process_caller.get() is None, "the identity does not leak into the caller's context"
    listed = await service.list_tasks(caller, _query())
    assert [t.title for t in listed.tasks] == ["Buy milk"]


def _query() -> Any:
    from mcp_server.schemas import TaskQuery

    return TaskQuery(status="all")


async def test_the_in_process_connector_keeps_a_tool_server_per_person(
    service: TaskService, new_caller: NewCaller
) -> None:
    """Each person keeps one server between turns (the most recent `people_kept`); a kept server
    serves turn after turn, and turns at once, always for its own person."""
    connector = InProcessConnector(
        build_mcp_server(service), lambda user: acting_as(Caller(user.user_id, user.timezone)), people_kept=2
    )
    alice, bob, carol = (ChatUser(new_caller().user_id) for _ in range(3))
    first = connector(alice)
    assert connector(alice) is first and connector(bob) is not first
    assert connector(ChatUser(alice.user_id, None, "Europe/Paris")) is not first  # another zone, another
    assert connector(alice) is not first  # two others came since, and two are kept: it was let go
    try:
        kept = connector(bob)
        for turn in range(2):
            await kept.connect()  # type: ignore[no-untyped-call]
            added = await asyncio.gather(
                *(kept.call_tool("add_task", {"title": f"turn {turn} task {n}"}) for n in range(2))
            )
            assert all(not result.is_error for result in added)
            await kept.cleanup()  # type: ignore[no-untyped-call]
        assert connector(bob) is kept
        page = await service.list_tasks(Caller(bob.user_id), _query())
        assert page.total == 4 and (await service.list_tasks(Caller(carol.user_id), _query())).total == 0
    finally:
        await connector.aclose()


async def test_concurrent_users_on_one_server_each_act_as_themselves(
    service: TaskService, new_caller: NewCaller
) -> None:
    mcp = build_mcp_server(service)
    callers = [new_caller() for _ in range(4)]
    servers = [bound(mcp, caller) for caller in callers]
    await asyncio.gather(*(server.connect() for server in servers))
    try:

        async def work(server: InProcessMCPServer, index: int) -> None:
            for n in range(5):
                # A new task per call, created outside any `acting_as` block: bind() sets it in there.
                await asyncio.create_task(server.call_tool("add_task", {"title": f"user {index} task {n}"}))
                await asyncio.sleep(0)

        await asyncio.gather(*(work(server, index) for index, server in enumerate(servers)))
        for index, server in enumerate(servers):
            page = structured(await server.call_tool("list_tasks", {"status": "all", "sort": "title"}))
            assert [t["title"] for t in page["tasks"]] == [f"user {index} task {n}" for n in range(5)]
    finally:
        for server in servers:
            await server.cleanup()


async def test_the_identity_is_set_in_the_task_the_agent_runs_the_tool_in(new_caller: NewCaller) -> None:
    """Two agent runs at once, each tool call in whatever task the SDK picks, each for its own user."""
    probe: McpSdkServer[Any] = McpSdkServer("probe")
    seen: list[tuple[str, str]] = []

    @probe.tool()
    async def whoami() -> dict[str, str]:
        """Who the call acts for."""
        caller = _in_process_caller.get()
        task = asyncio.current_task()
        seen.append((caller.user_id if caller else "nobody", task.get_name() if task else "?"))
        await asyncio.sleep(0.01)
        return {"user": caller.user_id if caller else "nobody"}

    async def run_as(caller: Caller) -> list[str]:
        server = bound(probe, caller)
        model = ScriptedModel(
            [[function_call("whoami", {}, call_id=f"c-{caller.user_id}")], [assistant_message("ok")]]
        )
        await server.connect()
        try:
            agent = Agent(name="probe", mcp_servers=[server], model=model)
            result = await Runner.run(agent, "who am I?", run_config=RunConfig(tracing_disabled=True))
        finally:
            await server.cleanup()
        outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
        return [json.loads(output)["user"] for output in outputs]

    alice, bob = new_caller(), new_caller()
    assert list(await asyncio.gather(run_as(alice), run_as(bob))) == [[alice.user_id], [bob.user_id]]
    assert sorted(user for user, _ in seen) == sorted([alice.user_id, bob.user_id])
    main_task = asyncio.current_task()
    assert main_task is not None and all(name != main_task.get_name() for _, name in seen)


@pytest.fixture
async def mcp_url(database_url: str) -> AsyncIterator[str]:
    settings = Settings(database_url=database_url, auth_secret=TEST_SECRET)
    async with serving(create_app(settings, role="mcp-server")) as url:
        yield url + "/mcp"


async def test_http_server_forwards_the_token_and_time_zone(mcp_url: str, new_caller: NewCaller) -> None:
    alice, bob = new_caller(), new_caller()
    as_alice = http_mcp(mcp_url, token=token(alice.user_id), timezone="Asia/Tokyo")
    assert as_alice.params["headers"]["X-Timezone"] == "Asia/Tokyo"
    assert as_alice.cache_tools_list and as_alice.use_structured_content
    async with as_alice:
        assert {tool.name for tool in await as_alice.list_tools()} >= TOOLS
        task = structured(
            await as_alice.call_tool("add_task", {"title": "Alice's", "due": "2026-12-01 08:00"})
        )
        assert task["due"] == "2026-12-01T08:00:00+09:00"
    async with http_mcp(mcp_url, token=token(bob.user_id), timezone=None) as as_bob:
        assert structured(await as_bob.call_tool("list_tasks", {"status": "all"}))["total"] == 0
        denied = await as_bob.call_tool("get_task", {"task_id": task["id"]})
        assert denied.is_error


async def test_http_server_refuses_a_bad_token(mcp_url: str) -> None:
    server = http_mcp(mcp_url, token="not-a-jwt", timezone=None)
    with pytest.raises(ExceptionGroup) as refused:  # the 401, as the MCP client reports it
        await server.connect()  # type: ignore[no-untyped-call]
    assert refused.group_contains(MCPError)
    await server.cleanup()  # type: ignore[no-untyped-call]


async def test_chat_turn_through_the_http_connector(
    mcp_url: str, db: Database, new_caller: NewCaller
) -> None:
    """Kubernetes shape: the chat service reaches the MCP server over HTTP with the person's token."""
    caller = new_caller()
    model = ScriptedModel(
        [
            [function_call("add_task", {"title": "Renew passport", "due": "tomorrow 9am"}, call_id="c1")],
            [assistant_message("Added.")],
        ]
    )
    clock = FixedClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    chat = ChatService(
        model, http_connector(mcp_url), ConversationStore(db.engine), clock=clock, config=ChatConfig()
    )
    user = ChatUser(caller.user_id, token(caller.user_id), "Europe/Paris")
    result = await chat.turn(user, "add renew passport tomorrow 9am")
    assert result.error is None and result.reply == "Added."
    (call,) = result.tool_calls
    assert call.output["title"] == "Renew passport"
    assert call.output["due"].startswith("2026-11-") and call.output["due"].endswith("+01:00")

    stranger = ChatUser(f"user-{uuid.uuid4().hex[:6]}", "garbage", "UTC")
    failed = await ChatService(
        ScriptedModel([]), http_connector(mcp_url), ConversationStore(db.engine), config=ChatConfig()
    ).turn(stranger, "list my tasks")
    assert failed.error is not None and failed.error.kind == "tools_unavailable"
    assert failed.reply == "Your task list could not be reached right now. Please try again in a moment."
