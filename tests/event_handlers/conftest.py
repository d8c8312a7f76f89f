"""Handler services served for real beside a fake Dapr sidecar."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from event_handlers.app import create_handler_app
from event_handlers.subscriptions import HANDLERS
from tests.fakes import FakeSidecar
from tests.helpers import TEST_SECRET, serving
from todo_chatbot.app import create_app
from todo_chatbot.settings import Settings

APP_TOKEN = "app-token-from-the-sidecar-0123456789"
API_TOKEN = "api-token-for-the-sidecar-0123456789"


@pytest.fixture
async def sidecar() -> AsyncIterator[FakeSidecar]:
    async with FakeSidecar(api_token=API_TOKEN) as fake:
        yield fake


def dapr_settings(
    database_url: str,
    sidecar: FakeSidecar,
    *,
    api_token: str = API_TOKEN,
    app_token: str = APP_TOKEN,
    **extra: Any,
) -> Settings:
    return Settings(
        database_url=database_url,
        auth_secret=TEST_SECRET,
        dapr_http_port=sidecar.port,
        dapr_api_token=api_token,
        app_api_token=app_token,
        **extra,
    )


@pytest.fixture
async def services(database_url: str, sidecar: FakeSidecar) -> AsyncIterator[dict[str, str]]:
    """mcp-server (relaying through the sidecar) and the four handler services, each on its port."""
    settings = dapr_settings(database_url, sidecar)
    urls: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        urls["mcp-server"] = await stack.enter_async_context(serving(create_app(settings, role="mcp-server")))
        for name in HANDLERS:
            urls[name] = await stack.enter_async_context(serving(create_handler_app(name, settings)))
        yield urls


@pytest.fixture
def pump_all(sidecar: FakeSidecar, services: dict[str, str]) -> Callable[..., Any]:
    """Deliver what was published to every handler service, as daprd's consumers would."""

    async def pump(**options: Any) -> dict[str, Any]:
        return {name: await sidecar.pump(services[name], app_token=APP_TOKEN, **options) for name in HANDLERS}

    return pump
