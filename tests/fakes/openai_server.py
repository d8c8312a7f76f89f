"""A fake OpenAI-compatible model server on loopback: Chat Completions and Responses, streamed or not.

Real HTTP (Starlette under uvicorn in the test's event loop), so the real `openai` client and the
Agents SDK models talk to it exactly as they talk to OpenAI, Ollama or vLLM: same paths, same JSON,
same SSE framing (`data: {chunk}` ... `data: [DONE]` for Chat Completions; `event: <type>` plus
`data: {event}` for Responses), same error bodies and status codes.

Script what the "model" answers, one step per request:

    fake = FakeOpenAI()
    fake.say("Hello!")                                        # a text answer
    fake.call("add_task", {"title": "Buy milk"})              # one tool call (or several: calls=[...])
    fake.fail(429, retry_after_ms=10)                         # an error answer (then the next step)
    fake.respond(lambda request: Text(...))                   # decide from the request (history, tools)
    async with fake.serving() as base_url: ...                # base_url ends in /v1

Every request is recorded (`fake.requests`): path, headers, JSON body, so tests can check the tools
offered, the history sent and the retries made. A request without `Authorization: Bearer <api_key>`
gets OpenAI's 401 body. A request with nothing scripted fails the test loudly (500 naming it).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.helpers import serving

DEFAULT_KEY = "sk-test-0123456789abcdef"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Calls:
    calls: Sequence[ToolCall]
    text: str = ""
    """Text the model writes before its calls (optional)."""


@dataclass(frozen=True)
class Failure:
    status: int
    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    code: str | None = None
    retry_after_ms: int | None = None


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def api(self) -> str:
        return "responses" if self.path.endswith("/responses") else "chat_completions"

    @property
    def streamed(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def tool_names(self) -> list[str]:
        """The function tools offered, in either API's shape."""
        names = []
        for tool in self.body.get("tools") or []:
            function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
            names.append(str(function.get("name")))
        return names

    def tool_schema(self, name: str) -> dict[str, Any]:
        for tool in self.body.get("tools") or []:
            function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
            if function.get("name") == name:
                return dict(function.get("parameters") or {})
        raise KeyError(name)

    def history_text(self) -> str:
        """Everything sent as conversation (messages or input items), as one JSON text to search."""
        return json.dumps(self.body.get("messages") or self.body.get("input"), ensure_ascii=False)

    def tool_outputs(self) -> list[str]:
        """Outputs of earlier tool calls present in this request, oldest first, in either API's shape."""
        outputs: list[str] = []
        if self.api == "chat_completions":
            for message in self.body.get("messages") or []:
                if message.get("role") == "tool":
                    content = message.get("content")
                    outputs.append(content if isinstance(content, str) else json.dumps(content))
        else:
            for item in self.body.get("input") or []:
                if isinstance(item, dict) and item.get("type") == "function_call_output":
                    output = item.get("output")
                    outputs.append(output if isinstance(output, str) else json.dumps(output))
        return outputs

    def user_messages(self) -> list[str]:
        found = []
        for item in self.body.get("messages") or self.body.get("input") or []:
            if isinstance(item, dict) and item.get("role") == "user":
                content = item.get("content")
                if isinstance(content, list):
                    content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
                found.append(str(content))
        return found


Step: TypeAlias = Text | Calls | Failure
Responder: TypeAlias = Callable[[RecordedRequest], Step]


class FakeOpenAI:
    def __init__(self, *, api_key: str = DEFAULT_KEY, model: str = "fake-model") -> None:
        self.api_key = api_key
        self.model = model
        self.steps: deque[Step | Responder] = deque()
        self.requests: list[RecordedRequest] = []
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
            ]
        )

    # ---- script ------------------------------------------------------------------------------

    def say(self, text: str) -> FakeOpenAI:
        self.steps.append(Text(text))
        return self

    def call(
        self, name: str, arguments: Mapping[str, Any] | str | None = None, *, text: str = ""
    ) -> FakeOpenAI:
        self.steps.append(Calls([ToolCall(name, arguments or {})], text))
        return self

    def calls(self, *calls: ToolCall, text: str = "") -> FakeOpenAI:
        self.steps.append(Calls(list(calls), text))
        return self

    def fail(self, status: int, *, times: int = 1, **details: Any) -> FakeOpenAI:
        defaults: dict[str, Any] = {}
        if status == 429:
            defaults = {
                "message": "Rate limit reached for requests. Please try again in 20ms.",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        for _ in range(times):
            self.steps.append(Failure(status, **{**defaults, **details}))
        return self

    def respond(self, responder: Responder) -> FakeOpenAI:
        self.steps.append(responder)
        return self

    @property
    def remaining(self) -> int:
        return len(self.steps)

    def reset(self) -> None:
        """Forget the script and the recorded requests (to reuse one server across tests)."""
        self.steps.clear()
        self.requests.clear()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        async with serving(self.app) as url:
            yield url + "/v1"

    # ---- protocol ----------------------------------------------------------------------------

    async def _record(self, request: Request) -> RecordedRequest | Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        recorded = RecordedRequest(
            request.url.path, dict(request.headers), body if isinstance(body, dict) else {}
        )
        self.requests.append(recorded)
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key != self.api_key:
            shown = (key[:3] + "*" * 4 + key[-4:]) if len(key) > 8 else "****"
            return _error(
                Failure(
                    401,
                    f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                )
            )
        return recorded

    def _next(self, request: RecordedRequest) -> Step | Response:
        if not self.steps:
            return _error(
                Failure(500, f"fake OpenAI server: nothing scripted for request #{len(self.requests)}")
            )
        step = self.steps.popleft()
        return step if isinstance(step, Text | Calls | Failure) else step(request)

    async def _chat_completions(self, request: Request) -> Response:
        recorded = await self._record(request)
        if isinstance(recorded, Response):
            return recorded
        step = self._next(recorded)
        if isinstance(step, Response):
            return step
        if isinstance(step, Failure):
            return _error(step)
        model = str(recorded.body.get("model") or self.model)
        if recorded.streamed:
            usage = bool((recorded.body.get("stream_options") or {}).get("include_usage"))
            return _sse(_data_lines(_chat_chunks(step, model, usage)))
        return JSONResponse(_chat_completion(step, model))

    async def _responses(self, request: Request) -> Response:
        recorded = await self._record(request)
        if isinstance(recorded, Response):
            return recorded
        step = self._next(recorded)
        if isinstance(step, Response):
            return step
        if isinstance(step, Failure):
            return _error(step)
        model = str(recorded.body.get("model") or self.model)
        if recorded.streamed:
            return _sse(_event_lines(_response_events(step, model)))
        return JSONResponse(_response(step, model, _output_items(step)))


# --------------------------------------------------------------------------------------- errors


def _error(failure: Failure) -> Response:
    headers = {"x-request-id": f"req_{uuid.uuid4().hex[:16]}"}
    if failure.retry_after_ms is not None:
        headers["retry-after-ms"] = str(failure.retry_after_ms)
        headers["retry-after"] = str(max(1, failure.retry_after_ms // 1000))
    body = {"error": {"message": failure.message, "type": failure.type, "param": None, "code": failure.code}}
    return JSONResponse(body, status_code=failure.status, headers=headers)


def _sse(lines: Iterator[str]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        for line in lines:
            yield line

    return StreamingResponse(body(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


def _data_lines(chunks: Iterator[dict[str, Any]]) -> Iterator[str]:
    for chunk in chunks:
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


def _event_lines(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def _pieces(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# ------------------------------------------------------------------------------ chat completions


def _chat_usage() -> dict[str, int]:
    return {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def _chat_completion(step: Text | Calls, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if isinstance(step, Text):
        message["content"] = step.text
        finish = "stop"
    else:
        message["content"] = step.text or None
        message["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in step.calls
        ]
        finish = "tool_calls"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _chat_usage(),
        "system_fingerprint": "fp_fake",
    }


def _chat_chunks(step: Text | Calls, model: str, include_usage: bool) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    yield chunk({"role": "assistant", "content": ""})
    text = step.text
    if text:
        for piece in _pieces(text):
            yield chunk({"content": piece})
    if isinstance(step, Calls):
        for index, call in enumerate(step.calls):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for piece in _pieces(call.arguments_json, 11):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if isinstance(step, Calls) else "stop")
    if include_usage:
        yield {**base, "choices": [], "usage": _chat_usage()}


# ------------------------------------------------------------------------------------ responses


def _output_items(step: Text | Calls) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if step.text:
        items.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": step.text, "annotations": [], "logprobs": []}],
            }
        )
    if isinstance(step, Calls):
        items.extend(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:24]}",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments_json,
                "status": "completed",
            }
            for call in step.calls
        )
    return items


def _response(
    step: Text | Calls, model: str, output: list[dict[str, Any]], *, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "usage": None
        if status != "completed"
        else {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        },
    }


def _response_events(step: Text | Calls, model: str) -> Iterator[dict[str, Any]]:
    output = _output_items(step)
    final = _response(step, model, output)
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    sequence = 0

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        nonlocal sequence
        sequence += 1
        return {"type": kind, "sequence_number": sequence - 1, **fields}

    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(output):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=empty,
            )
            for piece in _pieces(text):
                yield event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            yield event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            yield event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=item["content"][0],
            )
        else:
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in _pieces(item["arguments"], 11):
                yield event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=piece,
                )
            yield event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=final)
