"""Limits on what a client may send, on every surface of the embedded app: each oversized or
malformed input gets a clear refusal naming the field and the rule (or 413), never a 5xx, and
changes nothing.

Body sizes (REST, MCP), WebSocket message size and connections per user, chat message length, page
sizes, long titles/phrases, too many tags, deeply nested JSON, bad time zones, and text with emoji,
control characters, NUL and lone surrogates.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent import offline_parser
from mcp_server import dates
from mcp_server.http import MCP_MAX_BODY_BYTES
from tests.helpers import eventually, mcp_over_http, token
from tests.hostile.harness import Served, User, embedded, tool_ok, tool_text

MB = 1024 * 1024


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[Served]:
    async with embedded(database_url) as served:
        yield served


def field_errors(response: httpx.Response) -> dict[str, str]:
    """A 422's `{"detail": [{"loc": [..., field], "msg": rule}]}` as {field: rule}."""
    assert response.status_code == 422, (response.status_code, response.text[:500])
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    named = {}
    for item in detail:  # the field is the last name in `loc` (an index may follow it: tags.3)
        field = next(str(part) for part in reversed(item["loc"]) if isinstance(part, str))
        named[field] = item["msg"]
    return named


async def count(app: Served, user: User) -> int:
    return len(await app.tasks(user))


# ------------------------------------------------------------------------------------ body sizes


BIG_BODIES = {
    "2MB-title": json.dumps({"title": "x" * (2 * MB)}),
    "2MB-description": json.dumps({"title": "x", "description": "d" * (2 * MB)}),
    "2MB-not-json": "{" + "x" * (2 * MB),
    "2MB-unknown-field": json.dumps({"title": "x", "junk": "j" * (2 * MB)}),
}


@pytest.mark.parametrize("shape", list(BIG_BODIES))
async def test_a_2mb_rest_body_is_refused_clearly(app: Served, shape: str) -> None:
    user = User()
    response = await app.http.post(
        "/api/tasks",
        content=BIG_BODIES[shape],
        headers=user.headers(**{"content-type": "application/json"}),
    )
    assert response.status_code in (400, 413, 422), (response.status_code, response.text[:300])
    if response.status_code == 422:
        wanted = {"2MB-title": "title", "2MB-description": "description"}
        if shape in wanted:
            assert wanted[shape] in field_errors(response)
    assert await count(app, user) == 0


async def test_a_rest_body_over_the_limit_is_413(app: Served) -> None:
    user = User()
    padded = json.dumps({"title": "padded"}) + " " * (2 * MB)
    response = await app.http.post(
        "/api/tasks", content=padded, headers=user.headers(**{"content-type": "application/json"})
    )
    assert response.status_code == 413, response.status_code
    assert await count(app, user) == 0


async def test_the_refusal_of_a_big_body_is_small(app: Served) -> None:
    response = await app.http.post(
        "/api/tasks",
        content=BIG_BODIES["2MB-title"],
        headers=User().headers(**{"content-type": "application/json"}),
    )
    assert response.status_code in (413, 422)
    assert len(response.content) < 16 * 1024, len(response.content)


async def test_an_mcp_body_over_the_transport_limit_is_413(app: Served) -> None:
    user = User()
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "add_task",
            "arguments": {"title": "big", "description": "d" * MCP_MAX_BODY_BYTES},
        },
    }
    headers = user.headers(
        **{"accept": "application/json, text/event-stream", "content-type": "application/json"}
    )
    for body in (json.dumps(call).encode(), b"x" * (3 * MB)):
        response = await app.http.post("/mcp", content=body, headers=headers)
        assert response.status_code == 413, (response.status_code, response.text[:300])
    assert await count(app, user) == 0

    # Just under the limit the call is read, and refused by the tool's own rule.
    async with mcp_over_http(app.url, user.token) as mcp:
        description = "d" * (MCP_MAX_BODY_BYTES - 10_000)
        result = await mcp.call_tool("add_task", {"title": "big", "description": description})
    assert result.is_error and "description: must be at most 4000 characters" in tool_text(result)
    assert await count(app, user) == 0


# ----------------------------------------------------------------------------------- WebSocket


@pytest.fixture
async def ws_app(sqlite_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    overrides = getattr(request, "param", {})
    async with embedded(sqlite_url, ws_heartbeat_seconds=0.2, **overrides) as served:
        yield served


async def closed_with(socket: ClientConnection, timeout: float = 5.0) -> int | None:
    """Read (heartbeats) until the server closes; the close code."""
    async with asyncio.timeout(timeout):
        try:
            async for _ in socket:
                pass
        except ConnectionClosed:
            pass
    return socket.close_code


async def heartbeats(socket: ClientConnection, n: int = 2) -> None:
    for _ in range(n):
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=3))
        assert message["type"] == "heartbeat"


async def test_a_websocket_message_over_4kib_closes_the_socket_with_1009(ws_app: Served) -> None:
    user = User()
    async with connect(f"{ws_app.ws}?token={user.token}") as socket:
        await socket.send("x" * 4096)  # at the limit: read and ignored
        await heartbeats(socket)
        await socket.send("x" * 4097)
        assert await closed_with(socket) == 1009
    async with connect(f"{ws_app.ws}?token={user.token}") as socket:
        await socket.send(b"\x00" * 5000)  # binary counts too
        assert await closed_with(socket) == 1009


async def open_sockets(url: str, n: int) -> list[ClientConnection]:
    sockets = [await connect(url) for _ in range(n)]
    for socket in sockets:
        await heartbeats(socket, 1)  # accepted and served
    return sockets


@pytest.mark.parametrize(
    ("ws_app", "limit"), [({}, 10), ({"ws_max_connections_per_user": 3}, 3)], indirect=["ws_app"]
)
async def test_connections_per_user_are_limited(ws_app: Served, limit: int) -> None:
    user, other = User(), User()
    url = f"{ws_app.ws}?token={user.token}"
    sockets = await open_sockets(url, limit)
    try:
        async with connect(url) as one_too_many:
            assert await closed_with(one_too_many) == 4429
            assert "connections per user" in (one_too_many.close_reason or "")
        async with connect(f"{ws_app.ws}?token={other.token}") as socket:  # others are not affected
            await heartbeats(socket, 1)
        await sockets.pop().close()  # a freed slot can be used again
        await eventually(lambda: ws_app.app.state.hub.connections(user.id) == limit - 1)
        sockets.extend(await open_sockets(url, 1))
        assert ws_app.app.state.hub.connections(user.id) == limit
    finally:
        for socket in sockets:
            await socket.close()


async def test_a_websocket_token_under_8kib_is_read(ws_app: Served) -> None:
    async with connect(f"{ws_app.ws}?token={'x' * 6000}") as socket:
        assert await closed_with(socket) == 4401


@pytest.mark.parametrize("where", ["query", "subprotocol"])
async def test_a_websocket_token_over_8kib_is_refused_promptly(ws_app: Served, where: str) -> None:
    huge = "x" * 9_000
    url = f"{ws_app.ws}?token={huge}" if where == "query" else ws_app.ws
    protocols: Any = ["todo.bearer", huge] if where == "subprotocol" else None
    status: int | None = None
    try:
        async with connect(url, subprotocols=protocols, open_timeout=2) as socket:
            code = await closed_with(socket)
    except InvalidStatus as refused:  # refused in the handshake: fine too
        status, code = refused.response.status_code, None
    if status is None:
        assert code in (1008, 1009, 4401), code
    else:
        assert 400 <= status < 500, status


# ---------------------------------------------------------------------------------------- chat


async def test_a_chat_message_over_4000_characters_is_422(app: Served) -> None:
    user = User()
    for stream in ("false", "true"):
        response = await app.http.post(
            "/api/chat", params={"stream": stream}, json={"message": "x" * 4001}, headers=user.headers()
        )
        rule = field_errors(response)["message"]
        assert "1-4000 characters" in rule and "4001" in rule
    answer = await app.chat(user, "  " + "x" * 4000 + "\n")  # 4000 after trimming: read (and declined)
    assert "too long" in answer["reply"]
    response = await app.http.post("/api/chat", json={"message": " \n\t "}, headers=user.headers())
    assert "message" in field_errors(response)
    listed = await app.http.get("/api/conversations", headers=user.headers())
    assert len(listed.json()) == 1  # the refused ones opened no conversation


async def test_a_hostile_chat_message_is_answered(app: Served) -> None:
    user = User()
    hostile = {"message": "add " + "#a, " * 24}  # 100 characters of tags and nothing else
    response = await app.http.post(
        "/api/chat", params={"stream": "false"}, json=hostile, headers=user.headers()
    )
    assert response.status_code == 200, response.text
    assert response.json()["reply"]
    assert (await app.http.get("/healthz")).status_code == 200


# Messages at the edge of what the offline parser reads, built to make a backtracking pattern or a
# quadratic scan blow up. Each is parsed on the server's event loop, so its cost is a stall.
HOSTILE_MESSAGES = [
    "add " + "#a, " * 24,
    "add x " + "every " * 19,
    "add x " + "tomorrow at 5pm " * 6,
    "remind me " * 10,
    "add " + "1" * 96,
    "add" + " " * 96 + "x",
    "mark " + "the " * 23 + "done",
    "add " + "urgent high p1 " * 6,
    "add " + "(" * 96,
    "add x in " + "2 hours and " * 8,
    "make it urgent and " * 5,
    "make the report urgent, " * 4,
    "tag the report a and " * 5,
    "move it to friday and " * 5,
]


def parse_cpu_seconds(message: str) -> float:
    """The thread CPU time of one parse, median of five: what a busy machine changes least."""
    now, zone = datetime(2026, 3, 29, 0, 30, tzinfo=UTC), ZoneInfo("Europe/Paris")
    times = []
    for _ in range(5):
        started = time.thread_time()
        offline_parser.parse(message, now=now, tz=zone)
        times.append(time.thread_time() - started)
    return statistics.median(times)


@pytest.mark.parametrize("message", HOSTILE_MESSAGES, ids=range(len(HOSTILE_MESSAGES)))
def test_a_hostile_message_costs_the_parser_about_what_an_ordinary_one_does(message: str) -> None:
    """Against an ordinary command measured in the same run (a ratio, not a time, so a loaded
    machine does not matter): today the worst is about 3x; catastrophic backtracking on 100
    characters is thousands of times."""
    ordinary = parse_cpu_seconds("add buy milk tomorrow at 9am #errands")
    hostile = parse_cpu_seconds(message)
    assert hostile <= 25 * ordinary, f"{hostile * 1000:.2f} ms against {ordinary * 1000:.2f} ms"


# ----------------------------------------------------------------------------------- page sizes


PAGED = {"/api/tasks": 100, f"/api/tasks/{uuid.uuid4()}/history": 200, "/api/conversations": 100}


@pytest.mark.parametrize("limit", ["over", "0", "-1", "10" * 20, "1.5", "ten", ""])
async def test_page_sizes_out_of_range_are_422_naming_limit(app: Served, limit: str) -> None:
    user = User()
    for path, largest in PAGED.items():
        value = str(largest + 1) if limit == "over" else limit
        response = await app.http.get(path, params={"limit": value}, headers=user.headers())
        assert "limit" in field_errors(response), path
        if limit == "over":
            assert str(largest) in field_errors(response)["limit"]


async def test_mcp_page_sizes_out_of_range_are_tool_errors_naming_limit(app: Served) -> None:
    async with mcp_over_http(app.url, User().token) as mcp:
        for tool, limit in (
            ("list_tasks", 1000),
            ("list_tasks", 0),
            ("task_history", 201),
            ("task_history", 0),
        ):
            result = await mcp.call_tool(tool, {"limit": limit})
            assert result.is_error and "limit" in tool_text(result), (tool, limit, tool_text(result))
        assert tool_ok(await mcp.call_tool("list_tasks", {"limit": 100}))["total"] == 0


# ------------------------------------------------------------------------------ fields and values


TOO_LONG = [
    ("title", {"title": "t" * 10_000}, "1-200 characters"),
    ("description", {"title": "x", "description": "d" * 10_000}, "at most 4000 characters"),
    ("tags", {"title": "x", "tags": [f"tag{i}" for i in range(21)]}, "at most 20 tags"),
    ("tags", {"title": "x", "tags": ["t" * 41]}, "1-40 characters"),
    ("due", {"title": "x", "due": "d" * 10_000}, f"at most {dates.MAX_PHRASE} characters"),
    (
        "remind",
        {"title": "x", "due": "tomorrow", "remind": "r" * 10_000},
        f"at most {dates.MAX_PHRASE} characters",
    ),
    ("repeat", {"title": "x", "repeat": "r" * 10_000}, f"at most {dates.MAX_PHRASE} characters"),
]


@pytest.mark.parametrize(
    ("field", "fields", "rule"), TOO_LONG, ids=[f"{case[0]}-{i}" for i, case in enumerate(TOO_LONG)]
)
async def test_oversized_fields_are_refused_naming_the_field(
    app: Served, field: str, fields: dict[str, Any], rule: str
) -> None:
    user = User()
    response = await app.http.post("/api/tasks", json=fields, headers=user.headers())
    assert rule in field_errors(response)[field]
    async with mcp_over_http(app.url, user.token) as mcp:
        result = await mcp.call_tool("add_task", fields)
    assert result.is_error and tool_text(result).split("add_task: ")[-1].startswith(f"{field}:"), tool_text(
        result
    )
    assert await count(app, user) == 0


async def test_thousands_of_tags_are_refused_quickly(app: Served) -> None:
    """Refused before any per-tag work: a check that grew with the square of the count would take
    tens of seconds for 15,000 tags, far beyond the bound (which leaves room for a busy machine)."""
    user = User()
    many = {"title": "x", "tags": [f"t{i}" for i in range(15_000)]}
    started = time.monotonic()
    response = await app.http.post("/api/tasks", json=many, headers=user.headers())
    assert "tags" in field_errors(response)
    assert time.monotonic() - started < 2.0, f"REST took {time.monotonic() - started:.1f} s"
    async with mcp_over_http(app.url, user.token) as mcp:
        started = time.monotonic()
        result = await mcp.call_tool("add_task", many)
        assert time.monotonic() - started < 2.0, f"the tool took {time.monotonic() - started:.1f} s"
    assert result.is_error and "tags" in tool_text(result)


async def test_tags_added_past_20_are_refused(app: Served) -> None:
    user = User()
    task = await app.add(user, title="tagged", tags=[f"t{i}" for i in range(20)])
    response = await app.http.patch(
        f"/api/tasks/{task['id']}", json={"add_tags": ["one-more"]}, headers=user.headers()
    )
    assert "at most 20 tags" in field_errors(response)["tags"]
    async with mcp_over_http(app.url, user.token) as mcp:
        result = await mcp.call_tool("update_task", {"task_id": task["id"], "add_tags": ["one-more"]})
    assert result.is_error and "tags: at most 20 tags" in tool_text(result)
    assert (await app.tasks(user))[0]["version"] == 1


NESTED = {
    "arrays-100k": "[" * 100_000 + "]" * 100_000,
    "title-objects-10k": '{"title": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}",
    "tags-arrays-900": '{"tags": ' + "[" * 900 + "]" * 900 + "}",
    "description-arrays-50k": '{"description": ' + "[" * 50_000 + "]" * 50_000 + "}",
}


@pytest.mark.parametrize("shape", list(NESTED))
async def test_deeply_nested_json_in_a_patch_is_refused(app: Served, shape: str) -> None:
    user = User()
    task = await app.add(user, title="nested")
    response = await app.http.patch(
        f"/api/tasks/{task['id']}",
        content=NESTED[shape],
        headers=user.headers(**{"content-type": "application/json"}),
    )
    assert response.status_code in (400, 422), (response.status_code, response.text[:300])
    assert len(response.content) < 64 * 1024
    assert (await app.tasks(user))[0]["version"] == 1


@pytest.mark.parametrize(
    "zone", ["garbage", "Mars/Olympus_Mons", "../../etc/passwd", "UTC+25", "x" * 200, "Europe/"]
)
async def test_a_bad_timezone_header_is_refused_naming_timezone(app: Served, zone: str) -> None:
    user = User()
    headers = user.headers(**{"X-Timezone": zone})
    listing = await app.http.get("/api/tasks", headers=headers)
    assert "unknown time zone" in field_errors(listing)["timezone"]
    adding = await app.http.post("/api/tasks", json={"title": "x", "due": "tomorrow"}, headers=headers)
    assert "timezone" in field_errors(adding)
    chat = await app.http.post(
        "/api/chat", params={"stream": "false"}, json={"message": "show all"}, headers=headers
    )
    assert "timezone" in field_errors(chat)
    async with mcp_over_http(app.url, user.token, **{"X-Timezone": zone}) as mcp:
        result = await mcp.call_tool("add_task", {"title": "x"})
    assert result.is_error and "timezone: unknown time zone" in tool_text(result)
    assert await count(app, user) == 0


async def test_a_date_phrase_within_the_documented_length_is_not_refused_for_its_length(app: Served) -> None:
    documented = app.app.openapi()["components"]["schemas"]["TaskCreate"]["properties"]["due"]
    longest = max(int(option.get("maxLength", 0)) for option in documented.get("anyOf", [documented]))
    phrase = "tomorrow 9am".ljust(longest)
    response = await app.http.post("/api/tasks", json={"title": "x", "due": phrase}, headers=User().headers())
    assert response.status_code == 201 or longest <= dates.MAX_PHRASE, response.text


# ---------------------------------------------------------------------------------- unicode text


TITLES = {
    "emoji": "Buy 🥛 and 🍞 🇩🇪 👩‍👩‍👧",
    "cjk": "牛乳を買う 우유 사기",
    "combining": "Cafe\u0301 re\u0301sume\u0301",
    "rtl-override": "invoice \u202egpj.exe",
    "zero-width": "pay\u200brent\u2060now",
    "arabic": "شراء الحليب",
    "trimmed-spaces": "  \u3000 spaced \t out\n title \u00a0 ",
    "max-200": "é" * 200,
}
# Control characters (terminal escapes, bells) are no text a person typed: refused, naming the field.
CONTROL = "alarm\x07 \x1b[31mred\x1b[0m \x7f"


@pytest.mark.parametrize("kind", list(TITLES))
async def test_unicode_titles_are_stored_verbatim_after_trimming(app: Served, kind: str) -> None:
    user = User()
    title = TITLES[kind]
    created = await app.add(user, title=title, tags=[title[:40].strip() or "x"])
    expected = " ".join(title.split())
    assert created["title"] == expected
    fetched = await app.http.get(f"/api/tasks/{created['id']}", headers=user.headers())
    assert fetched.json()["title"] == expected
    found = await app.http.get("/api/tasks", params={"query": expected[-10:].strip()}, headers=user.headers())
    assert [task["id"] for task in found.json()["tasks"]] == [created["id"]]
    async with mcp_over_http(app.url, user.token) as mcp:
        assert tool_ok(await mcp.call_tool("get_task", {"task_id": created["id"]}))["title"] == expected


async def test_control_characters_in_a_title_are_refused_naming_it(app: Served) -> None:
    user = User()
    response = await app.http.post("/api/tasks", json={"title": CONTROL}, headers=user.headers())
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == "title" and "control characters" in error["msg"]
    assert await count(app, user) == 0


def nul_cases() -> list[tuple[str, str, str, Any]]:
    """(name, method, path, json) requests carrying a NUL; each must be stored verbatim or refused."""
    return [
        ("title", "POST", "/api/tasks", {"title": "a\x00b"}),
        ("description", "POST", "/api/tasks", {"title": "x", "description": "a\x00b"}),
        ("tag", "POST", "/api/tasks", {"title": "x", "tags": ["a\x00b"]}),
        ("query", "GET", "/api/tasks?query=a%00b", None),
        ("tag-filter", "GET", "/api/tasks?tag=a%00b", None),
        ("chat-message", "POST", "/api/chat?stream=false", {"message": "add buy\x00milk"}),
        ("conversation-id", "GET", "/api/conversations/a%00b/messages", None),
        (
            "conversation-continue",
            "POST",
            "/api/chat?stream=false",
            {"message": "hi", "conversation_id": "\x00"},
        ),
    ]


@pytest.mark.parametrize(
    ("name", "method", "path", "body"), nul_cases(), ids=[case[0] for case in nul_cases()]
)
async def test_nul_characters_are_stored_or_refused_never_500(
    app: Served,
    database_url: str,
    request: pytest.FixtureRequest,
    name: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    response = await app.http.request(method, path, json=body, headers=User().headers())
    assert response.status_code < 500, (response.status_code, response.text[:200])
    assert response.status_code in (200, 201, 404, 422), response.text[:200]
    if response.status_code == 201:
        assert response.json()["title"] == " ".join(body["title"].split())


async def test_a_token_whose_user_id_holds_a_nul_never_500s(
    app: Served, database_url: str, request: pytest.FixtureRequest
) -> None:
    bearer = token("a\x00b")  # signed by the issuer: the user id itself holds the NUL
    response = await app.http.get("/api/tasks", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code in (200, 401), (response.status_code, response.text[:200])


SURROGATE_CASES = [
    ("title", "/api/tasks", '{"title": "a\\ud800b"}'),
    ("description", "/api/tasks", '{"title": "x", "description": "\\udfff"}'),
    ("tag", "/api/tasks", '{"title": "x", "tags": ["\\ud83d"]}'),
    ("chat-message", "/api/chat?stream=false", '{"message": "add \\ud800 milk"}'),
]


@pytest.mark.parametrize(("name", "path", "body"), SURROGATE_CASES, ids=[case[0] for case in SURROGATE_CASES])
async def test_lone_surrogates_are_refused_or_replaced_never_500(
    app: Served, name: str, path: str, body: str
) -> None:
    user = User()
    response = await app.http.post(
        path, content=body, headers=user.headers(**{"content-type": "application/json"})
    )
    assert response.status_code in (200, 201, 422), (response.status_code, response.text[:200])
    if response.status_code != 422:  # kept only as valid text (a surrogate cannot be stored as UTF-8)
        response.text.encode("utf-8")
        assert "\\ud8" not in response.text.lower() and "\\udf" not in response.text.lower()
