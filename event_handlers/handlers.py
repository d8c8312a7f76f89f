"""The handlers, registered in one place, and the one dispatch every transport uses.

The Dapr routes and the in-process bus both call `dispatch`, so the embedded mode runs the very
code that runs in Kubernetes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from event_handlers import audit, push, recurring, reminders
from event_handlers.deps import HandlerDeps
from event_handlers.intake import Malformed, Outcome, TaskEvent, parse
from event_handlers.metrics import HANDLER_OUTCOMES
from event_handlers.scheduling import JobFailed
from event_handlers.subscriptions import SUBSCRIPTIONS, HandlerName
from mcp_server.db import is_unavailable
from mcp_server.errors import StoreUnavailable
from mcp_server.telemetry import event_context, trace_context, valid_traceparent

log = logging.getLogger(__name__)

Handler = Callable[[TaskEvent, HandlerDeps], Awaitable[Outcome]]
BatchHandler = Callable[[Sequence[TaskEvent], HandlerDeps], Awaitable[Outcome]]

HANDLERS: Final[dict[HandlerName, Handler]] = {
    "audit": audit.handle,
    "reminders": reminders.handle,
    "recurring": recurring.handle,
    "push": push.handle,
}

# Handlers that can also take many events at once, with the effect of taking them one by one.
BATCH_HANDLERS: Final[dict[HandlerName, BatchHandler]] = {"audit": audit.handle_many}


async def dispatch(
    name: HandlerName, body: bytes | str | dict[str, Any] | TaskEvent | Malformed, deps: HandlerDeps
) -> tuple[Outcome, str]:
    """Run handler `name` on a delivery (or on an event the in-process bus parsed once for all
    handlers): (outcome, reason).

    Malformed -> DROP; a type the handler does not act on -> SUCCESS; database or sidecar
    unreachable -> RETRY; any other failure -> DROP (a poison message must not block the user's
    events forever; it stays in the dead-letter topic for inspection).
    """
    outcome, reason = await _dispatch(name, body, deps)
    HANDLER_OUTCOMES.labels(name, outcome.value).inc()
    return outcome, reason


async def _dispatch(
    name: HandlerName, body: bytes | str | dict[str, Any] | TaskEvent | Malformed, deps: HandlerDeps
) -> tuple[Outcome, str]:
    event = body if isinstance(body, TaskEvent | Malformed) else parse(body)
    if isinstance(event, Malformed):
        log.warning("dropping a malformed event for %s: %s", name, event.reason)
        return Outcome.DROP, event.reason
    if not SUBSCRIPTIONS[name].wants(event.type):
        return Outcome.SUCCESS, "not for this handler"
    # Logs and the events this work writes carry the trace of the change that caused it.
    traced = trace_context.set(valid_traceparent(event.document.get("traceparent")) or trace_context.get())
    handling = event_context.set(event.id)
    try:
        return await HANDLERS[name](event, deps), ""
    except (StoreUnavailable, JobFailed) as error:
        return Outcome.RETRY, str(error)
    except Exception as error:
        if is_unavailable(error):
            return Outcome.RETRY, "database unavailable"
        log.exception("handler %s failed on event %s", name, event.id)
        return Outcome.DROP, f"handler failed: {type(error).__name__}"
    finally:
        event_context.reset(handling)
        trace_context.reset(traced)


async def dispatch_batch(name: HandlerName, events: Sequence[TaskEvent], deps: HandlerDeps) -> Outcome:
    """Run batch handler `name` on well-formed events it subscribes to, all at once (the in-process
    bus does this). RETRY when the database is down; DROP when it failed otherwise, and then the
    caller delivers the events one by one through `dispatch`, so that only a poison event is dropped.
    """
    try:
        outcome = await BATCH_HANDLERS[name](events, deps)
    except StoreUnavailable:
        outcome = Outcome.RETRY
    except Exception as error:
        if not is_unavailable(error):
            log.warning(
                "handler %s failed on a batch of %d events (%s)", name, len(events), type(error).__name__
            )
            return Outcome.DROP
        outcome = Outcome.RETRY
    HANDLER_OUTCOMES.labels(name, outcome.value).inc(len(events))
    return outcome
