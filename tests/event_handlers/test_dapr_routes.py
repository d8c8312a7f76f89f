"""The Dapr-facing routes of the handler services, driven exactly as daprd drives them."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from event_handlers.app import create_handler_app
from event_handlers.subscriptions import SUBSCRIPTIONS
from mcp_server.db import Database
from mcp_server.schemas import TaskCreate, TaskPatch
from mcp_server.service import Caller, TaskService
from tests.event_handlers.conftest import APP_TOKEN, dapr_settings
from tests.fakes import FakeSidecar
from tests.helpers import eventually, serving


async def task_event(service: TaskService, caller: Caller, **fields: Any) -> dict[str, Any]:
    """A real `task.created` CloudEvent as the relay would publish it."""
    from sqlalchemy import select

    from mcp_server.models import OutboxEvent
    from mcp_server.outbox import document

    task = await service.create(caller, TaskCreate(title="Event source", **fields))
    async with service.db.sessions() as session:
        row = (await session.scalars(select(OutboxEvent).where(OutboxEvent.user_id == caller.user_id))).all()[
            -1
        ]
    assert row.payload["subject"] == str(task.id)
    return document(row.payload, row.seq)


async def test_subscriptions_are_v2_with_dead_letter(services: dict[str, str], sidecar: FakeSidecar) -> None:
    for name, subscription in SUBSCRIPTIONS.items():
        [declared] = await sidecar.subscriptions(services[name], app_token=APP_TOKEN)
        assert declared == {
            "pubsubname": "taskpubsub-broadcast" if name == "push" else "taskpubsub",
            "topic": "task-events",
            "routes": {
                "rules": [{"match": subscription.match, "path": subscription.path}],
                "default": subscription.default_path,
            },
            "deadLetterTopic": "task-events-dlq",
        }


async def test_declarative_mode_subscribes_to_nothing(database_url: str, sidecar: FakeSidecar) -> None:
    settings = dapr_settings(database_url, sidecar, subscriptions="declarative")
    async with serving(create_handler_app("audit", settings)) as url:
        assert await sidecar.subscriptions(url, app_token=APP_TOKEN) == []


async def test_every_dapr_route_wants_the_app_token(services: dict[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        for name, subscription in SUBSCRIPTIONS.items():
            base = services[name]
            calls = [
                ("GET", "/dapr/subscribe"),
                ("POST", subscription.path),
                ("POST", subscription.default_path),
            ]
            if name == "reminders":
                calls.append(("POST", "/job/reminder-x"))
            for method, path in calls:
                for headers in ({}, {"dapr-api-token": "wrong"}):
                    response = await http.request(method, base + path, headers=headers, content=b"{}")
                    assert response.status_code == 401, (name, path, headers)
            assert (await http.get(base + "/healthz")).status_code == 200  # probes need no token


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"this is not json", "application/cloudevents+json"),
        (
            b'{"specversion": "1.0", "source": "/x", "type": "task.created", "data": {}}',
            "application/cloudevents+json",
        ),
        (b'{"specversion": "1.0", "id": "1", "source": "/x", "data": {}}', "application/cloudevents+json"),
        (
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": "1",
                    "source": "/x",
                    "type": "task.exploded",
                    "subject": "s",
                    "time": "2026-01-01T00:00:00Z",
                    "sequence": "1",
                    "data": {},
                }
            ).encode(),
            "application/json",
        ),
        (
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": "1",
                    "source": "/x",
                    "type": "task.created",
                    "subject": "s",
                    "time": "2026-01-01T00:00:00Z",
                    "sequence": "1",
                    "data": {"title": 3},
                }
            ).encode(),
            "application/cloudevents+json",
        ),
        (b"[" + b'"x",' * 100_000 + b'"x"]', "application/cloudevents+json"),
    ],
    ids=["not-json", "no-id", "no-type", "unknown-type", "wrong-data", "oversize"],
)
async def test_malformed_deliveries_are_dropped_never_5xx(
    services: dict[str, str], sidecar: FakeSidecar, body: bytes, content_type: str
) -> None:
    for name, subscription in SUBSCRIPTIONS.items():
        for route in (subscription.path, subscription.default_path):
            delivery = await sidecar.deliver_raw(
                services[name], route, body, content_type, app_token=APP_TOKEN
            )
            assert delivery.http_status == 200 and delivery.outcome == "DROP", (name, route, delivery)


async def test_data_base64_and_sidecar_attributes_are_accepted(
    services: dict[str, str], sidecar: FakeSidecar, service: TaskService, new_caller: Any
) -> None:
    caller = new_caller()
    event = await task_event(service, caller)
    data = event.pop("data")
    event["data_base64"] = base64.b64encode(json.dumps(data).encode()).decode()
    event["expiration"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    delivery = await sidecar.deliver(services["audit"], "/events/audit", event, app_token=APP_TOKEN)
    assert delivery.outcome == "SUCCESS"
    history = await service.history(caller, event["subject"])
    assert [entry.type for entry in history.entries] == ["task.created"]


async def test_database_down_means_retry(sidecar: FakeSidecar, service: TaskService, new_caller: Any) -> None:
    event = await task_event(service, new_caller(), due="tomorrow 9am", remind="30 minutes before")
    settings = dapr_settings("postgresql://postgres@127.0.0.1:9/none", sidecar)
    for name in ("audit", "reminders", "recurring"):
        async with serving(create_handler_app(name, settings)) as url:
            route = SUBSCRIPTIONS[name].path
            completed = {
                **event,
                "type": "task.completed",
                "data": {
                    **event["data"],
                    "recurrence": "FREQ=DAILY",
                    "seriesId": event["subject"],
                    "occurrence": 1,
                    "dueDate": 1_900_000_000,
                },
            }
            delivery = await sidecar.deliver(
                url, route, completed if name == "recurring" else event, app_token=APP_TOKEN
            )
            assert delivery.outcome == "RETRY" and delivery.http_status == 200, (name, delivery)


async def test_job_triggers_fire_only_for_the_reminder_they_were_set_for(
    services: dict[str, str], sidecar: FakeSidecar, service: TaskService, db: Database, new_caller: Any
) -> None:
    url = services["reminders"]
    caller = new_caller()
    soon = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)

    async def armed(**fields: Any) -> tuple[str, dict[str, Any]]:
        task = await service.create(caller, TaskCreate(title="Reminded", remind=soon.isoformat(), **fields))
        data = {
            "taskId": str(task.id),
            "userId": caller.user_id,
            "remindAt": int(soon.timestamp()),
            "version": task.version,
        }
        return str(task.id), data

    async def trigger(name: str, body: bytes) -> int:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{url}/job/{name}",
                content=body,
                headers={"content-type": "application/json", "dapr-api-token": APP_TOKEN},
            )
        return response.status_code

    def reminders_sent() -> int:
        return sum(1 for record in sidecar.published if record.event.get("type") == "reminder.due")

    deleted_id, deleted = await armed()
    await service.delete(caller, deleted_id)
    completed_id, completed = await armed()
    await service.complete(caller, completed_id)
    moved_id, moved = await armed()
    await service.update(caller, moved_id, TaskPatch(remind=(soon + timedelta(minutes=5)).isoformat()))
    renamed_id, renamed = await armed()
    await service.update(caller, renamed_id, TaskPatch(title="Renamed"))  # version moved on
    stranger = {**(await armed())[1], "userId": "someone-else"}
    before = reminders_sent()
    for task_id, data in [
        (deleted_id, deleted),
        (completed_id, completed),
        (moved_id, moved),
        (renamed_id, renamed),
        (stranger["taskId"], stranger),
    ]:
        assert await trigger(f"reminder-{task_id}", json.dumps(data).encode()) == 200
    assert await trigger(f"reminder-{moved_id}", b"") == 200  # no data
    assert await trigger("reminder-not-a-uuid", b'{"taskId": "not-a-uuid"}') == 200
    assert await trigger("someone-elses-job", b"{}") == 200

    live_id, live = await armed()
    assert await trigger(f"reminder-{live_id}", json.dumps(live).encode()) == 200
    assert await trigger(f"reminder-{live_id}", json.dumps(live).encode()) == 200  # delivered twice
    await eventually(lambda: reminders_sent() > before)  # relayed by the mcp-server's relay
    await asyncio.sleep(0.5)  # and no second one follows
    sent = [record.event for record in sidecar.published if record.event.get("type") == "reminder.due"]
    assert len(sent) - before == 1 and sent[-1]["subject"] == live_id
