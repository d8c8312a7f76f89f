"""Database restart: a private PostgreSQL cluster is stopped for ~3 s and started again under a load of
REST and MCP writes to the embedded service, which keeps running.

While the database is down every write fails fast with a retryable answer (REST 503 with Retry-After
and "nothing was changed"; an MCP tool error saying to retry), never a 500 or a hung request; once it
is back the service recovers by itself (writes succeed within seconds, /readyz goes 503 then 200),
and the relay publishes the backlog: every committed change has its event, audited once.

The cluster is this test's own (initdb in a temporary directory, a free port): the machine's shared
server is never restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import TEST_SECRET, free_port, mcp_over_http, serving, token
from tests.reliability.conftest import report, sized
from todo_chatbot import migrate
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SEED = int(os.environ.get("RELIABILITY_SEED", "20261127"))
REST_CLIENTS = sized(3, 6)
MCP_CLIENTS = sized(1, 2)
OUTAGES = sized(1, 3)
BEFORE_S = sized(2, 6)  # load before each outage
DOWN_S = 3.0
FAST_STOP_S = 8
RECOVERY_S = 5.0  # writes must succeed again within this long after the database is back
AFTER_S = sized(6, 10)  # load after each outage
REQUEST_TIMEOUT_S = 15.0
NOTHING_CHANGED = "nothing was changed"


@dataclass
class Cluster:
    """A PostgreSQL cluster owned by this test, run as the `postgres` OS user when we are root."""

    root: Path
    port: int
    stuck_stops: list[str] = field(default_factory=list)  # what held up a fast stop, each time one did

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/todo"

    def run(self, program: str, *args: str, timeout: float = 60) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        )
        self.run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode)

    def restart_outage(self) -> None:
        """Stop the way a managed database is restarted (fast: sessions are terminated, then a
        checkpoint). A fast stop normally takes well under a second; one that has not finished
        in FAST_STOP_S is recorded (its processes and log) and finished immediately instead, so
        that the outage stays an outage of a few seconds."""
        try:
            self.run("pg_ctl", "stop", "-w", "-t", str(FAST_STOP_S), "-D", str(self.data), "-m", "fast")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            processes = subprocess.run(
                ["ps", "-o", "pid,stat,wchan:24,etime,args", "-u", "postgres"], capture_output=True, text=True
            ).stdout
            log = (self.root / "log").read_text(errors="replace").splitlines()[-25:]
            self.stuck_stops.append(processes + "\n".join(log))
            print(f"a fast stop did not finish in {FAST_STOP_S} s:\n{self.stuck_stops[-1]}", flush=True)
            started = time.monotonic()
            self.stop("immediate")
            print(f"the immediate stop took {time.monotonic() - started:.1f} s", flush=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="todo-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root, free_port())
    try:
        cluster.init()
        cluster.start()
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres", autocommit=True
        ) as connection:
            connection.execute("CREATE DATABASE todo")
        migrate.upgrade(cluster.url)
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Call:
    client: str
    kind: str  # rest-create, rest-update, mcp-create
    started: float
    ended: float
    outcome: str  # ok, retryable, or what went wrong
    detail: str = ""
    task_id: str | None = None
    title: str | None = None
    version: int | None = None


@dataclass
class Load:
    base: str
    rng: random.Random
    calls: list[Call] = field(default_factory=list)
    readiness: list[tuple[float, int | str]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def rest(self, name: str) -> None:
        user = f"{name}-{self.rng.getrandbits(32):08x}"
        headers = {"Authorization": f"Bearer {token(user)}"}
        mine: list[str] = []
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
            index = 0
            while not self.stop.is_set():
                index += 1
                title = f"{user} write {index}"
                updating = bool(mine) and index % 3 == 0
                started = time.monotonic()
                try:
                    if updating:
                        task_id = self.rng.choice(mine)
                        response = await http.patch(f"/api/tasks/{task_id}", json={"title": title})
                    else:
                        response = await http.post("/api/tasks", json={"title": title})
                except httpx.HTTPError as error:
                    self.calls.append(
                        Call(name, "rest", started, time.monotonic(), f"exception {type(error).__name__}")
                    )
                    continue
                call = Call(
                    name,
                    "rest-update" if updating else "rest-create",
                    started,
                    time.monotonic(),
                    "",
                    title=title,
                )
                if response.status_code in (200, 201):
                    body = response.json()
                    call.outcome, call.task_id, call.version = "ok", body["id"], body["version"]
                    if not updating:
                        mine.append(body["id"])
                elif (
                    response.status_code == 503
                    and response.headers.get("retry-after", "").isdigit()
                    and NOTHING_CHANGED in response.json().get("detail", "")
                ):
                    call.outcome = "retryable"
                else:
                    call.outcome, call.detail = f"http {response.status_code}", response.text[:200]
                self.calls.append(call)
                await asyncio.sleep(0.02 if call.outcome == "ok" else 0.1)

    async def mcp(self, name: str) -> None:
        user = f"{name}-{self.rng.getrandbits(32):08x}"
        async with mcp_over_http(self.base, token(user)) as client:
            index = 0
            while not self.stop.is_set():
                index += 1
                title = f"{user} tool write {index}"
                started = time.monotonic()
                result = await asyncio.wait_for(
                    client.call_tool("add_task", {"title": title}), REQUEST_TIMEOUT_S
                )
                call = Call(name, "mcp-create", started, time.monotonic(), "", title=title)
                text = " ".join(getattr(block, "text", "") for block in result.content)
                if not result.is_error and result.structured_content is not None:
                    call.outcome = "ok"
                    call.task_id = str(result.structured_content["id"])
                    call.version = int(result.structured_content["version"])
                elif "retry" in text and NOTHING_CHANGED in text:
                    call.outcome = "retryable"
                else:
                    call.outcome, call.detail = "tool error", text[:200]
                self.calls.append(call)
                await asyncio.sleep(0.02 if call.outcome == "ok" else 0.1)

    async def watch_readiness(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=REQUEST_TIMEOUT_S) as http:
            while not self.stop.is_set():
                try:
                    status: int | str = (await http.get("/readyz")).status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                self.readiness.append((time.monotonic(), status))
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running(load: Load) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(load.rest(f"rest{index}")) for index in range(REST_CLIENTS)]
    tasks += [asyncio.create_task(load.mcp(f"mcp{index}")) for index in range(MCP_CLIENTS)]
    tasks.append(asyncio.create_task(load.watch_readiness()))
    try:
        yield
    finally:
        load.stop.set()
        results = await asyncio.wait_for(
            asyncio.gather(*tasks, return_exceptions=True), REQUEST_TIMEOUT_S + 5
        )
        crashed = [result for result in results if isinstance(result, BaseException)]
        assert not crashed, f"a client crashed: {crashed!r}"


@pytest.mark.slow
@pytest.mark.timeout(sized(150, 600))
async def test_database_restart_is_survived_without_a_restart(cluster: Cluster) -> None:
    settings = Settings(database_url=cluster.url, auth_secret=TEST_SECRET, relay_max_backoff_seconds=0.5)
    app = create_app(settings)
    outages: list[tuple[float, float]] = []  # (went down, came back) on the monotonic clock
    async with serving(app) as base:
        load = Load(base, random.Random(SEED))
        # A reminder that falls due while the database is down: it must fire once, after.
        # Whole seconds, rounded up: rounding down could move it up to 1 s earlier, before the outage
        # when the first requests are slow on a busy machine.
        soon = datetime.now(UTC) + timedelta(seconds=BEFORE_S + 1.5)
        remind_at = soon.replace(microsecond=0) + timedelta(seconds=1)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token('reminded')}"}
        ) as http:
            response = await http.post(
                "/api/tasks", json={"title": "due in the outage", "remind": remind_at.isoformat()}
            )
            assert response.status_code == 201
            reminded = response.json()["id"]
        remind_moment = time.monotonic() + (remind_at - datetime.now(UTC)).total_seconds()
        async with running(load):
            for _ in range(OUTAGES):
                await asyncio.sleep(BEFORE_S)
                went_down = time.monotonic()
                await asyncio.to_thread(cluster.restart_outage)
                await asyncio.sleep(DOWN_S)
                await asyncio.to_thread(cluster.start)
                outages.append((went_down, time.monotonic()))
                await asyncio.sleep(AFTER_S)
        deadline = time.monotonic() + 30
        while (pending := await unpublished(cluster.url)) > 0 or not await fired(cluster.url, reminded):
            assert time.monotonic() < deadline, (
                f"{pending} events unpublished (or no reminder) 30 s after the load"
            )
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
    figures = await check(load, outages, cluster.url)
    assert outages[0][0] < remind_moment < outages[0][1], "the reminder did not fall due during the outage"
    times = await fired(cluster.url, reminded)
    assert len(times) == 1, f"the reminder fired {len(times)} times"
    fired_at = times[0]
    assert fired_at >= remind_at, "the reminder fired early"
    figures["reminder_late_s"] = round((fired_at - remind_at).total_seconds(), 2)
    figures["fast_stops_finished_immediately"] = len(cluster.stuck_stops)
    report("database_restart", **figures)


async def unpublished(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as connection:
        row = await (
            await connection.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        ).fetchone()
    return int(row[0]) if row else 0


async def fired(url: str, task_id: str) -> list[datetime]:
    """When `reminder.due` of the task was audited (each time it was)."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        rows = await (
            await connection.execute(
                "SELECT occurred_at FROM audit_log WHERE task_id = %s AND event_type = 'reminder.due'",
                (task_id,),
            )
        ).fetchall()
    return [row[0] for row in rows]


async def check(load: Load, outages: list[tuple[float, float]], url: str) -> dict[str, Any]:
    outcomes = Counter(call.outcome for call in load.calls)
    wrong = [call for call in load.calls if call.outcome not in ("ok", "retryable")]
    assert not wrong, f"{len(wrong)} calls failed in a way they must not, e.g. {wrong[:3]}"
    slowest = max(call.ended - call.started for call in load.calls)
    assert slowest < 12.0, f"a call took {slowest:.1f} s"

    recoveries = []
    for went_down, came_back in outages:
        during = [call for call in load.calls if went_down <= call.started and call.ended <= came_back]
        assert any(call.outcome == "retryable" for call in during if call.kind.startswith("rest")), (
            "no 503 seen"
        )
        assert any(call.outcome == "retryable" for call in during if call.kind.startswith("mcp")), (
            "no tool error"
        )
        later = sorted(
            (call for call in load.calls if call.started >= came_back), key=lambda call: call.ended
        )
        first_ok = next(call for call in later if call.outcome == "ok")
        recoveries.append(first_ok.ended - came_back)
        assert first_ok.ended - came_back < RECOVERY_S, f"first write succeeded {recoveries[-1]:.1f} s after"
        late_failures = [
            call for call in later if call.started > came_back + RECOVERY_S and call.outcome != "ok"
        ]
        next_outage = [down for down, _ in outages if down > came_back]
        if next_outage:
            late_failures = [call for call in late_failures if call.ended < next_outage[0]]
        assert not late_failures, f"{len(late_failures)} writes failed long after the database was back"

        ready = [status for moment, status in load.readiness if moment >= went_down - 0.5]
        assert 503 in ready, "/readyz never said the database was unreachable"
        after = ready[ready.index(503) :]
        assert 200 in after, "/readyz did not become ready again"
    assert load.readiness[-1][1] == 200
    assert {status for _, status in load.readiness} <= {200, 503}, "/readyz answered something else"

    # Nothing committed was lost, nothing refused was written, every event audited once.
    async with await psycopg.AsyncConnection.connect(url) as connection:
        tasks = {
            row[0]: (row[1], row[2])
            for row in await (
                await connection.execute("SELECT id::text, title, version FROM tasks")
            ).fetchall()
        }
        events = await (
            await connection.execute(
                "SELECT event_id, user_id, seq, event_type, payload->>'subject',"
                " (payload->'data'->>'version')::int FROM outbox"
            )
        ).fetchall()
        audited = await (await connection.execute("SELECT event_id, user_id, seq FROM audit_log")).fetchall()
    event_keys = Counter((row[4], row[3], row[5]) for row in events)
    titles = {title for title, _ in tasks.values()}
    for call in load.calls:
        if call.outcome == "ok":
            assert call.task_id in tasks, f"{call.kind} {call.title!r} answered ok but the task is gone"
            kind = "task.updated" if call.kind == "rest-update" else "task.created"
            assert event_keys[(call.task_id, kind, call.version)] == 1, (
                f"{call.kind} {call.title!r}: no event"
            )
        elif call.kind.endswith("create"):
            assert call.title not in titles, (
                f"{call.title!r} was refused with {NOTHING_CHANGED!r}, but exists"
            )
    assert sorted(row[0] for row in audited) == sorted(row[0] for row in events), "audit log != outbox"
    seqs: dict[str, list[int]] = defaultdict(list)
    for _, user, seq in audited:
        seqs[user].append(seq)
    assert all(sorted(found) == list(range(1, len(found) + 1)) for found in seqs.values()), "seq gaps"
    return {
        "outages": len(outages),
        "calls": len(load.calls),
        "ok": outcomes["ok"],
        "retryable": outcomes["retryable"],
        "slowest_call_s": round(slowest, 2),
        "recovery_s": "/".join(f"{value:.2f}" for value in recoveries),
        "events": len(events),
    }
