"""TaskService on PostgreSQL and SQLite: validation, scoping, the outbox, listing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError
from sqlalchemy import func, select, text

from mcp_server.db import Database
from mcp_server.errors import InvalidInput, StoreUnavailable, TaskNotFound
from mcp_server.models import OutboxEvent, Task, UserAccount
from mcp_server.outbox import document as outbox_document
from mcp_server.schemas import TaskCreate, TaskPatch, TaskQuery
from mcp_server.service import Caller, TaskService

NEW_YORK = ZoneInfo("America/New_York")
NewCaller = Callable[..., Caller]


async def outbox(db: Database, user_id: str) -> list[OutboxEvent]:
    async with db.sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.user_id == user_id).order_by(OutboxEvent.id)
        )
        return list(rows)


async def task_count(db: Database, user_id: str) -> int:
    async with db.sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Task).where(Task.user_id == user_id)) or 0
        )


def add(title: str = "Buy milk", **fields: Any) -> TaskCreate:
    return TaskCreate(title=title, **fields)


async def test_create_normalises_and_writes_one_event(
    service: TaskService, db: Database, new_caller: NewCaller
) -> None:
    caller = new_caller("America/New_York")
    task = await service.create(
        caller,
        add(
            "  Buy   milk ",
            description=" 2 litres ",
            priority="high",
            tags=["#Errands", "errands", "Shop"],
            due="tomorrow 5pm",
        ),
    )
    assert task.title == "Buy milk"
    assert task.description == "2 litres"
    assert task.tags == ["errands", "shop"]
    assert task.priority == "high"
    assert task.due == datetime(2026, 11, 28, 17, 0, tzinfo=NEW_YORK)
    assert task.version == 1 and not task.completed

    [row] = await outbox(db, caller.user_id)
    assert row.event_type == "task.created" and row.seq == 1 and row.published_at is None
    published = outbox_document(row.payload, row.seq)
    event = JSONFormat().read(None, json.dumps(published).encode())  # validates as a CloudEvent 1.0
    assert event.get_type() == "task.created"
    assert event.get_subject() == str(task.id)
    assert event.get_source() == "/todo-chatbot/tests"
    assert event.get_extension("sequence") == "1"
    assert event.get_extension("partitionkey") == caller.user_id
    data = event.get_data()
    assert isinstance(data, dict)
    assert data["taskId"] == str(task.id) and data["userId"] == caller.user_id
    assert data["title"] == "Buy milk" and data["tags"] == ["errands", "shop"] and data["priority"] == "high"
    assert task.due is not None and data["dueDate"] == int(task.due.timestamp())
    assert data["createdAt"] == int(datetime(2026, 11, 27, 15, 0, tzinfo=UTC).timestamp())
    assert data["version"] == 1 and data["completed"] is False


async def test_every_change_is_one_event_in_user_order(
    service: TaskService, db: Database, new_caller: NewCaller
) -> None:
    caller = new_caller()
    task = await service.create(caller, add())
    await service.update(caller, task.id, TaskPatch(title="Buy oat milk", add_tags=["shop"]))
    await service.update(caller, task.id, TaskPatch(title="Buy oat milk"))  # no change, no event
    await service.complete(caller, task.id)
    await service.complete(caller, task.id)  # already done, no event
    await service.reopen(caller, task.id)
    deleted = await service.delete(caller, task.id)
    assert deleted.title == "Buy oat milk"

    rows = await outbox(db, caller.user_id)
    assert [row.event_type for row in rows] == [
        "task.created",
        "task.updated",
        "task.completed",
        "task.reopened",
        "task.deleted",
    ]
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert [row.payload["data"]["version"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[1].payload["data"]["changed"] == ["title", "tags"]
    assert rows[2].payload["data"]["completed"] is True and rows[2].payload["data"]["completedAt"] is not None
    assert len({row.event_id for row in rows}) == 5
    assert await task_count(db, caller.user_id) == 0


async def test_concurrent_changes_of_one_user_leave_the_outbox_in_their_order(
    service: TaskService, db: Database, new_caller: NewCaller
) -> None:
    """The user's row lock is taken before the outbox row gets its id, also when the whole change
    is one statement: the relay, reading by id, sends one user's events in sequence order."""
    caller = new_caller()
    first = await service.create(caller, add("first"))
    await asyncio.gather(
        *(service.create(caller, add(f"task {index}")) for index in range(24)),
        *(service.update(caller, first.id, TaskPatch(add_tags=[f"t{index}"])) for index in range(8)),
    )
    rows = await outbox(db, caller.user_id)
    assert [row.seq for row in rows] == list(range(1, 34))


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"title": ""}, "title", "1-200 characters"),
        ({"title": "   "}, "title", "1-200 characters"),
        ({"title": "x" * 10_000}, "title", "1-200 characters"),
        ({"title": "ok", "priority": "critical"}, "priority", "'none', 'low', 'medium', 'high' or 'urgent'"),
        ({"title": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags", "at most 20 tags"),
        ({"title": "ok", "tags": ["x" * 41]}, "tags", "1-40 characters"),
        ({"title": "ok", "description": "d" * 4_001}, "description", "at most 4000"),
    ],
)
def test_bad_fields_name_the_field_and_rule(fields: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskCreate(**fields)
    [error] = caught.value.errors()
    assert error["loc"][0] == field
    assert rule in error["msg"]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"due": "when pigs fly"}, "due", "could not understand"),
        ({"repeat": "FREQ=FORTNIGHTLY"}, "repeat", "FORTNIGHTLY"),
        ({"remind": "30 minutes before"}, "remind", "no due date"),
        ({"remind": "someday maybe"}, "remind", "could not understand"),
    ],
)
async def test_bad_schedules_write_nothing(
    service: TaskService, db: Database, new_caller: NewCaller, fields: dict[str, str], field: str, words: str
) -> None:
    caller = new_caller()
    with pytest.raises(InvalidInput) as caught:
        await service.create(caller, add(**fields))
    assert caught.value.field == field and words in caught.value.rule
    assert await task_count(db, caller.user_id) == 0
    assert await outbox(db, caller.user_id) == []


async def test_unknown_timezone_is_refused(service: TaskService, new_caller: NewCaller) -> None:
    with pytest.raises(InvalidInput, match="timezone"):
        await service.create(new_caller("Mars/Olympus"), add())


async def test_ids_malformed_missing_and_foreign(
    service: TaskService, db: Database, new_caller: NewCaller
) -> None:
    owner, other = new_caller(), new_caller()
    task = await service.create(owner, add())
    with pytest.raises(InvalidInput, match="not a task id"):
        await service.get(other, "milk")
    missing_message = ""
    with pytest.raises(TaskNotFound) as missing:
        await service.get(other, "0190f3a0-0000-7000-8000-000000000000")
    missing_message = str(missing.value).replace("0190f3a0-0000-7000-8000-000000000000", "ID")
    for action in (
        service.get(other, task.id),
        service.update(other, task.id, TaskPatch(title="mine now")),
        service.complete(other, task.id),
        service.reopen(other, task.id),
        service.delete(other, task.id),
    ):
        with pytest.raises(TaskNotFound) as foreign:
            await action
        # The same answer as for an id that does not exist: existence does not leak.
        assert str(foreign.value).replace(str(task.id), "ID") == missing_message
    assert (await service.list_tasks(other, TaskQuery(status="all"))).total == 0
    assert (await service.get(owner, task.id)).title == "Buy milk"
    assert len(await outbox(db, other.user_id)) == 0


async def test_sql_metacharacters_are_stored_and_searched_verbatim(
    service: TaskService, new_caller: NewCaller
) -> None:
    caller = new_caller()
    nasty = "50% off'; DROP TABLE tasks; -- _x_ \\"
    await service.create(caller, add(nasty))
    await service.create(caller, add("500 off"))
    await service.create(caller, add("a_b"))
    assert [t.title for t in (await service.list_tasks(caller, TaskQuery(query="%"))).tasks] == [nasty]
    assert [t.title for t in (await service.list_tasks(caller, TaskQuery(query="'; DROP"))).tasks] == [nasty]
    found = {t.title for t in (await service.list_tasks(caller, TaskQuery(query="_"))).tasks}
    assert found == {nasty, "a_b"}
    assert (await service.list_tasks(caller, TaskQuery(query="\\"))).total == 1


async def test_listing_filters_sorts_and_pages(
    service: TaskService, clock: Any, new_caller: NewCaller
) -> None:
    caller = new_caller("America/New_York")
    made = {}
    for title, fields in [
        ("overdue report", {"due": "2026-11-26 09:00", "priority": "urgent", "tags": ["work"]}),
        ("today call", {"due": "today 6pm", "priority": "high", "tags": ["work", "phone"]}),
        ("tomorrow milk", {"due": "tomorrow 9am", "tags": ["errands"], "description": "oat, not cow"}),
        ("next week plan", {"due": "2026-12-04", "priority": "low"}),
        ("someday read", {}),
    ]:
        made[title] = await service.create(caller, add(title, **fields))
        clock.now += timedelta(minutes=1)
    await service.complete(caller, made["next week plan"].id)

    async def titles(**query: Any) -> list[str]:
        return [t.title for t in (await service.list_tasks(caller, TaskQuery(**query))).tasks]

    assert await titles() == ["overdue report", "today call", "tomorrow milk", "someday read"]
    assert await titles(status="done") == ["next week plan"]
    assert len(await titles(status="all")) == 5
    assert await titles(priority="high") == ["today call"]
    assert await titles(tag="work") == ["overdue report", "today call"]
    assert await titles(tag="#Phone") == ["today call"]
    assert await titles(overdue=True) == ["overdue report"]
    assert await titles(due_after="today", due_before="today") == ["today call"]
    assert await titles(due_before="tomorrow") == ["overdue report", "today call", "tomorrow milk"]
    assert await titles(query="OAT") == ["tomorrow milk"]
    assert await titles(sort="priority") == ["overdue report", "today call", "tomorrow milk", "someday read"]
    assert await titles(sort="created") == ["someday read", "tomorrow milk", "today call", "overdue report"]
    assert await titles(sort="title") == ["overdue report", "someday read", "today call", "tomorrow milk"]

    # Open and done tasks together: the open ones first, then the done one.
    first = await service.list_tasks(caller, TaskQuery(status="all", sort="title", limit=2))
    assert first.total == 5 and [t.title for t in first.tasks] == ["overdue report", "someday read"]
    assert first.next_cursor is not None
    second = await service.list_tasks(
        caller, TaskQuery(status="all", sort="title", limit=2, cursor=first.next_cursor)
    )
    third = await service.list_tasks(
        caller, TaskQuery(status="all", sort="title", limit=2, cursor=second.next_cursor)
    )
    assert [t.title for t in second.tasks + third.tasks] == ["today call", "tomorrow milk", "next week plan"]
    assert third.next_cursor is None and second.total == third.total == 5
    # Tasks deleted between pages: a page past the end is empty and still says how many there are.
    for task in first.tasks:
        await service.delete(caller, task.id)
    past = await service.list_tasks(
        caller, TaskQuery(status="all", sort="title", limit=2, cursor=second.next_cursor)
    )
    assert past.tasks == [] and past.total == 3 and past.next_cursor is None
    with pytest.raises(InvalidInput, match="different listing"):
        await service.list_tasks(
            caller, TaskQuery(status="open", sort="title", limit=2, cursor=first.next_cursor)
        )
    with pytest.raises(InvalidInput, match="cursor"):
        await service.list_tasks(caller, TaskQuery(cursor="not-a-cursor"))


async def test_reminder_offset_follows_the_due_date(service: TaskService, new_caller: NewCaller) -> None:
    caller = new_caller("America/New_York")
    task = await service.create(caller, add("Dentist", due="2026-12-01 15:00", remind="30 minutes before"))
    assert task.remind_at == datetime(2026, 12, 1, 14, 30, tzinfo=NEW_YORK)
    assert task.remind_before_minutes == 30
    moved = await service.update(caller, task.id, TaskPatch(due="2026-12-02 10:00"))
    assert moved.remind_at == datetime(2026, 12, 2, 9, 30, tzinfo=NEW_YORK)
    snoozed = await service.update(caller, task.id, TaskPatch(remind="2026-12-02 09:50"))
    assert (
        snoozed.remind_at == datetime(2026, 12, 2, 9, 50, tzinfo=NEW_YORK)
        and snoozed.remind_before_minutes is None
    )
    cleared = await service.update(caller, task.id, TaskPatch(remind=""))
    assert cleared.remind_at is None
    day_before = await service.update(caller, task.id, TaskPatch(remind="the day before"))
    assert day_before.remind_at == datetime(2026, 12, 1, 10, 0, tzinfo=NEW_YORK)
    assert day_before.remind_before_minutes == 24 * 60
    again = await service.update(caller, task.id, TaskPatch(remind="1 hour before"))
    no_due = await service.update(caller, again.id, TaskPatch(due=""))
    assert no_due.due is None and no_due.remind_at is None and no_due.remind_before_minutes is None


async def test_a_reminder_is_moved_by_a_length(
    service: TaskService, new_caller: NewCaller, clock: Any
) -> None:
    """'+10 minutes', 'by an hour', '10 minutes later' move a reminder still ahead from its time,
    and snooze one that has fired from now; '1 hour earlier' stays an offset before the due time."""
    caller = new_caller("America/New_York")  # the clock: Friday 2026-11-27, 10:00 in New York
    task = await service.create(caller, add("Oven", due="2026-11-27 12:00", remind="2026-11-27 10:10"))
    later = await service.update(caller, task.id, TaskPatch(remind="+5 minutes"))  # ahead: from 10:10
    assert later.remind_at == datetime(2026, 11, 27, 10, 15, tzinfo=NEW_YORK)
    later = await service.update(caller, task.id, TaskPatch(remind="by an hour"))
    assert later.remind_at == datetime(2026, 11, 27, 11, 15, tzinfo=NEW_YORK)
    later = await service.update(caller, task.id, TaskPatch(remind="-15 minutes"))
    assert later.remind_at == datetime(2026, 11, 27, 11, 0, tzinfo=NEW_YORK)
    clock.now = datetime(2026, 11, 27, 11, 2, tzinfo=NEW_YORK).astimezone(UTC)  # it has fired
    snoozed = await service.update(caller, task.id, TaskPatch(remind="10 minutes later"))
    assert snoozed.remind_at == datetime(2026, 11, 27, 11, 12, tzinfo=NEW_YORK)
    assert snoozed.remind_before_minutes is None
    with pytest.raises(
        InvalidInput, match=r"remind: '-30 minutes' would move the reminder to .*which has passed"
    ):
        await service.update(caller, task.id, TaskPatch(remind="-30 minutes"))
    before_due = await service.update(caller, task.id, TaskPatch(remind="1 hour earlier"))  # an offset
    assert before_due.remind_at == datetime(2026, 11, 27, 11, 0, tzinfo=NEW_YORK)
    assert before_due.remind_before_minutes == 60
    none_yet = await service.create(caller, add("Call back"))
    snoozed = await service.update(caller, none_yet.id, TaskPatch(remind="+10 minutes"))  # none: from now
    assert snoozed.remind_at == datetime(2026, 11, 27, 11, 12, tzinfo=NEW_YORK)


async def test_listing_by_completion_time(service: TaskService, new_caller: NewCaller, clock: Any) -> None:
    caller = new_caller("America/New_York")  # the clock: Friday 2026-11-27, 10:00 in New York
    made = {
        title: await service.create(caller, add(title)) for title in ("Old", "Yesterday", "Today", "Open")
    }
    for title, when in (
        ("Old", datetime(2026, 11, 20, 12, 0, tzinfo=NEW_YORK)),
        ("Yesterday", datetime(2026, 11, 26, 23, 30, tzinfo=NEW_YORK)),
        ("Today", datetime(2026, 11, 27, 0, 15, tzinfo=NEW_YORK)),
    ):
        clock.now = when.astimezone(UTC)
        await service.complete(caller, made[title].id)
    clock.now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)

    async def titles(**query: Any) -> list[str]:
        return sorted(t.title for t in (await service.list_tasks(caller, TaskQuery(**query))).tasks)

    assert await titles(done_after="today") == ["Today"]  # the status defaults to done here
    assert await titles(done_after="yesterday", done_before="yesterday") == ["Yesterday"]
    assert await titles(done_after="last monday") == ["Today", "Yesterday"]
    with pytest.raises(InvalidInput, match=r"done_after: 'monday' is in the future.*'last monday'"):
        await service.list_tasks(caller, TaskQuery(done_after="monday"))
    assert await titles(done_before="2026-11-25", status="all") == ["Old"]
    assert await titles(done_after="2026-11-01", status="done", query="old") == ["Old"]
    with pytest.raises(InvalidInput, match="done_after"):
        await service.list_tasks(caller, TaskQuery(done_after="the day after never"))


async def test_a_new_day_without_a_time_keeps_the_tasks_time_of_day(
    service: TaskService, new_caller: NewCaller
) -> None:
    caller = new_caller("America/New_York")  # the clock: Friday 2026-11-27, 10:00 in New York
    task = await service.create(caller, add("Dentist", due="2026-11-30 16:15"))
    wednesday = await service.update(caller, task.id, TaskPatch(due="wednesday"))
    assert wednesday.due == datetime(2026, 12, 2, 16, 15, tzinfo=NEW_YORK)
    dated = await service.update(caller, task.id, TaskPatch(due="2026-12-10"))
    assert dated.due == datetime(2026, 12, 10, 16, 15, tzinfo=NEW_YORK)
    across_dst = await service.update(caller, task.id, TaskPatch(due="2027-03-15"))
    assert across_dst.due == datetime(2027, 3, 15, 16, 15, tzinfo=NEW_YORK)  # the same wall time
    timed = await service.update(caller, task.id, TaskPatch(due="tomorrow 9am"))
    assert timed.due == datetime(2026, 11, 28, 9, 0, tzinfo=NEW_YORK)
    undated = await service.create(caller, add("Haircut"))
    first_day = await service.update(caller, undated.id, TaskPatch(due="friday"))
    assert first_day.due == datetime(2026, 12, 4, 9, 0, tzinfo=NEW_YORK)  # no time to keep: 9am
    new = await service.create(caller, add("Plumber", due="friday"))
    assert new.due == datetime(2026, 12, 4, 9, 0, tzinfo=NEW_YORK)


async def test_a_due_date_is_moved_by_a_length(service: TaskService, new_caller: NewCaller) -> None:
    """'+2 days', 'by a week', '2 hours later', '1 day earlier' move the current due date: days keep
    the wall time across a DST change, hours are elapsed time."""
    caller = new_caller("America/New_York")  # the clock: Friday 2026-11-27, 10:00 in New York
    task = await service.create(caller, add("Report", due="2027-03-12 16:15"))  # the Friday before DST
    moved = await service.update(caller, task.id, TaskPatch(due="+2 days"))
    assert moved.due == datetime(2027, 3, 14, 16, 15, tzinfo=NEW_YORK)  # same wall time, an hour less
    moved = await service.update(caller, task.id, TaskPatch(due="by a week"))
    assert moved.due == datetime(2027, 3, 21, 16, 15, tzinfo=NEW_YORK)
    moved = await service.update(caller, task.id, TaskPatch(due="2 hours later"))
    assert moved.due == datetime(2027, 3, 21, 18, 15, tzinfo=NEW_YORK)
    moved = await service.update(caller, task.id, TaskPatch(due="1 day and 30 minutes earlier"))
    assert moved.due == datetime(2027, 3, 20, 17, 45, tzinfo=NEW_YORK)
    in_two_days = await service.update(caller, task.id, TaskPatch(due="in 2 days"))  # from now, as before
    assert in_two_days.due == datetime(2026, 11, 29, 17, 45, tzinfo=NEW_YORK)  # the time of day kept
    undated = await service.create(caller, add("Haircut"))
    with pytest.raises(InvalidInput, match="due: '\\+2 days' moves a due date, but the task has none"):
        await service.update(caller, undated.id, TaskPatch(due="+2 days"))
    created = await service.create(caller, add("Dentist", due="2 days later"))  # no due to move: from now
    assert created.due == datetime(2026, 11, 29, 9, 0, tzinfo=NEW_YORK)


async def test_repeating_task_starts_a_series(service: TaskService, new_caller: NewCaller) -> None:
    caller = new_caller("America/New_York")
    task = await service.create(caller, add("Stand-up", repeat="every weekday at 9:30"))
    assert task.repeat and "FREQ=WEEKLY" in task.repeat and "BYDAY=MO,TU,WE,TH,FR" in task.repeat
    assert task.series_id is not None and task.occurrence == 1
    assert task.due == datetime(2026, 11, 30, 9, 30, tzinfo=NEW_YORK)  # after Friday 10:00 comes Monday
    assert task.repeat_text


async def test_a_due_date_off_its_new_rule_moves_to_the_rules_first_day(
    service: TaskService, new_caller: NewCaller
) -> None:
    caller = new_caller("America/New_York")
    # Saturday 9:30 and "every weekday": the series begins on Monday at 9:30, its reminder with it.
    task = await service.create(
        caller, add("Stand-up", due="2026-11-28 09:30", repeat="every weekday", remind="10 minutes before")
    )
    assert task.due == datetime(2026, 11, 30, 9, 30, tzinfo=NEW_YORK)
    assert task.remind_at == datetime(2026, 11, 30, 9, 20, tzinfo=NEW_YORK)
    on_rule = await service.create(caller, add("Rent", due="2026-12-01 09:00", repeat="monthly on the 1st"))
    assert on_rule.due == datetime(2026, 12, 1, 9, 0, tzinfo=NEW_YORK)
    # Moving one occurrence is the caller's word, even to a day the rule skips ...
    moved = await service.update(caller, task.id, TaskPatch(due="2026-12-05 10:00"))
    assert moved.due == datetime(2026, 12, 5, 10, 0, tzinfo=NEW_YORK)
    # ... and a new rule for an existing task starts on its first day from the due date.
    weekly = await service.update(caller, task.id, TaskPatch(repeat="every monday and wednesday"))
    assert weekly.due == datetime(2026, 12, 7, 10, 0, tzinfo=NEW_YORK)
    assert weekly.remind_at == datetime(2026, 12, 7, 9, 50, tzinfo=NEW_YORK)


async def test_timezone_is_remembered_per_user(
    service: TaskService, db: Database, new_caller: NewCaller
) -> None:
    berlin = new_caller("Europe/Berlin")
    await service.create(berlin, add("first"))
    later = await service.create(Caller(berlin.user_id), add("second", due="tomorrow 9am"))
    assert later.due == datetime(2026, 11, 28, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    async with db.sessions() as session:
        account = await session.get(UserAccount, berlin.user_id)
    assert account is not None and account.timezone == "Europe/Berlin" and account.last_seq == 2


async def test_failure_inside_the_transaction_leaves_nothing(
    service: TaskService, db: Database, new_caller: NewCaller
) -> None:
    """A database-level failure after the task row is written rolls the task back with its event."""
    caller = new_caller()
    if db.is_postgres:
        ddl = [
            "CREATE OR REPLACE FUNCTION refuse_outbox() RETURNS trigger AS $$ BEGIN "
            "IF NEW.user_id = '"
            + caller.user_id
            + "' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ "
            "LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox "
            "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()",
        ]
        drop = ["DROP TRIGGER refuse_outbox ON outbox", "DROP FUNCTION refuse_outbox()"]
    else:
        ddl = [
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox WHEN NEW.user_id = '"
            + caller.user_id
            + "' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = ["DROP TRIGGER refuse_outbox"]
    async with db.engine.begin() as connection:
        for statement in ddl:
            await connection.execute(text(statement))
    try:
        with pytest.raises(Exception, match="refused"):
            await service.create(caller, add("doomed"))
        with pytest.raises(Exception, match="refused"):
            await service.create(caller, add("doomed too", tags=["x"], due="tomorrow"))
    finally:
        async with db.engine.begin() as connection:
            for statement in drop:
                await connection.execute(text(statement))
    assert await task_count(db, caller.user_id) == 0
    assert await outbox(db, caller.user_id) == []
    async with db.sessions() as session:
        assert await session.get(UserAccount, caller.user_id) is None


async def test_unreachable_database_is_a_retryable_error(new_caller: NewCaller) -> None:
    """A database server that does not answer (nothing listens on port 9) is an outage, not a crash."""
    dead = Database("postgresql://postgres@127.0.0.1:9/nowhere", connect_args={"connect_timeout": 1})
    try:
        with pytest.raises(StoreUnavailable, match="retry"):
            await TaskService(dead).create(new_caller(), add())
        with pytest.raises(StoreUnavailable):
            await TaskService(dead).list_tasks(new_caller(), TaskQuery())
    finally:
        await dead.dispose()
