"""REST /api/tasks over real HTTP: the same service, OpenAPI-documented, scoped by the bearer token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers import TEST_SECRET, serving, token
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[str]:
    settings = Settings(database_url=database_url, auth_secret=TEST_SECRET)
    async with serving(create_app(settings, role="mcp-server")) as url:
        yield url


def client_for(base_url: str, user: str | None = None, **headers: str) -> httpx.AsyncClient:
    if user is not None:
        headers["Authorization"] = f"Bearer {token(user)}"
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)


def fresh_user() -> str:
    return f"rest-{uuid.uuid4().hex[:10]}"


async def test_crud_cycle(api: str) -> None:
    async with client_for(api, fresh_user(), **{"X-Timezone": "America/New_York"}) as http:
        created = await http.post(
            "/api/tasks",
            json={
                "title": "Write report",
                "due": "2026-12-01 17:00",
                "tags": ["work"],
                "remind": "1 hour before",
            },
        )
        assert created.status_code == 201, created.text
        task = created.json()
        assert task["due"] == "2026-12-01T17:00:00-05:00" and task["remind_at"] == "2026-12-01T16:00:00-05:00"
        task_id = task["id"]

        listed = (await http.get("/api/tasks", params={"tag": "work", "sort": "priority"})).json()
        assert listed["total"] == 1 and listed["tasks"][0]["id"] == task_id and listed["next_cursor"] is None

        patched = await http.patch(
            f"/api/tasks/{task_id}", json={"priority": "urgent", "remove_tags": ["work"]}
        )
        assert (
            patched.status_code == 200
            and patched.json()["priority"] == "urgent"
            and patched.json()["tags"] == []
        )
        assert (await http.post(f"/api/tasks/{task_id}/complete")).json()["completed"] is True
        assert (await http.post(f"/api/tasks/{task_id}/reopen")).json()["completed"] is False
        assert (await http.get(f"/api/tasks/{task_id}")).json()["version"] == 4
        deleted = await http.delete(f"/api/tasks/{task_id}")
        assert deleted.json() == {"id": task_id, "title": "Write report", "deleted": True}
        assert (await http.get(f"/api/tasks/{task_id}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"title": ""}, "title", "1-200 characters"),
        ({"title": "x" * 10_000}, "title", "1-200 characters"),
        ({"title": "ok", "priority": "critical"}, "priority", "'urgent'"),
        ({"title": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags", "at most 20 tags"),
        ({"title": "ok", "due": "when pigs fly"}, "due", "could not understand"),
        ({"title": "ok", "repeat": "FREQ=FORTNIGHTLY"}, "repeat", "FORTNIGHTLY"),
        ({"title": "ok", "owner": "someone-else"}, "owner", "Extra inputs are not permitted"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    api: str, body: dict[str, object], field: str, words: str
) -> None:
    user = fresh_user()
    async with client_for(api, user) as http:
        response = await http.post("/api/tasks", json=body)
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"][-1] == field and words in error["msg"]
        assert (await http.get("/api/tasks", params={"status": "all"})).json()["total"] == 0


async def test_bad_ids_and_queries(api: str) -> None:
    async with client_for(api, fresh_user()) as http:
        malformed = await http.get("/api/tasks/not-an-id")
        assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"][-1] == "task_id"
        assert (await http.get(f"/api/tasks/{uuid.uuid4()}")).status_code == 404
        assert (await http.get("/api/tasks", params={"limit": 0})).status_code == 422
        assert (await http.get("/api/tasks", params={"limit": 101})).status_code == 422
        assert (await http.get("/api/tasks", params={"user_id": "x"})).status_code == 422
        weird = (await http.get("/api/tasks", params={"query": "%' OR 1=1 --"})).json()
        assert weird["total"] == 0


async def test_users_cannot_reach_each_others_tasks(api: str) -> None:
    alice, bob = fresh_user(), fresh_user()
    async with client_for(api, alice) as as_alice:
        task_id = (await as_alice.post("/api/tasks", json={"title": "Alice only"})).json()["id"]
    async with client_for(api, bob) as as_bob:
        assert (await as_bob.get("/api/tasks", params={"status": "all"})).json()["total"] == 0
        missing = await as_bob.get(f"/api/tasks/{uuid.uuid4()}")
        for response in [
            await as_bob.get(f"/api/tasks/{task_id}"),
            await as_bob.patch(f"/api/tasks/{task_id}", json={"title": "Bob's"}),
            await as_bob.post(f"/api/tasks/{task_id}/complete"),
            await as_bob.post(f"/api/tasks/{task_id}/reopen"),
            await as_bob.delete(f"/api/tasks/{task_id}"),
        ]:
            assert response.status_code == 404
            # Word for word the answer for an id that never existed.
            assert response.json()["detail"].replace(task_id, "X") == missing.json()["detail"].replace(
                missing.url.path.rsplit("/", 1)[-1], "X"
            )
    async with client_for(api, alice) as as_alice:
        assert (await as_alice.get(f"/api/tasks/{task_id}")).json()["title"] == "Alice only"


async def test_tokens_are_required(api: str) -> None:
    async with client_for(api) as anonymous:
        response = await anonymous.get("/api/tasks")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    async with client_for(api, Authorization="Bearer " + token("x", expires_in=-600)) as expired:
        assert "expired" in (await expired.get("/api/tasks")).json()["detail"]


async def test_health_and_openapi(api: str) -> None:
    async with client_for(api) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths["/api/tasks"]) == {"get", "post"}
    assert set(paths["/api/tasks/{task_id}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/tasks/{task_id}/complete"] and "post" in paths["/api/tasks/{task_id}/reopen"]
    assert (
        "422" in paths["/api/tasks"]["post"]["responses"] and "503" in paths["/api/tasks"]["get"]["responses"]
    )


async def test_readyz_reports_an_unreachable_database() -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:9/none", auth_secret=TEST_SECRET)
    async with serving(create_app(settings, role="mcp-server")) as url, client_for(url) as http:
        response = await http.get("/readyz")
        assert response.status_code == 503
        failing = await http.get("/api/tasks", headers={"Authorization": f"Bearer {token('u')}"})
        assert failing.status_code == 503 and failing.headers["retry-after"] == "2"
        assert "nothing was changed" in failing.json()["detail"]
