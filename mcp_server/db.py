"""Engines and sessions for PostgreSQL (psycopg 3) and SQLite (aiosqlite), chosen from one URL."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import URL, DateTime, Insert, Table, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator

from mcp_server.errors import StoreUnavailable


def database_url(raw: str, *, asynchronous: bool = True) -> URL:
    """Our driver for a plain URL: `postgresql://...?sslmode=require` (Neon, Azure) or `sqlite:///path`."""
    url = make_url(raw.replace("postgres://", "postgresql://", 1) if raw.startswith("postgres://") else raw)
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite+pysqlite")
    raise ValueError(f"DATABASE_URL: unsupported database {backend!r}; use postgresql:// or sqlite:///")


def prepare_sqlite_file(url: URL) -> None:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Leave transaction control to SQLAlchemy's "begin" event below (the documented recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    reading = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


READ_ONLY = "todo_read_only"  # an execution option: the transaction only reads

CONNECT_TIMEOUT_S = 10  # libpq waits for ever by default
_closing: set[asyncio.Task[None]] = set()  # closes of connections nobody waited for


async def connect_cleanly(conninfo: str, **options: Any) -> psycopg.AsyncConnection[Any]:
    """`psycopg.AsyncConnection.connect`, leaving no half-made connection behind when the caller
    is cancelled.

    Cancelled inside psycopg, an attempt keeps its socket open for as long as the CancelledError's
    traceback lives (until a garbage collection, say), and PostgreSQL cannot finish a fast shutdown
    while such a client has not sent its startup packet: it waits up to `authentication_timeout`
    (60 s). The attempt runs as a task of its own; a caller that gives up leaves it to end, and a
    connection it makes after all is closed.
    """
    options = {"connect_timeout": CONNECT_TIMEOUT_S, **options}
    attempt = asyncio.ensure_future(psycopg.AsyncConnection.connect(conninfo, **options))
    try:
        return await asyncio.shield(attempt)
    except asyncio.CancelledError:
        attempt.add_done_callback(_close_unwanted)
        raise


def _close_unwanted(attempt: asyncio.Future[psycopg.AsyncConnection[Any]]) -> None:
    if attempt.cancelled() or attempt.exception() is not None:
        return
    closing = asyncio.ensure_future(attempt.result().close())
    _closing.add(closing)
    closing.add_done_callback(_closing.discard)


def libpq_conninfo(url: URL) -> str:
    """`url` (any driver name) as a libpq connection URI, query parameters such as sslmode kept."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


POOL_SIZE = 20  # connections a process keeps open (PostgreSQL)
MAX_OVERFLOW = 10  # more, opened under a burst and closed when returned


def create_engine(
    raw_url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW, **options: Any
) -> AsyncEngine:
    """The engine for `raw_url`. On PostgreSQL the pool keeps up to `pool_size` connections open;
    a request beyond them opens one of `max_overflow` more, which is closed again when returned.

    Keep `pool_size` above the requests a process serves at once: past it every query pays for a
    new connection (a server process forked, and TLS), which once cut MCP `add_task` throughput at
    16 clients to two thirds (`bench/mcp_tools.py`, pool 10 against 20).
    """
    url = database_url(raw_url)
    if url.get_backend_name() == "sqlite":  # its default pool: the sizes are for PostgreSQL
        prepare_sqlite_file(url)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        # Take the write lock up front: a deferred transaction that reads and then writes fails
        # with SQLITE_BUSY when another writer committed in between, whatever the busy timeout.
        # One that only reads (`Database.reading`) is deferred: in WAL mode it never waits.
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    options.setdefault("pool_timeout", 10)
    conninfo, connect_args = libpq_conninfo(url), options.pop("connect_args", {})

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await connect_cleanly(conninfo, **connect_args)

    return create_async_engine(
        url, async_creator=connect, pool_size=pool_size, max_overflow=max_overflow, **options
    )


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


@functools.cache
def insert_ignoring(table: Table, dialect: str) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` into `table` on `dialect`, built once.

    Hot paths pass their values as parameters to a Core statement on the table: that skips the
    ORM's per-statement work (about 40% of the CPU time of a one-row write).
    """
    insert: Insert = (
        (postgresql if dialect == "postgresql" else sqlite).insert(table).on_conflict_do_nothing()
    )
    return insert


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database could not be reached (so a retry may succeed)."""
    if isinstance(
        error, OperationalError | InterfaceError | PoolTimeout | ConnectionError | asyncio.TimeoutError
    ):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class SingleStatements:
    """Connections for statements that are atomic alone.

    On PostgreSQL each statement commits by itself (autocommit: no BEGIN or COMMIT round trips,
    so a one-statement change or read is one round trip); on SQLite the block is one transaction,
    committed at its end (its writes take the lock up front, see `create_engine`).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else None
        )

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        if self._autocommit is not None:
            async with self._autocommit.connect() as connection:
                yield connection
        else:
            async with self._engine.begin() as connection:
                yield connection


@contextlib.asynccontextmanager
async def _unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    try:
        async with sessions() as session, session.begin():
            yield session
    except Exception as error:
        if is_unavailable(error):
            raise StoreUnavailable() from error
        raise


class Database:
    """The engine and session factory of one database, plus what its dialect can do."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_options)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._reading = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, autoflush=False
        )
        self.single_statements = SingleStatements(self.engine)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """One unit of work: commits on success, rolls back on error; outages become `StoreUnavailable`."""
        return _unit_of_work(self.sessions)

    def reading(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A transaction that only reads: on SQLite it does not take the write lock, so it never
        waits behind a writer (WAL); outages become `StoreUnavailable`."""
        return _unit_of_work(self._reading)

    @contextlib.asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection for statements that are atomic alone (`SingleStatements`); outages become
        `StoreUnavailable`."""
        try:
            async with self.single_statements.connect() as connection:
                yield connection
        except Exception as error:
            if is_unavailable(error):
                raise StoreUnavailable() from error
            raise

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
