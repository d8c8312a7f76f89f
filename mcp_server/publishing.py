"""The `EventPublisher` port and its Dapr adapter (HTTP publish to the sidecar).

A publisher takes one user's events in order and answers which of them were published; anything
else stays in the outbox for the relay to try again. Only a 204 from the sidecar means published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import httpx

log = logging.getLogger(__name__)

CLOUDEVENTS_JSON = "application/cloudevents+json"


def sidecar_client(
    *, port: int, api_token: str | None, timeout: float, host: str = "127.0.0.1"
) -> httpx.AsyncClient:
    """HTTP to the Dapr sidecar: `dapr-api-token` when one is set, no proxies (it is on loopback)."""
    headers = {"dapr-api-token": api_token} if api_token else {}
    return httpx.AsyncClient(
        base_url=f"http://{host}:{port}", headers=headers, timeout=timeout, trust_env=False
    )


class PublishFailed(Exception):
    """Nothing was published (sidecar down, refused, or failed); retry later."""


class EventPublisher(Protocol):
    async def publish(self, user_id: str, events: Sequence[dict[str, Any]]) -> set[str]:
        """Publish one user's events in order; returns the ids that were published."""
        ...


# Of one user's events: the ids published, and why the others were not (None when all were).
Published = tuple[set[str], str | None]


@runtime_checkable
class RoundPublisher(Protocol):
    """A publisher that takes a whole relay round at once (the in-process bus)."""

    async def publish_round(self, backlog: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, Published]:
        """Each user's events in order; per user what was published."""
        ...


class DaprPublisher:
    """Publishes through the Dapr sidecar: structured CloudEvents, keyed by user for per-user order.

    One event goes to `/v1.0/publish/...`; several (a backlog) to the bulk endpoint in one request.
    """

    def __init__(
        self,
        *,
        port: int,
        pubsub: str,
        topic: str,
        api_token: str | None = None,
        timeout: float = 5.0,
        host: str = "127.0.0.1",
    ) -> None:
        self._http = sidecar_client(port=port, api_token=api_token, timeout=timeout, host=host)
        self._pubsub = pubsub
        self._topic = topic

    async def publish(self, user_id: str, events: Sequence[dict[str, Any]]) -> set[str]:
        if not events:
            return set()
        params = {"metadata.partitionKey": user_id}
        try:
            if len(events) == 1:
                return await self._publish_one(events[0], params)
            return await self._publish_bulk(events, params)
        except httpx.HTTPError as error:
            raise PublishFailed(f"sidecar unreachable: {type(error).__name__}") from error

    async def _publish_one(self, event: dict[str, Any], params: dict[str, str]) -> set[str]:
        headers = {"content-type": CLOUDEVENTS_JSON}
        if "traceparent" in event:
            headers["traceparent"] = str(event["traceparent"])
        response = await self._http.post(
            f"/v1.0/publish/{self._pubsub}/{self._topic}",
            params=params,
            content=json.dumps(event).encode(),
            headers=headers,
        )
        if response.status_code != 204:
            raise PublishFailed(f"publish answered {response.status_code}: {response.text[:200]}")
        return {str(event["id"])}

    async def _publish_bulk(self, events: Sequence[dict[str, Any]], params: dict[str, str]) -> set[str]:
        ids = [str(event["id"]) for event in events]
        entries = [
            {"entryId": entry_id, "event": event, "contentType": CLOUDEVENTS_JSON}
            for entry_id, event in zip(ids, events, strict=True)
        ]
        response = await self._http.post(
            f"/v1.0/publish/bulk/{self._pubsub}/{self._topic}", params=params, json=entries
        )
        if response.status_code == 204:
            return set(ids)
        try:
            failed = {str(entry["entryId"]) for entry in response.json().get("failedEntries", [])}
        except (ValueError, AttributeError, KeyError, TypeError):
            failed = set(ids)
        delivered = set(ids) - failed
        if not delivered:
            raise PublishFailed(f"bulk publish answered {response.status_code}: {response.text[:200]}")
        log.warning("bulk publish delivered %d of %d events", len(delivered), len(ids))
        return delivered

    async def aclose(self) -> None:
        await self._http.aclose()
