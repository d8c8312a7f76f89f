"""Every listing order is read from an index in that order on PostgreSQL: a page never sorts all of
the user's matching tasks, so listing stays fast at 100,000 tasks per user (`bench/list_scale.py`
measures it). The planner is told to avoid sorts and sequential scans; a listing it can still only
answer with a full sort shows a `Sort` node in its plan. (An `Incremental Sort` only orders the rows
that tie on the index's columns: tasks of one priority and due time, by id.)"""

from __future__ import annotations

import itertools
import re
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from mcp_server.db import Database
from mcp_server.schemas import TaskCreate, TaskQuery
from mcp_server.service import Caller, TaskService

SORTS = ["due", "priority", "created", "updated", "title"]
STATUSES = ["open", "done", "all"]


@pytest.fixture
async def listed(postgres_url: str) -> Any:
    """A service on PostgreSQL, and the page statements it sends."""
    db = Database(postgres_url)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().startswith("SELECT tasks.id"):
            statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    yield TaskService(db), statements
    await db.dispose()


def plan(url: str, statement: str, parameters: Any) -> str:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET enable_sort = off")
        connection.execute("SET enable_seqscan = off")
        connection.execute("SET enable_bitmapscan = off")
        rows = connection.execute("EXPLAIN " + statement, parameters).fetchall()
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize(("sort", "status"), list(itertools.product(SORTS, STATUSES)))
async def test_a_page_is_read_in_index_order(
    listed: Any, postgres_url: str, new_caller: Any, sort: str, status: str
) -> None:
    service, statements = listed
    caller: Caller = new_caller()
    for index in range(3):
        await service.create(caller, TaskCreate(title=f"task {index}", due=f"in {index + 1} days"))
    await service.list_tasks(caller, TaskQuery(status=status, sort=sort, limit=2))
    statement, parameters = statements[-1]
    shown = plan(postgres_url, statement, parameters)
    assert re.search(r"(?<!Incremental )Sort  \(", shown) is None, shown
    assert f"ix_tasks_user_{sort}" in shown, shown


async def test_open_tasks_come_before_done_ones_in_a_listing_of_both(listed: Any, new_caller: Any) -> None:
    service, _ = listed
    caller: Caller = new_caller()
    first = await service.create(caller, TaskCreate(title="a early", due="in 1 day"))
    await service.create(caller, TaskCreate(title="b late", due="in 3 days"))
    await service.complete(caller, first.id)
    for sort in SORTS:
        page = await service.list_tasks(caller, TaskQuery(status="all", sort=sort))
        assert [task.completed for task in page.tasks] == [False, True], sort
