"""Which model answers (an OpenAI-compatible endpoint, or the offline model), and how its failures read.

Retries: the OpenAI client retries 408/409/429/5xx, timeouts and connection errors `max_retries`
times with exponential backoff, honouring `Retry-After` (up to 60 s). The Agents SDK's own
runner-managed retries stay off, so a request is never retried twice over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import openai
from agents import set_tracing_export_api_key
from agents.exceptions import (
    AgentsException,
    MaxTurnsExceeded,
    ModelBehaviorError,
    ModelRefusalError,
    ModelTimeoutError,
    ToolTimeoutError,
    UserError,
)
from agents.models.interface import Model
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from openai import AsyncOpenAI
from sqlalchemy.exc import SQLAlchemyError

from agent.config import ChatConfig
from agent.memory import MemoryUnavailable, is_unavailable
from agent.offline_model import OfflineModel

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0

ErrorKind = Literal[
    "rate_limited",
    "quota",
    "unavailable",
    "timeout",
    "unreachable",
    "auth",
    "forbidden",
    "model_not_found",
    "too_long",
    "bad_request",
    "too_many_steps",
    "model_behavior",
    "tools_unavailable",
    "memory_unavailable",
    "internal",
]


def build_model(config: ChatConfig) -> Model:
    """The offline model without a key; otherwise the configured endpoint in the right API style."""
    if config.offline:
        return OfflineModel()
    assert config.openai_api_key is not None
    client = AsyncOpenAI(
        api_key=config.openai_api_key,
        base_url=config.openai_base_url or None,
        timeout=openai.Timeout(
            config.request_timeout_s, connect=min(CONNECT_TIMEOUT_S, config.request_timeout_s)
        ),
        max_retries=config.max_retries,
    )
    if config.tracing_enabled:
        set_tracing_export_api_key(config.openai_api_key)
    if config.resolved_api_style == "responses":
        return OpenAIResponsesModel(model=config.openai_model, openai_client=client)
    return OpenAIChatCompletionsModel(model=config.openai_model, openai_client=client)


@dataclass(frozen=True)
class ChatError:
    """A failed turn, as the person reads it: what kind of failure, a sentence, the HTTP status if any."""

    kind: ErrorKind
    message: str
    status: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "status": self.status}


class ToolsUnavailable(Exception):
    """The task tools (the MCP server) could not be reached for this turn."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup) and current.exceptions:
            yield from _chain(current.exceptions[0])
        current = current.__cause__ or current.__context__


def _status_error(error: openai.APIStatusError) -> ChatError:
    status = error.status_code
    code = (error.code or "").lower()
    if isinstance(error, openai.AuthenticationError) or status == 401:
        return ChatError(
            "auth",
            "The AI model refused our API key (401). The administrator needs to check OPENAI_API_KEY.",
            status,
        )
    if isinstance(error, openai.PermissionDeniedError) or status == 403:
        return ChatError(
            "forbidden",
            "The AI model refused access (403). The administrator needs to check the key's permissions.",
            status,
        )
    if isinstance(error, openai.RateLimitError) or status == 429:
        if code == "insufficient_quota":
            return ChatError(
                "quota",
                "The AI model's usage quota is used up (429). The administrator needs to check the billing.",
                status,
            )
        return ChatError(
            "rate_limited",
            "The AI model is rate-limited right now (429). Please try again in a moment.",
            status,
        )
    if isinstance(error, openai.NotFoundError) or status == 404:
        return ChatError(
            "model_not_found",
            "The AI model was not found (404). The administrator needs to check OPENAI_MODEL "
            "and OPENAI_BASE_URL.",
            status,
        )
    if code == "context_length_exceeded":
        return ChatError(
            "too_long",
            "This conversation is too long for the AI model. Please start a new conversation.",
            status,
        )
    if status >= 500:
        return ChatError(
            "unavailable",
            f"The AI model service had a problem ({status}). Please try again in a moment.",
            status,
        )
    return ChatError(
        "bad_request",
        f"The AI model could not handle this request ({status}). Please try rephrasing it.",
        status,
    )


def describe_error(error: BaseException) -> ChatError:
    """A short, clear message for a failed turn; never the provider's text (it may quote the key)."""
    for cause in _chain(error):
        if isinstance(cause, openai.APIStatusError):
            return _status_error(cause)
        if isinstance(cause, openai.APITimeoutError | ModelTimeoutError | TimeoutError):
            return ChatError("timeout", "The AI model did not answer in time. Please try again.")
        if isinstance(cause, openai.APIConnectionError):
            return ChatError(
                "unreachable", "The AI model service could not be reached. Please try again in a moment."
            )
        if isinstance(cause, ToolsUnavailable):
            return ChatError(
                "tools_unavailable",
                "Your task list could not be reached right now. Please try again in a moment.",
            )
        if isinstance(cause, MaxTurnsExceeded):
            return ChatError(
                "too_many_steps",
                "That took more steps than I may take in one answer. Please split it into smaller requests.",
            )
        if isinstance(cause, ModelRefusalError):
            return ChatError(
                "model_behavior", "The AI model declined to answer that. Please try rephrasing it."
            )
        if isinstance(cause, ModelBehaviorError):
            return ChatError(
                "model_behavior",
                "The AI model gave an answer I could not use. Please try again or rephrase it.",
            )
        if isinstance(cause, ToolTimeoutError):
            return ChatError("timeout", "A task tool did not answer in time. Please try again.")
        if isinstance(cause, MemoryUnavailable) or (
            isinstance(cause, SQLAlchemyError) and is_unavailable(cause)
        ):
            return ChatError(
                "memory_unavailable",
                "The conversation could not be saved right now. Please try again shortly.",
            )
    if isinstance(error, UserError | AgentsException):
        log.warning("chat turn failed in the agent runtime: %s", type(error).__name__)
    return ChatError("internal", "Something went wrong while answering. Please try again.")
