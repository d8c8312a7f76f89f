"""JWT verification: HS256, JWKS (RS256/EdDSA served from loopback), and every way a token can be wrong."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_server.auth import Authenticator
from mcp_server.errors import NotAuthenticated
from tests.helpers import TEST_SECRET, serving, token
from todo_chatbot.settings import Settings


def hs256(secret: str = TEST_SECRET, **settings: Any) -> Authenticator:
    return Authenticator(Settings(auth_secret=secret, database_url="sqlite:///:memory:", **settings))


async def test_valid_hs256_token_names_the_user() -> None:
    assert await hs256().user_for_token(token("alice")) == "alice"
    caller = await hs256().caller({"authorization": f"Bearer {token('alice')}", "x-timezone": "Europe/Rome"})
    assert caller.user_id == "alice" and caller.timezone == "Europe/Rome"


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


NOW = int(time.time())


@pytest.mark.parametrize(
    ("bad_token", "reason"),
    [
        (token("alice", expires_in=-120), "expired"),
        (token("alice", secret="not-the-secret-0123456789abcdef012345"), "signature"),
        (unsigned({"sub": "alice", "exp": NOW + 600}), "'none' are not accepted"),
        (
            jwt.encode({"sub": "alice", "exp": NOW + 600}, TEST_SECRET, algorithm="HS512"),
            "'HS512' are not accepted",
        ),
        (jwt.encode({"exp": NOW + 600}, TEST_SECRET, algorithm="HS256"), "signature or claims"),  # no sub
        (jwt.encode({"sub": "alice"}, TEST_SECRET, algorithm="HS256"), "signature or claims"),  # no exp
        (jwt.encode({"sub": "", "exp": NOW + 600}, TEST_SECRET, algorithm="HS256"), "user id of 1-255"),
        ("garbage", "not a JWT"),
    ],
    ids=["expired", "wrong-key", "alg-none", "hs512", "no-sub", "no-exp", "empty-sub", "garbage"],
)
async def test_bad_tokens_are_refused(bad_token: str, reason: str) -> None:
    with pytest.raises(NotAuthenticated, match=reason):
        await hs256().user_for_token(bad_token)


async def test_issuer_and_audience_are_checked_when_configured() -> None:
    strict = hs256(auth_issuer="https://auth.example", auth_audience="todo")
    good = token("alice", iss="https://auth.example", aud="todo")
    assert await strict.user_for_token(good) == "alice"
    with pytest.raises(NotAuthenticated, match="another audience"):
        await strict.user_for_token(token("alice", iss="https://auth.example", aud="other"))
    with pytest.raises(NotAuthenticated, match="another issuer"):
        await strict.user_for_token(token("alice", iss="https://evil.example", aud="todo"))
    with pytest.raises(NotAuthenticated):
        await strict.user_for_token(token("alice"))


async def test_missing_header_and_auth_off() -> None:
    with pytest.raises(NotAuthenticated, match="Bearer"):
        await hs256().caller({})
    with pytest.raises(NotAuthenticated, match="Bearer"):
        await hs256().caller({"authorization": "Basic YWxpY2U6cHc="})
    local = Authenticator(Settings(database_url="sqlite:///:memory:", todo_user="me"))
    assert not local.enabled and (await local.caller({})).user_id == "me"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def jwk(public_key: Any, kid: str, alg: str) -> dict[str, Any]:
    document = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(public_key))
    return {**document, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
async def jwks_url() -> AsyncIterator[str]:
    keys = {"keys": [jwk(RSA_KEY.public_key(), "rsa-1", "RS256"), jwk(ED_KEY.public_key(), "ed-1", "EdDSA")]}

    async def jwks(request: Any) -> JSONResponse:
        return JSONResponse(keys)

    async with serving(Starlette(routes=[Route("/.well-known/jwks.json", jwks)])) as url:
        yield url + "/.well-known/jwks.json"


async def test_asymmetric_tokens_from_jwks(jwks_url: str) -> None:
    auth = Authenticator(Settings(auth_jwks_url=jwks_url, database_url="sqlite:///:memory:"))
    claims = {"sub": "bob", "exp": int(time.time()) + 600}
    rsa_token = jwt.encode(claims, RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    ed_token = jwt.encode(claims, ED_KEY, algorithm="EdDSA", headers={"kid": "ed-1"})
    assert await auth.user_for_token(rsa_token) == "bob"
    assert await auth.user_for_token(ed_token) == "bob"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(NotAuthenticated):
        await auth.user_for_token(jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "rsa-1"}))
    with pytest.raises(NotAuthenticated, match="unknown key"):
        await auth.user_for_token(jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "nobody"}))
    # An HS256 token is refused when only JWKS is configured (no key confusion with the public key).
    with pytest.raises(NotAuthenticated, match="'HS256' are not accepted"):
        await auth.user_for_token(token("bob"))


def test_placeholder_secrets_are_refused_in_production() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        Settings(environment="production", auth_secret="changeme", database_url="sqlite:///:memory:")
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(environment="production", auth_secret="short-but-real", database_url="sqlite:///:memory:")
    with pytest.raises(ValueError, match="APP_API_TOKEN is a placeholder"):
        Settings(environment="production", app_api_token="secret", database_url="sqlite:///:memory:")
    assert Settings(
        environment="development", auth_secret="changeme", database_url="sqlite:///:memory:"
    ).auth_enabled
