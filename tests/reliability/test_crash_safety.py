"""Crash safety: SIGKILL `todo-chatbot serve` in the middle of MCP traffic, restart it, and check
that nothing a client saw succeed was lost, that every change has exactly one event (outbox and
audit log), that pending reminders still fire exactly once (never early), and that a completed
repeating task has exactly one next occurrence.

Authentication is on (`AUTH_SECRET`): each of the 8 clients is its own user, so the 8 users' writes
run concurrently through one relay and one set of handlers (as in production) while each user's
event sequence can be checked on its own (contiguous from 1). With auth off the 8 clients would
share one user and one sequence, and a lost or doubled event could hide behind another client's.

A change whose call failed because of the kill is "uncertain": it may or may not have happened, but
if it did it must be complete (the task and its event both present). Tasks touched by an uncertain
change are left alone afterwards, so every later answer stays predictable. A call that fails while
the service is up (not around the kill) is a failure of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from mcp.types import CallToolResult
from psycopg.rows import dict_row

from tests.helpers import TEST_SECRET, free_port, mcp_over_http, token
from tests.reliability.conftest import report, sized

COMMAND = str(Path(sys.executable).with_name("todo-chatbot"))
CLIENTS = 8
CHANGES = sized(200, 2000)
SEED = int(os.environ.get("RELIABILITY_SEED", "20261127"))
EVENT_OF = {
    "add": "task.created",
    "add_reminder": "task.created",
    "add_repeat": "task.created",
    "update": "task.updated",
    "complete": "task.completed",
    "reopen": "task.reopened",
    "delete": "task.deleted",
}


class Service:
    """`todo-chatbot serve` as a child process on one port, kept across restarts."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> float:
        """Start it and wait until /readyz answers 200; returns the seconds that took."""
        started = time.monotonic()
        self.starts += 1
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [COMMAND, "serve", "--port", str(self.port)], env=self.env, stdout=log, stderr=log
            )
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            assert self.process.poll() is None, f"serve exited with {self.process.returncode}; see {self.log}"
            assert time.monotonic() - started < timeout, f"serve not ready within {timeout} s"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Op:
    kind: str  # a key of EVENT_OF
    task_id: str | None = None
    title: str | None = None
    remind_at: datetime | None = None

    @property
    def tool(self) -> str:
        return "add_task" if self.kind.startswith("add") else f"{self.kind}_task"

    @property
    def arguments(self) -> dict[str, Any]:
        if self.kind == "add":
            return {"title": self.title, "tags": ["crash"]}
        if self.kind == "add_reminder":
            assert self.remind_at is not None
            return {"title": self.title, "remind": self.remind_at.isoformat()}
        if self.kind == "add_repeat":
            return {"title": self.title, "repeat": "daily", "due": "tomorrow 8am"}
        if self.kind == "update":
            return {"task_id": self.task_id, "title": self.title}
        return {"task_id": self.task_id}


@dataclass
class Ledger:
    """What one client (one user) saw."""

    user: str
    rng: random.Random
    live: dict[str, bool] = field(default_factory=dict)  # task id -> completed
    expected: list[tuple[str, str, int | None]] = field(default_factory=list)  # (task, type, version)
    last_version: dict[str, int] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    reminders: dict[str, datetime] = field(default_factory=dict)  # confirmed reminder tasks
    reminder_set_at: dict[str, datetime] = field(default_factory=dict)  # when the client saw it set
    uncertain: list[Op] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # tasks an uncertain change may have changed
    tool_errors: list[str] = field(default_factory=list)
    in_flight: Op | None = None
    count: int = 0

    def next_op(self) -> Op:
        self.count += 1
        title = f"{self.user[-8:]} change {self.count}"
        pool = [task for task in self.live if task not in self.touched]
        roll = self.rng.random()
        if self.count == 1 or roll < 0.04:  # a reminder a few seconds ahead, left alone afterwards
            lead = timedelta(seconds=self.rng.uniform(3.0, 8.0))
            return Op(
                "add_reminder", title=title, remind_at=(datetime.now(UTC) + lead).replace(microsecond=0)
            )
        if not pool or roll < 0.3:
            return Op("add_repeat" if roll < 0.1 else "add", title=title)
        task = self.rng.choice(pool)
        if roll < 0.55:
            return Op("update", task_id=task, title=title + " (renamed)")
        if roll < 0.85:
            return Op("reopen" if self.live[task] else "complete", task_id=task)
        return Op("delete", task_id=task)

    def settle(self, op: Op, result: CallToolResult) -> None:
        if result.is_error or result.structured_content is None:
            self.tool_errors.append(" ".join(getattr(block, "text", "") for block in result.content))
            return
        data = result.structured_content
        task_id = str(data["id"])
        if op.kind == "delete":
            self.expected.append((task_id, "task.deleted", None))
            self.deleted.add(task_id)
            self.live.pop(task_id, None)
            return
        version = int(data["version"])
        self.expected.append((task_id, EVENT_OF[op.kind], version))
        self.last_version[task_id] = version
        if op.kind == "add_reminder":
            assert op.remind_at is not None
            self.reminders[task_id] = op.remind_at
            self.reminder_set_at[task_id] = datetime.now(UTC)
        else:
            self.live[task_id] = bool(data["completed"])

    def lost_track(self) -> None:
        """The call in flight failed: it may or may not have happened."""
        op, self.in_flight = self.in_flight, None
        if op is not None:
            self.uncertain.append(op)
            if op.task_id is not None:
                self.touched.add(op.task_id)


@dataclass
class Run:
    service: Service
    users: list[str]
    kill_at: int
    attempts: int = 0
    killed_at: datetime | None = None
    down: tuple[float, float] | None = None  # monotonic: killed, ready again
    kill_now: asyncio.Event = field(default_factory=asyncio.Event)
    failures: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)

    def expected_failure(self, moment: float) -> bool:
        """Around the kill: from the kill until shortly after the restarted service was ready."""
        if self.kill_now.is_set() and self.down is None:
            return True
        return self.down is not None and self.down[0] <= moment <= self.down[1] + 2.0


async def drive(run: Run, ledger: Ledger, deadline: float) -> None:
    """One client: MCP calls until the run has made its changes; reconnects after the kill."""
    while run.attempts < CHANGES:
        try:
            async with mcp_over_http(run.service.base, token(ledger.user)) as client:
                while run.attempts < CHANGES:
                    op = ledger.next_op()
                    run.attempts += 1
                    if run.attempts == run.kill_at:
                        run.kill_now.set()
                    ledger.in_flight = op
                    result = await client.call_tool(op.tool, op.arguments)
                    ledger.in_flight = None
                    ledger.settle(op, result)
        except Exception as error:  # the server went away (an ExceptionGroup from the client's tasks)
            run.failures[type(error).__name__] += 1
            if not run.expected_failure(time.monotonic()):
                run.unexpected.append(f"{ledger.user}: {error!r}"[:300])
            ledger.lost_track()
            assert time.monotonic() < deadline, "the service did not come back"
            await asyncio.sleep(0.1)


async def kill_and_restart(run: Run, rng: random.Random, figures: dict[str, Any], url: str) -> None:
    await run.kill_now.wait()
    await asyncio.sleep(rng.uniform(0.0, 0.05))  # somewhere inside the calls in flight
    killed = time.monotonic()
    run.service.kill()
    run.killed_at = datetime.now(UTC)
    figures["killed_after_changes"] = run.attempts
    async with await psycopg.AsyncConnection.connect(url) as connection:
        backlog = await (
            await connection.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND user_id = ANY(%s)", (run.users,)
            )
        ).fetchone()
        jobs = await (
            await connection.execute(
                "SELECT count(*) FROM scheduled_jobs WHERE data->>'userId' = ANY(%s)", (run.users,)
            )
        ).fetchone()
    figures["unpublished_at_kill"] = backlog[0] if backlog else None
    figures["jobs_pending_at_kill"] = jobs[0] if jobs else None
    figures["restart_s"] = round(await asyncio.to_thread(run.service.start), 2)
    run.down = (killed, time.monotonic())


@dataclass
class Snapshot:
    tasks: dict[str, dict[str, Any]]  # id -> user_id, title, version, completed
    outbox: list[dict[str, Any]]  # event_id, type, user_id, seq, task, version, title, series, occurrence
    audit: list[dict[str, Any]]  # event_id, user_id, seq, type, task, occurred_at
    last_seq: dict[str, int]


async def snapshot(url: str, users: list[str]) -> Snapshot:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as connection:
        tasks = await (
            await connection.execute(
                "SELECT id::text, user_id, title, version, completed FROM tasks WHERE user_id = ANY(%s)",
                (users,),
            )
        ).fetchall()
        outbox = await (
            await connection.execute(
                "SELECT event_id, event_type AS type, user_id, seq, payload->'data'->>'taskId' AS task,"
                " (payload->'data'->>'version')::int AS version, payload->'data'->>'title' AS title,"
                " payload->'data'->>'seriesId' AS series,"
                " (payload->'data'->>'occurrence')::int AS occurrence,"
                " payload->'data'->>'recurrence' AS recurrence, published_at"
                " FROM outbox WHERE user_id = ANY(%s) ORDER BY id",
                (users,),
            )
        ).fetchall()
        audit = await (
            await connection.execute(
                "SELECT event_id, user_id, seq, event_type AS type, task_id AS task, occurred_at"
                " FROM audit_log WHERE user_id = ANY(%s) ORDER BY id",
                (users,),
            )
        ).fetchall()
        seqs = await (
            await connection.execute("SELECT user_id, last_seq FROM users WHERE user_id = ANY(%s)", (users,))
        ).fetchall()
    return Snapshot(
        {row["id"]: row for row in tasks}, outbox, audit, {row["user_id"]: row["last_seq"] for row in seqs}
    )


def reminder_tasks(ledgers: list[Ledger], snap: Snapshot) -> dict[str, datetime]:
    """Every reminder task that exists: confirmed, or created by an uncertain call that happened."""
    wanted = {task: at for ledger in ledgers for task, at in ledger.reminders.items() if task in snap.tasks}
    uncertain = {op.title: op.remind_at for ledger in ledgers for op in ledger.uncertain if op.remind_at}
    for task, row in snap.tasks.items():
        if row["title"] in uncertain:
            wanted[task] = uncertain[row["title"]]  # type: ignore[assignment]
    return wanted


def settled(ledgers: list[Ledger], snap: Snapshot) -> bool:
    if any(row["published_at"] is None for row in snap.outbox):
        return False
    fired = {row["task"] for row in snap.audit if row["type"] == "reminder.due"}
    return all(task in fired for task in reminder_tasks(ledgers, snap))


@pytest.mark.slow
@pytest.mark.timeout(sized(180, 900))
async def test_sigkill_mid_traffic_loses_nothing_and_doubles_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    users = [f"crash-{tmp_path.name[-10:]}-{index}" for index in range(CLIENTS)]
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "AUTH_SECRET": TEST_SECRET,
        "LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "",
    }
    service = Service(env, free_port(), tmp_path / "serve.log")
    run = Run(service, users, kill_at=rng.randint(CHANGES * 3 // 10, CHANGES * 7 // 10))
    ledgers = [Ledger(user, random.Random(rng.random())) for user in users]
    figures: dict[str, Any] = {"changes": CHANGES, "clients": CLIENTS, "seed": SEED}

    figures["start_s"] = round(await asyncio.to_thread(service.start), 2)
    try:
        started = time.monotonic()
        killer = asyncio.create_task(kill_and_restart(run, rng, figures, postgres_url))
        await asyncio.gather(*(drive(run, ledger, started + sized(150, 600)) for ledger in ledgers))
        await asyncio.wait_for(killer, timeout=120)
        figures["workload_s"] = round(time.monotonic() - started, 1)

        # Let every reminder fall due, then wait (bounded) for the relay and the handlers to settle;
        # if they do not, the checks below say what is missing.
        last_reminder = max(
            [at for ledger in ledgers for at in ledger.reminders.values()]
            + [op.remind_at for ledger in ledgers for op in ledger.uncertain if op.remind_at is not None]
        )
        await asyncio.sleep(max(0.0, (last_reminder - datetime.now(UTC)).total_seconds()) + 1.0)
        settle_deadline = time.monotonic() + 60
        while (
            not settled(ledgers, await snapshot(postgres_url, users)) and time.monotonic() < settle_deadline
        ):
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.5)  # room for a duplicate to show up
        snap = await snapshot(postgres_url, users)
    finally:
        service.stop()

    assert not run.unexpected, f"calls failed while the service was up: {run.unexpected[:3]}"
    assert service.starts == 2
    check(ledgers, snap, figures)
    assert run.killed_at is not None
    pending = [
        task
        for ledger in ledgers
        for task, at in ledger.reminders.items()
        if ledger.reminder_set_at[task] < run.killed_at < at
    ]
    figures["reminders_pending_at_kill"] = len(pending)
    assert pending, "no reminder was pending at the kill: the run did not test what it should"
    figures["connection_failures"] = sum(run.failures.values())
    report("crash_safety", **figures)


def check(ledgers: list[Ledger], snap: Snapshot, figures: dict[str, Any]) -> None:
    tool_errors = [error for ledger in ledgers for error in ledger.tool_errors]
    assert not tool_errors, f"{len(tool_errors)} tool errors, e.g. {tool_errors[:3]}"
    changes = [row for row in snap.outbox if row["type"] != "reminder.due"]
    events_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in changes:
        events_of[row["task"]].append(row)
    keys = Counter(
        (row["task"], row["type"], None if row["type"] == "task.deleted" else row["version"])
        for row in changes
    )

    # 1. Every change a client saw succeed is there, with exactly one event.
    expected = Counter(key for ledger in ledgers for key in ledger.expected)
    for key in expected:
        assert keys[key] == 1, f"{key[1]} v{key[2]} of task {key[0]} has {keys[key]} events"
    for ledger in ledgers:
        for task, version in ledger.last_version.items():
            if task in ledger.deleted or (task in ledger.touched and task not in snap.tasks):
                assert task not in snap.tasks, f"deleted task {task} is back"
                continue  # deleted, by this client or (see 2.) by an uncertain call that happened
            assert task in snap.tasks, f"{ledger.user}: task {task} (v{version}) was lost"
            stored = snap.tasks[task]["version"]
            assert stored >= version, f"{ledger.user}: {task} went back from v{version} to v{stored}"
            if task not in ledger.touched:
                assert stored == version, f"{ledger.user}: {task} is v{stored}, the client saw v{version}"

    # 2. Complete or absent: each task's events are versions 1..n, n = the task's version (or the
    # last one is its deletion); nothing missing, nothing doubled.
    for task, events in events_of.items():
        versions = sorted(row["version"] for row in events)
        assert versions == list(range(1, len(events) + 1)), f"task {task}: event versions {versions}"
        kinds = {row["version"]: row["type"] for row in events}
        assert kinds[1] == "task.created", f"task {task}: first event {kinds[1]}"
        if task in snap.tasks:
            assert snap.tasks[task]["version"] == len(events), (
                f"task {task}: version != its {len(events)} events"
            )
        else:
            assert kinds[len(events)] == "task.deleted", f"task {task} is gone without a task.deleted event"
    assert set(snap.tasks) <= set(events_of), "a task exists without any event"

    # 3. Whatever no client saw succeed is explained: by a call that failed because of the kill, or
    # (a creation) by the next occurrence of a completed repeating task, or (a deletion) by that next
    # occurrence withdrawn, untouched, when its predecessor was reopened. Clients only change their own
    # tasks, never a next occurrence, so each one stays untouched.
    uncertain_titles = Counter(
        op.title for ledger in ledgers for op in ledger.uncertain if op.task_id is None
    )
    uncertain_changes = Counter(
        (op.task_id, EVENT_OF[op.kind]) for ledger in ledgers for op in ledger.uncertain if op.task_id
    )
    completed_occurrences = {
        (row["series"], row["occurrence"])
        for row in changes
        if row["type"] == "task.completed" and row["recurrence"]
    }
    next_occurrences = Counter(
        (row["series"], row["occurrence"] - 1)
        for row in changes
        if row["type"] == "task.created" and row["series"] and row["occurrence"] > 1
    )
    withdrawn = Counter(
        (row["series"], row["occurrence"] - 1)
        for row in changes
        if row["type"] == "task.deleted" and row["series"] and row["occurrence"] > 1
    )
    last_state: dict[tuple[str, int], str] = {}  # a repeating occurrence -> its last completed/reopened
    for row in sorted(changes, key=lambda row: row["version"]):
        if row["type"] in ("task.completed", "task.reopened") and row["recurrence"]:
            last_state[(row["series"], row["occurrence"])] = row["type"]
    happened = 0
    for row in changes:
        key = (row["task"], row["type"], None if row["type"] == "task.deleted" else row["version"])
        if expected[key] or (row["type"] == "task.created" and (row["occurrence"] or 1) > 1):
            continue
        if row["type"] == "task.deleted" and (row["occurrence"] or 1) > 1:
            predecessor = (row["series"], row["occurrence"] - 1)
            assert predecessor in last_state and row["version"] == 2, f"unexplained withdrawal {row}"
            continue
        happened += 1
        if row["type"] == "task.created":
            assert uncertain_titles[row["title"]] >= 1, f"unexplained creation of {row['title']!r}"
            uncertain_titles[row["title"]] -= 1
        else:
            assert uncertain_changes[(row["task"], row["type"])] >= 1, (
                f"unexplained {row['type']} of {row['task']}"
            )
            uncertain_changes[(row["task"], row["type"])] -= 1
    for occurrence in completed_occurrences:  # one next occurrence while done, none once reopened
        live = next_occurrences[occurrence] - withdrawn[occurrence]
        assert live == (last_state[occurrence] == "task.completed"), (
            f"series {occurrence}: {live} next ones ({next_occurrences[occurrence]} made,"
            f" {withdrawn[occurrence]} withdrawn) after its last {last_state[occurrence]}"
        )
    assert set(next_occurrences) <= completed_occurrences, (
        "a next occurrence of an occurrence never completed"
    )

    # 4. The audit log has exactly the outbox's events, once each; per-user seq contiguous from 1.
    for ledger in ledgers:
        user, last = ledger.user, snap.last_seq[ledger.user]
        outbox = [row for row in snap.outbox if row["user_id"] == user]
        audit = [row for row in snap.audit if row["user_id"] == user]
        audit_ids = [row["event_id"] for row in audit]
        assert len(audit_ids) == len(set(audit_ids)), f"{user}: an event is audited twice"
        missing = {row["event_id"] for row in outbox} - set(audit_ids)
        assert not missing, f"{user}: {len(missing)} events missing from the audit log"
        assert set(audit_ids) <= {row["event_id"] for row in outbox}, f"{user}: audited events never written"
        assert sorted(row["seq"] for row in audit) == list(range(1, last + 1)), f"{user}: audit seq gaps"
        assert sorted(row["seq"] for row in outbox) == list(range(1, last + 1)), f"{user}: outbox seq gaps"
    assert all(row["published_at"] is not None for row in snap.outbox), "events left unpublished"

    # 5. Every pending reminder fired exactly once, never early; nothing else fired.
    reminders = reminder_tasks(ledgers, snap)
    fired: dict[str, list[datetime]] = defaultdict(list)
    for row in snap.audit:
        if row["type"] == "reminder.due":
            fired[row["task"]].append(row["occurred_at"])
    for task, due in reminders.items():
        assert len(fired[task]) == 1, f"reminder of {task} fired {len(fired[task])} times"
        assert fired[task][0] >= due, f"reminder of {task} fired {due - fired[task][0]} early"
    assert set(fired) <= set(reminders), "a reminder fired for a task without one"
    lateness = sorted((fired[task][0] - due).total_seconds() for task, due in reminders.items())

    figures.update(
        confirmed=sum(len(ledger.expected) for ledger in ledgers),
        uncertain=sum(len(ledger.uncertain) for ledger in ledgers),
        uncertain_that_happened=happened,
        events=len(snap.outbox),
        audited=len(snap.audit),
        next_occurrences=sum(next_occurrences.values()),
        withdrawn_occurrences=sum(withdrawn.values()),
        reminders_fired=sum(len(times) for times in fired.values()),
        reminder_late_max_s=round(lateness[-1], 2) if lateness else None,
    )
