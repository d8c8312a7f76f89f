"""What the chat service needs to know, as plain values: the composition root builds it from `Settings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

ApiStyle = Literal["auto", "responses", "chat_completions"]
OFFICIAL_OPENAI_HOST = "api.openai.com"


@dataclass(frozen=True)
class ChatConfig:
    """The model endpoint and the limits of one chat turn.

    Without `openai_api_key` the offline model answers. `api_style="auto"` speaks the Responses API
    to api.openai.com (or when no base URL is set) and Chat Completions to any other OpenAI-compatible
    endpoint (Ollama, vLLM, LiteLLM, Azure-compatible gateways).
    """

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = "gpt-4.1-mini"
    api_style: ApiStyle = "auto"
    max_message_chars: int = 4000
    request_timeout_s: float = 60.0
    """Per model request (each retry gets its own)."""
    max_retries: int = 2
    """Retries of a model request after 429, 5xx, timeouts and connection errors, with backoff."""
    max_turns: int = 10
    """Model calls per chat turn (the offline model's largest confirmed bulk delete needs 9)."""
    history_items: int | None = 40
    """The most recent conversation items (messages, tool calls, tool outputs) the model is given,
    cut back to where a turn begins; None gives it the whole conversation."""
    tracing: bool | None = None
    """Agents SDK tracing to the OpenAI platform; None means on only with a key for api.openai.com."""

    def __post_init__(self) -> None:
        if self.api_style not in ("auto", "responses", "chat_completions"):
            raise ValueError(
                f"api_style: expected auto, responses or chat_completions, got {self.api_style!r}"
            )
        if self.max_message_chars < 1:
            raise ValueError("max_message_chars: must be at least 1")
        if self.max_turns < 1:
            raise ValueError("max_turns: must be at least 1")
        if self.history_items is not None and self.history_items < 1:
            raise ValueError("history_items: must be at least 1 (or None for the whole conversation)")
        if self.max_retries < 0:
            raise ValueError("max_retries: must not be negative")
        if self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s: must be positive")

    @property
    def offline(self) -> bool:
        return not self.openai_api_key

    @property
    def official_endpoint(self) -> bool:
        """Whether requests go to OpenAI itself (no base URL, or one on api.openai.com)."""
        if not self.openai_base_url:
            return True
        return (urlsplit(self.openai_base_url).hostname or "").lower() == OFFICIAL_OPENAI_HOST

    @property
    def resolved_api_style(self) -> Literal["responses", "chat_completions"]:
        if self.api_style != "auto":
            return self.api_style
        return "responses" if self.official_endpoint else "chat_completions"

    @property
    def tracing_enabled(self) -> bool:
        if self.offline:
            return False
        return self.official_endpoint if self.tracing is None else self.tracing
