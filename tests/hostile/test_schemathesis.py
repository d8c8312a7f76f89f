"""Schemathesis against the REST OpenAPI of the embedded app, served for real on loopback.

Every operation under `/api/tasks`, `/api/chat` and `/api/conversations` is fuzzed (schema-valid and
schema-invalid requests) with a valid token (a fresh user per run, with real task ids mixed in) and
with invalid tokens (missing, garbage, expired, wrong key, unsigned): no 5xx, every response
documented and conforming to the schema, schema-invalid requests refused, bad tokens always 401.

Targeted tests at the end pin three things the fuzzing found once: a body that is not UTF-8 JSON
gets a documented status, the SSE answer of `/api/chat` follows its documented event schema, and
the schema declares the bearer scheme. NUL characters are generated too (they are refused, 422).
`positive_data_acceptance` is not run: dates, repeats and cursors are checked by the server beyond
what a JSON schema can say (a schema-valid `due` of "0000" is rightly a 422).
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import TEST_SECRET, parse_sse, token
from tests.hostile.harness import ThreadedServer, User, app_settings, threaded
from todo_chatbot.app import create_app

# The schema as the app builds it (no database is touched to build it); the served app's own
# /openapi.json is checked to be the same below.
OPENAPI = create_app(app_settings("sqlite:///:memory:")).openapi()
API_PATHS = r"^/api/(tasks|chat|conversations)"


def without_security(document: dict[str, Any]) -> dict[str, Any]:
    """The schema minus its bearer scheme: the tests send the tokens themselves (a valid one, or the
    invalid ones below), so schemathesis must not generate or strip `Authorization` on its own."""
    stripped = copy.deepcopy(document)
    stripped.get("components", {}).pop("securitySchemes", None)
    stripped.pop("security", None)
    for item in stripped["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    return stripped


FUZZED = without_security(OPENAPI)
schema = schemathesis.openapi.from_dict(FUZZED).include(path_regex=API_PATHS)
schema.config.max_stream_events = 10_000  # read chat answers to their `done` event (default: 20 events)
# With bad tokens nothing past authentication runs: boundary cases add little, so no coverage phase.
auth_schema = schemathesis.openapi.from_dict(FUZZED).include(path_regex=API_PATHS)
auth_schema.config.phases.update(phases=["examples", "fuzzing"])

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# A body that is not UTF-8 JSON: FastAPI answers this 400, which the schema does not document.
SSE = "text/event-stream"


def unsigned_token(claims: dict[str, Any]) -> str:
    """A JWT with `alg: none` and no signature."""
    header = {"alg": "none", "typ": "JWT"}
    parts = [json.dumps(part, separators=(",", ":")).encode() for part in (header, claims)]
    return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in parts) + "."


def invalid_tokens() -> dict[str, dict[str, str]]:
    now = int(time.time())
    return {
        "missing": {},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "not-bearer": {"Authorization": f"Basic {token('someone')}"},
        "expired": {"Authorization": f"Bearer {token('someone', expires_in=-3600)}"},
        "wrong-key": {"Authorization": f"Bearer {token('someone', secret='another-secret-' + 'x' * 32)}"},
        "unsigned": {"Authorization": f"Bearer {unsigned_token({'sub': 'someone', 'exp': now + 3600})}"},
        "no-sub": {
            "Authorization": "Bearer "
            + jwt.encode({"exp": now + 3600, "iat": now}, TEST_SECRET, algorithm="HS256")
        },
    }


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[ThreadedServer]:
    with threaded(database_url) as server:
        yield server


@pytest.fixture(scope="module")
def fuzz_user() -> User:
    """A fresh user per run (and backend): the fuzzing starts from an empty list."""
    return User()


def validate(case: Case[Any], response: Any, headers: dict[str, str]) -> None:
    """The response against the schema (an SSE stream is also read event by event)."""
    if header(response, "content-type").startswith(SSE):
        check_sse(response.text)
    case.validate_response(response, checks=CHECKS, headers=headers)


def check_sse(text: str) -> None:
    """What the route documents in words: `conversation` first, `done` last, JSON data throughout."""
    events = parse_sse(text.split("\n"))
    names = [event.event for event in events]
    assert names[0] == "conversation" and names[-1] == "done", names
    assert set(names) <= {"conversation", "delta", "tool_call", "tool_result", "error", "done"}, names
    assert events[-1].data["conversation_id"] == events[0].data["conversation_id"]


def header(response: Any, name: str) -> str:
    """A header of a schemathesis response (whose headers map names to lists of values)."""
    values = response.headers.get(name.lower()) or []
    return str(values[0]) if values else ""


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def real_task_id(base_url: str, user: User) -> str:
    response = httpx.post(
        base_url + "/api/tasks",
        json={"title": "fuzzed task", "due": "tomorrow 9am", "remind": "30 minutes before", "tags": ["fuzz"]},
        headers=user.headers(),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# ------------------------------------------------------------------------------------- fuzzing


@schema.given(use_real_id=st.booleans())
@schema.parametrize()
@FUZZ
def test_valid_token_no_5xx_and_responses_follow_the_schema(
    case: Case[Any], use_real_id: bool, api: ThreadedServer, fuzz_user: User
) -> None:
    if use_real_id and "task_id" in (case.path_parameters or {}):
        case.path_parameters["task_id"] = real_task_id(api.url, fuzz_user)  # reach the real code paths
    headers = fuzz_user.headers()
    response = case.call(base_url=api.url, headers=headers, timeout=60)
    validate(case, response, headers)


@auth_schema.parametrize()
@settings(FUZZ, max_examples=15)
def test_invalid_tokens_are_always_401(case: Case[Any], api: ThreadedServer) -> None:
    mode = case.meta.generation.mode if case.meta is not None else None
    for kind, headers in invalid_tokens().items():
        response = case.call(base_url=api.url, headers=headers, timeout=60)
        if mode is GenerationMode.POSITIVE:
            assert response.status_code == 401, (kind, response.status_code, response.text)
        else:  # a request that is not even well-formed may be refused before the token is read
            assert response.status_code in (400, 401, 405, 422), (kind, response.status_code, response.text)
        if response.status_code == 401:
            assert header(response, "www-authenticate") == "Bearer"
            assert response.json()["detail"].startswith("not authenticated"), (kind, response.text)
        validate(case, response, headers)


# ------------------------------------------------------------------------------- the schema itself


def test_the_served_schema_is_the_one_fuzzed(api: ThreadedServer) -> None:
    served = httpx.get(api.url + "/openapi.json", timeout=30).json()
    assert served == OPENAPI
    operations = {(method.upper(), path) for path, item in served["paths"].items() for method in item}
    fuzzed = {
        (result.ok().method.upper(), result.ok().path)
        for result in schema.get_all_operations()
        if isinstance(result, Ok)
    }
    expected = {(method, path) for method, path in operations if path.startswith("/api/")}
    assert fuzzed == expected and len(fuzzed) >= 12, sorted(expected - fuzzed)


def test_the_schema_declares_bearer_auth() -> None:
    schemes = OPENAPI.get("components", {}).get("securitySchemes", {})
    assert any(scheme.get("scheme", "").lower() == "bearer" for scheme in schemes.values())
    for path, item in OPENAPI["paths"].items():
        if path.startswith("/api/"):
            for operation in item.values():
                assert operation.get("security") or OPENAPI.get("security"), path


# ------------------------------------------------------------------------ known schema defects


def test_an_unreadable_body_gets_a_documented_status(api: ThreadedServer, fuzz_user: User) -> None:
    for path in ("/api/tasks", "/api/chat"):
        response = httpx.post(
            api.url + path,
            content=b'{"title": "\xff\xfe"}',
            headers={**fuzz_user.headers(), "content-type": "application/json"},
            timeout=30,
        )
        assert response.status_code < 500
        documented = OPENAPI["paths"][path]["post"]["responses"]
        assert str(response.status_code) in documented, (path, response.status_code, sorted(documented))


def test_the_chat_stream_follows_its_documented_event_schema(api: ThreadedServer, fuzz_user: User) -> None:
    operation = schema["/api/chat"]["POST"]
    case = operation.Case(body={"message": "show all"}, query={"stream": True})
    headers = fuzz_user.headers()
    response = case.call(base_url=api.url, headers=headers, timeout=60)
    assert response.status_code == 200 and header(response, "content-type").startswith(SSE)
    check_sse(response.text)
    case.validate_response(response, checks=[response_schema_conformance], headers=headers)
