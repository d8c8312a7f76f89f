"""Event pipeline figures (embedded mode on PostgreSQL), each with a same-run baseline where one applies.

    python bench/events.py [--seconds 10] [--reminders 1000] [--clients 1000]

1. Commit-to-WebSocket latency at 200 changes/s (event `time` to arrival at the user's socket), and
   at 100 changes/s for context; beside the 200/s run, the database's own commit latency (a one-row
   insert every 20 ms on a connection of its own), so that a disk's stalls are told from the service's.
2. Relay throughput into a fake Dapr sidecar vs the sidecar's own capacity (both measured here).
3. Lateness of N reminders all due in the same second (due time to `reminder.due` on the user's socket).
4. Fan-out: 1,000 WebSocket clients, each a different user, each receiving its own event.

Targets: commit-to-push p99 <= 25 ms; relay >= 0.5 x the sidecar's capacity; reminder lateness
p99 <= 50 ms; fan-out p99 <= 200 ms.

The client measures with its own cyclic garbage collector off (`client_gc_paused`) and keeps no
responses, so its pauses are not counted as the server's; the 200/s and 100/s runs each start with
one unmeasured second at their rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    client_gc_paused,
    percentile,
    print_ratio,
    scratch_database,
    server_process,
    sidecar_process,
)
from tests.helpers import TEST_SECRET, free_port, token

REMINDER_DUE = b'"type":"reminder.due"'


def event_age_ms(message: dict[str, Any]) -> float:
    sent = datetime.fromisoformat(str(message["time"]).replace("Z", "+00:00"))
    return (datetime.now(UTC) - sent).total_seconds() * 1000


async def receive_events(socket: ClientConnection, count: int, ages: list[float]) -> None:
    while count:
        message = json.loads(await socket.recv())
        if message.get("type") != "heartbeat":
            ages.append(event_age_ms(message))
            count -= 1


# ---- 1. commit to WebSocket ------------------------------------------------------------------


async def paced_writes(clients: list[httpx.AsyncClient], count: int, rate: int) -> list[int]:
    """`count` task creations, one every 1/rate s, the clients in turn; their status codes."""

    async def write(client: httpx.AsyncClient, index: int) -> int:
        return (await client.post("/api/tasks", json={"title": f"t{index}"})).status_code

    start = time.perf_counter()
    writes = []
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writes.append(asyncio.create_task(write(clients[index % len(clients)], index)))
    return list(await asyncio.gather(*writes))


async def commit_to_push(base: str, seconds: float, rate: int = 200, users: int = 20) -> list[float]:
    """Each user's events on that user's socket, `rate` changes/s in all. One second at the same
    rate goes first, unmeasured and with no socket open: the users' first writes, the server's
    connection pool and caches warming up are not the steady state this measures."""
    ws = base.replace("http://", "ws://") + "/ws/tasks?token="
    names = [f"bench-push-{index}-{uuid.uuid4().hex[:6]}" for index in range(users)]
    per_user = int(seconds * rate) // users
    ages: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {token(name)}"}, timeout=60
                )
            )
            for name in names
        ]
        warm_up = await paced_writes(clients, rate, rate)
        assert set(warm_up) == {201}, warm_up
        sockets = [await stack.enter_async_context(connect(ws + token(name))) for name in names]
        readers = [asyncio.create_task(receive_events(socket, per_user, ages)) for socket in sockets]
        with client_gc_paused():
            statuses = await paced_writes(clients, per_user * users, rate)
            await asyncio.wait_for(asyncio.gather(*readers), timeout=60)
        assert set(statuses) == {201}, statuses
    return ages


async def database_commits(url: str, stop: asyncio.Event, every: float = 0.02) -> list[float]:
    """The database's own commit latency meanwhile (a yardstick): a one-row insert every `every` s
    on a connection of its own. A disk that stalls a commit for 100 ms stalls the service's too."""
    samples: list[float] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY)")
        while not stop.is_set():
            started = time.perf_counter()
            await connection.execute("INSERT INTO bench_commit_probe DEFAULT VALUES")
            samples.append((time.perf_counter() - started) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    return samples


# ---- 2. relay vs sidecar ---------------------------------------------------------------------


async def sidecar_capacity(port: int, seconds: float, concurrency: int = 16) -> float:
    """Publishes/s the fake sidecar takes from well-behaved clients (the same request as the relay's)."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            while time.perf_counter() < stop:
                event = {
                    "specversion": "1.0",
                    "id": uuid.uuid4().hex,
                    "source": "/bench",
                    "type": "task.created",
                    "subject": "s",
                    "partitionkey": "u",
                    "data": {"n": done},
                }
                response = await http.post(
                    "/v1.0/publish/taskpubsub/task-events",
                    params={"metadata.partitionKey": f"u{done % 50}"},
                    content=json.dumps(event),
                    headers={"content-type": "application/cloudevents+json"},
                )
                assert response.status_code == 204
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def relay_throughput(url: str, port: int, events: int, users: int = 50) -> float:
    from mcp_server.db import Database
    from mcp_server.publishing import DaprPublisher
    from mcp_server.relay import OutboxRelay
    from mcp_server.schemas import TaskCreate
    from mcp_server.service import Caller, TaskService

    db = Database(url)
    service = TaskService(db)
    callers = [Caller(f"bench-relay-{index}") for index in range(users)]
    sem = asyncio.Semaphore(16)

    async def write(index: int) -> None:
        async with sem:
            await service.create(callers[index % users], TaskCreate(title=f"relay {index}"))

    await asyncio.gather(*(write(index) for index in range(events)))  # the backlog, written first
    publisher = DaprPublisher(port=port, pubsub="taskpubsub", topic="task-events")
    relay = OutboxRelay(db, publisher)
    started = time.perf_counter()
    published = 0
    while published < events:
        published += await relay.drain()
    elapsed = time.perf_counter() - started
    await publisher.aclose()
    await db.dispose()
    return events / elapsed


# ---- 3. reminder lateness --------------------------------------------------------------------


async def reminder_lateness(base: str, url: str, count: int) -> list[float]:
    """Due time to `reminder.due` arriving on the user's WebSocket, for `count` reminders of one
    user due in the same second. The tasks are added well ahead (as people set reminders); the
    bench checks every job was scheduled before the due time, so it measures the firing alone.
    The client notes each message's arrival and parses them all at the end: parsing a thousand
    JSON messages one by one as they come would add the client's own time to the later ones'."""
    user = f"bench-remind-{uuid.uuid4().hex[:6]}"
    due = (datetime.now(UTC) + timedelta(seconds=max(10, count * 0.04))).replace(microsecond=0)
    ws = base.replace("http://", "ws://") + "/ws/tasks?token=" + token(user)
    arrivals: list[tuple[float, bytes]] = []  # (arrival, message): parsed once all are in
    async with connect(ws, ping_interval=None, max_size=None) as socket:

        async def receive() -> None:
            expected = count
            while expected:
                message = await socket.recv(decode=False)  # bytes: no decoding either
                arrivals.append((time.time(), message))
                expected -= REMINDER_DUE in message  # a cheap test here; the parsed type decides below

        receiver = asyncio.create_task(receive())
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token(user)}"}, timeout=60
        ) as http:
            sem = asyncio.Semaphore(16)

            async def add(index: int) -> None:
                async with sem:
                    response = await http.post(
                        "/api/tasks", json={"title": f"r{index}", "remind": due.isoformat()}
                    )
                    assert response.status_code == 201

            await asyncio.gather(*(add(index) for index in range(count)))
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
            while True:
                cursor = await connection.execute(
                    "SELECT count(*) FROM scheduled_jobs WHERE data->>'userId' = %s", (user,)
                )
                row = await cursor.fetchone()
                if row and row[0] == count:
                    break
                assert datetime.now(UTC) < due, "the reminders were not all scheduled before they were due"
                await asyncio.sleep(0.05)
        assert datetime.now(UTC) < due, "the reminders were not all scheduled before they were due"
        with client_gc_paused():
            await asyncio.wait_for(receiver, timeout=(due - datetime.now(UTC)).total_seconds() + 60)
    return [
        (arrived - due.timestamp()) * 1000
        for arrived, message in arrivals
        if json.loads(message).get("type") == "reminder.due"
    ]


# ---- 4. fan-out ------------------------------------------------------------------------------


async def fan_out(base: str, clients: int) -> list[float]:
    ws = base.replace("http://", "ws://") + "/ws/tasks?token="
    users = [f"bench-fan-{index}-{uuid.uuid4().hex[:6]}" for index in range(clients)]
    ages: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for user in users:
            sockets.append(await stack.enter_async_context(connect(ws + token(user), ping_interval=None)))
        readers = [asyncio.create_task(receive_events(socket, 1, ages)) for socket in sockets]
        with client_gc_paused():
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                sem = asyncio.Semaphore(16)

                async def add(user: str) -> None:
                    async with sem:
                        await http.post(
                            "/api/tasks",
                            json={"title": "fan-out"},
                            headers={"Authorization": f"Bearer {token(user)}"},
                        )

                await asyncio.gather(*(add(user) for user in users))
                await asyncio.wait_for(asyncio.gather(*readers), timeout=120)
    return ages


def summary(name: str, samples: list[float]) -> str:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    return f"  {name:<44} n={len(samples):<6} p50={p50:8.1f} ms  p99={p99:8.1f} ms"


async def run(seconds: float, reminders: int, clients: int) -> None:
    with scratch_database() as url:
        env = {"DATABASE_URL": url, "AUTH_SECRET": TEST_SECRET, "LOG_LEVEL": "WARNING"}
        with server_process("bench.embedded_server", free_port(), env) as (base, _):
            stop = asyncio.Event()
            probe = asyncio.create_task(database_commits(url, stop))
            push_ages = await commit_to_push(base, seconds)
            stop.set()
            commits = await probe
            push_ages_half = await commit_to_push(base, seconds, rate=100)  # context: below saturation
            lateness = await reminder_lateness(base, url, reminders)
            fan = await fan_out(base, clients)
        with sidecar_process() as port:
            capacity = await sidecar_capacity(port, seconds=min(seconds, 5))
            relayed = await relay_throughput(url, port, events=int(capacity * 3))
    print("figures:")
    print(summary("commit -> WebSocket at 200 changes/s", push_ages))
    print(
        f"{summary('  the database alone: a one-row commit', commits)}  max={max(commits):8.1f} ms"
        "  (every 20 ms during the 200/s run)"
    )
    print(summary("commit -> WebSocket at 100 changes/s", push_ages_half))
    print(summary(f"reminder lateness, {reminders} due at once", lateness))
    print(summary(f"fan-out, {clients} clients of different users", fan))
    print(f"  fake sidecar capacity {capacity:8.0f} publishes/s;  relay {relayed:8.0f} events/s")
    print("targets:")
    print_ratio("commit -> push p99 (ms)", percentile(push_ages, 99), 25)
    print_ratio("relay / sidecar capacity", relayed / capacity, 0.5, at_most=False)
    print_ratio("reminder lateness p99 (ms)", percentile(lateness, 99), 50)
    print_ratio("fan-out p99 (ms)", percentile(fan, 99), 200)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--reminders", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.reminders, args.clients))


if __name__ == "__main__":
    main()
