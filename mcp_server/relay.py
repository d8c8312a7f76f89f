"""The outbox relay: publishes committed events in order, retrying while the publisher is down.

It wakes right after a commit (an in-process signal, and PostgreSQL `LISTEN` on the channel the
outbox trigger notifies) with a slow poll as a safety net. On PostgreSQL only the holder of an
advisory lock relays, so one user's events leave in order even with several replicas. Failures back
off exponentially and never block writes: they only leave rows pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import bindparam, delete, func, select, update

from mcp_server.aio import stop
from mcp_server.db import Database, connect_cleanly, database_url, libpq_conninfo
from mcp_server.errors import StoreUnavailable
from mcp_server.models import OutboxEvent, utcnow
from mcp_server.outbox import OUTBOX, document
from mcp_server.publishing import EventPublisher, PublishFailed, RoundPublisher
from mcp_server.telemetry import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED, PUBLISH_FAILURES

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "todo_outbox"
LEADER_LOCK_KEY = 0x70D0_0B0C  # pg_advisory_lock key shared by every relay of this database


Pending = tuple[int, dict[str, Any]]  # outbox row id, the CloudEvent to publish

# The statements of every round, built once: a new statement costs SQLAlchemy a cache key per run.
_PENDING = (
    select(OUTBOX.c.id, OUTBOX.c.user_id, OUTBOX.c.seq, OUTBOX.c.payload)
    .where(OUTBOX.c.published_at.is_(None))
    .order_by(OUTBOX.c.id)
    .limit(bindparam("limit"))
)
_PENDING_EXCEPT_HELD = _PENDING.where(OUTBOX.c.user_id.not_in(bindparam("held", expanding=True)))
_MARK_PUBLISHED = (
    update(OUTBOX)
    .where(OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("now"))
)

# The same two on PostgreSQL, in plain SQL for the leader's own connection: no pool checkout and no
# SQLAlchemy layer per statement, which halves the CPU time of a round (`bench/relay_round.py`), and
# every change pays for a round in the process that made it.
_SQL_PENDING = (
    "SELECT id, user_id, seq, payload FROM outbox WHERE published_at IS NULL{held}"
    " ORDER BY id LIMIT %(limit)s"
)
_SQL_PENDING_ALL = _SQL_PENDING.format(held="")
_SQL_PENDING_EXCEPT_HELD = _SQL_PENDING.format(held=" AND user_id <> ALL(%(held)s)")
_SQL_MARK_PUBLISHED = "UPDATE outbox SET published_at = %(now)s WHERE id = ANY(%(ids)s)"


@dataclass
class RelayStats:
    published: int = 0
    failures: int = 0
    rounds: int = 0
    last_error: str | None = None


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publisher: EventPublisher,
        *,
        batch_size: int = 500,
        bulk_size: int = 100,
        concurrency: int = 8,
        poll_seconds: float = 5.0,
        min_backoff_seconds: float = 0.25,
        max_backoff_seconds: float = 30.0,
        retention: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.batch_size = batch_size
        self.bulk_size = bulk_size
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.min_backoff_seconds = min_backoff_seconds  # the first wait after a failure, then doubling
        self.max_backoff_seconds = max_backoff_seconds
        self.retention = retention
        self.clock = clock
        self.stats = RelayStats()
        self._wake = asyncio.Event()
        self._backoff = 0.0
        self._held: dict[str, tuple[float, float]] = {}  # user id -> (retry at, delay) after a failure
        self._last_prune = 0.0
        self._last_measure = float("-inf")
        self._listening = False  # LISTEN is on: every commit's NOTIFY wakes us, ours included
        self._connection: psycopg.AsyncConnection[Any] | None = None  # the leader's, for its rounds

    def wake(self) -> None:
        """Called after a commit in this process that wrote to the outbox.

        While LISTEN is on, the commit's NOTIFY wakes the relay anyway: waking twice would cost an
        extra pass per change, so the in-process signal is for SQLite (and the moments without LISTEN).
        """
        if not self._listening:
            self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled (one leader per database on PostgreSQL)."""
        while True:
            try:
                if self.db.is_postgres:
                    await self._lead_on_postgres()
                else:
                    await self._relay_while_leader()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("outbox relay lost its footing (%s); retrying", type(error).__name__)
                await asyncio.sleep(min(self.poll_seconds, 2.0))

    async def _lead_on_postgres(self) -> None:
        """Lead (see `leading`) and relay while the lead lasts."""
        async with self.leading() as listening:
            relay = asyncio.create_task(self._relay_while_leader())
            listener = asyncio.create_task(self._listen(listening))
            try:
                # The listener ends when its connection (and with it the lock) is lost; the relay
                # when its own connection is (its statements raise).
                done, _ = await asyncio.wait({relay, listener}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await stop(relay, listener)
        for task in done:
            task.result()

    @contextlib.asynccontextmanager
    async def leading(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """PostgreSQL: the lead of the relays of this database for the block (waiting while another
        replica has it). One connection holds the advisory lock and LISTENs: it is yielded, to wait
        for notifications on. A second one, the relay's own, reads and marks the events of every
        round meanwhile (a connection waiting for notifications cannot run statements)."""
        conninfo = libpq_conninfo(database_url(self.db.url))
        async with await connect_cleanly(conninfo, autocommit=True) as listening:
            while not await self._try_lock(listening):  # noqa: ASYNC110  (another replica leads)
                await asyncio.sleep(self.poll_seconds)
            async with await connect_cleanly(conninfo, autocommit=True) as statements:
                await listening.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self._listening, self._connection = True, statements
                self._wake.set()  # rows committed before LISTEN
                log.info("outbox relay is the leader")
                try:
                    yield listening
                finally:
                    self._listening, self._connection = False, None

    async def _relay_while_leader(self) -> None:
        while True:
            self._wake.clear()
            await self.drain()
            await self._measure_backlog_now_and_then()
            await self._prune_now_and_then()
            if self._backoff:  # the database is down: wait the backoff out
                await asyncio.sleep(self._backoff)
                continue
            timeout = self.poll_seconds
            if self._held:  # some users' events wait for their retry time
                timeout = min(timeout, max(0.0, min(at for at, _ in self._held.values()) - self._now()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: it can lose a cancellation
                    await self._wake.wait()

    async def drain(self) -> int:
        """Publish everything pending that may go now, oldest first.

        A user whose events fail to publish is held back for a while (doubling up to the maximum
        backoff) while everyone else's events go on at once, also while the sidecar is down (each
        user then waits out their own backoff); when the database is down, the whole relay backs off.
        """
        total = 0
        while True:
            published, down, full = await self._round()
            total += published
            if down:
                self._backoff = min(
                    max(self._backoff * 2, self.min_backoff_seconds), self.max_backoff_seconds
                )
                return total
            self._backoff = 0.0
            # A short batch held everything that may go now (rows committed meanwhile wake us again).
            if published == 0 or not full:
                return total

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _hold(self, user_id: str) -> None:
        _, delay = self._held.get(user_id, (0.0, 0.0))
        delay = min(max(delay * 2, self.min_backoff_seconds), self.max_backoff_seconds)
        self._held[user_id] = (self._now() + delay, delay)

    def _held_now(self) -> list[str]:
        now = self._now()
        return [user for user, (retry_at, _) in self._held.items() if retry_at > now]

    async def _round(self) -> tuple[int, bool, bool]:
        """One batch: each user's events in order (users in parallel).

        Returns (published, database down, the batch was full so more may be pending)."""
        try:
            rows = await self._pending(self._held_now())
        except StoreUnavailable as error:
            self._note_failure(f"database unavailable: {type(error.__cause__).__name__}")
            return 0, True, False
        if not rows:
            return 0, False, False
        self.stats.rounds += 1
        by_user: dict[str, list[Pending]] = {}
        for row_id, user_id, seq, payload in rows:
            by_user.setdefault(user_id, []).append((row_id, document(payload, seq)))
        results = await self._publish(by_user)
        failed_users = []
        for user_id, (_, failed) in zip(by_user, results, strict=True):
            if failed:
                self._hold(user_id)
                failed_users.append(by_user[user_id][0][0])
            else:
                self._held.pop(user_id, None)
        published = [row_id for done, _ in results for row_id in done]
        if published:
            await self._mark_published(published)
        if failed_users:
            await self._count_attempt(failed_users)
        return len(published), False, len(rows) == self.batch_size

    async def _pending(self, held: list[str]) -> Sequence[tuple[int, str, int, dict[str, Any]]]:
        """Up to a batch of unpublished events, oldest first, but those of `held` users: on the
        leader's own connection when it has one (a lost connection raises and ends the lead)."""
        parameters: dict[str, Any] = {"limit": self.batch_size, "held": held}
        if self._connection is not None:
            query = _SQL_PENDING_EXCEPT_HELD if held else _SQL_PENDING_ALL
            return await (await self._connection.execute(query, parameters)).fetchall()
        async with self.db.autocommit() as connection:
            result = await connection.execute(_PENDING_EXCEPT_HELD if held else _PENDING, parameters)
            return [(row_id, user_id, seq, payload) for row_id, user_id, seq, payload in result]

    async def _publish(self, by_user: dict[str, list[Pending]]) -> list[tuple[list[int], bool]]:
        """Publish each user's events in order (users side by side): per user, in `by_user`'s
        order, the row ids published and whether some failed."""
        if isinstance(self.publisher, RoundPublisher):  # the in-process bus: the whole round at once
            answers = await self.publisher.publish_round(
                {user: [event for _, event in items] for user, items in by_user.items()}
            )
            for error in {error for _, error in answers.values() if error is not None}:
                self._note_failure(error)
            return [
                (
                    [row_id for row_id, event in items if event["id"] in answers[user][0]],
                    answers[user][1] is not None,
                )
                for user, items in by_user.items()
            ]
        limit = asyncio.Semaphore(self.concurrency)

        async def publish_user(user_id: str, items: list[Pending]) -> tuple[list[int], bool]:
            done: list[int] = []
            async with limit:
                for start in range(0, len(items), self.bulk_size):
                    chunk = items[start : start + self.bulk_size]
                    try:
                        ids = await self.publisher.publish(user_id, [event for _, event in chunk])
                    except PublishFailed as error:
                        self._note_failure(str(error))
                        return done, True
                    done.extend(row_id for row_id, event in chunk if event["id"] in ids)
                    if len(ids) < len(chunk):  # partial: keep the rest of this user's events for later
                        self._note_failure("some events of a bulk publish failed")
                        return done, True
            return done, False

        if len(by_user) == 1:  # the usual round, one person's change: no task to start
            [(user, items)] = by_user.items()
            return [await publish_user(user, items)]
        return list(await asyncio.gather(*(publish_user(user, items) for user, items in by_user.items())))

    async def _measure_backlog_now_and_then(self) -> None:
        """The backlog gauges after a pass, at most once a second (not a query per change)."""
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_measure >= 1.0:
            self._last_measure = loop_time
            await self.measure_backlog()

    async def measure_backlog(self) -> None:
        """Set the backlog gauges: unpublished rows and the age of the oldest."""
        with contextlib.suppress(Exception):
            async with self.db.autocommit() as connection:
                count, oldest = (
                    await connection.execute(
                        select(func.count(), func.min(OUTBOX.c.created_at)).where(
                            OUTBOX.c.published_at.is_(None)
                        )
                    )
                ).one()
            OUTBOX_BACKLOG.set(count)
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            OUTBOX_OLDEST_AGE.set(0 if oldest is None else max(0.0, (self.clock() - oldest).total_seconds()))

    def _note_failure(self, message: str) -> None:
        PUBLISH_FAILURES.inc()
        self.stats.failures += 1
        self.stats.last_error = message
        log.warning("outbox publish failed: %s", message)

    async def _mark_published(self, ids: list[int]) -> None:
        parameters = {"ids": ids, "now": self.clock()}
        if self._connection is not None:  # autocommit: one statement is its own transaction
            await self._connection.execute(_SQL_MARK_PUBLISHED, parameters)
        else:
            async with self.db.autocommit() as connection:
                await connection.execute(_MARK_PUBLISHED, parameters)
        self.stats.published += len(ids)
        OUTBOX_PUBLISHED.inc(len(ids))

    async def _count_attempt(self, ids: list[int]) -> None:
        with contextlib.suppress(Exception):  # bookkeeping only; the rows stay pending either way
            async with self.db.transaction() as session:
                await session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(ids), OUTBOX.c.published_at.is_(None))
                    .values(attempts=OUTBOX.c.attempts + 1, last_error=self.stats.last_error)
                )

    async def _prune_now_and_then(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_prune < 600:
            return
        self._last_prune = loop_time
        try:
            await self.prune()
        except Exception as error:  # it will be tried again in ten minutes
            log.warning("could not prune the outbox (%s)", type(error).__name__)

    async def prune(self) -> None:
        """Delete published rows older than the retention period."""
        cutoff = self.clock() - self.retention
        async with self.db.transaction() as session:
            await session.execute(delete(OutboxEvent).where(OUTBOX.c.published_at < cutoff))

    @staticmethod
    async def _try_lock(connection: psycopg.AsyncConnection[Any]) -> bool:
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK_KEY,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def _listen(self, connection: psycopg.AsyncConnection[Any]) -> None:
        async for _ in connection.notifies():
            self._wake.set()
        raise ConnectionError("the relay's database connection closed")
