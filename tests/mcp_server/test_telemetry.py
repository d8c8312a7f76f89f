"""Observability: Prometheus metrics, W3C trace context through the outbox, JSON logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from mcp_server.db import Database
from mcp_server.models import AuditEntry, OutboxEvent
from mcp_server.telemetry import (
    JsonFormatter,
    configure_logging,
    event_context,
    new_traceparent,
    trace_context,
    valid_traceparent,
)
from tests.helpers import TEST_SECRET, mcp_over_http, serving, token
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings


@pytest.fixture
async def embedded(database_url: str) -> AsyncIterator[str]:
    async with serving(create_app(Settings(database_url=database_url, auth_secret=TEST_SECRET))) as url:
        yield url


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(metrics: dict[Any, float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_tools_outbox_and_handlers(embedded: str, new_caller: Any) -> None:
    user = new_caller().user_id
    async with httpx.AsyncClient(base_url=embedded) as http:
        before = samples((await http.get("/metrics")).text)
        async with mcp_over_http(embedded, token(user)) as mcp:
            added = await mcp.call_tool("add_task", {"title": "Counted"})
            await mcp.call_tool("get_task", {"task_id": "not-an-id"})
        task_id = added.structured_content["id"]
        headers = {"Authorization": f"Bearer {token(user)}"}
        assert (await http.get(f"/api/tasks/{task_id}", headers=headers)).status_code == 200

        async def scrape() -> dict[Any, float]:
            return samples((await http.get("/metrics")).text)

        after = await scrape()

        def settled(now: dict[Any, float]) -> bool:  # handled, and marked published after that
            return all(
                value(now, name, **labels) > value(before, name, **labels)
                for name, labels in (
                    ("todo_handler_outcomes_total", {"handler": "audit", "outcome": "SUCCESS"}),
                    ("todo_outbox_published_total", {}),
                )
            )

        for _ in range(400):  # the relay and the handlers run after the commit (allow for a busy machine)
            if settled(after):
                break
            await asyncio.sleep(0.05)
            after = await scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("todo_mcp_tool_calls_total", tool="add_task", outcome="ok") == 1
    assert grew("todo_mcp_tool_calls_total", tool="get_task", outcome="error") == 1
    # Routes are counted by template, never by raw path (no task ids in label values).
    assert grew("todo_http_requests_total", method="GET", route="/api/tasks/{task_id}", status="200") == 1
    assert not any(task_id in str(labels) for _, labels in after)
    assert grew("todo_outbox_published_total") >= 1
    assert grew("todo_handler_outcomes_total", handler="audit", outcome="SUCCESS") >= 1
    for name in (
        "todo_outbox_backlog",
        "todo_outbox_oldest_age_seconds",
        "todo_websocket_connections",
        "todo_reminders_scheduled_total",
        "todo_reminders_fired_total",
        "todo_reminders_stale_total",
        "todo_outbox_publish_failures_total",
    ):
        assert any(key[0] == name for key in after), name


async def test_trace_context_flows_from_request_through_outbox_to_handlers(
    embedded: str, database_url: str, new_caller: Any
) -> None:
    user = new_caller().user_id
    parent = new_traceparent()
    trace = parent.split("-")[1]
    headers = {"Authorization": f"Bearer {token(user)}", "traceparent": parent}
    async with httpx.AsyncClient(base_url=embedded, headers=headers) as http:
        task = (await http.post("/api/tasks", json={"title": "Traced", "repeat": "daily"})).json()
        assert (await http.post(f"/api/tasks/{task['id']}/complete")).status_code == 200
    database = Database(database_url)
    try:

        async def events() -> list[dict[str, Any]]:
            async with database.sessions() as session:
                rows = await session.scalars(
                    select(OutboxEvent.payload).where(OutboxEvent.user_id == user).order_by(OutboxEvent.id)
                )
                return list(rows)

        found: list[dict[str, Any]] = []
        for _ in range(100):
            found = await events()
            if len(found) == 3:
                break
            await asyncio.sleep(0.05)
        # created and completed by the request; the next occurrence created by the recurring handler.
        assert [event["type"] for event in found] == ["task.created", "task.completed", "task.created"]
        assert {event["traceid"].split("-")[1] for event in found} == {trace}
        assert all(event["traceparent"] == event["traceid"] for event in found)
        async with database.sessions() as session:
            audited = list(await session.scalars(select(AuditEntry.event).where(AuditEntry.user_id == user)))
        assert audited and all(event["traceparent"].split("-")[1] == trace for event in audited)
    finally:
        await database.dispose()


def test_traceparent_validation() -> None:
    good = new_traceparent()
    assert valid_traceparent(good) == good
    assert valid_traceparent(good.upper()) == good
    for bad in ("", "00-abc", "01-" + good[3:], "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "x" * 60, None):
        assert valid_traceparent(bad) is None


def test_json_logs_name_the_trace_and_the_event() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("todo.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    parent = new_traceparent()
    traced, handling = trace_context.set(parent), event_context.set("0190-event")
    try:
        logger.info("handled %s", "it")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        event_context.reset(handling)
        trace_context.reset(traced)
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (
        first["message"] == "handled it" and first["level"] == "INFO" and first["logger"] == "todo.test.json"
    )
    assert first["trace_id"] == parent.split("-")[1] and first["event_id"] == "0190-event"
    assert "ValueError: boom" in second["exception"]


def test_configured_logging_keeps_our_info_lines_but_not_one_per_outgoing_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("httpx").level
    try:
        configure_logging("INFO", "json")
        logging.getLogger("todo.test.configured").info("relay started")
        logging.getLogger("httpx").info('HTTP Request: POST http://127.0.0.1:3500/v1.0/publish "204"')
        logging.getLogger("httpx").warning("connection pool is full")
    finally:
        root.handlers[:], level, httpx_level = saved
        root.setLevel(level)
        logging.getLogger("httpx").setLevel(httpx_level)
    lines = [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["relay started", "connection pool is full"]
