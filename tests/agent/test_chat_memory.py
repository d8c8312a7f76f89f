"""Conversation memory on PostgreSQL and SQLite: the migrated schema, the SDK session on it, the store."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, Table, func, inspect, select
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import create_async_engine

from agent.memory import (
    ConversationStore,
    TurnBuffer,
    agent_messages,
    agent_sessions,
    conversations,
    make_title,
    metadata,
    sqlalchemy_sessions,
)
from mcp_server.db import Database
from tests.conftest import FixedClock

OURS = {"conversations", "agent_sessions", "agent_messages"}


def sdk_tables() -> tuple[Table, Table]:
    """The tables exactly as openai-agents' `SQLAlchemySession` defines them."""
    engine = create_async_engine("sqlite+aiosqlite://")
    session = SQLAlchemySession("probe", engine=engine)
    return session._sessions, session._messages


def describe(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "columns": [
            (
                column.name,
                repr(column.type),
                column.primary_key,
                column.nullable,
                None if column.server_default is None else str(column.server_default.arg),  # type: ignore[attr-defined]
                sorted((fk.target_fullname, fk.ondelete) for fk in column.foreign_keys),
            )
            for column in table.columns
        ],
        "indexes": sorted((index.name, tuple(c.name for c in index.columns)) for index in table.indexes),
        "dialect_options": {key: value for key, value in table.kwargs.items() if value},
    }


def test_sdk_tables_are_copied_exactly() -> None:
    sessions, messages = sdk_tables()
    assert describe(agent_sessions) == describe(sessions)
    assert describe(agent_messages) == describe(messages)


async def test_migration_matches_metadata(db: Database) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        with warnings.catch_warnings():  # SQLite cannot reflect the tasks' expression index: not ours
            warnings.simplefilter("ignore", SAWarning)
            found = compare_metadata(context, metadata)
        return [diff for diff in found if _table_of(diff) in OURS]

    async with db.engine.connect() as connection:
        assert await connection.run_sync(differences) == []

        def columns(connection: Connection) -> dict[str, list[str]]:
            inspector = inspect(connection)
            return {name: [c["name"] for c in inspector.get_columns(name)] for name in sorted(OURS)}

        assert await connection.run_sync(columns) == {
            "agent_messages": ["id", "session_id", "message_data", "created_at"],
            "agent_sessions": ["session_id", "created_at", "updated_at"],
            "conversations": ["id", "user_id", "title", "created_at", "updated_at", "message_count"],
        }


def _table_of(diff: Any) -> str | None:
    entry = diff[0] if isinstance(diff, list) else diff
    for part in entry[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(part, Table | MetaData) and name:
            return str(name)
        if isinstance(part, str):
            return part
    return None


async def test_the_sdk_session_works_on_the_migrated_schema(db: Database) -> None:
    """The SDK's own session class, never creating tables, against what our migration made."""
    one = SQLAlchemySession(f"s-{uuid.uuid4().hex}", engine=db.engine, create_tables=False)
    two = SQLAlchemySession(f"s-{uuid.uuid4().hex}", engine=db.engine, create_tables=False)
    assert await one.get_items() == []
    await one.add_items([{"role": "user", "content": "héllo"}])
    await one.add_items(
        [
            {"type": "function_call", "call_id": "c1", "name": "list_tasks", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": '{"tasks": [], "total": 0}'},
            {"role": "assistant", "content": "You have no tasks."},
        ]
    )
    await two.add_items([{"role": "user", "content": "other"}])
    items = [dict(item) for item in await one.get_items()]
    assert [item.get("type", item.get("role")) for item in items] == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
    ]
    assert items[0] == {"role": "user", "content": "héllo"}
    assert await one.get_items(limit=2) == items[2:]
    assert await one.pop_item() == {"role": "assistant", "content": "You have no tasks."}
    assert len(await one.get_items()) == 3
    await one.clear_session()
    assert await one.get_items() == []
    assert await two.get_items() == [{"role": "user", "content": "other"}]
    await two.clear_session()


async def test_our_sessions_write_what_the_sdk_session_reads(db: Database) -> None:
    """Our sessions write a turn in one statement on PostgreSQL (the SDK's own way on SQLite): the
    SDK's session reads it back in order, mixed with its own writes, and turns written at the same
    time stay whole."""
    conversation = f"s-{uuid.uuid4().hex}"
    ours = sqlalchemy_sessions(db.engine)(conversation)
    sdk = SQLAlchemySession(conversation, engine=db.engine, create_tables=False)
    turn: list[Any] = [
        {"role": "user", "content": "héllo"},
        {"type": "function_call", "call_id": "c1", "name": "list_tasks", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": '{"tasks": [], "total": 0}'},
        {"role": "assistant", "content": "You have no tasks."},
    ]
    await ours.add_items(turn)
    await sdk.add_items([{"role": "user", "content": "and now?"}])
    await ours.add_items([{"role": "assistant", "content": "Still none."}])
    assert await sdk.get_items() == [
        *turn,
        {"role": "user", "content": "and now?"},
        {"role": "assistant", "content": "Still none."},
    ]

    batches = [[{"role": "user", "content": f"{batch}-{index}"} for index in range(5)] for batch in range(6)]
    await asyncio.gather(*(sqlalchemy_sessions(db.engine)(conversation).add_items(b) for b in batches))
    stored = (await sdk.get_items())[-30:]
    written = [stored[start : start + 5] for start in range(0, 30, 5)]
    assert sorted(written, key=lambda batch: str(batch[0]["content"])) == batches
    async with db.engine.connect() as connection:
        rows = await connection.scalar(
            select(func.count())
            .select_from(agent_sessions)
            .where(agent_sessions.c.session_id == conversation)
        )
    assert rows == 1
    await sdk.clear_session()


async def test_our_sessions_read_the_latest_items_as_the_sdk_session_does(db: Database) -> None:
    """The latest items, in order, skipping a row that does not parse (and reading further back
    for it), exactly as the SDK's own session reads them."""
    conversation = f"s-{uuid.uuid4().hex}"
    ours = sqlalchemy_sessions(db.engine)(conversation)
    sdk = SQLAlchemySession(conversation, engine=db.engine, create_tables=False)
    await ours.add_items([{"role": "user", "content": f"message {index}"} for index in range(6)])
    async with db.engine.begin() as connection:
        await connection.execute(
            agent_messages.insert().values(session_id=conversation, message_data="{not json")
        )
    await ours.add_items([{"role": "assistant", "content": "last"}])
    for limit in (1, 2, 3, 7, 20):
        assert await ours.get_items(limit=limit) == await sdk.get_items(limit=limit), limit
    assert [item["content"] for item in await ours.get_items(limit=3)] == ["message 4", "message 5", "last"]
    await sdk.clear_session()


async def test_a_session_per_turn_reuses_the_compiled_statements(db: Database) -> None:
    """Session objects come and go with every turn; SQLAlchemy's statement cache must not grow
    with them (it did, to its limit, while each SDK session object had tables of its own)."""
    sessions = sqlalchemy_sessions(db.engine)
    cache = db.engine.sync_engine._compiled_cache
    assert cache is not None

    async def turn(conversation: str) -> None:
        session = sessions(conversation)
        await session.add_items([{"role": "user", "content": "hi"}])
        await session.get_items(limit=10)
        await session.get_items()

    await turn(f"s-{uuid.uuid4().hex}")
    before = len(cache)
    for _ in range(20):
        await turn(f"s-{uuid.uuid4().hex}")
    assert len(cache) - before <= 2


async def test_sessions_of_one_factory_keep_to_their_own_conversation(db: Database) -> None:
    """The factory copies one session object per conversation: each copy reads and writes its own."""
    sessions = sqlalchemy_sessions(db.engine)
    first, second = sessions(f"s-{uuid.uuid4().hex}"), sessions(f"s-{uuid.uuid4().hex}")
    await first.add_items([{"role": "user", "content": "for the first"}])
    await second.add_items([{"role": "user", "content": "for the second"}])
    assert await first.get_items() == [{"role": "user", "content": "for the first"}]
    assert await second.get_items() == [{"role": "user", "content": "for the second"}]
    assert sessions(first.session_id).session_id == first.session_id != second.session_id
    await first.clear_session()
    await second.clear_session()


async def test_a_turn_reads_its_history_once_and_then_sees_what_it_stored(db: Database) -> None:
    """A turn's buffer reads the stored history once (it may be read ahead, beside another query)
    and adds the turn's own items; once the turn is stored, the next read is fresh again."""
    stored = sqlalchemy_sessions(db.engine)(f"s-{uuid.uuid4().hex}")
    before: list[Any] = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "1"}]
    await stored.add_items(before)
    turn = TurnBuffer(stored, window=10)
    await turn.preload()
    meanwhile: list[Any] = [{"role": "user", "content": "from another tab"}]
    await stored.add_items(meanwhile)
    mine: list[Any] = [{"role": "user", "content": "two"}]
    await turn.add_items(mine)
    assert await turn.get_items() == [*before, *mine]  # the history the turn started from
    assert await turn.flush() == mine
    assert await turn.get_items() == [*before, *meanwhile, *mine]
    assert await turn.pop_item() == mine[0]
    assert await turn.get_items() == [*before, *meanwhile]
    await stored.clear_session()


async def test_store_scopes_orders_and_forgets(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    store = ConversationStore(db.engine, clock=clock)
    alice, bob = f"mem-{uuid.uuid4().hex[:8]}", f"mem-{uuid.uuid4().hex[:8]}"

    first = await store.create(alice, "  Add   milk\nand eggs ")
    assert first.title == "Add milk and eggs" and first.message_count == 0
    clock.now += timedelta(minutes=1)
    second = await store.create(alice, "x" * 200)
    assert len(second.title) == 80 and second.title.endswith("…")
    clock.now += timedelta(minutes=1)
    await store.touch(alice, first.id, messages=2)

    got = await store.get(alice, first.id)
    assert got is not None and got.message_count == 2
    assert got.created_at == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert got.updated_at == datetime(2026, 11, 27, 15, 2, tzinfo=UTC) and got.updated_at.tzinfo is UTC
    assert [c.id for c in await store.list(alice)] == [first.id, second.id]  # most recently active first
    assert [c.id for c in await store.list(alice, limit=1)] == [first.id]

    # Another user's id behaves as a missing one, everywhere.
    assert await store.get(bob, first.id) is None
    assert await store.items(bob, first.id) is None
    assert await store.delete(bob, first.id) is False
    await store.touch(bob, first.id, messages=5)
    again = await store.get(alice, first.id)
    assert again is not None and again.message_count == 2
    assert await store.list(bob) == []
    assert await store.get(alice, "x" * 65) is None

    session = store.sessions(first.id)
    await session.add_items([{"role": "user", "content": "Add milk"}])
    assert await store.items(alice, first.id) == [{"role": "user", "content": "Add milk"}]
    assert await store.delete(alice, first.id) is True
    assert await store.get(alice, first.id) is None
    assert await store.delete(alice, first.id) is False
    async with db.engine.connect() as connection:
        for table in (agent_messages, agent_sessions):
            count = await connection.scalar(
                select(func.count()).select_from(table).where(table.c.session_id == first.id)
            )
            assert count == 0, table.name
        assert await connection.scalar(select(func.count()).where(conversations.c.user_id == alice)) == 1


async def test_memory_survives_a_new_engine(database_url: str) -> None:
    """Everything is in the database: a new process (engine, store) sees the same conversation."""
    user = f"mem-{uuid.uuid4().hex[:8]}"
    first = Database(database_url)
    try:
        store = ConversationStore(first.engine)
        conversation = await store.create(user, "remember me")
        await sqlalchemy_sessions(first.engine)(conversation.id).add_items(
            [{"role": "user", "content": "hi"}]
        )
    finally:
        await first.dispose()
    second = Database(database_url)
    try:
        again = ConversationStore(second.engine)
        assert (await again.get(user, conversation.id)) == conversation
        assert await again.items(user, conversation.id) == [{"role": "user", "content": "hi"}]
    finally:
        await second.dispose()


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("buy milk", "buy milk"),
        ("  spaced\t\tout\n", "spaced out"),
        ("", "New conversation"),
        ("a" * 80, "a" * 80),
        ("word " * 30, ("word " * 16).strip() + "…"),
    ],
)
def test_titles(message: str, title: str) -> None:
    assert make_title(message) == title
    assert len(make_title(message)) <= 80


async def test_sqlite_keeps_the_services_lock_wait(sqlite_url: str) -> None:
    """The SDK sets a 5 s busy timeout on the engine it is given; ours keeps the service's 30 s."""
    from sqlalchemy import text

    database = Database(sqlite_url)
    try:
        sqlalchemy_sessions(database.engine)("probe")
        async with database.engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA busy_timeout")) == 30_000
    finally:
        await database.dispose()
