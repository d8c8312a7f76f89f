"""Who is calling: JWT bearer tokens (HS256 with AUTH_SECRET, or RS/ES/EdDSA keys from AUTH_JWKS_URL).

The user id is the token's `sub`. With neither secret nor JWKS configured, every request is the
single local user (and the CLI refuses to listen anywhere but loopback).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
import jwt

from mcp_server.errors import NotAuthenticated
from mcp_server.service import Caller
from todo_chatbot.settings import Settings

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
)
LEEWAY_SECONDS = 30
VERIFIED_CACHE_SIZE = 10_000
TIMEZONE_HEADER = "x-timezone"


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth_enabled
        self.local_user = settings.todo_user
        self._secret = settings.auth_secret.get_secret_value() if settings.auth_secret else None
        self._jwks = (
            jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True) if settings.auth_jwks_url else None
        )
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._verified: dict[str, tuple[str, float]] = {}  # token -> (user id, when to stop trusting it)

    async def user_for_token(self, token: str) -> str:
        """The `sub` of a valid token; `NotAuthenticated` naming what is wrong otherwise.

        A token verified once is remembered until it expires (clients send the same token with
        every request; checking its signature each time was a tenth of a request's work).
        """
        known = self._verified.get(token)
        if known is not None and known[1] > time.time():
            return known[0]
        subject, expires = await self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (subject, expires)
        return subject

    async def _verify(self, token: str) -> tuple[str, float]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError:
            raise NotAuthenticated("the bearer token is not a JWT") from None
        key: Any
        if algorithm == "HS256" and self._secret is not None:
            key = self._secret
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            try:
                key = (await anyio.to_thread.run_sync(self._jwks.get_signing_key_from_jwt, token)).key
            except jwt.PyJWKClientConnectionError:
                raise NotAuthenticated("the signing keys could not be fetched; try again") from None
            except jwt.PyJWKClientError:
                raise NotAuthenticated("the token is signed with an unknown key") from None
        else:
            raise NotAuthenticated(f"tokens signed with {str(algorithm)[:20]!r} are not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated("the token is from another issuer") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated("the token's signature or claims are not valid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 255 or not subject.isprintable():
            raise NotAuthenticated("the token's `sub` must be a user id of 1-255 printable characters")
        return subject, float(claims["exp"]) + LEEWAY_SECONDS

    async def caller(self, headers: Mapping[str, str], *, token: str | None = None) -> Caller:
        """The caller of an HTTP request: `Authorization: Bearer <jwt>` (or `token`), `X-Timezone`."""
        timezone = headers.get(TIMEZONE_HEADER) or None
        if not self.enabled:
            return Caller(self.local_user, timezone)
        if token is None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise NotAuthenticated("send `Authorization: Bearer <token>`")
        return Caller(await self.user_for_token(token.strip()), timezone)


def unauthorized_body(error: NotAuthenticated) -> bytes:
    return json.dumps({"detail": f"not authenticated: {error}"}).encode()
