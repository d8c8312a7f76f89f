"""The chat service: one turn of the "Todo assistant" agent, answered whole or streamed as events.

Every turn builds the agent afresh: instructions carrying the current time in the person's time zone,
the task MCP server (opened for that person) as the only tool source, the configured model, and the
conversation's Agents SDK session as memory (the model is given its latest whole turns).

When a turn fails (model error, unreachable tools, too many steps) the person gets a clear assistant
message instead of an HTTP error, and the conversation stays consistent for the next turn: their
message is kept, every tool call the SDK recorded keeps (or gets) an output, and the failure message
is stored as the assistant's answer. So the next turn, with any model, sees what happened.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agents import Agent, ItemHelpers, RunConfig, Runner, Tool
from agents.items import MessageOutputItem, RunItem, ToolCallItem, ToolCallOutputItem, TResponseInputItem
from agents.mcp import MCPServer
from agents.memory import Session
from agents.models.interface import Model
from agents.run_context import RunContextWrapper
from agents.stream_events import RawResponsesStreamEvent, RunItemStreamEvent, StreamEvent

from agent.config import ChatConfig
from agent.instructions import build_instructions
from agent.llm import ChatError, ToolsUnavailable, describe_error
from agent.mcp_link import ChatUser, McpConnector
from agent.memory import Conversation, ConversationStore, SessionFactory, TurnBuffer, is_user_message, utcnow

log = logging.getLogger(__name__)

AGENT_NAME = "Todo assistant"
WORKFLOW_NAME = "Todo chat"
DEFAULT_TIMEZONE = "UTC"
HEARTBEAT_S = 15.0
INTERRUPTED_OUTPUT = "Error: this call was interrupted before it finished; its result is unknown."
MESSAGE_SEPARATOR = "\n\n"


class ChatInputError(ValueError):
    """A request field broke a rule (HTTP 422 naming the field)."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class ConversationNotFound(LookupError):
    """No such conversation for this user (another user's conversation reads the same)."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation with id {conversation_id[:64]!r}")


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of a turn: its arguments, and its output (parsed JSON when it is JSON)."""

    id: str
    name: str
    arguments: dict[str, Any]
    output: Any = None


@dataclass(frozen=True)
class TurnResult:
    conversation_id: str
    reply: str
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    error: ChatError | None = None


# ------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ConversationEvent:
    """First event of every stream: which conversation this turn belongs to."""

    name: ClassVar[str] = "conversation"
    conversation_id: str

    def data(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation_id}


@dataclass(frozen=True)
class DeltaEvent:
    """More text of the reply; the deltas of a turn add up to the final reply."""

    name: ClassVar[str] = "delta"
    text: str

    def data(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True)
class ToolCallEvent:
    name: ClassVar[str] = "tool_call"
    id: str
    tool: str
    arguments: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.tool, "arguments": self.arguments}


@dataclass(frozen=True)
class ToolResultEvent:
    name: ClassVar[str] = "tool_result"
    id: str
    tool: str
    output: Any

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.tool, "output": self.output}


@dataclass(frozen=True)
class ErrorEvent:
    """The turn failed; `message` is for the person (it is also the stored reply)."""

    name: ClassVar[str] = "error"
    error: ChatError

    def data(self) -> dict[str, Any]:
        return self.error.as_dict()


@dataclass(frozen=True)
class DoneEvent:
    """Last event of every stream."""

    name: ClassVar[str] = "done"
    conversation_id: str
    reply: str

    def data(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation_id, "reply": self.reply}


@dataclass(frozen=True)
class HeartbeatEvent:
    """Nothing new for a while (keeps proxies from closing an idle stream); not part of the turn."""

    name: ClassVar[str] = "ping"

    def data(self) -> dict[str, Any]:
        return {}


ChatEvent: TypeAlias = (
    ConversationEvent | DeltaEvent | ToolCallEvent | ToolResultEvent | ErrorEvent | DoneEvent | HeartbeatEvent
)


# --------------------------------------------------------------------------------- transcript


@dataclass(frozen=True)
class TranscriptMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass
class TranscriptToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    output: Any = None
    role: Literal["tool"] = "tool"


TranscriptEntry: TypeAlias = TranscriptMessage | TranscriptToolCall


def parse_arguments(raw: object) -> dict[str, Any]:
    """A tool call's arguments as a dict (the model sends a JSON string)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {"_unparsed": raw}
        return parsed if isinstance(parsed, dict) else {"_value": parsed}
    return {}


def parse_output(raw: object) -> Any:
    """A tool output as JSON data when it is JSON, else its text."""
    if isinstance(raw, Mapping):
        if raw.get("type") in ("text", "input_text", "output_text") and isinstance(raw.get("text"), str):
            raw = raw["text"]
        else:
            return dict(raw)
    elif isinstance(raw, list):
        texts = [parse_text_part(part) for part in raw]
        raw = "\n".join(text for text in texts if text)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parse_text_part(part: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and isinstance(part.get("text"), str):
        return str(part["text"])
    text = getattr(part, "text", None)
    return text if isinstance(text, str) else ""


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(parse_text_part(part) for part in content)
    return ""


def transcript(items: Iterable[TResponseInputItem]) -> list[TranscriptEntry]:
    """Stored SDK items as people read them: user and assistant messages, and tool calls with results."""
    entries: list[TranscriptEntry] = []
    calls: dict[str, TranscriptToolCall] = {}
    for raw in items:
        item: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        kind = item.get("type")
        role = item.get("role")
        if kind in (None, "message") and role in ("user", "assistant"):
            text = _content_text(item.get("content"))
            if text:
                entries.append(TranscriptMessage(role, text))
        elif kind == "function_call":
            call_id = str(item.get("call_id") or item.get("id") or "")
            call = TranscriptToolCall(
                call_id, str(item.get("name") or ""), parse_arguments(item.get("arguments"))
            )
            calls[call_id] = call
            entries.append(call)
        elif kind == "function_call_output":
            found = calls.get(str(item.get("call_id") or ""))
            if found is not None:
                found.output = parse_output(item.get("output"))
    return entries


# ------------------------------------------------------------------------------------ service


@dataclass(frozen=True)
class _Turn:
    user: ChatUser
    message: str
    conversation_id: str
    session: TurnBuffer


class _Collector:
    """Follows a run's items and stream events: the reply text and the tool calls, as events."""

    def __init__(self, emit: Callable[[ChatEvent], None]) -> None:
        self.emit = emit
        self.parts: list[str] = []
        self.current = ""
        self.calls: dict[str, ToolCallRecord] = {}
        self.order: list[str] = []

    @property
    def reply(self) -> str:
        return "".join(self.parts)

    def text(self, delta: str) -> None:
        if not delta:
            return
        if not self.current and self.parts:
            self.parts.append(MESSAGE_SEPARATOR)
            self.emit(DeltaEvent(MESSAGE_SEPARATOR))
        self.current += delta
        self.parts.append(delta)
        self.emit(DeltaEvent(delta))

    def message(self, item: MessageOutputItem) -> None:
        if not self.current:  # not streamed as deltas (a non-streamed run): the whole text at once
            self.text(ItemHelpers.text_message_output(item))
        self.current = ""

    def item(self, item: RunItem) -> None:
        if isinstance(item, MessageOutputItem):
            self.message(item)
        elif isinstance(item, ToolCallItem):
            raw = item.raw_item
            call_id = str(_field(raw, "call_id") or _field(raw, "id") or f"call_{len(self.order)}")
            record = ToolCallRecord(
                call_id, str(_field(raw, "name") or ""), parse_arguments(_field(raw, "arguments"))
            )
            self.calls[call_id] = record
            self.order.append(call_id)
            self.emit(ToolCallEvent(record.id, record.name, record.arguments))
        elif isinstance(item, ToolCallOutputItem):
            call_id = item.call_id or ""
            call = self.calls.get(call_id)
            output = parse_output(_field(item.raw_item, "output"))
            if call is None:
                return
            self.calls[call_id] = replace(call, output=output)
            self.emit(ToolResultEvent(call_id, call.name, output))

    def stream_event(self, event: StreamEvent) -> None:
        if isinstance(event, RawResponsesStreamEvent):
            if event.data.type == "response.output_text.delta":
                self.text(str(getattr(event.data, "delta", "") or ""))
        elif isinstance(event, RunItemStreamEvent):
            self.item(event.item)

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        return [self.calls[call_id] for call_id in self.order]


def _field(raw: object, key: str) -> Any:
    if isinstance(raw, Mapping):
        return raw.get(key)
    return getattr(raw, key, None)


# Control characters (but tab, newline, carriage return) and lone surrogates: not text a person typed.
_UNUSABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class ChatService:
    """Turns of the task agent for authenticated people, with memory in `store`."""

    def __init__(
        self,
        model: Model,
        connector: McpConnector,
        store: ConversationStore,
        session_factory: SessionFactory | None = None,
        clock: Callable[[], datetime] = utcnow,
        config: ChatConfig | None = None,
        *,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.model = model
        self.connector = connector
        self.store = store
        self.sessions: SessionFactory = session_factory or store.sessions
        self.clock = clock
        self.config = config or ChatConfig()
        self.heartbeat_s = heartbeat_s
        self._running: set[asyncio.Task[Any]] = set()
        self._agent_template = TurnAgent(name=AGENT_NAME, instructions="", model=model)

    # ---- conversations -------------------------------------------------------------------

    async def conversations(self, user: ChatUser, *, limit: int = 50) -> list[Conversation]:
        return await self.store.list(user.user_id, limit=limit)

    async def messages(self, user: ChatUser, conversation_id: str) -> list[TranscriptEntry]:
        items = await self.store.items(user.user_id, conversation_id)
        if items is None:
            raise ConversationNotFound(conversation_id)
        return transcript(items)

    async def forget(self, user: ChatUser, conversation_id: str) -> None:
        if not await self.store.delete(user.user_id, conversation_id):
            raise ConversationNotFound(conversation_id)

    # ---- turns -----------------------------------------------------------------------------

    async def turn(
        self,
        user: ChatUser,
        message: str,
        conversation_id: str | None = None,
        timezone: str | None = None,
    ) -> TurnResult:
        """One whole turn (non-streamed model calls). Failures come back as `reply` plus `error`.

        Like a stream, the turn finishes in its own task even if the caller goes away.
        """
        turn = await self._prepare(user, message, conversation_id, timezone)
        task = asyncio.create_task(self._run(turn, lambda event: None, streamed=False))
        self._track(task)
        return await asyncio.shield(task)

    def stream(
        self,
        user: ChatUser,
        message: str,
        conversation_id: str | None = None,
        timezone: str | None = None,
    ) -> AsyncIterator[ChatEvent]:
        """One turn as events: `conversation`, then deltas and tool calls/results, `error`?, `done`.

        Bad input and unknown conversations raise when the first event is awaited, before anything is
        sent. The turn runs to completion in its own task even if the consumer stops listening, so
        the conversation is never left half-written.
        """
        return self._stream(user, message, conversation_id, timezone)

    async def _stream(
        self, user: ChatUser, message: str, conversation_id: str | None, timezone: str | None
    ) -> AsyncIterator[ChatEvent]:
        turn = await self._prepare(user, message, conversation_id, timezone)
        yield ConversationEvent(turn.conversation_id)
        queue: asyncio.Queue[ChatEvent] = asyncio.Queue()
        self._track(asyncio.create_task(self._run_into(turn, queue)))
        while True:
            try:
                async with asyncio.timeout(self.heartbeat_s):  # not wait_for: it can lose a cancellation
                    event = await queue.get()
            except TimeoutError:
                yield HeartbeatEvent()
                continue
            yield event
            if isinstance(event, DoneEvent):
                return

    async def _run_into(self, turn: _Turn, queue: asyncio.Queue[ChatEvent]) -> None:
        reply = ""
        try:
            result = await self._run(turn, queue.put_nowait, streamed=True)
            reply = result.reply
        except Exception:
            log.exception("chat turn crashed")
            error = ChatError("internal", "Something went wrong while answering. Please try again.")
            queue.put_nowait(ErrorEvent(error))
            reply = error.message
        finally:  # also when cancelled at shutdown: the stream always ends with `done`
            queue.put_nowait(DoneEvent(turn.conversation_id, reply))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Let running turns finish (up to `timeout_s`), then cancel the rest; for shutdown."""
        running = list(self._running)
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _prepare(
        self, user: ChatUser, message: str, conversation_id: str | None, timezone: str | None
    ) -> _Turn:
        text = message.strip() if isinstance(message, str) else ""
        limit = self.config.max_message_chars
        if not 1 <= len(text) <= limit:
            raise ChatInputError("message", f"must be 1-{limit} characters after trimming (got {len(text)})")
        if _UNUSABLE.search(text):
            raise ChatInputError("message", "must not contain control characters or lone surrogates")
        zone = (timezone or "").strip() or user.timezone or DEFAULT_TIMEZONE
        if not valid_zone(zone):
            raise ChatInputError(
                "timezone", f"unknown time zone {zone[:64]!r}; expected an IANA name such as 'Europe/Paris'"
            )
        if conversation_id:
            session = self._session(conversation_id)
            # Whose it is, and its history meanwhile: one round trip's wait instead of two. The
            # history of a conversation that is not theirs is dropped unread; a failed read is
            # tried again when the run asks for it.
            found, _ = await asyncio.gather(
                self.store.get(user.user_id, conversation_id), session.preload(), return_exceptions=True
            )
            if isinstance(found, BaseException):
                raise found
            if found is None:
                raise ConversationNotFound(conversation_id)
            conversation = found
        else:
            conversation = await self.store.create(user.user_id, text)
            session = self._session(conversation.id)
        return _Turn(replace(user, timezone=zone), text, conversation.id, session)

    def _session(self, conversation_id: str) -> TurnBuffer:
        return TurnBuffer(self.sessions(conversation_id), window=self.config.history_items)

    def _agent(self, server: MCPServer, timezone: str) -> Agent[None]:
        """The agent of one turn: a shallow copy of the one checked at start (the SDK's checks of a
        new agent cost more than the rest of making it), with the person's time and tool server."""

        def instructions(context: RunContextWrapper[None], agent: Agent[None]) -> str:
            return build_instructions(self.clock(), timezone)

        agent = copy.copy(self._agent_template)
        agent.instructions = instructions
        agent.mcp_servers = [server]
        return agent

    def _run_config(self, conversation_id: str) -> RunConfig:
        return RunConfig(
            tracing_disabled=not self.config.tracing_enabled,
            workflow_name=WORKFLOW_NAME,
            group_id=conversation_id,
            trace_include_sensitive_data=False,
            tool_not_found_behavior="return_error_to_model",
        )

    async def _run(self, turn: _Turn, emit: Callable[[ChatEvent], None], *, streamed: bool) -> TurnResult:
        collector = _Collector(emit)
        session = turn.session
        server = self.connector(turn.user)
        error: ChatError | None = None
        try:
            try:
                await server.connect()  # type: ignore[no-untyped-call]  # untyped in the SDK's ABC
            except Exception as failure:
                raise ToolsUnavailable(str(type(failure).__name__)) from failure
            agent = self._agent(server, turn.user.timezone)
            options: dict[str, Any] = {
                "session": session,
                "max_turns": self.config.max_turns,
                "run_config": self._run_config(turn.conversation_id),
            }
            if streamed:
                run = Runner.run_streamed(agent, turn.message, **options)
                try:
                    async for event in run.stream_events():
                        collector.stream_event(event)
                finally:
                    if not run.is_complete:
                        run.cancel()
                final = run.final_output
            else:
                result = await Runner.run(agent, turn.message, **options)
                for item in result.new_items:
                    collector.item(item)
                final = result.final_output
            reply = collector.reply or ("" if final is None else str(final))
            if not collector.reply and reply:
                collector.text(reply)
        except Exception as failure:
            error = describe_error(failure)
            log.warning(
                "chat turn failed (%s): %s",
                error.kind,
                type(failure).__name__,
                exc_info=error.kind == "internal",
            )
        finally:
            await self._close(server)
        recorded: list[TResponseInputItem] = []
        touched = asyncio.create_task(self._touch(turn))  # the listing's order and count, meanwhile
        try:
            recorded = await session.flush()  # the turn's items, in one write
        except Exception as failure:
            error = error or describe_error(failure)
        tool_calls = collector.tool_calls
        if error is not None:
            emit(ErrorEvent(error))
            await self._settle(session.inner, turn, error, recorded)
            if not tool_calls:  # a non-streamed run reports nothing when it fails: read what was stored
                tool_calls = [
                    ToolCallRecord(entry.id, entry.name, entry.arguments, entry.output)
                    for entry in transcript(recorded)
                    if isinstance(entry, TranscriptToolCall)
                ]
            reply = error.message
        await touched
        return TurnResult(turn.conversation_id, reply, tool_calls, error)

    async def _touch(self, turn: _Turn) -> None:
        try:
            await self.store.touch(turn.user.user_id, turn.conversation_id, messages=2)
        except Exception:
            log.warning("could not update conversation %s", turn.conversation_id, exc_info=True)

    @staticmethod
    async def _close(server: MCPServer) -> None:
        try:
            await server.cleanup()  # type: ignore[no-untyped-call]
        except Exception:
            log.warning("closing the MCP connection failed", exc_info=True)

    async def _settle(
        self, session: Session, turn: _Turn, error: ChatError, recorded: list[TResponseInputItem]
    ) -> None:
        """After a failure: keep the person's message, close dangling tool calls, store the error reply.

        `recorded` is what this turn stored before it failed.
        """
        try:
            additions: list[TResponseInputItem] = []
            if not any(is_user_message(item) for item in recorded):
                additions.append({"role": "user", "content": turn.message})
            additions.extend(
                {"type": "function_call_output", "call_id": call_id, "output": INTERRUPTED_OUTPUT}
                for call_id in _dangling_calls(await session.get_items())
            )
            additions.append({"role": "assistant", "content": error.message})
            await session.add_items(additions)
        except Exception:
            log.warning(
                "could not record the failed turn in conversation %s", turn.conversation_id, exc_info=True
            )


@dataclass
class TurnAgent(Agent[None]):
    """The agent of a turn. It turns an MCP server's tools into function tools once per server
    object, not before every model call (the SDK's conversion copies every schema each time): once
    per turn over HTTP, where each turn opens its own connection, and once per person in process,
    where the connector keeps each person's server between turns. The conversions live in a
    dictionary that the copies of one template agent share, and go with their server."""

    tools_by_server: weakref.WeakKeyDictionary[MCPServer, list[Tool]] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    async def get_mcp_tools(self, run_context: RunContextWrapper[None]) -> list[Tool]:
        if len(self.mcp_servers) != 1:
            return await super().get_mcp_tools(run_context)
        (server,) = self.mcp_servers
        tools = self.tools_by_server.get(server)
        if tools is None:
            tools = self.tools_by_server[server] = await super().get_mcp_tools(run_context)
        return list(tools)


def _dangling_calls(items: Sequence[TResponseInputItem]) -> list[str]:
    """Call ids of function calls that have no output yet (APIs reject such a history)."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "function_call":
            calls.append(str(item.get("call_id")))
        elif item.get("type") == "function_call_output":
            answered.add(str(item.get("call_id")))
    return [call_id for call_id in calls if call_id not in answered]
