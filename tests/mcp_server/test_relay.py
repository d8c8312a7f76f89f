"""The outbox relay on its own: wake-ups, one leader per database, retries, pruning."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from mcp_server.db import Database
from mcp_server.models import OutboxEvent
from mcp_server.publishing import DaprPublisher
from mcp_server.relay import OutboxRelay
from mcp_server.schemas import TaskCreate
from mcp_server.service import Caller, TaskService
from tests.fakes import FakeSidecar
from tests.helpers import eventually


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def publisher(sidecar: FakeSidecar) -> DaprPublisher:
    return DaprPublisher(port=sidecar.port, pubsub="taskpubsub", topic="task-events")


def mine(sidecar: FakeSidecar, user: str) -> list[dict[str, Any]]:
    return [record.event for record in sidecar.published if record.event.get("partitionkey") == user]


async def test_a_commit_wakes_the_relay_at_once(db: Database, new_caller: Any) -> None:
    caller: Caller = new_caller()
    async with FakeSidecar() as sidecar:
        relay = OutboxRelay(db, publisher(sidecar), poll_seconds=60)  # the poll would be far too late
        service = TaskService(db)
        service.on_commit(relay.wake)
        async with running(relay):
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await service.create(caller, TaskCreate(title="Quick"))
            await eventually(lambda: len(mine(sidecar, caller.user_id)) == 1, timeout=3)
            assert time.monotonic() - started < 2.0  # the poll alone would take 60 s


async def test_another_process_commit_wakes_the_relay_through_notify(
    postgres_url: str, new_caller: Any
) -> None:
    """A row written by another service (no in-process signal) is picked up via LISTEN/NOTIFY."""
    caller: Caller = new_caller()
    relay_db, writer_db = Database(postgres_url), Database(postgres_url)
    try:
        async with (
            FakeSidecar() as sidecar,
            running(OutboxRelay(relay_db, publisher(sidecar), poll_seconds=60)),
        ):
            await asyncio.sleep(0.5)  # leader, listening
            started = time.monotonic()
            await TaskService(writer_db).create(caller, TaskCreate(title="From elsewhere"))
            await eventually(lambda: len(mine(sidecar, caller.user_id)) == 1, timeout=3)
            assert time.monotonic() - started < 2.0  # the poll alone would take 60 s
    finally:
        await relay_db.dispose()
        await writer_db.dispose()


async def test_only_one_relay_leads_on_postgres(postgres_url: str, new_caller: Any) -> None:
    caller: Caller = new_caller()
    databases = [Database(postgres_url) for _ in range(3)]
    try:
        async with FakeSidecar() as sidecar:
            relays = [OutboxRelay(database, publisher(sidecar), poll_seconds=0.2) for database in databases]
            async with contextlib.AsyncExitStack() as stack:
                for relay in relays:
                    await stack.enter_async_context(running(relay))
                service = TaskService(databases[0])
                for index in range(60):
                    await service.create(caller, TaskCreate(title=f"Task {index}"))
                await eventually(lambda: len(mine(sidecar, caller.user_id)) >= 60, timeout=10)
                await asyncio.sleep(0.5)
            events = mine(sidecar, caller.user_id)
            assert len(events) == 60 and len({event["id"] for event in events}) == 60
            assert [int(event["sequence"]) for event in events] == list(range(1, 61))
            assert sum(1 for relay in relays if relay.stats.published) == 1  # one leader did it all
    finally:
        for database in databases:
            await database.dispose()


async def test_the_leader_that_loses_its_connection_leads_again(postgres_url: str, new_caller: Any) -> None:
    """The leader reads and marks events on a connection of its own; when that one is cut (a
    restart, an idle timeout, an administrator), it gives up the lead, takes it again, and relays."""
    caller: Caller = new_caller()
    relay_db = Database(postgres_url)
    try:
        async with FakeSidecar() as sidecar:
            relay = OutboxRelay(relay_db, publisher(sidecar), poll_seconds=0.2)
            service = TaskService(relay_db)
            async with running(relay):
                await service.create(caller, TaskCreate(title="Before"))
                await eventually(lambda: relay.stats.published >= 1, timeout=10)
                connection = relay._connection
                assert connection is not None
                async with relay_db.autocommit() as admin:
                    await admin.execute(select(func.pg_terminate_backend(connection.info.backend_pid)))
                await service.create(caller, TaskCreate(title="After"))
                await eventually(lambda: len(mine(sidecar, caller.user_id)) == 2, timeout=15)
                await eventually(lambda: relay._connection not in (None, connection), timeout=5)
        async with relay_db.sessions() as session:
            pending = await session.scalar(
                select(func.count()).where(
                    OutboxEvent.user_id == caller.user_id, OutboxEvent.published_at.is_(None)
                )
            )
        assert pending == 0
    finally:
        await relay_db.dispose()


async def test_failures_back_off_and_count_attempts(db: Database, new_caller: Any) -> None:
    caller: Caller = new_caller()
    async with FakeSidecar() as sidecar:
        relay = OutboxRelay(db, publisher(sidecar), poll_seconds=0.1, max_backoff_seconds=0.3)
        await TaskService(db).create(caller, TaskCreate(title="Patience"))
        sidecar.fail(publish=True, status=500)
        async with running(relay):
            await eventually(lambda: relay.stats.failures >= 3, timeout=15)
            assert mine(sidecar, caller.user_id) == []
            sidecar.heal()
            await eventually(lambda: len(mine(sidecar, caller.user_id)) == 1, timeout=15)
            await eventually(lambda: relay.stats.published >= 1, timeout=15)  # and marked published
        async with db.sessions() as session:
            row = await session.scalar(select(OutboxEvent).where(OutboxEvent.user_id == caller.user_id))
        assert row is not None and row.published_at is not None and row.attempts >= 1
        assert "500" in (row.last_error or "")


async def test_backlog_gauges_count_what_waits(db: Database, new_caller: Any) -> None:
    """`todo_outbox_backlog` and the oldest row's age grow while the sidecar refuses and fall once
    the events are out (measured after a pass, at most once a second)."""
    caller: Caller = new_caller()

    def gauge(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    async def unpublished() -> int:
        async with db.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
                )
                or 0
            )

    async with FakeSidecar() as sidecar:
        sidecar.fail(publish=True, status=500)
        relay = OutboxRelay(db, publisher(sidecar), poll_seconds=0.1, max_backoff_seconds=0.2)
        for title in ("one", "two", "three"):
            await TaskService(db).create(caller, TaskCreate(title=title))
        async with running(relay):
            await eventually(
                lambda: gauge("todo_outbox_backlog") >= 3 and gauge("todo_outbox_oldest_age_seconds") >= 1,
                timeout=10,
            )
            sidecar.heal()
            await eventually(lambda: len(mine(sidecar, caller.user_id)) == 3, timeout=15)
            await eventually(lambda: relay.stats.published >= 3, timeout=15)
        await relay.measure_backlog()
        assert gauge("todo_outbox_backlog") == await unpublished()


async def test_published_rows_are_pruned_after_retention(db: Database, new_caller: Any) -> None:
    caller: Caller = new_caller()
    service = TaskService(db)
    async with FakeSidecar() as sidecar:
        relay = OutboxRelay(db, publisher(sidecar), retention=timedelta(hours=1))
        for title in ("old", "new", "unpublished"):
            await service.create(caller, TaskCreate(title=title))
        mine_rows = OutboxEvent.user_id == caller.user_id
        async with db.transaction() as session:
            ids = (
                await session.scalars(select(OutboxEvent.id).where(mine_rows).order_by(OutboxEvent.id))
            ).all()
            long_ago = datetime.now(UTC) - timedelta(hours=2)
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id == ids[0]).values(published_at=long_ago)
            )
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id == ids[1]).values(published_at=datetime.now(UTC))
            )
        await relay.prune()
    async with db.sessions() as session:
        left = (await session.scalars(select(OutboxEvent.id).where(mine_rows).order_by(OutboxEvent.id))).all()
        assert list(left) == list(ids[1:])
        assert (
            await session.scalar(select(func.count()).where(mine_rows, OutboxEvent.published_at.is_(None)))
            == 1
        )


class Flaky:
    """A publisher that fails some users' first batch: the others must not wait for them."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.calls: list[tuple[str, int]] = []

    async def publish(self, user_id: str, events: Sequence[dict[str, Any]]) -> set[str]:
        from mcp_server.publishing import PublishFailed

        self.calls.append((user_id, len(events)))
        if user_id in self.failing:
            self.failing.discard(user_id)
            raise PublishFailed("scripted failure")
        return {str(event["id"]) for event in events}


@pytest.mark.parametrize("backlog", [1, 25])
async def test_one_failing_user_does_not_hold_back_others(
    db: Database, new_caller: Any, backlog: int
) -> None:
    stuck, fine = new_caller(), new_caller()
    service = TaskService(db)
    for index in range(backlog):
        await service.create(stuck, TaskCreate(title=f"stuck {index}"))
        await service.create(fine, TaskCreate(title=f"fine {index}"))
    flaky = Flaky({stuck.user_id})
    # A failing user is first held for 1.5 s: a drain on a busy machine, with other tests' events in
    # the same outbox, can take longer than the usual 0.25 s, and then the hold ends within it.
    relay = OutboxRelay(db, flaky, min_backoff_seconds=1.5, max_backoff_seconds=5)
    await relay.drain()
    assert await relay.drain() == 0  # within the hold, the stuck user stays held back
    async with db.sessions() as session:
        pending = (
            await session.scalars(
                select(OutboxEvent.user_id).where(
                    OutboxEvent.user_id.in_([stuck.user_id, fine.user_id]), OutboxEvent.published_at.is_(None)
                )
            )
        ).all()
    assert set(pending) == {stuck.user_id} and len(pending) == backlog  # while the others went on
    await asyncio.sleep(1.6)  # the hold is over
    await relay.drain()
    async with db.sessions() as session:
        assert not (
            await session.scalars(
                select(OutboxEvent.id).where(
                    OutboxEvent.user_id == stuck.user_id, OutboxEvent.published_at.is_(None)
                )
            )
        ).all()


class Refusing:
    """A publisher that never takes one user's events (a poison event, say)."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.published: list[str] = []

    async def publish(self, user_id: str, events: Sequence[dict[str, Any]]) -> set[str]:
        from mcp_server.publishing import PublishFailed

        if user_id == self.refused:
            raise PublishFailed("never")
        self.published.extend(str(event["subject"]) for event in events)
        return {str(event["id"]) for event in events}


async def test_a_stuck_user_does_not_delay_everyone_else(db: Database, new_caller: Any) -> None:
    stuck, other = new_caller(), new_caller()
    service = TaskService(db)
    refusing = Refusing(stuck.user_id)
    relay = OutboxRelay(db, refusing, poll_seconds=60, max_backoff_seconds=30)
    service.on_commit(relay.wake)
    await service.create(stuck, TaskCreate(title="poison"))
    async with running(relay):
        # The stuck user's retries back off, doubling: 0.25 + 0.5 + 1 + 2 s, then 4 s. Were that a
        # backoff of the whole relay, the other user's events would wait up to 4 s.
        await asyncio.sleep(4.0)
        for index in range(3):
            task = await service.create(other, TaskCreate(title=f"prompt {index}"))
            started = time.monotonic()
            await eventually(lambda task=task: str(task.id) in refusing.published, timeout=10)
            assert time.monotonic() - started < 2.0
