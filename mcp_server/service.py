"""`TaskService`: the only writer of tasks. Every method is scoped by the caller's user id.

Each change writes the task and one outbox row (its CloudEvent) in one transaction, bumps the
task's `version` and takes the user's next event sequence number. Taking that number locks the
user's row, so one user's changes commit one after another and their outbox ids follow commit order.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, insert, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import column
from sqlmodel import col
from uuid6 import uuid7

from mcp_server import dates, history, outbox, recurrence
from mcp_server.aio import wait_until
from mcp_server.db import Database
from mcp_server.errors import InvalidInput, TaskNotFound
from mcp_server.events import (
    REMINDER_DUE,
    TASK_COMPLETED,
    TASK_CREATED,
    TASK_DELETED,
    TASK_REOPENED,
    TASK_UPDATED,
    build_event,
    epoch,
    task_data,
)
from mcp_server.history import HistoryEntry, TaskHistory
from mcp_server.models import Priority, Task, UserAccount, utcnow
from mcp_server.schemas import (
    PRIORITIES,
    DeletedTask,
    TaskCreate,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskQuery,
    TaskSummary,
)

TASKS = Task.__table__  # type: ignore[attr-defined]
ZONE_CACHE_SECONDS = 60.0
ZONE_CACHE_SIZE = 10_000

# A day named without a time of day ("friday", "2026-12-01") means 09:00 local.
DEFAULT_TIME = clock_time(9, 0)
START_OF_DAY = clock_time(0, 0)
END_OF_DAY = clock_time(23, 59, 59)

log = logging.getLogger(__name__)


# Run inside a write's transaction by an idempotent consumer: False means "done before, skip".
Claim = Callable[[AsyncSession], Awaitable[bool]]
# The same for a batch of tasks: returns the ids claimed now (the others were done before).
BatchClaim = Callable[[AsyncSession, Sequence[uuid.UUID]], Awaitable[set[uuid.UUID]]]


@dataclass(frozen=True)
class DueReminder:
    """A reminder job that fell due: the reminder time and task version it was scheduled for."""

    task_id: uuid.UUID
    remind_at: int
    version: int


@dataclass(frozen=True)
class ReminderState:
    completed: bool
    remind_at: datetime | None
    version: int


@dataclass(frozen=True)
class Caller:
    """Who is asking: the authenticated user, and the time zone their client says they are in."""

    user_id: str
    timezone: str | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_task_id(raw: str | uuid.UUID) -> uuid.UUID:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw.strip())
    except (ValueError, AttributeError, TypeError):
        raise InvalidInput(
            "task_id", f"{str(raw)[:64]!r} is not a task id (a UUID); list or search tasks to find the id"
        ) from None


class TaskService:
    def __init__(
        self,
        db: Database,
        *,
        source: str = "/todo-chatbot/mcp-server",
        clock: Callable[[], datetime] = utcnow,
        traceparent: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.db = db
        self.source = source
        self.clock = clock
        self._commit_listeners: list[Callable[[str, list[dict[str, Any]]], None]] = []
        self._traceparent = traceparent
        # user id -> (zone, expiry): read on every call, changed rarely, refreshed within a minute.
        self._zones: dict[str, tuple[ZoneInfo, float]] = {}

    # ---- reads -------------------------------------------------------------------------

    async def get(self, caller: Caller, task_id: str | uuid.UUID) -> TaskOut:
        async with self.db.transaction() as session:
            tz = await self._zone(session, caller)
            return to_out(await self._load(session, caller, task_id), tz)

    async def list_tasks(self, caller: Caller, query: TaskQuery) -> TaskPage:
        # Autocommit on PostgreSQL: the page and its total are one statement, so no transaction
        # is needed around it, and none costs two more round trips (BEGIN, then the rollback).
        async with self.db.autocommit() as session:
            tz = await self._zone(session, caller)
            conditions = self._filters(caller, query, tz, self.clock())
            offset = self._decode_cursor(query)
            count = select(func.count()).select_from(Task).where(*conditions)
            # The total rides along with the page: one statement, one round trip.
            page = (
                select(*_SUMMARY_COLUMNS, count.scalar_subquery().label("total"))
                .where(*conditions)
                .order_by(*self._order(query))
                .offset(offset)
                .limit(query.limit + 1)
            )
            rows = (await session.execute(page)).all()
            more = len(rows) > query.limit
            if rows:
                total = int(rows[0][-1])
            elif offset == 0:
                total = 0
            else:  # a page past the end still reports how many there are
                total = int(await session.scalar(count) or 0)
        return TaskPage.model_construct(
            tasks=[_summary(row[:-1], tz) for row in rows[: query.limit]],
            total=total,
            next_cursor=self._encode_cursor(query, offset + query.limit) if more else None,
        )

    # ---- writes ------------------------------------------------------------------------

    async def create(self, caller: Caller, fields: TaskCreate) -> TaskOut:
        now = self.clock()
        if self.db.is_postgres:  # the task and its event in one statement: one round trip
            async with self.db.autocommit() as connection:
                tz = await self._zone(connection, caller)
                task = _new_task(caller, fields, tz, now)
                event = self._event(caller, TASK_CREATED, str(task.id), task_data(task), now)
                seq = await outbox.insert_with_event(
                    connection,
                    TASKS,
                    task.model_dump(),
                    event,
                    user_id=caller.user_id,
                    timezone=caller.timezone,
                    created_at=now,
                )
            self._zone_stored(caller)
            written = [outbox.document(event, seq)]
        else:
            async with self.db.transaction() as session:
                tz = await self._zone(session, caller)
                task = _new_task(caller, fields, tz, now)
                await session.execute(insert(TASKS), task.model_dump())
                written = await self._record(
                    session, caller, TASK_CREATED, str(task.id), task_data(task), now
                )
        self._committed(caller.user_id, written)
        return to_out(task, tz)

    async def create_occurrence(
        self, user_id: str, previous: dict[str, Any], *, claim: Claim | None = None
    ) -> TaskOut | None:
        """The next occurrence of a completed repeating task (from its event `data`), exactly once.

        Returns None when the series has ended, the occurrence exists already, the completed one has
        been reopened since (a late event: see `withdraw_occurrence`), or `claim` (run in the same
        transaction) says this was done before.
        """
        rule, series, index = previous.get("recurrence"), previous.get("seriesId"), previous.get("occurrence")
        if not rule or not series or not index or previous.get("dueDate") is None:
            return None
        now = self.clock()
        caller = Caller(user_id)
        try:
            async with self.db.transaction() as session:
                if claim is not None and not await claim(session):
                    return None
                if await self._occurrence_completed(session, user_id, str(series), int(index)) is False:
                    return None
                tz = await self._zone(session, caller)
                current_due = datetime.fromtimestamp(int(previous["dueDate"]), tz)
                due = recurrence.next_occurrence(rule, tz=tz, current=current_due, index=int(index))
                if due is None:
                    return None
                lead = _reminder_lead(previous)
                task = Task(
                    id=uuid7(),
                    user_id=user_id,
                    title=previous["title"],
                    description=previous.get("description"),
                    priority=Priority[previous.get("priority") or "none"],
                    tags=list(previous.get("tags") or []),
                    due_at=due,
                    remind_offset_s=previous.get("remindOffset") or None,
                    remind_at=None if lead is None else due - timedelta(seconds=lead),
                    recurrence=rule,
                    series_id=uuid.UUID(str(series)),
                    occurrence=int(index) + 1,
                    created_at=now,
                    updated_at=now,
                )
                await session.execute(insert(TASKS), task.model_dump())
                written = await self._record(
                    session, caller, TASK_CREATED, str(task.id), task_data(task), now
                )
        except IntegrityError:
            return None  # the (series, occurrence) unique constraint: another delivery created it
        self._committed(caller.user_id, written)
        return to_out(task, tz)

    async def withdraw_occurrence(
        self, user_id: str, reopened: dict[str, Any], *, claim: Claim | None = None
    ) -> DeletedTask | None:
        """After an occurrence of a repeating task is reopened (its event `data`): delete the next
        occurrence its completion made, if nobody has touched it since (version 1, still open), once.

        A series has one open occurrence at a time; without this, undoing "done" left two. An edited
        or finished next occurrence is someone's work and stays. Completing the reopened one again
        makes the next one anew. Returns what was deleted, or None.

        Both this and `create_occurrence` go by the reopened occurrence as it is now, not by the
        event: an event that arrives late (a redelivery overtaken by a newer one) changes nothing that
        the newer state contradicts, so whichever is handled last leaves the series right. An
        occurrence deleted since contradicts neither, and its last event decides.
        """
        series, index = reopened.get("seriesId"), reopened.get("occurrence")
        if not reopened.get("recurrence") or not series or not index:
            return None
        now = self.clock()
        caller = Caller(user_id)
        statement = select(Task).where(
            col(Task.user_id) == user_id,
            col(Task.series_id) == uuid.UUID(str(series)),
            col(Task.occurrence) == int(index) + 1,
        )
        if self.db.is_postgres:
            statement = statement.with_for_update()
        async with self.db.transaction() as session:
            if claim is not None and not await claim(session):
                return None
            if await self._occurrence_completed(session, user_id, str(series), int(index)):
                return None  # done again since: its next occurrence stays
            task = await session.scalar(statement)
            if task is None or task.completed or task.version != 1:
                return None
            written = await self._remove(session, caller, task, now)
        self._committed(user_id, written)
        return DeletedTask(id=task.id, title=task.title)

    async def _occurrence_completed(
        self, session: AsyncSession, user_id: str, series: str, occurrence: int
    ) -> bool | None:
        """Whether that occurrence of the series is done now; None when it no longer exists. On
        PostgreSQL its row stays locked to the end of the transaction, so a completion or reopen
        waits for the handler's change and its own event sees the result."""
        statement = select(col(Task.completed)).where(
            col(Task.user_id) == user_id,
            col(Task.series_id) == uuid.UUID(series),
            col(Task.occurrence) == occurrence,
        )
        if self.db.is_postgres:
            statement = statement.with_for_update()
        return await session.scalar(statement)

    async def update(self, caller: Caller, task_id: str | uuid.UUID, patch: TaskPatch) -> TaskOut:
        now = self.clock()
        async with self.db.transaction() as session:
            tz = await self._zone(session, caller)
            task = await self._load(session, caller, task_id, for_update=True)
            before = task_data(task)
            if patch.title is not None:
                task.title = patch.title
            if patch.description is not None:
                task.description = patch.description or None
            if patch.priority is not None:
                task.priority = Priority[patch.priority]
            task.tags = _patched_tags(task.tags, patch)
            _apply_schedule(task, patch.due, patch.remind, patch.repeat, tz=tz, now=now, patching=True)
            changed = _changed_fields(before, task_data(task))
            if not changed:
                return to_out(task, tz)
            task.version += 1
            task.updated_at = now
            written = await self._record(
                session, caller, TASK_UPDATED, str(task.id), task_data(task) | {"changed": changed}, now
            )
        self._committed(caller.user_id, written)
        return to_out(task, tz)

    async def complete(self, caller: Caller, task_id: str | uuid.UUID) -> TaskOut:
        return await self._set_completed(caller, task_id, True)

    async def reopen(self, caller: Caller, task_id: str | uuid.UUID) -> TaskOut:
        return await self._set_completed(caller, task_id, False)

    async def delete(self, caller: Caller, task_id: str | uuid.UUID) -> DeletedTask:
        now = self.clock()
        async with self.db.transaction() as session:
            task = await self._load(session, caller, task_id, for_update=True)
            written = await self._remove(session, caller, task, now)
        self._committed(caller.user_id, written)
        return DeletedTask(id=task.id, title=task.title)

    async def _remove(
        self, session: AsyncSession, caller: Caller, task: Task, now: datetime
    ) -> list[dict[str, Any]]:
        """Delete `task` and write its `task.deleted` event (the last version it had, plus one)."""
        data = task_data(task) | {"version": task.version + 1, "updatedAt": int(now.timestamp())}
        await session.delete(task)
        return await self._record(session, caller, TASK_DELETED, str(task.id), data, now)

    # ---- reminders and history ------------------------------------------------------

    async def reminder_state(self, user_id: str, task_id: str | uuid.UUID) -> ReminderState | None:
        """What the reminder of a task is now (None if the task is gone)."""
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    select(TASKS.c.completed, TASKS.c.remind_at, TASKS.c.version).where(
                        TASKS.c.id == parse_task_id(task_id), TASKS.c.user_id == user_id
                    )
                )
            ).first()
        return None if row is None else ReminderState(completed=row[0], remind_at=row[1], version=row[2])

    async def fire_reminders(
        self, user_id: str, due: Sequence[DueReminder], *, claim: BatchClaim, at: datetime | None = None
    ) -> list[uuid.UUID]:
        """Write `reminder.due` for each task still open with the reminder and version its job was
        made for, once (`claim` gets the ids ready to fire and returns those not fired before).

        One transaction for the whole batch, committed at `at` (default: now) and never before:
        the events are written ahead and only the commit waits, so a thousand reminders due in the
        same second go out at it, not one write after another. The tasks' rows stay locked until
        then (what fires is their state at `at`; an edit meanwhile waits for it). SQLite has one
        writer for the whole database, so there the transaction starts at `at` instead.
        Returns the ids of the tasks whose reminder fired.
        """
        wanted = {reminder.task_id: reminder for reminder in due}
        if not wanted:
            return []
        at = at or self.clock()
        if not self.db.is_postgres:
            await wait_until(at, self.clock)
        async with self.db.transaction() as session:
            query = (
                select(Task)
                .where(col(Task.user_id) == user_id, col(Task.id).in_(wanted))
                .order_by(col(Task.remind_at), col(Task.id))
            )
            tasks = (await session.scalars(query.with_for_update() if self.db.is_postgres else query)).all()
            ready = [
                task
                for task in tasks
                if not task.completed
                and task.version == wanted[task.id].version
                and epoch(task.remind_at) == wanted[task.id].remind_at
            ]
            if not ready:
                return []
            claimed = await claim(session, [task.id for task in ready])
            firing = [task for task in ready if task.id in claimed]
            changes = [(str(task.id), task_data(task)) for task in firing]
            written = await self._record_many(session, Caller(user_id), REMINDER_DUE, changes, at)
            await wait_until(at, self.clock)
        if firing:
            self._committed(user_id, written)
        return [task.id for task in firing]

    async def history(self, caller: Caller, task_id: str | uuid.UUID | None, limit: int = 50) -> TaskHistory:
        """One task's events (also after it was deleted), or the caller's recent activity."""
        wanted = None if task_id is None else parse_task_id(task_id)
        async with self.db.transaction() as session:
            tz = await self._zone(session, caller)
            entries = await history.recorded_events(session, caller.user_id, wanted, limit)
        if wanted is not None and not entries:
            raise TaskNotFound(wanted)
        return TaskHistory(entries=[_history_entry(entry, tz) for entry in entries])

    # ---- internals ---------------------------------------------------------------------

    async def _set_completed(self, caller: Caller, task_id: str | uuid.UUID, completed: bool) -> TaskOut:
        now = self.clock()
        async with self.db.transaction() as session:
            tz = await self._zone(session, caller)
            task = await self._load(session, caller, task_id, for_update=True)
            if task.completed == completed:
                return to_out(task, tz)
            task.completed = completed
            task.completed_at = now if completed else None
            task.version += 1
            task.updated_at = now
            event_type = TASK_COMPLETED if completed else TASK_REOPENED
            written = await self._record(session, caller, event_type, str(task.id), task_data(task), now)
        self._committed(caller.user_id, written)
        return to_out(task, tz)

    async def _load(
        self, session: AsyncSession, caller: Caller, task_id: str | uuid.UUID, *, for_update: bool = False
    ) -> Task:
        statement = select(Task).where(
            col(Task.id) == parse_task_id(task_id), col(Task.user_id) == caller.user_id
        )
        if for_update and self.db.is_postgres:
            statement = statement.with_for_update()
        task = await session.scalar(statement)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def _zone(self, session: AsyncSession | AsyncConnection, caller: Caller) -> ZoneInfo:
        """The caller's zone: the one their client sends, else the one stored for them, else UTC."""
        if caller.timezone:
            try:
                return dates.zone(caller.timezone)
            except dates.DateParseError as error:
                raise InvalidInput("timezone", str(error)) from None
        cached = self._zones.get(caller.user_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        stored = await session.scalar(
            select(col(UserAccount.timezone)).where(col(UserAccount.user_id) == caller.user_id)
        )
        zone = dates.zone(stored) if stored else ZoneInfo("UTC")
        if len(self._zones) >= ZONE_CACHE_SIZE:
            self._zones.clear()
        self._zones[caller.user_id] = (zone, time.monotonic() + ZONE_CACHE_SECONDS)
        return zone

    async def _record(
        self,
        session: AsyncSession,
        caller: Caller,
        event_type: str,
        subject: str,
        data: dict[str, Any],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Write the change's event to the outbox under the user's next sequence number; returns
        it as it will be published."""
        return await self._record_many(session, caller, event_type, [(subject, data)], now)

    async def _record_many(
        self,
        session: AsyncSession,
        caller: Caller,
        event_type: str,
        changes: Sequence[tuple[str, dict[str, Any]]],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Write one event per (subject, data) to the outbox, in order, under the user's next
        sequence numbers; returns them as they will be published."""
        if not changes:
            return []
        await session.flush()  # the tasks' own statements first, then the user's row lock
        events = [self._event(caller, event_type, subject, data, now) for subject, data in changes]
        if len(events) == 1:  # the common case: one statement on PostgreSQL
            seqs = [
                await outbox.append(
                    session, events[0], user_id=caller.user_id, timezone=caller.timezone, created_at=now
                )
            ]
        else:
            seqs = await outbox.append_many(
                session, events, user_id=caller.user_id, timezone=caller.timezone, created_at=now
            )
        self._zone_stored(caller)
        return [outbox.document(event, seq) for event, seq in zip(events, seqs, strict=True)]

    def _event(
        self, caller: Caller, event_type: str, subject: str, data: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        return build_event(
            event_type,
            data,
            source=self.source,
            subject=subject,
            user_id=caller.user_id,
            time=now,
            traceparent=self._traceparent(),
        )

    def _zone_stored(self, caller: Caller) -> None:
        """Appending an event stores the zone the caller's client sent: remember it."""
        if caller.timezone:
            self._zones[caller.user_id] = (dates.zone(caller.timezone), time.monotonic() + ZONE_CACHE_SECONDS)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit that wrote to the outbox (the relay's wake-up)."""
        self._commit_listeners.append(lambda user_id, events: listener())

    def on_committed_events(self, listener: Callable[[str, list[dict[str, Any]]], None]) -> None:
        """Call `listener(user_id, events)` after every commit that wrote events, with the events as
        the relay will publish them: for a consumer in this process that need not wait for the
        relay (the embedded mode's WebSocket push). The relay still publishes them."""
        self._commit_listeners.append(listener)

    def _committed(self, user_id: str, events: list[dict[str, Any]]) -> None:
        for listener in self._commit_listeners:
            try:
                listener(user_id, events)
            except Exception:  # the commit stands and the relay delivers them anyway
                log.exception("a listener of committed events failed")

    def _filters(
        self, caller: Caller, query: TaskQuery, tz: ZoneInfo, now: datetime
    ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [col(Task.user_id) == caller.user_id]
        if query.status != "all":
            conditions.append(col(Task.completed) == (query.status == "done"))
        if query.priority is not None:
            conditions.append(col(Task.priority) == Priority[query.priority])
        if query.tag:
            conditions.append(self._has_tag(query.tag.strip().lstrip("#").lower()))
        if query.due_before:
            before = _when("due_before", query.due_before, tz=tz, now=now, default_time=END_OF_DAY)
            conditions.append(and_(col(Task.due_at).is_not(None), col(Task.due_at) <= before))
        if query.due_after:
            after = _when("due_after", query.due_after, tz=tz, now=now, default_time=START_OF_DAY)
            conditions.append(and_(col(Task.due_at).is_not(None), col(Task.due_at) >= after))
        if query.done_after:
            after = _when("done_after", query.done_after, tz=tz, now=now, default_time=START_OF_DAY)
            if after > now:  # 'monday' is the coming one, like a due date's
                raise InvalidInput(
                    "done_after",
                    f"{query.done_after!r} is in the future, and tasks are completed in the past; "
                    "say 'last monday', 'yesterday', '7 days ago' or a date",
                )
            conditions.append(col(Task.completed_at) >= after)
        if query.done_before:
            before = _when("done_before", query.done_before, tz=tz, now=now, default_time=END_OF_DAY)
            conditions.append(col(Task.completed_at) <= before)
        if query.overdue:
            conditions.append(and_(col(Task.completed).is_(False), col(Task.due_at) < now))
        if query.query and query.query.strip():
            pattern = "%" + _escape_like(query.query.strip()) + "%"
            conditions.append(
                col(Task.title).ilike(pattern, escape="\\")
                | col(Task.description).ilike(pattern, escape="\\")
            )
        return conditions

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self.db.is_postgres:
            return type_coerce(col(Task.tags), JSONB()).contains([tag])
        each = func.json_each(Task.tags).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(column("value") == tag))

    @staticmethod
    def _order(query: TaskQuery) -> list[Any]:
        """Open tasks before done ones (a listing of both), then the sort key; each order is an
        index of `models.LISTING_INDEXES` read forwards."""
        due = col(Task.due_at).asc().nulls_last()
        open_first = col(Task.completed).asc()
        match query.sort:
            case "due":
                return [open_first, due, col(Task.priority).desc(), Task.id]
            case "priority":
                return [open_first, col(Task.priority).desc(), due, Task.id]
            case "created":
                return [open_first, col(Task.created_at).desc(), col(Task.id).desc()]
            case "updated":
                return [open_first, col(Task.updated_at).desc(), col(Task.id).desc()]
            case "title":
                return [open_first, func.lower(Task.title), Task.id]

    # Cursors are offsets bound to the listing they came from, so they cannot be replayed elsewhere.
    @staticmethod
    def _fingerprint(query: TaskQuery) -> str:
        shape = query.model_dump_json(exclude={"cursor", "limit"})
        return hashlib.sha256(shape.encode()).hexdigest()[:12]

    def _encode_cursor(self, query: TaskQuery, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{offset}:{self._fingerprint(query)}".encode()).decode()

    def _decode_cursor(self, query: TaskQuery) -> int:
        if not query.cursor:
            return 0
        try:
            offset_text, fingerprint = base64.urlsafe_b64decode(query.cursor.encode()).decode().split(":")
            offset = int(offset_text)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidInput("cursor", "is not a cursor returned by list_tasks") from None
        if fingerprint != self._fingerprint(query) or offset < 0:
            raise InvalidInput("cursor", "belongs to a different listing; repeat the same filters or drop it")
        return offset


# ---- pure helpers ------------------------------------------------------------------------


def _when(
    field: str, text: str, *, tz: ZoneInfo, now: datetime, default_time: clock_time = DEFAULT_TIME
) -> datetime:
    try:
        return dates.parse_when(text, tz=tz, now=now.astimezone(tz), default_time=default_time)
    except dates.DateParseError as error:
        raise InvalidInput(field, str(error)) from None


def _new_task(caller: Caller, fields: TaskCreate, tz: ZoneInfo, now: datetime) -> Task:
    task = Task(
        id=uuid7(),
        user_id=caller.user_id,
        title=fields.title,
        description=fields.description,
        priority=Priority[fields.priority or "none"],
        tags=fields.tags or [],
        created_at=now,
        updated_at=now,
    )
    _apply_schedule(task, fields.due, fields.remind, fields.repeat, tz=tz, now=now)
    return task


def _apply_schedule(
    task: Task,
    due: str | None,
    remind: str | None,
    repeat: str | None,
    *,
    tz: ZoneInfo,
    now: datetime,
    patching: bool = False,
) -> None:
    """Set due date, reminder and repeat rule from the caller's words ("" clears when patching)."""
    new_rule = False
    if repeat is not None:
        if repeat.strip() == "" and patching:
            task.recurrence = task.series_id = task.occurrence = None
        else:
            try:
                rule = recurrence.parse_repeat(repeat, tz=tz, now=now.astimezone(tz))
            except recurrence.RecurrenceError as error:
                raise InvalidInput("repeat", str(error)) from None
            if rule != task.recurrence:
                task.recurrence = rule
                task.series_id, task.occurrence = uuid7(), 1
                new_rule = True
    if due is not None:
        if due.strip() == "" and patching:
            task.due_at = None
        elif patching and (shift := dates.parse_shift(due)) is not None:  # "+2 days", "by a week"
            if task.due_at is None:
                raise InvalidInput(
                    "due", f"{due.strip()!r} moves a due date, but the task has none; give a date"
                )
            task.due_at = dates.shifted(task.due_at, shift, tz)
        else:
            # A day without a time keeps the task's time of day ("move the dentist to friday").
            keep = DEFAULT_TIME
            if patching and task.due_at is not None:
                keep = task.due_at.astimezone(tz).time().replace(tzinfo=None)
            task.due_at = _when("due", due, tz=tz, now=now, default_time=keep)
    if task.recurrence and task.due_at is None:
        task.due_at = recurrence.first_occurrence(
            task.recurrence, tz=tz, after=now, default_time=DEFAULT_TIME
        )
    elif task.recurrence and new_rule and task.due_at is not None:
        # A new rule starts on its own first day from the due date; moving the due date of a
        # repeating task later moves that one occurrence wherever the caller puts it.
        task.due_at = recurrence.first_from(task.recurrence, tz=tz, start=task.due_at) or task.due_at
    if remind is not None:
        if remind.strip() == "" and patching:
            task.remind_at, task.remind_offset_s = None, None
        elif patching and (shift := _reminder_shift(remind)) is not None:  # "+10 minutes", "by an hour"
            task.remind_at, task.remind_offset_s = _moved_reminder(task, shift, remind, tz=tz, now=now), None
        else:
            _set_reminder(task, remind, tz=tz, now=now)
    elif task.remind_offset_s is not None:
        # The reminder follows a moved due date, and goes with a removed one.
        task.remind_at = (
            None if task.due_at is None else task.due_at - timedelta(seconds=task.remind_offset_s)
        )
        if task.due_at is None:
            task.remind_offset_s = None


def _reminder_lead(data: dict[str, Any]) -> int | None:
    """How long before its due time the next occurrence of a repeating task reminds (seconds): as
    long as this one's, whether it was set as an offset or as a time ('every morning at 8, remind
    me' reminds at 8 every morning); None without one, or with one after the due time (a snooze)."""
    if data.get("remindOffset"):
        return int(data["remindOffset"])
    if data.get("remindAt") is None or data.get("dueDate") is None:
        return None
    lead = int(data["dueDate"]) - int(data["remindAt"])
    return lead if lead >= 0 else None


def _reminder_shift(text: str) -> tuple[int, timedelta] | None:
    """How far to move a reminder ('+10 minutes', 'by an hour', '10 minutes later'); None for an
    offset before the due time ('1 hour earlier' is one) and for a time."""
    shift = dates.parse_shift(text)
    if shift is None:
        return None
    with contextlib.suppress(dates.DateParseError):  # an offset, but not a valid one: a move
        if dates.parse_offset(text) is not None:
            return None
    return shift


def _moved_reminder(
    task: Task, shift: tuple[int, timedelta], text: str, *, tz: ZoneInfo, now: datetime
) -> datetime:
    """The reminder moved by a length: from its time while it is ahead, from now once it has fired
    (snoozing it) or when there is none."""
    ahead = task.remind_at if task.remind_at is not None and task.remind_at > now else None
    moved = dates.shifted(ahead or now, shift, tz)
    if moved <= now:
        raise InvalidInput(
            "remind",
            f"{text.strip()!r} would move the reminder to {moved:%Y-%m-%d %H:%M}, which has passed; "
            "give a later time",
        )
    return moved


def _set_reminder(task: Task, remind: str, *, tz: ZoneInfo, now: datetime) -> None:
    try:
        offset = dates.parse_offset(remind)
    except dates.DateParseError as error:
        raise InvalidInput("remind", str(error)) from None
    if offset is None:
        task.remind_at, task.remind_offset_s = _when("remind", remind, tz=tz, now=now), None
        return
    if task.due_at is None:
        raise InvalidInput(
            "remind",
            f"{remind!r} is relative to the due time but the task has no due date; "
            "give a due date too, or a time such as 'today 6pm'",
        )
    task.remind_offset_s = int(offset.total_seconds())
    task.remind_at = task.due_at - offset


def _patched_tags(current: list[str], patch: TaskPatch) -> list[str]:
    tags = list(patch.tags) if patch.tags is not None else list(current)
    for tag in patch.add_tags or []:
        if tag not in tags:
            tags.append(tag)
    removed = set(patch.remove_tags or [])
    tags = [tag for tag in tags if tag not in removed]
    if len(tags) > 20:
        raise InvalidInput("tags", f"at most 20 tags per task (would be {len(tags)})")
    return tags


# Event data keys mapped to the field names callers use.
_FIELD_NAMES = {
    "title": "title",
    "description": "description",
    "priority": "priority",
    "tags": "tags",
    "dueDate": "due",
    "remindAt": "remind",
    "recurrence": "repeat",
}


def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for key, name in _FIELD_NAMES.items() if before[key] != after[key]]


_SUMMARY_COLUMNS = (
    col(Task.id),
    col(Task.title),
    col(Task.completed),
    col(Task.priority),
    col(Task.tags),
    col(Task.due_at),
    col(Task.remind_at),
    col(Task.recurrence),
    col(Task.version),
)


@functools.lru_cache(maxsize=1024)
def _describe(rule: str) -> str:
    return recurrence.describe(rule)


def _summary(row: Sequence[Any], tz: ZoneInfo) -> TaskSummary:
    """A listing row as a `TaskSummary` (built without re-validating what the database holds)."""
    task_id, title, completed, priority, tags, due_at, remind_at, rule, version = row
    return TaskSummary.model_construct(
        id=task_id,
        title=title,
        completed=completed,
        priority=PRIORITIES[priority],
        tags=list(tags),
        due=None if due_at is None else due_at.astimezone(tz),
        remind_at=None if remind_at is None else remind_at.astimezone(tz),
        repeat_text=_describe(rule) if rule else None,
        version=version,
    )


_HISTORY_WORDS = {
    TASK_CREATED: "added",
    TASK_UPDATED: "changed",
    TASK_COMPLETED: "marked done",
    TASK_REOPENED: "reopened",
    TASK_DELETED: "deleted",
    REMINDER_DUE: "reminder sent",
}


def _history_entry(entry: history.Recorded, tz: ZoneInfo) -> HistoryEntry:
    data = entry.event.get("data") or {}
    changed = data.get("changed")
    detail = _HISTORY_WORDS.get(entry.type, entry.type)
    if changed:
        detail += ": " + ", ".join(changed)
    return HistoryEntry(
        seq=entry.seq,
        type=entry.type,
        task_id=uuid.UUID(entry.task_id),
        title=str(data.get("title", "")),
        at=entry.at.astimezone(tz),
        changed=changed,
        detail=detail,
    )


def to_out(task: Task, tz: ZoneInfo) -> TaskOut:
    def local(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(tz)

    return TaskOut(
        id=task.id,
        title=task.title,
        description=task.description,
        completed=task.completed,
        completed_at=local(task.completed_at),
        priority=PRIORITIES[task.priority],
        tags=list(task.tags),
        due=local(task.due_at),
        remind_at=local(task.remind_at),
        remind_before_minutes=None if task.remind_offset_s is None else task.remind_offset_s // 60,
        repeat=task.recurrence,
        repeat_text=_describe(task.recurrence) if task.recurrence else None,
        series_id=task.series_id,
        occurrence=task.occurrence,
        created_at=task.created_at.astimezone(tz),
        updated_at=task.updated_at.astimezone(tz),
        version=task.version,
    )
