"""Kill the embedded process with reminders pending; restart it; each reminder still fires once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from mcp_server.db import Database
from mcp_server.models import AuditEntry, OutboxEvent
from tests.helpers import start_serve

COMMAND = str(Path(sys.executable).with_name("todo-chatbot"))


async def audited_reminders(database: Database, user: str) -> int:
    async with database.sessions() as session:
        count = await session.scalar(
            select(func.count()).where(AuditEntry.user_id == user, AuditEntry.event_type == "reminder.due")
        )
    return int(count or 0)


async def test_pending_reminders_survive_a_kill(database_url: str, tmp_path: Path) -> None:
    user = f"restart-{os.getpid()}-{tmp_path.name[-8:]}"
    env = {**os.environ, "DATABASE_URL": database_url, "AUTH_SECRET": "", "TODO_USER": user}
    process, base = start_serve(env)
    try:
        remind_at = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        ids = []
        for title in ("Take the pizza out", "Call back"):
            response = httpx.post(
                base + "/api/tasks", json={"title": title, "remind": remind_at.isoformat()}, timeout=10
            )
            assert response.status_code == 201
            ids.append(response.json()["id"])
        time.sleep(1.0)  # the events have reached the reminders handler: the jobs are in the table
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    process, base = start_serve(env, port=int(base.rsplit(":", 1)[1]))  # on the same port if it is free
    database = Database(database_url)
    try:
        time.sleep(max(0.0, (remind_at - datetime.now(UTC)).total_seconds()) + 2.0)
        history = httpx.get(base + f"/api/tasks/{ids[0]}/history", timeout=10).json()
        assert [entry["type"] for entry in history["entries"]] == ["reminder.due", "task.created"]
        # The history shows events the audit handler has not recorded yet; on a slow machine the
        # relay may still be on its way, so wait (bounded) for both reminders to reach the audit log.
        deadline = time.monotonic() + 30
        while await audited_reminders(database, user) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)

    try:
        fired = await audited_reminders(database, user)
        async with database.sessions() as session:
            written = await session.scalar(
                select(func.count()).where(
                    OutboxEvent.user_id == user, OutboxEvent.event_type == "reminder.due"
                )
            )
            [first_fire] = (
                await session.scalars(
                    select(AuditEntry.occurred_at).where(
                        AuditEntry.user_id == user,
                        AuditEntry.event_type == "reminder.due",
                        AuditEntry.task_id == ids[0],
                    )
                )
            ).all()
    finally:
        await database.dispose()
    assert fired == 2 and written == 2  # once per task, not once per process start
    assert first_fire >= remind_at  # never early
