"""Who listens to which events, on which route: the one table the Dapr routes, the programmatic
`/dapr/subscribe` answer, the in-process bus and the Helm chart's Subscriptions all follow.

Each handler gets the event types it acts on at `/events/<handler>` (a CEL rule on `event.type`);
everything else goes to its default route `/events/<handler>/other`, which drops malformed or unknown
events to the dead-letter topic and acknowledges the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from mcp_server.events import (
    EVENT_TYPES,
    REMINDER_DUE,
    TASK_COMPLETED,
    TASK_CREATED,
    TASK_DELETED,
    TASK_REOPENED,
    TASK_UPDATED,
)

HandlerName = Literal["audit", "reminders", "recurring", "push"]
HANDLERS: Final[tuple[HandlerName, ...]] = ("audit", "reminders", "recurring", "push")
TASK_CHANGES: Final = (TASK_CREATED, TASK_UPDATED, TASK_COMPLETED, TASK_REOPENED, TASK_DELETED)


@dataclass(frozen=True)
class Subscription:
    handler: HandlerName
    types: tuple[str, ...]
    broadcast: bool = False  # every replica gets every event (its own pubsub component)

    @property
    def path(self) -> str:
        return f"/events/{self.handler}"

    @property
    def default_path(self) -> str:
        return f"/events/{self.handler}/other"

    @property
    def match(self) -> str:
        """The CEL rule selecting this handler's event types."""
        if len(self.types) == 1:
            return f'event.type == "{self.types[0]}"'
        return "event.type in [" + ", ".join(f'"{kind}"' for kind in self.types) + "]"

    def wants(self, event_type: str) -> bool:
        return event_type in self.types


SUBSCRIPTIONS: Final[dict[HandlerName, Subscription]] = {
    "audit": Subscription("audit", EVENT_TYPES),
    "reminders": Subscription("reminders", TASK_CHANGES),
    "recurring": Subscription("recurring", (TASK_COMPLETED, TASK_REOPENED)),
    "push": Subscription("push", (*TASK_CHANGES, REMINDER_DUE), broadcast=True),
}

# Job triggers from the Dapr Jobs API (reminders only): POST /job/reminder-<taskId>.
JOB_ROUTE: Final = "/job/{name}"
REMINDER_JOB_PREFIX: Final = "reminder-"


def pubsub_for(subscription: Subscription, pubsub_name: str) -> str:
    """The push service reads through its own broadcast component (consumerID = pod name)."""
    return f"{pubsub_name}-broadcast" if subscription.broadcast else pubsub_name


def dapr_subscription(
    subscription: Subscription, *, pubsub_name: str, topic: str, dead_letter_topic: str
) -> dict[str, Any]:
    """The v2 programmatic subscription `GET /dapr/subscribe` answers with."""
    return {
        "pubsubname": pubsub_for(subscription, pubsub_name),
        "topic": topic,
        "routes": {
            "rules": [{"match": subscription.match, "path": subscription.path}],
            "default": subscription.default_path,
        },
        "deadLetterTopic": dead_letter_topic,
    }
