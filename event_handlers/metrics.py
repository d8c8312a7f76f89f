"""Prometheus metrics of the event handlers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

HANDLER_OUTCOMES = Counter(
    "todo_handler_outcomes_total", "Deliveries handled, by handler and answer", ["handler", "outcome"]
)
REMINDERS_SCHEDULED = Counter("todo_reminders_scheduled_total", "Reminder jobs scheduled (or moved)")
REMINDERS_FIRED = Counter("todo_reminders_fired_total", "Reminders that fired (reminder.due written)")
REMINDERS_STALE = Counter(
    "todo_reminders_stale_total", "Reminder triggers that were stale, repeated or foreign"
)
WEBSOCKET_CONNECTIONS = Gauge("todo_websocket_connections", "Open /ws/tasks connections in this process")
