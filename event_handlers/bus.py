"""The in-process bus of the embedded mode: an `EventPublisher` that delivers to the handlers.

It stands in for Dapr pub/sub: each event goes to every subscribed handler through `dispatch` (or,
for handlers that take batches, `dispatch_batch`, with the same effect); SUCCESS and DROP (recorded
as a dead letter) count as delivered, and a RETRY leaves the event and the user's later events in
the outbox for the relay to offer again (handlers are idempotent).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from event_handlers.deps import HandlerDeps
from event_handlers.handlers import BATCH_HANDLERS, dispatch, dispatch_batch
from event_handlers.intake import Malformed, Outcome, TaskEvent, parse
from event_handlers.models import DeadLetter
from event_handlers.subscriptions import HANDLERS, SUBSCRIPTIONS, HandlerName
from mcp_server.publishing import Published, PublishFailed

log = logging.getLogger(__name__)


class InProcessBus:
    """Delivers a relay round (every user's pending events) to the handlers: first every event to
    the sockets (push needs no I/O), then the audit log's batch in one transaction, then each
    user's events in order to the handlers that act on them, users side by side."""

    def __init__(
        self, deps: HandlerDeps, handlers: Sequence[HandlerName] = HANDLERS, *, concurrency: int = 8
    ) -> None:
        self.deps = deps
        self.handlers = tuple(handlers)
        self.concurrency = concurrency

    async def publish(self, user_id: str, events: Sequence[dict[str, Any]]) -> set[str]:
        published, error = (await self.publish_round({user_id: events}))[user_id]
        if error is not None and not published:
            raise PublishFailed(error)
        return published

    async def publish_round(self, backlog: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, Published]:
        """Each user's events, in order; per user the ids delivered and, if not all were, why."""
        parsed = {user: [(event, parse(event)) for event in events] for user, events in backlog.items()}
        everything = [item for items in parsed.values() for item in items]
        for event, intake in everything:  # push ignores repeats, so it may run ahead of the rest
            if "push" in self._targets(event):
                await self._deliver("push", event, intake)
        batched: set[HandlerName] = set()
        for name in self.handlers:
            if name not in BATCH_HANDLERS:
                continue
            wanted = [
                intake
                for _, intake in everything
                if isinstance(intake, TaskEvent) and SUBSCRIPTIONS[name].wants(intake.type)
            ]
            outcome = await dispatch_batch(name, wanted, self.deps) if wanted else Outcome.SUCCESS
            if outcome is Outcome.RETRY:  # the database is down: nobody's events are delivered
                return {user: (set(), f"the {name} handler asked to retry") for user in backlog}
            if outcome is Outcome.SUCCESS:  # otherwise (a poison event) they go one by one below
                batched.add(name)
        limit = asyncio.Semaphore(self.concurrency)

        async def deliver_in_order(items: list[tuple[dict[str, Any], TaskEvent | Malformed]]) -> Published:
            delivered: set[str] = set()
            async with limit:
                for event, intake in items:
                    targets = [
                        name
                        for name in self._targets(event)
                        if name != "push" and not (name in batched and isinstance(intake, TaskEvent))
                    ]
                    outcomes = await asyncio.gather(*(self._deliver(name, event, intake) for name in targets))
                    if any(outcome is Outcome.RETRY for outcome in outcomes):
                        return delivered, "a handler asked to retry"
                    delivered.add(str(event["id"]))
            return delivered, None

        results = await asyncio.gather(*(deliver_in_order(items) for items in parsed.values()))
        return dict(zip(parsed, results, strict=True))

    def _targets(self, event: dict[str, Any]) -> list[HandlerName]:
        kind = str(event.get("type", ""))
        wanted = [name for name in self.handlers if SUBSCRIPTIONS[name].wants(kind)]
        return wanted or list(self.handlers[:1])  # an unknown type still goes somewhere, to be dropped

    async def _deliver(
        self, name: HandlerName, event: dict[str, Any], intake: TaskEvent | Malformed
    ) -> Outcome:
        outcome, reason = await dispatch(name, intake, self.deps)
        if outcome is Outcome.DROP:
            try:
                await self._dead_letter(name, event, reason)
            except Exception:  # could not keep it: deliver it again later rather than lose it
                return Outcome.RETRY
        return outcome

    async def _dead_letter(self, name: HandlerName, event: dict[str, Any], reason: str) -> None:
        async with self.deps.db.transaction() as session:
            session.add(
                DeadLetter(
                    consumer=name, event_id=str(event.get("id"))[:128], reason=reason, body=json.dumps(event)
                )
            )
