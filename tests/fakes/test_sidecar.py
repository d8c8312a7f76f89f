"""The fake sidecar answers per shared/DAPR-CONTRACT.md, checked with plain HTTP calls, and it calls
apps exactly as daprd does, checked against a tiny recording app."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.sidecar import (
    CLOUDEVENTS_JSON,
    FakeSidecar,
    Subscription,
    UnsupportedCEL,
    next_occurrence,
    outcome_of,
    parse_go_duration,
)

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OUR_TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cloud_event(kind: str = "task.created", user: str = "user-1", **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": kind,
        "source": "/todo-chatbot/mcp-server",
        "subject": "task-1",
        "time": "2026-11-27T15:00:00Z",
        "datacontenttype": "application/json",
        "partitionkey": user,
        "data": {"taskId": "task-1", "userId": user, "version": 1},
        **extra,
    }


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# ---------------------------------------------------------------------------------------------
# A tiny app that records what the sidecar sends and answers scripted statuses


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingApp:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    script: dict[str, deque[tuple[int, bytes]]] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] | None = None

    def answer(self, path: str, *responses: tuple[int, bytes | dict[str, Any]]) -> None:
        queue = self.script.setdefault(path, deque())
        for status, body in responses:
            queue.append((status, json.dumps(body).encode() if isinstance(body, dict) else body))

    def reset(self) -> None:
        self.seen.clear()
        self.script.clear()
        self.subscriptions = None

    def at(self, path: str) -> list[Seen]:
        return [item for item in self.seen if item.path == path]

    async def endpoint(self, request: Request) -> Response:
        path = request.url.path
        self.seen.append(Seen(request.method, path, dict(request.headers), await request.body()))
        if path == "/dapr/subscribe":
            if self.subscriptions is None:
                return Response(status_code=404)
            return JSONResponse(self.subscriptions)
        queue = self.script.get(path)
        status, body = queue.popleft() if queue else (200, b"")
        return Response(body, status_code=status)


@pytest.fixture(scope="module")
async def app_server() -> AsyncIterator[RecordingApp]:
    recorder = RecordingApp()
    app = Starlette(routes=[Route("/{path:path}", recorder.endpoint, methods=["GET", "POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the recording app did not start"
        await asyncio.sleep(0.01)
    recorder.url = f"http://127.0.0.1:{port}"
    yield recorder
    server.should_exit = True
    await task


@pytest.fixture
def app(app_server: RecordingApp) -> RecordingApp:
    app_server.reset()
    return app_server


@pytest.fixture
async def sidecar() -> AsyncIterator[FakeSidecar]:
    async with FakeSidecar() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        yield client


async def publish(
    http: httpx.AsyncClient,
    sidecar: FakeSidecar,
    event: Any,
    *,
    pubsub: str = "taskpubsub",
    topic: str = "task-events",
    content_type: str = CLOUDEVENTS_JSON,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> httpx.Response:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return await http.request(
        method,
        f"{sidecar.url}/v1.0/publish/{pubsub}/{topic}",
        content=body,
        params=params or {"metadata.partitionKey": "user-1"},
        headers={"content-type": content_type, **(headers or {})},
    )


# ---------------------------------------------------------------------------------------------
# App -> sidecar: publish


async def test_cloudevents_publish_keeps_our_event(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    event = cloud_event(traceparent=OUR_TRACE, traceid=OUR_TRACE, tracestate="k=v", topic="wrong")
    response = await publish(http, sidecar, event, params={"metadata.partitionKey": "user-1", "x": "y"})

    assert response.status_code == 204 and response.content == b""
    [record] = sidecar.published
    assert (record.pubsub, record.topic, record.metadata) == (
        "taskpubsub",
        "task-events",
        {"partitionKey": "user-1"},
    )
    assert record.content_type == CLOUDEVENTS_JSON and record.key == "user-1"
    assert record.headers["content-type"] == CLOUDEVENTS_JSON
    assert record.event == {**event, "topic": "task-events", "pubsubname": "taskpubsub"}


async def test_cloudevents_publish_fills_missing_attributes_and_replaces_trace(
    sidecar: FakeSidecar, http: httpx.AsyncClient
) -> None:
    bare = {"id": "e-1", "data": {"a": 1}, "traceparent": OUR_TRACE}
    assert (await publish(http, sidecar, bare)).status_code == 204
    incoming = "00-11111111111111111111111111111111-2222222222222222-01"
    assert (
        await publish(http, sidecar, bare, headers={"traceparent": incoming}, method="PUT")
    ).status_code == 204

    first, second = (record.event for record in sidecar.published)
    assert first["id"] == "e-1" and first["data"] == {"a": 1}
    assert (first["source"], first["type"], first["specversion"]) == ("Dapr", "com.dapr.event.sent", "1.0")
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert first["traceparent"] != OUR_TRACE and TRACEPARENT.match(first["traceparent"])
    assert first["traceid"] == first["traceparent"] and first["tracestate"] == ""
    # a child span of the request's traceparent: same trace id, new span id
    assert second["traceparent"].split("-")[1] == "1" * 32 and second["traceparent"] != incoming


async def test_publish_with_application_json_wraps_the_event(
    sidecar: FakeSidecar, http: httpx.AsyncClient
) -> None:
    event = cloud_event()
    response = await publish(http, sidecar, event, content_type="application/json")

    assert response.status_code == 204
    wrapped = sidecar.published[0].event
    assert UUID.match(wrapped["id"]) and wrapped["id"] != event["id"]
    assert wrapped["type"] == "com.dapr.event.sent" and wrapped["data"] == event
    assert wrapped["datacontenttype"] == "application/json" and wrapped["source"] == sidecar.app_id


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
async def test_invalid_cloudevent_is_a_500(
    sidecar: FakeSidecar, http: httpx.AsyncClient, body: bytes
) -> None:
    response = await publish(http, sidecar, body)

    assert response.status_code == 500
    assert response.json()["errorCode"] == "ERR_PUBSUB_CLOUD_EVENTS_SER" and response.json()["message"]
    assert sidecar.published == []


async def test_unknown_or_unconfigured_pubsub(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    response = await publish(http, sidecar, cloud_event(), pubsub="nope")
    assert (response.status_code, response.json()["errorCode"]) == (404, "ERR_PUBSUB_NOT_FOUND")

    async with FakeSidecar(pubsubs=()) as bare:
        response = await publish(http, bare, cloud_event())
    assert (response.status_code, response.json()["errorCode"]) == (400, "ERR_PUBSUB_NOT_CONFIGURED")
    assert sidecar.published == []


async def test_ttl_adds_expiration(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    await publish(http, sidecar, cloud_event(), params={"metadata.ttlInSeconds": "60"})
    expiration = datetime.fromisoformat(sidecar.published[0].event["expiration"])
    assert timedelta(seconds=55) < expiration - datetime.now(UTC) <= timedelta(seconds=60)


async def test_bulk_publish_all_delivered(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    entries: list[dict[str, Any]] = [
        {"entryId": "1", "event": cloud_event(), "contentType": CLOUDEVENTS_JSON},
        {
            "entryId": "2",
            "event": cloud_event(),
            "contentType": CLOUDEVENTS_JSON,
            "metadata": {"partitionKey": "u2"},
        },
    ]
    for prefix in ("/v1.0", "/v1.0-alpha1"):
        response = await http.post(
            f"{sidecar.url}{prefix}/publish/bulk/taskpubsub/task-events",
            json=entries,
            params={"metadata.partitionKey": "u1"},
        )
        assert response.status_code == 204

    assert [(p.entry_id, p.metadata["partitionKey"]) for p in sidecar.published] == [
        ("1", "u1"),
        ("2", "u2"),
    ] * 2
    assert sidecar.published[0].event["id"] == entries[0]["event"]["id"]
    assert sidecar.requests["publish_bulk"] == 2


async def test_bulk_publish_partial_failure(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    entries = [{"entryId": str(n), "event": cloud_event(), "contentType": CLOUDEVENTS_JSON} for n in range(8)]
    sidecar.fail(publish=True, rate=0.5, seed=4)

    response = await http.post(f"{sidecar.url}/v1.0/publish/bulk/taskpubsub/task-events", json=entries)

    assert response.status_code == 500
    body = response.json()
    assert body["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
    failed = {entry["entryId"] for entry in body["failedEntries"]}
    assert failed and len(failed) < 8 and all(entry["error"] for entry in body["failedEntries"])
    assert {p.entry_id for p in sidecar.published} == {str(n) for n in range(8)} - failed


async def test_bulk_publish_rejects_bad_entries(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    url = f"{sidecar.url}/v1.0/publish/bulk/taskpubsub/task-events"
    body: Any
    for body in (
        {"entryId": "1"},
        [{"event": {}}],
        [{"entryId": "1", "event": {}}, {"entryId": "1", "event": {}}],
    ):
        response = await http.post(url, json=body)
        assert (response.status_code, response.json()["errorCode"]) == (400, "ERR_PUBSUB_EVENTS_SER")
    assert sidecar.published == []


async def test_api_token(http: httpx.AsyncClient) -> None:
    async with FakeSidecar(api_token="s3cret") as sidecar:
        missing = await publish(http, sidecar, cloud_event())
        wrong = await publish(http, sidecar, cloud_event(), headers={"dapr-api-token": "nope"})
        right = await publish(http, sidecar, cloud_event(), headers={"dapr-api-token": "s3cret"})
        job = await http.post(f"{sidecar.url}/v1.0/jobs/j", json={"dueTime": "1h"})
        health = await http.get(f"{sidecar.url}/v1.0/healthz")

    assert (missing.status_code, wrong.status_code, right.status_code, job.status_code) == (
        401,
        401,
        204,
        401,
    )
    assert health.status_code == 204  # health is not behind the token
    assert len(sidecar.published) == 1 and sidecar.published[0].headers["dapr-api-token"] == "s3cret"
    assert [r.headers.get("dapr-api-token") for r in sidecar.received[:3]] == [None, "nope", "s3cret"]
    assert sidecar.jobs == {} and sidecar.job_calls[-1] == ("POST", "j", 401)
    assert sidecar.env == {"DAPR_HTTP_PORT": str(sidecar.port), "DAPR_API_TOKEN": "s3cret"}


# ---------------------------------------------------------------------------------------------
# App -> sidecar: jobs


async def test_jobs_lifecycle(http: httpx.AsyncClient) -> None:
    clock = Clock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    async with FakeSidecar(clock=clock) as sidecar:
        url = f"{sidecar.url}/v1.0/jobs/reminder-1"
        body = {"dueTime": "1m30s", "data": {"taskId": "1", "version": 2}, "overwrite": True, "typo": 1}
        created = await http.post(url, json=body)
        got = await http.get(url)
        again = await http.post(url, json={"dueTime": "90s"})
        replaced = await http.post(url, json={**body, "dueTime": "2026-11-27T16:00:00Z"})
        deleted = await http.delete(url)
        missing = await http.get(url)
        deleted_again = await http.delete(url)
        legacy = await http.post(f"{sidecar.url}/v1.0-alpha1/jobs/legacy", json={"schedule": "@every 1h"})

    assert created.status_code == 204 and created.content == b""
    assert got.status_code == 200
    assert got.json() == {"name": "reminder-1", "dueTime": "1m30s", "data": {"taskId": "1", "version": 2}}
    assert again.status_code == 409
    assert replaced.status_code == 204 and deleted.status_code == 204 and deleted_again.status_code == 204
    assert (missing.status_code, missing.json()["errorCode"]) == (500, "DAPR_SCHEDULER_GET_JOB")
    assert legacy.status_code == 204
    assert sidecar.jobs["legacy"].due_at == clock.now + timedelta(hours=1)
    assert sidecar.job_calls == [
        ("POST", "reminder-1", 204),
        ("GET", "reminder-1", 200),
        ("POST", "reminder-1", 409),
        ("POST", "reminder-1", 204),
        ("DELETE", "reminder-1", 204),
        ("GET", "reminder-1", 500),
        ("DELETE", "reminder-1", 204),
        ("POST", "legacy", 204),
    ]


async def test_job_due_times_are_computed_when_scheduled(http: httpx.AsyncClient) -> None:
    clock = Clock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    async with FakeSidecar(clock=clock) as sidecar:
        for name, when in (("a", "90s"), ("b", "2026-11-27T17:00:00+01:00"), ("c", "0s"), ("d", "PT2H")):
            response = await http.post(f"{sidecar.url}/v1.0/jobs/{name}", json={"dueTime": when})
            assert response.status_code == 204
        await http.post(f"{sidecar.url}/v1.0/jobs/e", json={"schedule": "0 30 9 * * *"})

    due = {name: job.due_at for name, job in sidecar.jobs.items()}
    assert due == {
        "a": clock.now + timedelta(seconds=90),
        "b": datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
        "c": clock.now,
        "d": clock.now + timedelta(hours=2),
        "e": datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
    }
    assert sidecar.jobs["a"].failure_policy.max_attempts == 4  # the default policy


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "x", "dueTime": "1m"}, 400, "DAPR_SCHEDULER_JOB_NAME"),
        ({"data": {"a": 1}}, 400, "DAPR_SCHEDULER_SCHEDULE_EMPTY"),
        (
            {"dueTime": "1m", "failurePolicy": {"constant": {"interval": "200ms"}}},
            400,
            "ERR_MALFORMED_REQUEST",
        ),
        ({"dueTime": "1m", "failurePolicy": {"constant": {"interval": "2m"}}}, 400, "ERR_MALFORMED_REQUEST"),
        ({"dueTime": "1m", "failurePolicy": {"drop": {}, "constant": {}}}, 400, "ERR_MALFORMED_REQUEST"),
        ({"dueTime": "1m", "repeats": "many"}, 400, "ERR_MALFORMED_REQUEST"),
        ({"dueTime": 60}, 400, "ERR_MALFORMED_REQUEST"),
        ({"dueTime": "tomorrow"}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),
        ({"schedule": "0 9 * * *"}, 500, "DAPR_SCHEDULER_SCHEDULE_JOB"),  # cron needs 6 fields
    ],
)
async def test_job_rejections(
    sidecar: FakeSidecar, http: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
) -> None:
    response = await http.post(f"{sidecar.url}/v1.0/jobs/j", json=body)
    assert (response.status_code, response.json()["errorCode"]) == (status, code)
    assert sidecar.jobs == {}


async def test_job_failure_policies_parse(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    policies = {
        "constant": {"constant": {"interval": "0.5s", "maxRetries": 5}},
        "drop": {"drop": {}},
        "forever": {"constant": {"interval": "3s"}},
    }
    for name, policy in policies.items():
        response = await http.post(
            f"{sidecar.url}/v1.0/jobs/{name}", json={"dueTime": "1m", "failurePolicy": policy}
        )
        assert response.status_code == 204

    constant = sidecar.jobs["constant"].failure_policy
    assert (constant.kind, constant.interval, constant.max_attempts) == (
        "constant",
        timedelta(seconds=0.5),
        6,
    )
    assert sidecar.jobs["drop"].failure_policy.max_attempts == 1
    assert sidecar.jobs["forever"].failure_policy.max_attempts is None
    got = await http.get(f"{sidecar.url}/v1.0/jobs/constant")
    assert got.json()["failurePolicy"] == {"constant": {"interval": "0.500s", "maxRetries": 5}}


# ---------------------------------------------------------------------------------------------
# Fault injection


async def test_connection_refused_while_down_then_same_port(
    sidecar: FakeSidecar, http: httpx.AsyncClient
) -> None:
    port = sidecar.port
    assert (await publish(http, sidecar, cloud_event())).status_code == 204  # leaves a keep-alive connection

    async with sidecar.down():
        with pytest.raises(httpx.ConnectError):
            await publish(http, sidecar, cloud_event())
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))
    assert sidecar.port == port
    assert (await publish(http, sidecar, cloud_event())).status_code == 204

    await sidecar.stop_listening()
    with pytest.raises(httpx.ConnectError):
        await http.get(f"{sidecar.url}/v1.0/healthz")
    await sidecar.start_listening()
    assert (await http.get(f"http://127.0.0.1:{port}/v1.0/healthz")).status_code == 204
    assert len(sidecar.published) == 2


async def test_dropped_connections(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    sidecar.drop_connections(1.0, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await publish(http, sidecar, cloud_event())
    assert sidecar.published == [] and sidecar.received[-1].status is None

    sidecar.drop_connections(1.0, times=1, after_processing=True)  # published, but the answer is lost
    with pytest.raises(httpx.RemoteProtocolError):
        await publish(http, sidecar, cloud_event())
    assert len(sidecar.published) == 1 and sidecar.received[-1].answered is False

    assert (await publish(http, sidecar, cloud_event())).status_code == 204  # `times` bounded it


async def test_seeded_faults_are_deterministic(http: httpx.AsyncClient) -> None:
    async def pattern(kind: str) -> list[int]:
        async with FakeSidecar() as sidecar:
            if kind == "fail":
                sidecar.fail(publish=True, rate=0.5, seed=11)
            else:
                sidecar.drop_connections(0.5, seed=11)
            statuses = []
            for _ in range(16):
                try:
                    statuses.append((await publish(http, sidecar, cloud_event())).status_code)
                except httpx.TransportError:
                    statuses.append(0)
            assert sidecar.requests["publish"] == 16
            assert len(sidecar.published) == statuses.count(204)
            return statuses

    failures = await pattern("fail")
    assert failures == await pattern("fail") and set(failures) == {204, 500}
    drops = await pattern("drop")
    assert drops == await pattern("drop") and set(drops) == {204, 0}


async def test_fail_and_heal(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    sidecar.fail(jobs=True, status=503)
    assert (await publish(http, sidecar, cloud_event())).status_code == 204  # only jobs fail
    response = await http.post(f"{sidecar.url}/v1.0/jobs/j", json={"dueTime": "1m"})
    assert (response.status_code, response.json()["errorCode"]) == (503, "DAPR_SCHEDULER_SCHEDULE_JOB")

    sidecar.fail(times=1)
    response = await publish(http, sidecar, cloud_event())
    assert (response.status_code, response.json()["errorCode"]) == (500, "ERR_PUBSUB_PUBLISH_MESSAGE")
    assert (await publish(http, sidecar, cloud_event())).status_code == 204

    sidecar.fail(status=403)
    assert (await publish(http, sidecar, cloud_event())).json()["errorCode"] == "ERR_PUBSUB_FORBIDDEN"
    sidecar.heal()
    assert (await http.post(f"{sidecar.url}/v1.0/jobs/j", json={"dueTime": "1m"})).status_code == 204
    assert sidecar.requests == {"publish": 4, "jobs": 2}
    assert len(sidecar.published) == 2


async def test_wait_published(sidecar: FakeSidecar, http: httpx.AsyncClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await publish(http, sidecar, cloud_event())

    task = asyncio.create_task(later())
    assert len(await sidecar.wait_published(1, topic="task-events", timeout=2)) == 1
    await task
    with pytest.raises(TimeoutError):
        await sidecar.wait_published(2, timeout=0.05)


# ---------------------------------------------------------------------------------------------
# Sidecar -> app


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b"", "SUCCESS"),
        (204, b"", "SUCCESS"),
        (200, b"ok, thanks", "SUCCESS"),
        (200, b'{"message": "done"}', "SUCCESS"),
        (200, b'{"status": "SUCCESS"}', "SUCCESS"),
        (200, b'{"status": "RETRY"}', "RETRY"),
        (200, b'{"status": "LATER"}', "RETRY"),
        (202, b'{"status": "DROP"}', "DROP"),
        (404, b"", "DROP"),
        (500, b'{"status": "SUCCESS"}', "RETRY"),
        (400, b"", "RETRY"),
        (401, b"", "RETRY"),
    ],
)
async def test_delivery_outcomes(
    sidecar: FakeSidecar, app: RecordingApp, status: int, body: bytes, outcome: str
) -> None:
    app.answer("/events/audit", (status, body))
    delivery = await sidecar.deliver(app.url, "/events/audit", cloud_event())
    assert (delivery.outcome, delivery.http_status) == (outcome, status)
    assert outcome_of(status, body) == outcome


async def test_connection_error_is_retry(sidecar: FakeSidecar) -> None:
    delivery = await sidecar.deliver(f"http://127.0.0.1:{free_port()}", "/events/audit", cloud_event())
    assert (delivery.outcome, delivery.http_status) == ("RETRY", None) and delivery.error


async def test_deliver_sends_what_daprd_sends(sidecar: FakeSidecar, app: RecordingApp) -> None:
    event = cloud_event(user="user-7")
    await sidecar.deliver(app.url, "/events/audit", event, app_token="app-token", partition=2, offset=41)
    await sidecar.deliver(app.url, "events/audit", {**event, "traceparent": OUR_TRACE})

    first, second = app.seen
    assert (first.method, first.path) == ("POST", "/events/audit")
    assert first.headers["content-type"] == CLOUDEVENTS_JSON
    assert first.headers["dapr-api-token"] == "app-token" and "dapr-api-token" not in second.headers
    assert first.headers["pubsubname"] == "taskpubsub" and first.headers["__topic"] == "task-events"
    assert (first.headers["__key"], first.headers["__partition"], first.headers["__offset"]) == (
        "user-7",
        "2",
        "41",
    )
    assert first.headers["__timestamp"].isdigit()
    body = first.json()
    assert {k: v for k, v in body.items() if k not in ("traceparent", "traceid", "tracestate")} == {
        **event,
        "topic": "task-events",
        "pubsubname": "taskpubsub",
    }
    assert TRACEPARENT.match(body["traceparent"]) and body["traceid"] == body["traceparent"]
    assert first.headers["traceparent"] == body["traceparent"]
    assert (second.json()["traceparent"], second.json()["traceid"]) == (OUR_TRACE, OUR_TRACE)
    assert second.headers["traceparent"] == OUR_TRACE and second.json()["tracestate"] == ""


async def test_deliver_raw(sidecar: FakeSidecar, app: RecordingApp) -> None:
    app.answer("/events/audit", (200, {"status": "DROP"}))
    delivery = await sidecar.deliver_raw(app.url, "/events/audit", b"{broken", "application/json")
    assert delivery.outcome == "DROP"
    assert app.seen[0].body == b"{broken" and app.seen[0].headers["content-type"] == "application/json"


async def test_subscriptions(sidecar: FakeSidecar, app: RecordingApp) -> None:
    assert await sidecar.subscriptions(app.url) == []
    app.subscriptions = [{"pubsubname": "taskpubsub", "topic": "task-events", "route": "/events"}]
    assert await sidecar.subscriptions(app.url, app_token="t") == app.subscriptions
    assert app.seen[-1].headers["dapr-api-token"] == "t"


def v2(pubsub: str, rules: list[tuple[str, str]], default: str, **extra: Any) -> dict[str, Any]:
    return {
        "pubsubname": pubsub,
        "topic": "task-events",
        "routes": {"rules": [{"match": m, "path": p} for m, p in rules], "default": default},
        **extra,
    }


async def test_pump_routes_by_cel_and_reaches_the_broadcast_component(
    sidecar: FakeSidecar, app: RecordingApp, http: httpx.AsyncClient
) -> None:
    app.subscriptions = [
        v2(
            "taskpubsub", [('event.type == "task.completed"', "/events/recurring")], "/events/recurring/other"
        ),
        v2(
            "taskpubsub-broadcast",
            [('event.type in ["task.created", "reminder.due"]', "/events/push")],
            "/p/o",
        ),
        v2("elsewhere", [], "/never"),
    ]
    created, completed = cloud_event("task.created"), cloud_event("task.completed")
    for event in (created, completed):
        await publish(http, sidecar, event)
    await publish(http, sidecar, cloud_event(), topic="other-topic")

    report = await sidecar.pump(app.url, app_token="tok")

    assert report.routes() == [
        (created["id"], "/events/recurring/other"),
        (created["id"], "/events/push"),
        (completed["id"], "/events/recurring"),
        (completed["id"], "/p/o"),
    ]
    assert [sub.pubsubname for sub in report.ignored] == ["elsewhere"]
    push = app.at("/events/push")[0]
    assert push.headers["pubsubname"] == "taskpubsub-broadcast"
    assert push.json()["pubsubname"] == "taskpubsub"  # the bytes the publishing sidecar wrote
    assert push.json()["id"] == created["id"] and push.headers["dapr-api-token"] == "tok"
    assert push.headers["__key"] == "user-1" and push.headers["__topic"] == "task-events"
    assert len(report.delivered) == 4
    assert (await sidecar.pump(app.url)).deliveries == []  # nothing left to pump


async def test_pump_retries_then_dead_letters_and_drop(
    sidecar: FakeSidecar, app: RecordingApp, http: httpx.AsyncClient
) -> None:
    subs = [v2("taskpubsub", [], "/events/audit", deadLetterTopic="audit-dlq")]
    retry, drop, ok = cloud_event(), cloud_event(), cloud_event()
    for event in (retry, drop, ok):
        await publish(http, sidecar, event)
    app.answer("/events/audit", (500, b""), (200, {"status": "RETRY"}), (503, b""), (404, b""), (200, b""))

    report = await sidecar.pump(app.url, subscriptions=subs, max_attempts=3)

    assert [(s.published.event["id"], s.fate, s.attempts) for s in report.settled] == [
        (retry["id"], "dead_lettered", 3),
        (drop["id"], "dead_lettered", 1),
        (ok["id"], "delivered", 1),
    ]
    assert [(d.published.event["id"], d.reason, d.dead_letter_topic) for d in sidecar.dead_letters] == [
        (retry["id"], "RETRIES_EXHAUSTED", "audit-dlq"),
        (drop["id"], "DROP", "audit-dlq"),
    ]


async def test_pump_without_dead_letter_topic_blocks_the_partition(
    sidecar: FakeSidecar, app: RecordingApp, http: httpx.AsyncClient
) -> None:
    subs = [v2("taskpubsub", [], "/events/audit")]
    first, second, other_user = cloud_event(), cloud_event(), cloud_event(user="user-3")
    await publish(http, sidecar, first)
    await publish(http, sidecar, second)
    await publish(http, sidecar, other_user, params={"metadata.partitionKey": "user-3"})
    assert sidecar.published[0].partition != sidecar.published[2].partition
    app.answer("/events/audit", (500, b""), (500, b""))

    report = await sidecar.pump(app.url, subscriptions=subs, max_attempts=2, dead_letter_topic=None)

    assert [(s.published.event["id"], s.fate) for s in report.settled] == [
        (first["id"], "blocked"),
        (second["id"], "held"),
        (other_user["id"], "delivered"),
    ]
    assert sidecar.dead_letters == []
    healed = await sidecar.pump(app.url, subscriptions=subs, dead_letter_topic=None)  # Kafka redelivers
    assert [(s.published.event["id"], s.fate) for s in healed.settled] == [
        (first["id"], "delivered"),
        (second["id"], "delivered"),
    ]


async def test_pump_duplicates_interleaves_and_skips(
    sidecar: FakeSidecar, app: RecordingApp, http: httpx.AsyncClient
) -> None:
    subs = [v2("taskpubsub", [('event.type == "task.created"', "/events/audit")], "")]
    events = [cloud_event(user=f"user-{n % 3}") for n in range(9)]
    for event in events:
        await publish(http, sidecar, event, params={"metadata.partitionKey": event["data"]["userId"]})
    await publish(http, sidecar, cloud_event("task.deleted"))

    async def order(seed: int) -> list[str]:
        sidecar.rewind()
        report = await sidecar.pump(app.url, subscriptions=subs, duplicate=2, interleave=True, seed=seed)
        assert report.fates("skipped")[0].published.event["type"] == "task.deleted"
        return [str(d.published.event["id"]) for d in report.deliveries]

    delivered = await order(5)
    assert delivered == await order(5) and delivered != await order(6)
    assert sorted(delivered) == sorted([e["id"] for e in events] * 2)
    for user in ("user-0", "user-1", "user-2"):
        mine = [e["id"] for e in events if e["data"]["userId"] == user]
        assert [i for i in delivered if i in mine] == [i for i in mine for _ in range(2)]  # per-key order


async def test_pump_drops_expired_messages(
    sidecar: FakeSidecar, app: RecordingApp, http: httpx.AsyncClient
) -> None:
    await publish(http, sidecar, cloud_event(), params={"metadata.ttlInSeconds": "0"})
    report = await sidecar.pump(app.url, subscriptions=[v2("taskpubsub", [], "/events/audit")])
    assert [s.fate for s in report.settled] == ["expired"] and app.seen == []


def test_only_supported_cel() -> None:
    with pytest.raises(UnsupportedCEL):
        Subscription.parse(v2("taskpubsub", [('event.type.startsWith("task.")', "/x")], "/d"))
    with pytest.raises(UnsupportedCEL):
        Subscription.parse(v2("taskpubsub", [('event.data.userId == "u"', "/x")], "/d"))
    sub = Subscription.parse(v2("taskpubsub", [("event.type in ['a', \"b\"]", "/ab"), ("", "/all")], "/d"))
    assert [sub.route_for({"type": t}) for t in ("a", "b", "c")] == ["/ab", "/ab", "/all"]


# ---------------------------------------------------------------------------------------------
# Job triggers


async def schedule(http: httpx.AsyncClient, sidecar: FakeSidecar, name: str, **body: Any) -> None:
    response = await http.post(f"{sidecar.url}/v1.0/jobs/{name}", json=body)
    assert response.status_code == 204, response.text


async def test_trigger_job_sends_exactly_the_data(app: RecordingApp, http: httpx.AsyncClient) -> None:
    async with FakeSidecar() as sidecar:
        await schedule(http, sidecar, "reminder-1", dueTime="1h", data={"taskId": "1", "version": 3})
        await schedule(http, sidecar, "bare", dueTime="1h")
        app.answer("/job/reminder-1", (503, b""))
        assert await sidecar.trigger_job(app.url, "reminder-1", app_token="t") == 503
        assert await sidecar.trigger_job(app.url, "bare") == 200
        with pytest.raises(KeyError):
            await sidecar.trigger_job(app.url, "nope")

    first, second = app.seen
    assert (first.method, first.path, first.json()) == (
        "POST",
        "/job/reminder-1",
        {"taskId": "1", "version": 3},
    )
    assert first.headers["content-type"] == "application/json" and first.headers["dapr-api-token"] == "t"
    assert (second.path, second.body) == ("/job/bare", b"")
    assert set(sidecar.jobs) == {"reminder-1", "bare"}  # a raw trigger leaves jobs alone


async def test_run_due_jobs_never_early_and_applies_failure_policies(
    app: RecordingApp, http: httpx.AsyncClient
) -> None:
    clock = Clock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    async with FakeSidecar(clock=clock, time_scale=0.001) as sidecar:
        await schedule(http, sidecar, "ok", dueTime="10m", data={"n": 1})
        await schedule(http, sidecar, "gone", dueTime="10m")
        await schedule(http, sidecar, "default", dueTime="10m")
        await schedule(
            http,
            sidecar,
            "constant",
            dueTime="10m",
            failurePolicy={"constant": {"interval": "1s", "maxRetries": 1}},
        )
        await schedule(http, sidecar, "drop", dueTime="10m", failurePolicy={"drop": {}})
        await schedule(http, sidecar, "later", dueTime="11m")
        app.answer("/job/gone", (404, b""))
        for name, count in (("default", 4), ("constant", 2), ("drop", 1)):
            app.answer(f"/job/{name}", *[(500, b"")] * count)

        assert await sidecar.run_due_jobs(app.url, now=clock.now + timedelta(minutes=9, seconds=59)) == []
        runs = await sidecar.run_due_jobs(app.url, now=clock.now + timedelta(minutes=10))

    assert {(r.name, r.attempts, r.status, r.outcome) for r in runs} == {
        ("ok", 1, 200, "done"),
        ("gone", 1, 404, "done"),
        ("default", 4, 500, "failed"),
        ("constant", 2, 500, "failed"),
        ("drop", 1, 500, "failed"),
    }
    assert set(sidecar.jobs) == {"later"}  # one-shot jobs are gone after success or final failure
    assert len(app.at("/job/default")) == 4


async def test_recurring_job_and_connection_errors(http: httpx.AsyncClient) -> None:
    clock = Clock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    async with FakeSidecar(clock=clock, time_scale=0) as sidecar:
        await schedule(http, sidecar, "tick", schedule="@every 1h", repeats=2)
        nowhere = f"http://127.0.0.1:{free_port()}"
        [run] = await sidecar.run_due_jobs(nowhere, now=clock.now + timedelta(hours=1))
        assert (run.attempts, run.status, run.outcome) == (4, None, "failed")
        assert sidecar.jobs["tick"].due_at == clock.now + timedelta(hours=2)
        await sidecar.run_due_jobs(nowhere, now=clock.now + timedelta(hours=2))
        assert sidecar.jobs == {}  # repeats reached


async def test_run_jobs_forever_fires_on_time(app: RecordingApp, http: httpx.AsyncClient) -> None:
    async with FakeSidecar() as sidecar, sidecar.run_jobs_forever(app.url, poll=0.01) as runs:
        started = time.monotonic()
        await schedule(http, sidecar, "soon", dueTime="150ms", data="ping")
        while not runs:
            assert time.monotonic() - started < 3
            await asyncio.sleep(0.01)
        assert time.monotonic() - started >= 0.14
    assert app.at("/job/soon")[0].body == b'"ping"' and sidecar.jobs == {}


def test_time_helpers() -> None:
    assert parse_go_duration("1m30s") == timedelta(seconds=90)
    assert parse_go_duration("1.5h") == timedelta(minutes=90)
    assert parse_go_duration("250ms") == timedelta(milliseconds=250)
    start = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # a Friday
    assert next_occurrence("@daily", start) == datetime(2026, 11, 28, tzinfo=UTC)
    assert next_occurrence("0 0 9 * * MON-FRI", start) == datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert next_occurrence("*/20 * * * * *", start) == start + timedelta(seconds=20)
    with pytest.raises(ValueError, match="6 cron fields"):
        next_occurrence("0 9 * * *", start)
