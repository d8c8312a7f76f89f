"""Sidecar chaos: the distributed shape on loopback (mcp-server relaying through a fake Dapr sidecar,
and the four handler services it delivers to) while the sidecar fails 30% of publishes and job calls
and drops connections at random, sometimes after doing the work (the answer is lost: a true
duplicate publish). After healing and settling: no event lost, duplicates only where an answer was
lost, single effects (one audit row per event id, one next occurrence, one `reminder.due`), and
every reminder job in its right state.

Deliveries are pumped as daprd would without a dead-letter topic (Kafka redelivers a message until
the app takes it), so a handler's RETRY while the sidecar fails its job calls is retried, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from event_handlers.app import create_handler_app
from event_handlers.subscriptions import HANDLERS
from tests.event_handlers.conftest import dapr_settings
from tests.fakes import FakeSidecar
from tests.fakes.sidecar import PumpReport
from tests.helpers import serving, token
from tests.reliability.conftest import report, sized
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

API_TOKEN = "api-token-for-the-sidecar-chaos-0123456789"
APP_TOKEN = "app-token-from-the-sidecar-chaos-0123456789"
SEED = int(os.environ.get("RELIABILITY_SEED", "20261127"))
USERS = 8
CHANGES = sized(150, 1000)
FAIL_RATE = 0.3
DROP_RATE = 0.1
MAX_BACKOFF = 0.2


def chaos_settings(url: str, sidecar: FakeSidecar, **extra: Any) -> Settings:
    options: dict[str, Any] = {"relay_max_backoff_seconds": MAX_BACKOFF, **extra}
    return dapr_settings(url, sidecar, api_token=API_TOKEN, app_token=APP_TOKEN, **options)


def mcp_server_app(settings: Settings) -> FastAPI:
    return create_app(settings, role="mcp-server")


@contextlib.asynccontextmanager
async def distributed(settings: Settings) -> AsyncIterator[dict[str, str]]:
    urls: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        urls["mcp-server"] = await stack.enter_async_context(serving(mcp_server_app(settings)))
        for name in HANDLERS:
            urls[name] = await stack.enter_async_context(serving(create_handler_app(name, settings)))
        yield urls


async def subscriptions_without_dead_letters(sidecar: FakeSidecar, url: str) -> list[dict[str, Any]]:
    """The app's own subscriptions, minus the dead-letter topic: Kafka redelivers until taken."""
    found = await sidecar.subscriptions(url, APP_TOKEN)
    return [{key: value for key, value in item.items() if key != "deadLetterTopic"} for item in found]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def ceil_rfc3339(moment: datetime) -> str:
    whole = moment.astimezone(UTC).replace(microsecond=0)
    if whole < moment:
        whole += timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Writer:
    """One user's REST client and what it knows of its tasks."""

    user: str
    rng: random.Random
    http: httpx.AsyncClient
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> last answer
    near: dict[str, datetime] = field(default_factory=dict)  # reminders due during the run, untouched
    statuses: Counter[str] = field(default_factory=Counter)
    count: int = 0

    async def change(self) -> None:
        self.count += 1
        now = datetime.now(UTC)
        title = f"{self.user[-6:]} chaos {self.count}"
        pool = list(self.tasks)
        roll = self.rng.random()
        if not pool or roll < 0.3:
            kind = self.rng.choice(["plain", "far", "offset", "near", "repeat", "far"])
            body: dict[str, Any] = {"title": title}
            if kind == "far":
                body["remind"] = iso(now + timedelta(minutes=self.rng.randint(60, 48 * 60)))
            elif kind == "offset":
                body["due"] = iso(now + timedelta(minutes=self.rng.randint(180, 72 * 60)))
                body["remind"] = "30 minutes before"
            elif kind == "near":
                remind_at = (now + timedelta(seconds=self.rng.uniform(2, 6))).replace(microsecond=0)
                body["remind"] = iso(remind_at)
            elif kind == "repeat":
                body.update(due=iso(now + timedelta(days=1)), repeat="daily", remind="10 minutes before")
            response = await self.http.post("/api/tasks", json=body)
            self.statuses[f"{response.status_code}"] += 1
            if response.status_code == 201:
                task = response.json()
                if kind == "near":
                    self.near[task["id"]] = remind_at
                else:
                    self.tasks[task["id"]] = task
            return
        task_id = self.rng.choice(pool)
        task = self.tasks[task_id]
        if roll < 0.45:
            patch: dict[str, Any] = {"remind": iso(now + timedelta(minutes=self.rng.randint(60, 48 * 60)))}
        elif roll < 0.55:
            patch = {"remind": ""}
        elif roll < 0.65:
            patch = {"due": iso(now + timedelta(minutes=self.rng.randint(120, 96 * 60)))}
        elif roll < 0.72:
            patch = {"title": title + " (renamed)"}
        else:
            patch = {}
        if patch:
            response = await self.http.patch(f"/api/tasks/{task_id}", json=patch)
        elif roll < 0.88:
            action = "reopen" if task["completed"] else "complete"
            response = await self.http.post(f"/api/tasks/{task_id}/{action}")
        else:
            response = await self.http.delete(f"/api/tasks/{task_id}")
            self.statuses[f"{response.status_code}"] += 1
            if response.status_code == 200:
                del self.tasks[task_id]
            return
        self.statuses[f"{response.status_code}"] += 1
        if response.status_code == 200:
            self.tasks[task_id] = response.json()


@dataclass
class Pumps:
    """daprd's consumers and its job scheduler, running while the block runs."""

    sidecar: FakeSidecar
    urls: dict[str, str]
    reports: list[PumpReport] = field(default_factory=list)
    subscriptions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def prepare(self) -> None:
        for name in HANDLERS:
            self.subscriptions[name] = await subscriptions_without_dead_letters(self.sidecar, self.urls[name])

    async def pump(self, name: str) -> PumpReport:
        found = await self.sidecar.pump(
            self.urls[name],
            app_token=APP_TOKEN,
            subscriptions=self.subscriptions[name],
            dead_letter_topic=None,
            max_attempts=3,
        )
        self.reports.append(found)
        return found

    async def jobs(self) -> int:
        return len(await self.sidecar.run_due_jobs(self.urls["reminders"], app_token=APP_TOKEN))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async def pump_forever(name: str) -> None:
            while True:
                await self.pump(name)
                await asyncio.sleep(0.05)

        async def jobs_forever() -> None:
            while True:
                await self.jobs()
                await asyncio.sleep(0.1)

        tasks = [asyncio.create_task(pump_forever(name)) for name in HANDLERS]
        tasks.append(asyncio.create_task(jobs_forever()))
        try:
            yield
        finally:
            for task in tasks:
                if task.done():
                    task.result()  # surface a crash of a pump
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def settle_once(self) -> bool:
        """Deliver everything pending and fire due jobs; True when there was nothing to do."""
        idle = True
        for name in HANDLERS:
            found = await self.pump(name)
            idle = idle and not found.settled
        return await self.jobs() == 0 and idle


async def pending_in_outbox(url: str, users: list[str]) -> int:
    async with await psycopg.AsyncConnection.connect(url) as connection:
        row = await (
            await connection.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND user_id = ANY(%s)", (users,)
            )
        ).fetchone()
    return int(row[0]) if row else 0


def lost_answers(sidecar: FakeSidecar) -> set[str]:
    """Event ids in publish requests the sidecar processed but never answered (true duplicates)."""
    ids: set[str] = set()
    for received in sidecar.received:
        if received.kind not in ("publish", "publish_bulk") or received.answered or received.status is None:
            continue
        body = json.loads(received.body)
        entries = [entry["event"] for entry in body] if received.kind == "publish_bulk" else [body]
        ids.update(str(event["id"]) for event in entries)
    return ids


def job_story(name: str, snap: Snapshot, sidecar: FakeSidecar, now: datetime) -> str:
    """What the test knows of one job that should (not) exist: the task now, every call the sidecar
    got for the job (method, status or dropped, answered) and its triggers, so a rare failure can be
    read."""
    task = snap.tasks.get(name.removeprefix("reminder-"))
    job = sidecar.jobs.get(name)
    calls = [
        f"{r.method} {r.status if r.status is not None else 'dropped'}{'' if r.answered else ' (unanswered)'}"
        for r in sidecar.received
        if r.kind == "jobs" and r.path.endswith("/" + name)
    ]
    runs = [f"{run.outcome} {run.status} x{run.attempts}" for run in sidecar.job_runs if run.name == name]
    state = (
        "gone"
        if task is None
        else f"completed={task['completed']} remind_at={task['remind_at']} version={task['version']}"
    )
    found = f"due {job.due_time} data {json.dumps(job.data)}" if job else "absent"
    return f"  {name}: task {state}; now {now:%H:%M:%S.%f}; job {found}; calls {calls}; triggers {runs}"


def order_inversions(published: list[dict[str, Any]]) -> int:
    """Events first published after a later event of the same user (a reordering)."""
    seen: set[str] = set()
    highest: dict[str, int] = {}
    inversions = 0
    for event in published:
        if event["id"] in seen:
            continue
        seen.add(event["id"])
        user, seq = event["partitionkey"], int(event["sequence"])
        if seq < highest.get(user, 0):
            inversions += 1
        highest[user] = max(highest.get(user, 0), seq)
    return inversions


@pytest.mark.slow
@pytest.mark.timeout(sized(150, 900))
async def test_chaos_in_the_sidecar_loses_nothing_and_doubles_no_effect(postgres_url: str) -> None:
    rng = random.Random(SEED)
    run_id = f"{rng.getrandbits(32):08x}-{os.getpid()}"
    users = [f"chaos-{run_id}-{index}" for index in range(USERS)]
    figures: dict[str, Any] = {"changes": CHANGES, "users": USERS, "seed": SEED}
    async with (
        FakeSidecar(api_token=API_TOKEN) as sidecar,
        distributed(chaos_settings(postgres_url, sidecar)) as urls,
        contextlib.AsyncExitStack() as stack,
    ):
        writers = [
            Writer(
                user,
                random.Random(rng.random()),
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=urls["mcp-server"],
                        headers={"Authorization": f"Bearer {token(user)}"},
                        timeout=30,
                    )
                ),
            )
            for user in users
        ]
        pumps = Pumps(sidecar, urls)
        await pumps.prepare()
        started = time.monotonic()
        sidecar.fail(rate=FAIL_RATE, seed=SEED)
        done, phase = 0, -1

        async def write(writer: Writer) -> None:
            nonlocal done, phase
            while done < CHANGES:
                done += 1
                # Connections dropped in four phases: before processing, after (answer lost), ...
                if done * 4 // (CHANGES + 1) != phase:
                    phase = done * 4 // (CHANGES + 1)
                    sidecar.drop_connections(DROP_RATE, seed=SEED + phase, after_processing=phase % 2 == 1)
                await writer.change()

        async with pumps.running():
            await asyncio.gather(*(write(writer) for writer in writers))
            figures["write_s"] = round(time.monotonic() - started, 1)
            await asyncio.sleep(1.0)  # some more chaos on the backlog
        sidecar.heal()

        # Settle: the relay publishes the rest, the pumps deliver, the near reminders fire.
        last_near = max((at for writer in writers for at in writer.near.values()), default=datetime.now(UTC))
        deadline = time.monotonic() + sized(90, 300)
        while True:
            idle = await pumps.settle_once()
            quiet = idle and datetime.now(UTC) > last_near
            quiet = quiet and await pending_in_outbox(postgres_url, users) == 0
            if quiet and await pumps.settle_once():  # once more: the relay may have just published
                break
            if time.monotonic() > deadline:  # the checks below say what is missing
                break
            await asyncio.sleep(0.2)
        figures["settle_s"] = round(time.monotonic() - started - figures["write_s"], 1)
        now = datetime.now(UTC)
        snap = await snapshot(postgres_url, users)
        check(writers, snap, sidecar, pumps, now, figures)
        assert time.monotonic() <= deadline, "the pipeline did not settle"
    report("sidecar_chaos", **figures)


@dataclass
class Snapshot:
    tasks: dict[str, dict[str, Any]]
    outbox: list[tuple[str, str, str, int, str]]  # event id, user, type, seq, task
    audit: list[tuple[str, str, int, str, str]]  # event id, user, seq, type, task
    last_seq: dict[str, int]


async def snapshot(url: str, users: list[str]) -> Snapshot:
    async with await psycopg.AsyncConnection.connect(url) as connection:
        tasks = await (
            await connection.execute(
                "SELECT id::text, user_id, completed, remind_at, version, recurrence, series_id::text,"
                " occurrence FROM tasks WHERE user_id = ANY(%s)",
                (users,),
            )
        ).fetchall()
        outbox = await (
            await connection.execute(
                "SELECT event_id, user_id, event_type, seq, payload->>'subject' FROM outbox"
                " WHERE user_id = ANY(%s) ORDER BY id",
                (users,),
            )
        ).fetchall()
        audit = await (
            await connection.execute(
                "SELECT event_id, user_id, seq, event_type, task_id FROM audit_log WHERE user_id = ANY(%s)",
                (users,),
            )
        ).fetchall()
        seqs = await (
            await connection.execute("SELECT user_id, last_seq FROM users WHERE user_id = ANY(%s)", (users,))
        ).fetchall()
    columns = ("id", "user", "completed", "remind_at", "version", "recurrence", "series", "occurrence")
    return Snapshot(
        {row[0]: dict(zip(columns, row, strict=True)) for row in tasks},
        [tuple(row) for row in outbox],  # type: ignore[misc]
        [tuple(row) for row in audit],  # type: ignore[misc]
        {row[0]: row[1] for row in seqs},
    )


def check(
    writers: list[Writer],
    snap: Snapshot,
    sidecar: FakeSidecar,
    pumps: Pumps,
    now: datetime,
    figures: dict[str, Any],
) -> None:
    users = {writer.user for writer in writers}
    statuses = sum((writer.statuses for writer in writers), Counter[str]())
    assert set(statuses) <= {"200", "201"}, f"writes failed: {dict(statuses)}"  # never waits on Dapr

    # Every committed event was published; de-duplicated, exactly the committed set.
    committed = {row[0] for row in snap.outbox}
    published = [record.event for record in sidecar.published if record.event.get("partitionkey") in users]
    copies = Counter(str(event["id"]) for event in published)
    assert committed - set(copies) == set(), (
        f"{len(committed - set(copies))} committed events never published"
    )
    assert set(copies) - committed == set(), "published events that were never committed"
    doubled = {event_id for event_id, count in copies.items() if count > 1}
    lost = lost_answers(sidecar)
    assert doubled <= lost, f"{len(doubled - lost)} events published twice although the sidecar answered"

    # Single effects: one audit row per event id, per-user seq contiguous from 1.
    audit_ids = [row[0] for row in snap.audit]
    assert len(audit_ids) == len(set(audit_ids)), "an event was audited twice"
    assert set(audit_ids) == committed, f"{len(committed - set(audit_ids))} events missing from the audit log"
    for user in users:
        seqs = sorted(row[2] for row in snap.audit if row[1] == user)
        assert seqs == list(range(1, snap.last_seq[user] + 1)), f"{user}: audit seq has gaps or repeats"

    # Each near reminder fired exactly once; no other reminder fired (the rest are hours away).
    fired = Counter(row[4] for row in snap.audit if row[3] == "reminder.due")
    near = {task: at for writer in writers for task, at in writer.near.items()}
    assert all(fired[task] == 1 for task in near), f"near reminders fired {[fired[t] for t in near]}"
    assert set(fired) <= set(near), "a reminder fired that was not due"

    # Recurring: every completed occurrence has exactly one next occurrence.
    occurrences = Counter(
        (task["series"], task["occurrence"]) for task in snap.tasks.values() if task["series"]
    )
    assert all(count == 1 for count in occurrences.values())
    for task in snap.tasks.values():
        if task["series"] and task["completed"]:
            assert occurrences[(task["series"], task["occurrence"] + 1)] == 1, f"no next occurrence of {task}"

    # Jobs: exactly one per open task with a future reminder, with the right due time and data.
    expected = {
        f"reminder-{task['id']}": task
        for task in snap.tasks.values()
        if not task["completed"] and task["remind_at"] is not None and task["remind_at"] > now
    }
    jobs = {name: job for name, job in sidecar.jobs.items() if name.startswith("reminder-")}
    wrong = sorted(set(jobs) ^ set(expected))
    missing, extra = len(set(expected) - set(jobs)), len(set(jobs) - set(expected))
    assert not wrong, f"{missing} reminder jobs missing, {extra} too many:\n" + "\n".join(
        job_story(name, snap, sidecar, now) for name in wrong[:5]
    )
    for name, task in expected.items():
        job = jobs[name]
        assert job.due_time == ceil_rfc3339(task["remind_at"]), (name, job.due_time, task["remind_at"])
        assert job.data == {
            "taskId": task["id"],
            "userId": task["user"],
            "remindAt": int(task["remind_at"].timestamp()),
            "version": task["version"],
        }, name

    fates = Counter(item.fate for found in pumps.reports for item in found.settled)
    assert fates["dropped"] == fates["dead_lettered"] == 0, f"deliveries dropped: {dict(fates)}"
    retries = sum(
        1 for found in pumps.reports for item in found.deliveries if item.delivery.outcome == "RETRY"
    )
    injected = Counter(
        "dropped" if not r.answered else str(r.status)
        for r in sidecar.received
        if r.kind in ("publish", "publish_bulk", "jobs")
    )
    figures.update(
        events=len(committed),
        published=len(published),
        physical_duplicates=len(published) - len(copies),
        answers_lost=len(lost),
        order_inversions=order_inversions(published),
        sidecar_requests=dict(injected),
        handler_retries=retries,
        redelivered_after_exhausted_retries=fates["blocked"],
        reminders_fired=sum(fired.values()),
        jobs=len(jobs),
    )


async def test_relay_honours_relay_max_backoff_seconds(postgres_url: str) -> None:
    """After a sidecar outage the relay publishes within `relay_max_backoff_seconds` of its return."""
    user = f"backoff-{random.Random(SEED).getrandbits(32):08x}-{os.getpid()}"
    async with FakeSidecar(api_token=API_TOKEN) as sidecar:
        settings = chaos_settings(postgres_url, sidecar, relay_max_backoff_seconds=0.5)
        async with (
            serving(create_app(settings, role="mcp-server")) as url,
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token(user)}"}) as http,
        ):
            async with sidecar.down():
                assert (await http.post("/api/tasks", json={"title": "during the outage"})).status_code == 201
                await asyncio.sleep(4.5)  # unbounded doubling would now wait 4 s before its next try
            back = time.monotonic()
            await sidecar.wait_published(1, timeout=15)
            waited = time.monotonic() - back
    assert waited < 0.5 + 1.0, f"published {waited:.1f} s after the sidecar came back (max backoff 0.5 s)"


async def test_push_clients_see_every_event_after_a_partial_bulk_failure(postgres_url: str) -> None:
    """A backlog goes out in one bulk publish; the sidecar fails some entries. A live WebSocket
    client of that user must still receive every event, each once, in `seq` order."""
    user = f"push-{random.Random(SEED).getrandbits(32):08x}-{os.getpid()}"
    count = 12
    async with FakeSidecar(api_token=API_TOKEN) as sidecar:
        settings = chaos_settings(postgres_url, sidecar)
        async with (
            distributed(settings) as urls,
            httpx.AsyncClient(
                base_url=urls["mcp-server"], headers={"Authorization": f"Bearer {token(user)}"}
            ) as http,
        ):
            pumps = Pumps(sidecar, urls)
            await pumps.prepare()
            ws = urls["push"].replace("http://", "ws://") + f"/ws/tasks?token={token(user)}"
            async with connect(ws) as socket:
                async with sidecar.down():  # a backlog builds up
                    for index in range(count):
                        response = await http.post("/api/tasks", json={"title": f"backlog {index}"})
                        assert response.status_code == 201
                sidecar.fail(publish=True, rate=0.3, seed=SEED)  # some bulk entries fail, some pass
                deadline = time.monotonic() + 30
                while len({r.event["id"] for r in sidecar.published}) < count:
                    assert time.monotonic() < deadline, "the backlog was not published"
                    await pumps.pump("push")
                    await asyncio.sleep(0.1)
                await pumps.pump("push")
                received: list[int] = []
                with contextlib.suppress(TimeoutError):
                    while True:
                        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=1.0))
                        if message.get("type") != "heartbeat":
                            received.append(int(message["seq"]))
    seqs = [int(r.event["sequence"]) for r in sidecar.published]
    assert order_inversions([r.event for r in sidecar.published]) > 0, f"no reordering happened: {seqs}"
    assert received == list(range(1, count + 1)), f"published in the order {seqs}; the client got {received}"


def test_lost_answers_reads_what_the_sidecar_processed_unanswered() -> None:
    """The duplicate allowance of the chaos test comes only from answers the sidecar lost."""
    from tests.fakes.sidecar import Received

    event = {"id": "e1", "partitionkey": "u", "sequence": "1"}
    bulk = [{"entryId": "e2", "event": {"id": "e2"}}, {"entryId": "e3", "event": {"id": "e3"}}]
    sidecar = FakeSidecar()

    def received(kind: Any, body: Any, status: int | None, answered: bool) -> Received:
        return Received(kind, "POST", "/", "", {}, json.dumps(body).encode(), status, answered)

    sidecar.received.extend(
        [
            received("publish", event, 204, False),  # processed, answer lost
            received("publish_bulk", bulk, 204, False),
            received("publish", {"id": "e4"}, None, False),  # dropped before processing
            received("publish", {"id": "e5"}, 204, True),
        ]
    )
    assert lost_answers(sidecar) == {"e1", "e2", "e3"}
    assert order_inversions([{"id": "a", "partitionkey": "u", "sequence": "2"}, event]) == 1
