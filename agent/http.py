"""`/api/chat` (streamed as Server-Sent Events, or one JSON answer) and `/api/conversations`.

Routes only authenticate, parse, call `ChatService` and shape the answer. A failed turn is still a
200 whose body (or `error` event) says what went wrong; 4xx are for bad requests only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, Security, status
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from agent.chat import (
    ChatEvent,
    ChatInputError,
    ChatService,
    ConversationNotFound,
    HeartbeatEvent,
    TranscriptMessage,
    TranscriptToolCall,
)
from agent.mcp_link import ChatUser
from agent.memory import CONVERSATION_ID_CHARS, LIST_LIMIT_MAX, MemoryUnavailable

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RETRY_AFTER_SECONDS = "2"

Authenticate = Callable[[Request], Awaitable[ChatUser]]


class Unauthenticated(Exception):
    """Raised by `authenticate` when a request carries no valid identity (answered with 401)."""


# ------------------------------------------------------------------------------------ schemas


class ConversationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a mistake worth a 422

    limit: int = Field(50, ge=1, le=LIST_LIMIT_MAX, description="At most this many, newest first.")


class ChatRequest(BaseModel):
    message: str = Field(
        description="What the person says: 1 to `max_message_chars` (default 4,000) characters."
    )
    conversation_id: str | None = Field(
        None,
        max_length=CONVERSATION_ID_CHARS,
        description="Continue this conversation; leave out to start a new one.",
    )
    timezone: str | None = Field(
        None,
        max_length=64,
        description="IANA zone dates are read in (e.g. 'Europe/Paris'); default: the client's, else UTC.",
    )


class ToolCallOut(BaseModel):
    name: str
    arguments: dict[str, Any]
    output: Any = Field(None, description="What the tool returned: JSON data, or an error text.")


class ChatErrorOut(BaseModel):
    kind: str = Field(
        description="rate_limited, unavailable, timeout, auth, tools_unavailable, internal, ..."
    )
    message: str = Field(description="For the person; also the reply.")
    status: int | None = Field(None, description="HTTP status of the model endpoint, when it answered one.")


class ChatReply(BaseModel):
    conversation_id: str
    reply: str
    tool_calls: list[ToolCallOut]
    error: ChatErrorOut | None = Field(None, description="Set when the turn failed; `reply` then says why.")


class ConversationOut(BaseModel):
    id: str
    title: str = Field(description="The first message, at most 80 characters.")
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class ToolMessageOut(BaseModel):
    role: Literal["tool"] = "tool"
    id: str
    name: str
    arguments: dict[str, Any]
    output: Any = None


SSE_DESCRIPTION = """\
Server-Sent Events, in order: `conversation` `{"conversation_id"}`; then any number of
`delta` `{"text"}` (the reply as it is written; the deltas add up to the reply),
`tool_call` `{"id", "name", "arguments"}` and `tool_result` `{"id", "name", "output"}`;
on failure `error` `{"kind", "message", "status"}`; finally `done` `{"conversation_id", "reply"}`.
Lines starting with `:` are keep-alive comments."""

# One event of the stream (each `data` is a JSON object as a string).
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": SSE_DESCRIPTION,
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["conversation", "delta", "tool_call", "tool_result", "error", "done"]},
        "data": {"type": "string"},
    },
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON (or not UTF-8)."},
    401: {"description": "Missing or invalid bearer token."},
    404: {"description": "No such conversation for this user."},
    422: {"description": "A field broke a rule; the body names the field and the rule."},
    503: {
        "description": "The conversation store is unreachable; nothing changed; retry after `Retry-After`."
    },
}


# ------------------------------------------------------------------------------------ helpers


def _invalid(field: str, rule: str) -> JSONResponse:
    detail = [{"loc": ["body", field], "msg": rule, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _not_found(error: ConversationNotFound) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_404_NOT_FOUND)


def _unavailable(error: MemoryUnavailable) -> JSONResponse:
    return JSONResponse(
        {"detail": str(error)},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def sse_frame(event: ChatEvent) -> str:
    """One event in SSE framing (`event:` and a single-line JSON `data:`), or a keep-alive comment."""
    if isinstance(event, HeartbeatEvent):
        return ": ping\n\n"
    return f"event: {event.name}\ndata: {json.dumps(event.data(), ensure_ascii=False, default=str)}\n\n"


async def _frames(first: ChatEvent, events: AsyncIterator[ChatEvent]) -> AsyncIterator[str]:
    yield sse_frame(first)
    async for event in events:
        yield sse_frame(event)


# ------------------------------------------------------------------------------------- router


def chat_router(service: ChatService, authenticate: Authenticate) -> APIRouter:
    """The chat routes; `authenticate(request)` names the person or raises `Unauthenticated`."""

    async def current_user(request: Request) -> ChatUser:
        try:
            return await authenticate(request)
        except Unauthenticated as error:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=f"not authenticated: {error}",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None

    authenticated = Depends(current_user)
    bearer = Security(HTTPBearer(auto_error=False, description="A JWT; `sub` is the user id."))
    router = APIRouter(prefix="/api", tags=["chat"], responses=_ERRORS, dependencies=[bearer])

    @router.post(
        "/chat",
        summary="Say something to the task assistant",
        response_model=ChatReply,
        responses={
            200: {
                "description": "With `stream=true` (default) an SSE stream; with `stream=false` one JSON.",
                "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            }
        },
    )
    async def chat(
        body: ChatRequest,
        stream: Annotated[bool, Query(description="Stream the answer as Server-Sent Events.")] = True,
        user: ChatUser = authenticated,
    ) -> Response:
        try:
            if not stream:
                result = await service.turn(user, body.message, body.conversation_id, body.timezone)
                reply = ChatReply(
                    conversation_id=result.conversation_id,
                    reply=result.reply,
                    tool_calls=[
                        ToolCallOut(name=call.name, arguments=call.arguments, output=call.output)
                        for call in result.tool_calls
                    ],
                    error=None if result.error is None else ChatErrorOut(**result.error.as_dict()),
                )
                return JSONResponse(reply.model_dump(mode="json"))
            events = service.stream(user, body.message, body.conversation_id, body.timezone)
            first = await anext(events)  # validates and opens the conversation before anything is sent
        except ChatInputError as error:
            return _invalid(error.field, error.rule)
        except ConversationNotFound as error:
            return _not_found(error)
        except MemoryUnavailable as error:
            return _unavailable(error)
        return StreamingResponse(_frames(first, events), media_type="text/event-stream", headers=SSE_HEADERS)

    @router.get("/conversations", response_model=list[ConversationOut], summary="The user's conversations")
    async def list_conversations(
        query: Annotated[ConversationQuery, Query()], user: ChatUser = authenticated
    ) -> Response:
        try:
            found = await service.conversations(user, limit=query.limit)
        except MemoryUnavailable as error:
            return _unavailable(error)
        body = [
            ConversationOut(id=c.id, title=c.title, created_at=c.created_at, updated_at=c.updated_at)
            for c in found
        ]
        return JSONResponse([item.model_dump(mode="json") for item in body])

    @router.get(
        "/conversations/{conversation_id}/messages",
        response_model=list[MessageOut | ToolMessageOut],
        summary="A conversation's messages and tool calls, in order",
    )
    async def conversation_messages(conversation_id: str, user: ChatUser = authenticated) -> Response:
        try:
            entries = await service.messages(user, conversation_id)
        except ConversationNotFound as error:
            return _not_found(error)
        except MemoryUnavailable as error:
            return _unavailable(error)
        body: list[MessageOut | ToolMessageOut] = []
        for entry in entries:
            if isinstance(entry, TranscriptMessage):
                body.append(MessageOut(role=entry.role, content=entry.content))
            elif isinstance(entry, TranscriptToolCall):
                body.append(
                    ToolMessageOut(
                        id=entry.id, name=entry.name, arguments=entry.arguments, output=entry.output
                    )
                )
        return JSONResponse([item.model_dump(mode="json") for item in body])

    @router.delete(
        "/conversations/{conversation_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Forget a conversation",
    )
    async def delete_conversation(conversation_id: str, user: ChatUser = authenticated) -> Response:
        try:
            await service.forget(user, conversation_id)
        except ConversationNotFound as error:
            return _not_found(error)
        except MemoryUnavailable as error:
            return _unavailable(error)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
