"""The distributed shape on one machine: mcp-server and the four handler services, each a real
HTTP app, talking to a fake Dapr sidecar that answers and delivers per DAPR-CONTRACT.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect

from mcp_server.db import Database
from mcp_server.models import AuditEntry, Task
from tests.event_handlers.conftest import API_TOKEN, APP_TOKEN, dapr_settings
from tests.fakes import FakeSidecar
from tests.helpers import eventually, serving, token
from todo_chatbot.app import create_app


def rest(base: str, user: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token(user)}"}, timeout=30)


@pytest.fixture
async def fast_relay(database_url: str, sidecar: FakeSidecar) -> AsyncIterator[str]:
    """An mcp-server whose relay retries at most every 0.5 s (so recovery is quick to observe)."""
    settings = dapr_settings(database_url, sidecar, relay_max_backoff_seconds=0.5)
    async with serving(create_app(settings, role="mcp-server")) as url:
        yield url


async def test_the_mcp_server_closes_its_sidecar_connections_at_shutdown(
    database_url: str, sidecar: FakeSidecar, new_caller: Callable[..., Any]
) -> None:
    user = new_caller().user_id
    app = create_app(dapr_settings(database_url, sidecar), role="mcp-server")
    async with serving(app) as url, rest(url, user) as http:
        assert (await http.post("/api/tasks", json={"title": "published"})).status_code == 201
        await eventually(lambda: any(r.event["partitionkey"] == user for r in sidecar.published), timeout=10)
        publisher = app.state.relay.publisher
        assert not publisher.closed
    assert publisher.closed


async def test_sidecar_outage_loses_nothing_and_keeps_order(
    fast_relay: str, sidecar: FakeSidecar, new_caller: Callable[..., Any]
) -> None:
    users = [new_caller().user_id for _ in range(5)]
    statuses: list[int] = []

    async def write(user: str, count: int) -> None:
        async with rest(fast_relay, user) as http:
            for index in range(count):
                response = await http.post("/api/tasks", json={"title": f"{user} task {index}"})
                statuses.append(response.status_code)
                await asyncio.sleep(0.01)

    async def outage() -> None:
        async with sidecar.down():  # connections refused ...
            await asyncio.sleep(5)
        sidecar.fail(publish=True, status=500)  # ... then every publish answers 500
        await asyncio.sleep(5)
        sidecar.heal()

    started = time.monotonic()
    await asyncio.gather(outage(), *(write(user, 100) for user in users))
    assert statuses == [201] * 500  # writes never waited on the sidecar
    assert time.monotonic() - started < 30

    def ours() -> list[Any]:  # the relay also publishes what other tests left in this database
        return [record for record in sidecar.published if record.event["partitionkey"] in users]

    await eventually(lambda: len(ours()) >= 500, timeout=30)
    await asyncio.sleep(0.5)

    published = ours()
    ids = [record.event["id"] for record in published]
    assert len(ids) == 500 and len(set(ids)) == 500  # exactly once per id
    by_user: dict[str, list[int]] = defaultdict(list)
    for record in published:
        assert record.content_type == "application/cloudevents+json"
        assert (
            record.metadata["partitionKey"] == record.event["partitionkey"] == record.event["data"]["userId"]
        )
        assert record.headers.get("dapr-api-token") == API_TOKEN
        by_user[record.event["partitionkey"]].append(int(record.event["sequence"]))
    for user, sequence in by_user.items():
        assert sequence == list(range(1, 101)), user  # per-user order, no gaps
    assert sidecar.requests["publish_bulk"] > 0  # the backlog went out in bulk


async def test_events_delivered_three_times_interleaved_have_single_effects(
    services: dict[str, str],
    sidecar: FakeSidecar,
    pump_all: Callable[..., Any],
    new_caller: Callable[..., Any],
    database_url: str,
) -> None:
    user = new_caller().user_id
    async with rest(services["mcp-server"], user) as http:
        daily = (
            await http.post(
                "/api/tasks", json={"title": "Journal", "repeat": "daily", "due": "2030-06-01 21:00"}
            )
        ).json()
        await http.post("/api/tasks", json={"title": "Past reminder", "remind": "2020-01-01 09:00"})
        for index in range(3):
            await http.post("/api/tasks", json={"title": f"Plain {index}", "tags": ["x"]})
        await http.post(f"/api/tasks/{daily['id']}/complete")
        await http.patch(f"/api/tasks/{daily['id']}", json={"title": "Journal (done)"})
    await sidecar.wait_published(7)

    await pump_all(duplicate=3, interleave=True, seed=11)
    # The past reminder was set: its job is due at once. Trigger it twice (at-least-once).
    await sidecar.run_due_jobs(services["reminders"], app_token=APP_TOKEN)
    for name in [name for name in sidecar.jobs if name.startswith("reminder-")]:
        await sidecar.trigger_job(services["reminders"], name, app_token=APP_TOKEN)
    # + the next occurrence and the reminder (written by the reminders service: on SQLite, with no
    # LISTEN/NOTIFY between services, the relay's poll picks it up)
    await eventually(lambda: any(r.event["type"] == "reminder.due" for r in sidecar.published), timeout=15)
    await sidecar.wait_published(9)
    await pump_all(duplicate=3, interleave=True, seed=12)
    await pump_all(duplicate=2)  # and everything once more, late

    events = {
        record.event["id"]: record.event
        for record in sidecar.published
        if record.event["partitionkey"] == user
    }
    kinds = sorted(event["type"] for event in events.values())
    assert kinds.count("reminder.due") == 1
    database = Database(database_url)
    try:
        async with database.sessions() as session:
            audited = await session.scalar(select(func.count()).where(AuditEntry.user_id == user))
            occurrences = (
                await session.scalars(
                    select(Task.occurrence).where(Task.user_id == user, Task.recurrence.is_not(None))
                )
            ).all()
    finally:
        await database.dispose()
    assert audited == len(events)  # one audit row per distinct event
    assert sorted(occurrences) == [1, 2]  # exactly one next occurrence


async def test_reminder_jobs_follow_the_task(
    services: dict[str, str],
    sidecar: FakeSidecar,
    pump_all: Callable[..., Any],
    new_caller: Callable[..., Any],
) -> None:
    user = new_caller().user_id
    remind_at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    async with rest(services["mcp-server"], user) as http:
        task = (
            await http.post("/api/tasks", json={"title": "Dentist", "remind": remind_at.isoformat()})
        ).json()
        await sidecar.wait_published(len(sidecar.published))
        await eventually(lambda: any(r.event["subject"] == task["id"] for r in sidecar.published))
        await pump_all()
        job = sidecar.jobs[f"reminder-{task['id']}"]
        assert job.raw["overwrite"] is True and "name" not in job.raw
        assert job.raw["failurePolicy"] == {"constant": {"interval": "3s", "maxRetries": 5}}
        assert job.due_at == remind_at
        assert job.data == {
            "taskId": task["id"],
            "userId": user,
            "remindAt": int(remind_at.timestamp()),
            "version": 1,
        }
        calls_with_token = [call for call in sidecar.received if call.kind == "jobs"]
        assert all(call.headers.get("dapr-api-token") == API_TOKEN for call in calls_with_token)

        later = remind_at + timedelta(minutes=30)
        await http.patch(f"/api/tasks/{task['id']}", json={"remind": later.isoformat()})  # snooze
        await eventually(lambda: sum(r.event["subject"] == task["id"] for r in sidecar.published) == 2)
        await pump_all()
        assert sidecar.jobs[f"reminder-{task['id']}"].due_at == later

        await http.post(f"/api/tasks/{task['id']}/complete")
        await eventually(lambda: sum(r.event["subject"] == task["id"] for r in sidecar.published) == 3)
        await pump_all()
        assert f"reminder-{task['id']}" not in sidecar.jobs


async def test_push_service_streams_a_users_events_only(
    services: dict[str, str],
    sidecar: FakeSidecar,
    pump_all: Callable[..., Any],
    new_caller: Callable[..., Any],
) -> None:
    alice, bob = new_caller().user_id, new_caller().user_id
    ws = services["push"].replace("http://", "ws://") + "/ws/tasks"
    async with (
        connect(ws, subprotocols=["todo.bearer", token(alice)]) as alice_socket,  # type: ignore[list-item]
        connect(ws + f"?token={token(bob)}") as bob_socket,
    ):
        assert alice_socket.subprotocol == "todo.bearer"
        async with (
            rest(services["mcp-server"], alice) as as_alice,
            rest(services["mcp-server"], bob) as as_bob,
        ):
            await as_alice.post("/api/tasks", json={"title": "Alice's"})
            await as_bob.post("/api/tasks", json={"title": "Bob's"})
        await eventually(lambda: {r.event["partitionkey"] for r in sidecar.published} >= {alice, bob})
        await pump_all(duplicate=2)
        for socket, title in ((alice_socket, "Alice's"), (bob_socket, "Bob's")):
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=5))
            assert message["data"]["title"] == title and message["seq"] == 1
            with contextlib.suppress(TimeoutError):  # the duplicate delivery was not pushed again
                extra = json.loads(await asyncio.wait_for(socket.recv(), timeout=0.3))
                assert extra["type"] == "heartbeat", extra
