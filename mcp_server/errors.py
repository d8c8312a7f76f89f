"""What the task domain can refuse, in words a person and a model can act on."""

from __future__ import annotations


class TaskError(Exception):
    """Base of the domain's errors; `str(error)` is safe to show to the caller."""


class InvalidInput(TaskError):
    """An argument broke a rule; nothing was written."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class TaskNotFound(TaskError):
    """No task with that id for this caller (another user's task looks exactly the same)."""

    def __init__(self, task_id: object) -> None:
        super().__init__(
            f"task_id: no task with id {str(task_id)[:64]!r}; list or search tasks to find its id"
        )
        self.task_id = task_id


class StoreUnavailable(TaskError):
    """The database could not be reached; the change was not made and may be retried."""

    def __init__(self) -> None:
        super().__init__(
            "the task store is temporarily unavailable; nothing was changed, please retry in a few seconds"
        )


class NotAuthenticated(TaskError):
    """The request carries no valid identity."""
