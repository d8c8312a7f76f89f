"""One `Settings` for every service, read from the environment and `.env`."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from mcp_server.db import Database

log = logging.getLogger(__name__)

# Values people paste from examples. Outside development they are refused.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "changethis", "change_me", "secret", "password", "placeholder", "xxx", "todo"}
)
MIN_SECRET_LENGTH = 32


def default_database_url() -> str:
    """A SQLite file in the user's data directory (created on first use)."""
    return "sqlite:///" + str(Path(user_data_dir("todo-chatbot", appauthor=False)) / "todo.db")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="`production` refuses placeholder secrets and the unauthenticated mode."
    )
    database_url: str = Field(
        default_factory=default_database_url,
        description="postgresql://user:pass@host/db?sslmode=require or sqlite:///path.",
    )

    auth_secret: SecretStr | None = Field(None, description="HS256 key shared with the token issuer.")
    auth_jwks_url: str | None = Field(None, description="JWKS of an issuer signing with RS/ES/EdDSA keys.")
    auth_issuer: str | None = Field(None, description="Required `iss` of tokens, when set.")
    auth_audience: str | None = Field(None, description="Required `aud` of tokens, when set.")
    # Unset: the engine's own defaults (`mcp_server.db.POOL_SIZE`, `MAX_OVERFLOW`).
    database_pool_size: int | None = Field(
        None, ge=1, description="PostgreSQL connections each process keeps open for reuse."
    )
    database_max_overflow: int | None = Field(
        None, ge=0, description="Connections opened beyond the pool in a burst, closed after use."
    )
    todo_user: str = Field("local", min_length=1, max_length=255, description="The user when auth is off.")
    todo_timezone: str | None = Field(None, description="IANA zone of the local user (stdio MCP).")

    dapr_http_port: int = Field(3500, ge=1, le=65535)
    dapr_api_token: SecretStr | None = Field(None, description="Sent to the sidecar as `dapr-api-token`.")
    app_api_token: SecretStr | None = Field(
        None, description="Required from the sidecar as `dapr-api-token`."
    )
    pubsub_name: str = "taskpubsub"
    topic: str = "task-events"
    dead_letter_topic: str = "task-events-dlq"
    subscriptions: Literal["programmatic", "declarative"] = Field(
        "programmatic", description="`declarative`: the chart's Subscriptions; `/dapr/subscribe` answers []."
    )
    outbox_retention_hours: float = Field(24.0, gt=0, description="Published outbox rows are kept this long.")
    ws_queue_size: int = Field(
        1000, ge=1, description="Events a WebSocket client may lag before it is cut off."
    )
    ws_heartbeat_seconds: float = Field(20.0, gt=0, description="Heartbeat interval on idle WebSockets.")
    ws_max_connections_per_user: int = Field(10, ge=1, description="Open WebSockets allowed per user.")
    relay_max_backoff_seconds: float = Field(30.0, gt=0, description="Longest wait between publish retries.")

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4.1-mini"
    openai_api_style: Literal["auto", "responses", "chat_completions"] = Field(
        "auto", description="auto: Responses API for api.openai.com, Chat Completions for other base URLs."
    )
    openai_timeout_seconds: float = Field(60.0, gt=0)
    openai_max_retries: int = Field(2, ge=0, description="Retries after 429, 5xx and timeouts, with backoff.")
    agent_tracing: bool | None = Field(
        None, description="Agents SDK tracing; default: on for api.openai.com."
    )
    chat_max_message_chars: int = Field(4000, ge=1, le=100_000)
    chat_max_turns: int = Field(10, ge=1, le=50, description="Model calls allowed per chat turn.")
    chat_history_items: int = Field(
        40, ge=1, le=10_000, description="Recent conversation items the model sees (whole turns)."
    )
    mcp_url: str = Field("http://127.0.0.1:8000/mcp", description="The MCP server the agent service uses.")

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("auth_secret", "dapr_api_token", "app_api_token", "openai_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        for name in ("auth_secret", "dapr_api_token", "app_api_token"):
            secret: SecretStr | None = getattr(self, name)
            if secret is None:
                continue
            value = secret.get_secret_value()
            problem = None
            if value.strip().lower() in PLACEHOLDER_SECRETS:
                problem = f"{name.upper()} is a placeholder value"
            elif name == "auth_secret" and len(value) < MIN_SECRET_LENGTH:
                problem = f"AUTH_SECRET must be at least {MIN_SECRET_LENGTH} characters"
            if problem is None:
                continue
            if self.environment == "production":
                raise ValueError(problem + "; set a real secret (for example `openssl rand -hex 32`)")
            log.warning("%s; acceptable only in development", problem)
        return self

    @property
    def auth_enabled(self) -> bool:
        return self.auth_secret is not None or self.auth_jwks_url is not None

    def open_database(self) -> Database:
        """The database at `DATABASE_URL`, its connection pool sized as configured."""
        from mcp_server.db import Database  # not at import: `--help` needs no SQLAlchemy

        sizes = {"pool_size": self.database_pool_size, "max_overflow": self.database_max_overflow}
        return Database(self.database_url, **{name: size for name, size in sizes.items() if size is not None})


@lru_cache
def get_settings() -> Settings:
    return Settings()
