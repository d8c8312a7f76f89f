"""The agent's only tool source: the task MCP server, over Streamable HTTP or in the same process.

Either way the tools act for the person chatting, never for a user id the model could choose:
over HTTP the person's bearer token (and time zone) travel as headers; in process, `bind()` sets
the caller's identity around the connection and around every call, in the task that runs the tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from agents.exceptions import UserError
from agents.mcp import MCPServer, MCPServerStreamableHttp
from mcp import Client
from mcp.server.mcpserver import MCPServer as McpSdkServer
from mcp.types import CallToolResult, GetPromptResult, ListPromptsResult, RequestParamsMeta
from mcp.types import Tool as MCPTool

if TYPE_CHECKING:
    from agents.agent import AgentBase
    from agents.run_context import RunContextWrapper

log = logging.getLogger(__name__)

TOOLS_SERVER_NAME = "todo"
TIMEZONE_HEADER = "X-Timezone"
CONNECT_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 30.0
MAX_LIST_PAGES = 20
PEOPLE_KEPT = 128  # in-process tool servers kept for the people who chatted last (~60 KiB each)


@dataclass(frozen=True)
class ChatUser:
    """The person chatting: their user id, the bearer token they came with (if any), their time zone."""

    user_id: str
    token: str | None = field(default=None, repr=False)
    timezone: str = "UTC"


McpConnector = Callable[[ChatUser], MCPServer]
"""Opens (unconnected) the tool server for one person's turn; the chat service connects and cleans up."""


def http_mcp(
    url: str,
    *,
    token: str | None,
    timezone: str | None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    call_timeout_s: float = CALL_TIMEOUT_S,
    max_retry_attempts: int = 0,
) -> MCPServerStreamableHttp:
    """The MCP server at `url` (Kubernetes: `MCP_URL`), acting for the holder of `token`.

    No retries by default: a write that timed out may still have happened, and `add_task` is not
    idempotent. A failed connect fails the turn with a clear message instead.
    """
    headers: dict[str, str] = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if timezone:
        headers[TIMEZONE_HEADER] = timezone
    return MCPServerStreamableHttp(
        {"url": url, "headers": headers, "timeout": connect_timeout_s, "sse_read_timeout": call_timeout_s},
        cache_tools_list=True,
        name=TOOLS_SERVER_NAME,
        client_session_timeout_seconds=call_timeout_s,
        use_structured_content=True,
        max_retry_attempts=max_retry_attempts,
        retry_backoff_seconds_base=0.2,
        retry_backoff_seconds_max=2.0,
        max_list_pages=MAX_LIST_PAGES,
    )


def http_connector(url: str, **options: Any) -> McpConnector:
    """A connector that reaches the MCP server at `url` with each person's own token and time zone."""

    def connect(user: ChatUser) -> MCPServer:
        return http_mcp(url, token=user.token, timezone=user.timezone, **options)

    return connect


class SharedClient:
    """One in-memory MCP client for the whole process, opened on first use and closed at shutdown.

    Turns reuse it, so none pays for the handshake, the tool list, or the compiled output-schema
    validators the client keeps per connection. Its task starts with an empty context (nobody's
    identity): a tool only ever runs in the task that calls it, inside that caller's `bind()`.
    """

    def __init__(self, server: McpSdkServer[Any], *, call_timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._server = server
        self._call_timeout_s = call_timeout_s
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self.tools: list[MCPTool] | None = None

    async def get(self) -> Client:
        async with self._lock:
            if self._client is None or self._owner is None or self._owner.done():
                self._client = await self._open()
            return self._client

    async def _open(self) -> Client:
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._closing = closing = asyncio.Event()

        async def own() -> None:
            try:
                async with Client(self._server, read_timeout_seconds=self._call_timeout_s) as client:
                    ready.set_result(client)
                    await closing.wait()
            except BaseException as error:
                if not ready.done():
                    ready.set_exception(error)
                    return
                raise

        self._owner = asyncio.create_task(own(), name="mcp-in-process-shared", context=contextvars.Context())
        return await asyncio.shield(ready)

    async def aclose(self) -> None:
        owner, self._owner, self._client = self._owner, None, None
        if owner is None:
            return
        self._closing.set()
        await owner


class InProcessMCPServer(MCPServer):
    """An `mcp` SDK server in this process, through the official in-memory client (`mcp.Client(server)`).

    `bind` establishes who the tools act for (e.g. `lambda: acting_as(Caller(user, tz))`). It is
    entered around each request, in the task that makes it: the in-memory client runs the tool in the
    calling task, so the identity is in place wherever the Agents SDK decides to run the call. The
    client itself runs with nobody's identity (see `SharedClient`); pass `shared` to reuse one client
    across connections, otherwise this connection opens and closes its own.
    """

    def __init__(
        self,
        server: McpSdkServer[Any],
        *,
        bind: Callable[[], contextlib.AbstractContextManager[None]],
        name: str = TOOLS_SERVER_NAME,
        cache_tools_list: bool = True,
        call_timeout_s: float = CALL_TIMEOUT_S,
        shared: SharedClient | None = None,
    ) -> None:
        super().__init__(use_structured_content=True)
        self._owns_client = shared is None
        self._shared = shared or SharedClient(server, call_timeout_s=call_timeout_s)
        self._bind = bind
        self._name = name
        self._cache_tools_list = cache_tools_list
        self._client: Client | None = None
        self._tools: list[MCPTool] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def cached_tools(self) -> list[MCPTool] | None:
        return None if self._tools is None else [tool.model_copy() for tool in self._tools]

    async def connect(self) -> None:
        self._client = await self._shared.get()
        self._tools = self._tools or self._shared.tools

    async def cleanup(self) -> None:
        if not self._owns_client:
            return  # the shared client stays open for the next turn; its owner closes it at shutdown
        self._client = None
        try:
            await self._shared.aclose()
        except Exception:
            log.warning("closing the in-process MCP connection failed", exc_info=True)

    def _connected(self) -> Client:
        if self._client is None:
            raise UserError(f"MCP server {self._name!r} is not connected; call connect() first")
        return self._client

    async def list_tools(
        self,
        run_context: RunContextWrapper[Any] | None = None,
        agent: AgentBase[Any] | None = None,
    ) -> list[MCPTool]:
        client = self._connected()
        if self._tools is None or not self._cache_tools_list:
            tools: list[MCPTool] = []
            cursor: str | None = None
            with self._bind():
                for _ in range(MAX_LIST_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
            self._tools = self._shared.tools = tools
        # Shallow copies keep callers from renaming the cached tools; the SDK copies a schema before
        # it changes one (deep copies cost more than the tool call on every model step).
        return [tool.model_copy() for tool in self._tools]

    async def call_tool(
        self,
        tool_name: str,
        arguments: dict[str, Any] | None,
        meta: dict[str, Any] | None = None,
    ) -> CallToolResult:
        client = self._connected()
        with self._bind():
            return await client.call_tool(tool_name, arguments, meta=cast(RequestParamsMeta | None, meta))

    async def list_prompts(self) -> ListPromptsResult:
        client = self._connected()
        with self._bind():
            return await client.list_prompts()

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None) -> GetPromptResult:
        client = self._connected()
        with self._bind():
            return await client.get_prompt(name, arguments)


class InProcessConnector:
    """A connector over `server` in this process; `bind_user(user)` establishes who the tools act for.

    The composition root passes `lambda user: acting_as(Caller(user.user_id, user.timezone))`, and
    calls `aclose()` at shutdown. Each person (the whole `ChatUser`: id, token, time zone) keeps one
    tool server object between turns, the `people_kept` most recent of them, so that the chat's
    conversion of its tools into the Agents SDK's function tools (about 1 ms a turn, see `TurnAgent`)
    is made once per person instead of every turn. Their turns share the one in-memory client.
    """

    def __init__(
        self,
        server: McpSdkServer[Any],
        bind_user: Callable[[ChatUser], contextlib.AbstractContextManager[None]],
        *,
        people_kept: int = PEOPLE_KEPT,
    ) -> None:
        self.shared = SharedClient(server)
        self._server = server
        self._bind_user = bind_user
        self._people_kept = people_kept
        self._servers: OrderedDict[ChatUser, InProcessMCPServer] = OrderedDict()

    def __call__(self, user: ChatUser) -> MCPServer:
        server = self._servers.get(user)
        if server is None:
            server = InProcessMCPServer(self._server, bind=lambda: self._bind_user(user), shared=self.shared)
            self._servers[user] = server
            if len(self._servers) > self._people_kept:
                self._servers.popitem(last=False)
        else:
            self._servers.move_to_end(user)
        return server

    async def aclose(self) -> None:
        await self.shared.aclose()


def in_process_connector(
    server: McpSdkServer[Any],
    bind_user: Callable[[ChatUser], contextlib.AbstractContextManager[None]],
) -> InProcessConnector:
    """See `InProcessConnector`."""
    return InProcessConnector(server, bind_user)
