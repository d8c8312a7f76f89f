"""Conversation memory, in the service's own database.

The turns themselves are kept by the Agents SDK's `SQLAlchemySession` (tables `agent_sessions` and
`agent_messages`, created by our migration, never by the SDK); the session id is the conversation id.
Our `conversations` table says whose each conversation is, its title and when it last changed.
Everything lives in the database, so a conversation survives restarts and continues on any replica.
A conversation of another user is indistinguishable from a missing one.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from agents.items import TResponseInputItem
from agents.memory import Session, SessionABC
from sqlalchemy import (
    TIMESTAMP,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Insert,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator
from uuid6 import uuid7

from mcp_server.db import SingleStatements

TITLE_CHARS = 80
CONVERSATION_ID_CHARS = 64
LIST_LIMIT_MAX = 100
SESSIONS_TABLE = "agent_sessions"
MESSAGES_TABLE = "agent_messages"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in and out, stored as UTC (SQLite has no zone-aware type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()
"""Every table of the chat service, for migrations and schema checks."""

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(CONVERSATION_ID_CHARS), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("title", String(TITLE_CHARS), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("message_count", Integer, nullable=False),
    Index("ix_conversations_user_updated", "user_id", "updated_at"),
)

# The Agents SDK's own tables, exactly as `SQLAlchemySession` defines them (it never creates them
# here: the migration does). Listed so that schema checks see every table we own.
agent_sessions = Table(
    SESSIONS_TABLE,
    metadata,
    Column("session_id", String, primary_key=True),
    Column(
        "created_at", TIMESTAMP(timezone=False), server_default=sql_text("CURRENT_TIMESTAMP"), nullable=False
    ),
    Column(
        "updated_at",
        TIMESTAMP(timezone=False),
        server_default=sql_text("CURRENT_TIMESTAMP"),
        onupdate=sql_text("CURRENT_TIMESTAMP"),
        nullable=False,
    ),
)
agent_messages = Table(
    MESSAGES_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "session_id", String, ForeignKey(f"{SESSIONS_TABLE}.session_id", ondelete="CASCADE"), nullable=False
    ),
    Column("message_data", Text, nullable=False),
    Column(
        "created_at", TIMESTAMP(timezone=False), server_default=sql_text("CURRENT_TIMESTAMP"), nullable=False
    ),
    Index(f"idx_{MESSAGES_TABLE}_session_time", "session_id", "created_at"),
    sqlite_autoincrement=True,
)


class MemoryUnavailable(Exception):
    """The conversation store could not be reached; nothing changed, a retry may succeed."""

    def __init__(self) -> None:
        super().__init__("the conversation store is unreachable; try again shortly")


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database could not be reached (so a retry may succeed)."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout | ConnectionError | TimeoutError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if is_unavailable(error):
            raise MemoryUnavailable() from error
        raise


def _postgres_add_items() -> Insert:
    """Upsert the session's row (which locks it, as the SDK's `SELECT ... FOR UPDATE` does, and
    touches `updated_at`) and append the items in their order, in one statement."""
    parent = (
        postgresql.insert(agent_sessions)
        .values(session_id=bindparam("session_id"))
        .on_conflict_do_update(index_elements=["session_id"], set_={"updated_at": func.current_timestamp()})
        .returning(agent_sessions.c.session_id)
        .cte("parent")
    )
    # The items travel as one JSON array of strings: a text array parameter is quoted element by
    # element in Python (a regex substitution per quote of every item's JSON), JSON in C.
    items = (
        func.json_array_elements_text(cast(bindparam("items", type_=Text), postgresql.JSON))
        .table_valued("message_data", with_ordinality="position")
        .render_derived("items")
    )
    rows = (
        select(parent.c.session_id, items.c.message_data)
        .select_from(parent.join(items, true()))
        .order_by(items.c.position)
    )
    return insert(agent_messages).from_select(["session_id", "message_data"], rows)


_POSTGRES_ADD_ITEMS = _postgres_add_items()

# The latest `limit` items of a session, newest first (the SDK's own query, built once).
_LATEST_ITEMS = (
    select(agent_messages.c.message_data)
    .where(agent_messages.c.session_id == bindparam("session_id"))
    .order_by(agent_messages.c.created_at.desc(), agent_messages.c.id.desc())
    .limit(bindparam("limit"))
)


class _AgentSession(SQLAlchemySession):
    """The SDK session, with SQLite's lock wait no shorter than the rest of the service uses (30 s),
    and on PostgreSQL a turn's items written in one statement: one round trip where the SDK's
    `add_items` takes six (begin, two selects, insert, update, commit), and read in one.

    Its statements use our module's tables, not the new `Table` objects the SDK makes for every
    session object: SQLAlchemy caches compiled statements by table, so with a session object per
    turn every turn compiled its statements anew and added them to the cache until it was full
    (about 20 MB of the server's memory; 320 offline turns: 332 entries and 61 turns/s, now 13 and
    67)."""

    _SQLITE_BUSY_TIMEOUT_MS = 30_000

    def __init__(self, session_id: str, *, engine: AsyncEngine, statements: SingleStatements) -> None:
        super().__init__(session_id, engine=engine, create_tables=False)
        self._sessions, self._messages = agent_sessions, agent_messages
        self._statements = statements
        self._postgres = engine.dialect.name == "postgresql"

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """On PostgreSQL, the latest `limit` items in one round trip (the SDK's read opens a
        transaction, so it takes two). Rows that do not parse are skipped and the read widened,
        as the SDK does."""
        if not self._postgres or limit is None or limit <= 0:
            return await super().get_items(limit)
        window = limit
        while True:
            async with self._statements.connect() as connection:
                result = await connection.execute(
                    _LATEST_ITEMS, {"session_id": self.session_id, "limit": window}
                )
                rows: list[str] = [row[0] for row in result.all()]
            items: list[TResponseInputItem] = []
            for raw in reversed(rows):
                with contextlib.suppress(json.JSONDecodeError):
                    items.append(await self._deserialize_item(raw))
            if len(items) >= limit or len(rows) < window:
                return items[-limit:]
            window *= 2

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if not self._postgres or not items:
            await super().add_items(items)
            return
        data = [await self._serialize_item(item) for item in items]
        async with self._statements.connect() as connection:
            await connection.execute(
                _POSTGRES_ADD_ITEMS, {"session_id": self.session_id, "items": json.dumps(data)}
            )


class TurnBuffer(SessionABC):
    """An SDK session whose additions are written once, when the turn ends (`flush`).

    The SDK saves as it goes (the person's message, each model step, each tool output), one
    transaction each; buffering makes a turn one write. A turn that never flushes (the process dies
    mid-turn) leaves the conversation as it was before the turn.

    With `window`, the history the SDK reads (and hands to the model) is the stored conversation's
    last whole turns within `window` items (at least the last turn, however long), so a long
    conversation neither outgrows the model's context nor makes every turn slower. The stored
    conversation keeps everything.
    """

    def __init__(self, inner: Session, *, window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError("window: must be at least 1 item")
        self.inner = inner
        self.window = window
        self.session_id = inner.session_id
        self.session_settings = getattr(inner, "session_settings", None)
        self._pending: list[TResponseInputItem] = []
        self._stored: list[TResponseInputItem] | None = None  # the history, once read

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        if limit is not None and len(self._pending) >= limit:
            return self._pending[-limit:] if limit > 0 else []
        if limit is None:
            stored = await self._history()
        else:
            stored = await self.inner.get_items(limit - len(self._pending))
        return [*stored, *self._pending]

    async def preload(self) -> None:
        """Read the history now (beside another query, say) rather than when the SDK asks for it."""
        await self._history()

    async def _history(self) -> list[TResponseInputItem]:
        """The stored history the turn starts from, read once: the turn works from what it read
        (until it stores its own items), even if another tab adds to the conversation meanwhile."""
        if self._stored is None:
            if self.window is None:
                self._stored = await self.inner.get_items()
            else:
                self._stored = await self._recent_turns(self.window)
        return self._stored

    async def _recent_turns(self, window: int) -> list[TResponseInputItem]:
        """The stored items from the first person's message among the last `window` items on.

        Starting at a message of the person's keeps every tool call with its output (APIs reject an
        output whose call is missing). When one turn alone is longer, the window widens to hold it.
        """
        while True:
            items = await self.inner.get_items(window)
            if len(items) < window:
                return items  # the whole conversation
            for index, item in enumerate(items):
                if is_user_message(item):
                    return items[index:]
            window *= 2

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        self._pending.extend(items)

    async def pop_item(self) -> TResponseInputItem | None:
        if self._pending:
            return self._pending.pop()
        self._stored = None
        return await self.inner.pop_item()

    async def clear_session(self) -> None:
        self._pending.clear()
        self._stored = None
        await self.inner.clear_session()

    async def flush(self) -> list[TResponseInputItem]:
        """Store what the turn added, in one write; returns it."""
        pending, self._pending = self._pending, []
        if pending:
            self._stored = None
            await self.inner.add_items(pending)
        return pending


def is_user_message(item: object) -> bool:
    """Whether a session item is a message the person wrote (where a turn begins)."""
    return isinstance(item, Mapping) and item.get("role") == "user" and item.get("type") in (None, "message")


SessionFactory = Callable[[str], Session]
"""Conversation id -> the Agents SDK session holding its turns."""


def sqlalchemy_sessions(engine: AsyncEngine) -> SessionFactory:
    """SDK sessions on `engine` (the service's shared engine), against the migrated tables."""

    # The SDK's constructor builds its own tables, a session maker and settings every time (0.28 ms
    # on the CI machine, for each turn); they do not depend on the conversation, so each session
    # is a shallow copy of one made here, with its own id.
    template = _AgentSession("", engine=engine, statements=SingleStatements(engine))

    def session(conversation_id: str) -> Session:
        made = copy.copy(template)
        made.session_id = conversation_id
        return made

    return session


def utcnow() -> datetime:
    return datetime.now(UTC)


def _plausible_id(conversation_id: str) -> bool:
    """Whether it could be one of ours: printable and short (anything else cannot exist)."""
    return (
        1 <= len(conversation_id) <= CONVERSATION_ID_CHARS
        and conversation_id.isprintable()
        and (conversation_id.isascii())
    )


def new_conversation_id() -> str:
    """A UUIDv7 string, so ids sort by creation time."""
    return str(uuid7())


def make_title(message: str) -> str:
    """The first user message on one line, at most 80 characters (an ellipsis marks a cut)."""
    line = re.sub(r"\s+", " ", message).strip()
    if len(line) <= TITLE_CHARS:
        return line or "New conversation"
    return line[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Conversation:
    id: str
    user_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        user_id=row.user_id,
        title=row.title,
        created_at=row.created_at,
        updated_at=row.updated_at,
        message_count=row.message_count,
    )


class ConversationStore:
    """Whose conversations exist, scoped by user id in every query; the turns are in the SDK session."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._statements = SingleStatements(engine)
        self.sessions: SessionFactory = sqlalchemy_sessions(engine)
        """The SDK session of a conversation id, in the same database."""
        self.clock = clock

    async def create(self, user_id: str, first_message: str) -> Conversation:
        now = self.clock()
        conversation = Conversation(new_conversation_id(), user_id, make_title(first_message), now, now, 0)
        with _reachable():
            async with self.engine.begin() as connection:
                await connection.execute(
                    insert(conversations).values(
                        id=conversation.id,
                        user_id=user_id,
                        title=conversation.title,
                        created_at=now,
                        updated_at=now,
                        message_count=0,
                    )
                )
        return conversation

    async def get(self, user_id: str, conversation_id: str) -> Conversation | None:
        """The user's conversation, or None when it is missing or someone else's."""
        if not _plausible_id(conversation_id):
            return None
        query = select(conversations).where(
            conversations.c.id == conversation_id, conversations.c.user_id == user_id
        )
        with _reachable():
            async with self._statements.connect() as connection:
                row = (await connection.execute(query)).first()
        return None if row is None else _conversation(row)

    async def list(self, user_id: str, *, limit: int = 50) -> builtins.list[Conversation]:
        """The user's conversations, the most recently active first."""
        limit = max(1, min(limit, LIST_LIMIT_MAX))
        query = (
            select(conversations)
            .where(conversations.c.user_id == user_id)
            .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
            .limit(limit)
        )
        with _reachable():
            async with self.engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        return [_conversation(row) for row in rows]

    async def touch(self, user_id: str, conversation_id: str, *, messages: int = 0) -> None:
        """Mark the conversation active now, adding `messages` to its count."""
        statement = (
            update(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.user_id == user_id)
            .values(updated_at=self.clock(), message_count=conversations.c.message_count + messages)
        )
        with _reachable():
            async with self._statements.connect() as connection:
                await connection.execute(statement)

    async def delete(self, user_id: str, conversation_id: str) -> bool:
        """Forget the conversation and its turns; False when the user has no such conversation."""
        if not _plausible_id(conversation_id):
            return False
        statement = delete(conversations).where(
            conversations.c.id == conversation_id, conversations.c.user_id == user_id
        )
        with _reachable():
            async with self.engine.begin() as connection:
                if not (await connection.execute(statement)).rowcount:
                    return False
                # The SDK session's rows go in the same transaction (as its `clear_session` would).
                await connection.execute(
                    delete(agent_messages).where(agent_messages.c.session_id == conversation_id)
                )
                await connection.execute(
                    delete(agent_sessions).where(agent_sessions.c.session_id == conversation_id)
                )
        return True

    async def items(self, user_id: str, conversation_id: str) -> builtins.list[TResponseInputItem] | None:
        """The stored turns of the user's conversation (as the SDK keeps them), or None if not theirs."""
        if await self.get(user_id, conversation_id) is None:
            return None
        with _reachable():
            return await self.sessions(conversation_id).get_items()
