"""The in-process bus of the embedded mode: an `EventPublisher` that delivers to the handlers.

It stands in for Dapr pub/sub: each event goes to every subscribed handler through `dispatch`;
SUCCESS and DROP (recorded as a dead letter) count as delivered, and a RETRY leaves the event and
the user's later events in the outbox for the relay to offer again (handlers are idempotent).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from event_handlers.deps import HandlerDeps
from event_handlers.handlers import BATCH_HANDLERS, dispatch, dispatch_batch
from event_handlers.intake import Malformed, Outcome, TaskEvent, parse
from event_handlers.models import DeadLetter
from event_handlers.subscriptions import HANDLERS, SUBSCRIPTIONS, HandlerName
from mcp_server.publishing import PublishFailed

log = logging.getLogger(__name__)


class InProcessBus:
    max_batch = 500  # events per `publish`: the relay hands over a user's whole backlog at once

    def __init__(self, deps: HandlerDeps, handlers: Sequence[HandlerName] = HANDLERS) -> None:
        self.deps = deps
        self.handlers = tuple(handlers)

    async def publish(self, user_id: str, events: Sequence[dict[str, Any]]) -> set[str]:
        parsed = [(event, parse(event)) for event in events]  # once, for every handler
        # The push handler needs no I/O: every event of the batch goes to the user's sockets first,
        # rather than waiting behind the database work of earlier events (it ignores repeats).
        for event, intake in parsed:
            if "push" in self._targets(event):
                await self._deliver("push", event, intake)
        # Batch handlers (audit) take all their well-formed events in one transaction.
        batched: set[HandlerName] = set()
        for name in self.handlers:
            if name not in BATCH_HANDLERS:
                continue
            wanted = [
                intake
                for _, intake in parsed
                if isinstance(intake, TaskEvent) and SUBSCRIPTIONS[name].wants(intake.type)
            ]
            outcome = await dispatch_batch(name, wanted, self.deps) if wanted else Outcome.SUCCESS
            if outcome is Outcome.RETRY:
                raise PublishFailed(f"the {name} handler asked to retry")
            if outcome is Outcome.SUCCESS:
                batched.add(name)
        delivered: set[str] = set()
        for event, intake in parsed:  # in order: a user's events reach each handler one after another
            targets = [
                name
                for name in self._targets(event)
                if name != "push" and not (name in batched and isinstance(intake, TaskEvent))
            ]
            outcomes = await asyncio.gather(*(self._deliver(name, event, intake) for name in targets))
            if any(outcome is Outcome.RETRY for outcome in outcomes):
                if not delivered:
                    raise PublishFailed("a handler asked to retry")
                return delivered
            delivered.add(str(event["id"]))
        return delivered

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
