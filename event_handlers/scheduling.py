"""The `JobScheduler` port: the Dapr Jobs API in Kubernetes, durable in-process timers embedded.

A job is a name, a due time and JSON data; when due, its trigger gets exactly that data (as the
sidecar POSTs it to `/job/<name>`). Scheduling an existing name replaces the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Insert, Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from event_handlers.models import ScheduledJob
from mcp_server.db import Database
from mcp_server.models import utcnow
from mcp_server.publishing import SidecarHttp, SidecarUnreachable, excerpt

log = logging.getLogger(__name__)

JOBS: Table = ScheduledJob.__table__  # type: ignore[attr-defined]

RETRY_INTERVAL = "3s"  # a protobuf Duration: "3s" and "0.5s" parse, "200ms" and "2m" do not
MAX_RETRIES = 5


class JobFailed(Exception):
    """The scheduler could not record the change; the caller should retry."""


class JobScheduler(Protocol):
    async def schedule(self, name: str, due_at: datetime, data: dict[str, Any]) -> None: ...

    async def delete(self, name: str) -> None: ...


# ---- Dapr Jobs API --------------------------------------------------------------------------


class ConstantRetry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: str = RETRY_INTERVAL
    maxRetries: int = MAX_RETRIES


class FailurePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    constant: ConstantRetry = Field(default_factory=ConstantRetry)


class DaprJob(BaseModel):
    """The body of `POST /v1.0/jobs/{name}`: one typed model, since the sidecar ignores unknown fields."""

    model_config = ConfigDict(extra="forbid")

    dueTime: str
    data: dict[str, Any]
    overwrite: Literal[True] = True
    failurePolicy: FailurePolicy = Field(default_factory=FailurePolicy)


def due_time(due_at: datetime, now: datetime) -> str:
    """RFC 3339 (UTC, rounded up to the second: never early) for a future time; "0s" for a past one."""
    if due_at <= now:
        return "0s"
    whole = due_at.astimezone(UTC).replace(microsecond=0)
    if whole < due_at:
        whole += timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


class DaprJobScheduler:
    def __init__(
        self,
        *,
        port: int,
        api_token: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = 5.0,
        host: str = "127.0.0.1",
    ) -> None:
        self._http = SidecarHttp(port=port, api_token=api_token, timeout=timeout, host=host)
        self._clock = clock

    async def schedule(self, name: str, due_at: datetime, data: dict[str, Any]) -> None:
        body = DaprJob(dueTime=due_time(due_at, self._clock()), data=data)
        await self._call("POST", name, body.model_dump_json().encode())

    async def delete(self, name: str) -> None:
        await self._call("DELETE", name)

    async def _call(self, method: str, name: str, body: bytes | None = None) -> None:
        headers = {"content-type": "application/json"} if body is not None else None
        try:
            status, answer = await self._http.request(
                method, f"/v1.0/jobs/{name}", body=body, headers=headers
            )
        except SidecarUnreachable as error:
            raise JobFailed(f"sidecar unreachable: {error}") from error
        if status != 204:
            raise JobFailed(f"{method} job answered {status}: {excerpt(answer)}")

    async def aclose(self) -> None:
        await self._http.aclose()


# ---- embedded: durable timers --------------------------------------------------------------

LATE_BATCH = timedelta(milliseconds=20)  # a batch ending later than this after its due time was late
LEARN_FROM = 100  # jobs in a batch for its time per job to mean something (not a fixed cost's share)

# Called with jobs due together, (name, data) each, and the time they are due: now, or a moment
# ahead (`lead_seconds`), so the trigger can do its writing ahead and commit at that time, never
# before it. Returns the names handled (like a 2xx); the others are retried.
Trigger = Callable[[list[tuple[str, dict[str, Any]]], datetime], Awaitable[set[str]]]


class EmbeddedScheduler:
    """Jobs kept in a table; one timer sleeps until the earliest is due (no scanning loop).

    The timer goes off `lead_seconds` before the due time and hands the trigger the jobs due by
    then, with their due time: a thousand reminders due in the same second are written ahead (one
    batch) and only committed when due. When a batch written ahead is still being written at its
    due time, the scheduler learns the time a job takes and, for a batch that size, goes off that
    much earlier next time (at most `max_lead_seconds`), so slow machines stay on time too.
    A failed trigger is retried every `retry_seconds`, `max_attempts` times in all, like the Dapr
    failure policy. Jobs survive a restart: they are read back on start.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int = 1 + MAX_RETRIES,
        retry_seconds: float = 3.0,
        batch_size: int = 1000,
        lead_seconds: float = 0.25,
        max_lead_seconds: float = 2.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.batch_size = batch_size
        self.lead = timedelta(seconds=lead_seconds)
        self.max_lead = timedelta(seconds=max_lead_seconds)
        self.write_seconds_per_job = 0.0  # learned from batches that were late (see `_fire`)
        self._lead_now = self.lead  # the lead of the batch the timer waits for
        self.trigger: Trigger | None = None
        self._wake = asyncio.Event()
        self._timer_at: datetime | None = None  # when the timer goes off; None: no timer (or busy)

    async def schedule(self, name: str, due_at: datetime, data: dict[str, Any]) -> None:
        job = {
            "name": name,
            "due_at": due_at,
            "data": data,
            "attempts": 0,
            "max_attempts": self.max_attempts,
            "retry_seconds": self.retry_seconds,
            "created_at": self.clock(),
        }
        async with self.db.transaction() as session:
            await session.execute(_upsert_job(self.db.engine.dialect.name), job)
        if self._timer_at is None or due_at < self._timer_at:  # only an earlier job moves the timer
            self._wake.set()

    async def delete(self, name: str) -> None:
        """Remove the job (the timer may still go off for it, and then finds nothing due)."""
        async with self.db.transaction() as session:
            await session.execute(delete(ScheduledJob).where(col(ScheduledJob.name) == name))

    async def run(self) -> None:
        """Fire jobs as they fall due, until cancelled."""
        while True:
            self._wake.clear()
            self._timer_at = None  # while firing, any new job wakes the loop again
            try:
                next_due = await self.fire_due()
            except Exception as error:  # the database may be down: try again shortly
                log.warning("job scheduler could not read its jobs (%s)", type(error).__name__)
                next_due = self.clock() + timedelta(seconds=self.retry_seconds)
            self._timer_at = next_due
            timeout = (
                None
                if next_due is None
                else max(0.0, (next_due - self._lead_now - self.clock()).total_seconds())
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: it can lose a cancellation
                    await self._wake.wait()

    def lead_for(self, jobs: int) -> timedelta:
        """How long before their due time `jobs` jobs due together are handed over."""
        learned = timedelta(seconds=2 * jobs * self.write_seconds_per_job)
        return min(self.max_lead, max(self.lead, learned))

    async def fire_due(self) -> datetime | None:
        """Trigger every job due by the timer's lead from now, in batches (each job at its due
        time); returns when the next one is due (None: no jobs), having set the lead for the
        batch due then."""
        now = self.clock()
        async with self.db.sessions() as session:
            due = list(
                (
                    await session.scalars(
                        select(ScheduledJob)
                        .where(col(ScheduledJob.due_at) <= now + self._lead_now)
                        .order_by(col(ScheduledJob.due_at))
                        .limit(self.batch_size)
                    )
                ).all()
            )
        if due:
            await self._fire(due, now)
        async with self.db.sessions() as session:
            next_due: datetime | None = await session.scalar(select(func.min(col(ScheduledJob.due_at))))
            if next_due is not None:
                batch = await session.scalar(
                    select(func.count()).where(col(ScheduledJob.due_at) <= next_due + self.lead)
                )
                self._lead_now = self.lead_for(min(int(batch or 0), self.batch_size))
        return next_due

    async def _fire(self, jobs: list[ScheduledJob], now: datetime) -> None:
        handled: set[str] = set()
        if self.trigger is not None:
            groups: dict[datetime, list[tuple[str, dict[str, Any]]]] = {}
            for job in jobs:  # the jobs already due go together, the others by their due time
                groups.setdefault(max(job.due_at, now), []).append((job.name, job.data))
            started = time.monotonic()
            try:
                answers = await asyncio.gather(*(self.trigger(group, at) for at, group in groups.items()))
                handled = set().union(*answers)
                self._learn(len(jobs), time.monotonic() - started, late=self.clock() - max(groups))
            except Exception as error:  # a failed batch says nothing of the time a job takes
                log.warning("%d jobs failed (%s)", len(jobs), type(error).__name__)
        failed = [job for job in jobs if job.name not in handled]
        spent = [job for job in failed if job.attempts + 1 >= job.max_attempts]
        for job in spent:
            log.error("job %s dropped after %d attempts", job.name, job.attempts + 1)
        retry = [job for job in failed if job.attempts + 1 < job.max_attempts]
        done = [job for job in jobs if job.name in handled] + spent
        retry_from = self.clock()
        async with self.db.transaction() as session:
            # Only the jobs still as they fired: one set anew meanwhile (another due time, or the
            # same time with new data, e.g. the task was edited at its reminder time) is kept.
            unchanged = await self._unchanged(session, jobs)
            if finished := [job.name for job in done if job.name in unchanged]:
                await session.execute(delete(ScheduledJob).where(col(ScheduledJob.name).in_(finished)))
            for seconds in {job.retry_seconds for job in retry}:
                again = [job.name for job in retry if job.retry_seconds == seconds and job.name in unchanged]
                if not again:
                    continue
                await session.execute(
                    update(ScheduledJob)
                    .where(col(ScheduledJob.name).in_(again))
                    .values(
                        attempts=ScheduledJob.attempts + 1,
                        due_at=retry_from + timedelta(seconds=seconds),
                    )
                )

    def _learn(self, jobs: int, seconds: float, *, late: timedelta) -> None:
        """A batch that ended more than a moment after its due time was still being written then:
        its time per job sets (half each time) how early batches go from now on."""
        if late > LATE_BATCH and jobs >= LEARN_FROM:
            per_job = seconds / jobs
            estimate = self.write_seconds_per_job
            self.write_seconds_per_job = per_job if estimate == 0 else (estimate + per_job) / 2

    async def _unchanged(self, session: AsyncSession, jobs: list[ScheduledJob]) -> set[str]:
        """The names of `jobs` whose row still has the due time and data they fired with (locked
        until the transaction ends, on PostgreSQL; SQLite's transactions take the write lock)."""
        fired = {job.name: (job.due_at, job.data) for job in jobs}
        query = select(col(ScheduledJob.name), col(ScheduledJob.due_at), col(ScheduledJob.data)).where(
            col(ScheduledJob.name).in_(fired)
        )
        if self.db.is_postgres:
            query = query.with_for_update()
        rows = (await session.execute(query)).all()
        return {name for name, due_at, data in rows if fired[name] == (due_at, data)}


@functools.cache
def _upsert_job(dialect: str) -> Insert:
    """Insert a job, or replace the due time and data of the job of that name (overwrite)."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(JOBS)
    upsert: Insert = insert.on_conflict_do_update(
        index_elements=["name"],
        set_={"due_at": insert.excluded.due_at, "data": insert.excluded.data, "attempts": 0},
    )
    return upsert
