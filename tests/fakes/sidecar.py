"""A loopback stand-in for the Dapr 1.18 sidecar (daprd) that answers per `shared/DAPR-CONTRACT.md`.

`FakeSidecar` is a real HTTP/1.1 server (asyncio + h11) on 127.0.0.1, running in the test's event
loop. The app talks to it exactly as to daprd (publish, bulk publish, Jobs API, `dapr-api-token`),
and the fake talks back to the app exactly as daprd does (deliveries, `/dapr/subscribe`, job
triggers), interpreting the app's answers per the contract (SUCCESS / RETRY / DROP).

Modelling choices (see also the docstrings of `pump` and `run_due_jobs`):

- One Kafka cluster: every configured pub/sub component reads and writes the same brokers, as in
  the Helm chart (the main component and the `-broadcast` one point at the same bootstrap server;
  they differ only in consumer group). So a message published through `taskpubsub` on topic T is
  delivered to subscriptions on `taskpubsub` AND on `taskpubsub-broadcast` for topic T. A
  subscription naming a component the sidecar does not have receives nothing (daprd ignores it);
  `pump` lists it in `PumpReport.ignored`. Pass `clusters={"a": "k1", "b": "k2"}` to split components
  over separate clusters.
- Kafka records: the record key is `metadata.partitionKey`; the partition is chosen like the Sarama
  hash partitioner daprd uses (FNV-1a, 3 partitions by default), keyless records go round-robin;
  offsets count per (topic, partition). These appear as `__key`, `__partition`, `__offset`,
  `__timestamp` (Unix ms) headers on delivery.
- Time: job due times use `clock` (default: the real UTC clock), so a test can pass its own fixed
  clock and fire jobs with `run_due_jobs(now=...)`. Retry intervals of a job's failure policy are
  multiplied by `time_scale` (default 0.01: the 1 s default interval becomes 10 ms) so tests stay
  fast; pass `time_scale=1.0` for real pacing. A constant policy without `maxRetries` retries forever
  in daprd; the fake stops after `retry_cap` attempts and reports the job as failed.
- Dead letters are recorded in `dead_letters`, not re-published to the dead-letter topic, so
  `published` holds exactly what the app published.
- Not modelled: `metadata.rawPayload`, topic scopes (403 can be injected with `fail(status=403)`),
  outbound resiliency of daprd itself (the app sees every injected failure).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import random
import re
import secrets
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, quote, unquote

import h11
import httpx
from dateutil.relativedelta import relativedelta

__all__ = [
    "CLOUDEVENTS_JSON",
    "DEFAULT_FAILURE_POLICY",
    "DeadLetter",
    "Delivery",
    "FailurePolicy",
    "FakeSidecar",
    "Fate",
    "Job",
    "JobCall",
    "JobRun",
    "Outcome",
    "Published",
    "PumpReport",
    "PumpedDelivery",
    "Received",
    "RequestKind",
    "Settled",
    "Subscription",
    "UnsupportedCEL",
    "outcome_of",
]

Outcome = Literal["SUCCESS", "RETRY", "DROP"]
RequestKind = Literal["publish", "publish_bulk", "jobs", "health", "metadata", "other"]
Fate = Literal["delivered", "dead_lettered", "dropped", "skipped", "expired", "blocked", "held"]

CLOUDEVENTS_JSON = "application/cloudevents+json"
DEFAULT_SOURCE = "Dapr"
DEFAULT_TYPE = "com.dapr.event.sent"
SPEC_VERSION = "1.0"
_MAX_SAFE_INT = 2**53


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Received:
    """One app->sidecar request as it arrived; `status` is what the sidecar decided (None when the
    connection was dropped before processing) and `answered` says whether the answer was sent."""

    kind: RequestKind
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    answered: bool


@dataclass(frozen=True)
class Published:
    """One message the sidecar wrote to Kafka: `event` is the envelope subscribers receive."""

    pubsub: str
    topic: str
    metadata: dict[str, str]
    content_type: str
    headers: dict[str, str]
    event: dict[str, Any]
    key: str | None = None
    partition: int = 0
    offset: int = 0
    timestamp_ms: int = 0
    seq: int = 0
    entry_id: str | None = None  # bulk publishes only


@dataclass(frozen=True)
class FailurePolicy:
    """A job's failure policy; `max_retries=None` means retry forever (bounded by `retry_cap`)."""

    kind: Literal["default", "drop", "constant"]
    interval: timedelta = timedelta(seconds=1)
    max_retries: int | None = 3

    @property
    def max_attempts(self) -> int | None:
        if self.kind == "drop":
            return 1
        return None if self.max_retries is None else self.max_retries + 1


DEFAULT_FAILURE_POLICY = FailurePolicy("default", timedelta(seconds=1), 3)  # 4 attempts in all


@dataclass
class Job:
    """A scheduled job; `due_at` is the next trigger time, computed when the job was scheduled."""

    name: str
    due_at: datetime
    data: Any
    failure_policy: FailurePolicy
    raw: dict[str, Any]
    has_data: bool = False
    schedule: str | None = None
    due_time: str | None = None
    repeats: int | None = None
    ttl: str | None = None
    expires_at: datetime | None = None
    scheduled_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    triggered: int = 0
    policy_json: dict[str, Any] | None = None

    @property
    def one_shot(self) -> bool:
        return self.schedule is None or self.repeats == 1

    def body(self) -> bytes:
        """The trigger body: exactly the job's data JSON, empty when there is none."""
        return json.dumps(self.data, separators=(",", ":")).encode() if self.has_data else b""

    def to_json(self) -> dict[str, Any]:
        """The `GET /v1.0/jobs/{name}` answer (protojson of the job: unset fields are omitted)."""
        out: dict[str, Any] = {"name": self.name}
        if self.schedule is not None:
            out["schedule"] = self.schedule
        if self.repeats is not None:
            out["repeats"] = self.repeats
        if self.due_time is not None:
            out["dueTime"] = self.due_time
        if self.ttl is not None:
            out["ttl"] = self.ttl
        if self.has_data:
            out["data"] = self.data
        if self.policy_json is not None:
            out["failurePolicy"] = self.policy_json
        return out


class JobCall(NamedTuple):
    method: str
    name: str
    status: int


@dataclass(frozen=True)
class JobRun:
    """One firing of a job: attempts made, the last HTTP status (None = connection error)."""

    name: str
    attempts: int
    status: int | None
    outcome: Literal["done", "failed"]
    due_at: datetime


@dataclass(frozen=True)
class Delivery:
    """What the app answered to one delivery and how daprd reads it."""

    outcome: Outcome
    http_status: int | None  # None: connection error
    body: bytes
    error: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: bytes = b""


@dataclass(frozen=True)
class DeadLetter:
    published: Published
    subscription: Subscription
    route: str
    dead_letter_topic: str
    reason: Literal["DROP", "RETRIES_EXHAUSTED"]
    attempts: int
    last: Delivery


@dataclass(frozen=True)
class PumpedDelivery:
    published: Published
    subscription: Subscription
    route: str
    attempt: int
    delivery: Delivery


@dataclass(frozen=True)
class Settled:
    """The fate of one message for one subscription in one pump: `blocked` and `held` messages stay
    pending (Kafka redelivers them) and are taken again by the next pump."""

    published: Published
    subscription: Subscription
    route: str | None
    fate: Fate
    attempts: int
    last: Delivery | None = None


@dataclass
class PumpReport:
    deliveries: list[PumpedDelivery] = field(default_factory=list)
    settled: list[Settled] = field(default_factory=list)
    ignored: list[Subscription] = field(default_factory=list)

    def fates(self, fate: Fate) -> list[Settled]:
        return [item for item in self.settled if item.fate == fate]

    @property
    def delivered(self) -> list[Settled]:
        return self.fates("delivered")

    @property
    def dead_lettered(self) -> list[Settled]:
        return self.fates("dead_lettered")

    @property
    def pending(self) -> list[Settled]:
        return [item for item in self.settled if item.fate in ("blocked", "held")]

    def routes(self) -> list[tuple[str, str]]:
        """(event id, route) of every delivery attempt, in order."""
        return [(str(d.published.event.get("id")), d.route) for d in self.deliveries]


# ---------------------------------------------------------------------------------------------
# Subscriptions and the CEL subset


class UnsupportedCEL(ValueError):
    """A `match` expression outside the supported subset (`event.type == "x"`, `event.type in [...]`)."""


_CEL_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''
_CEL_EQ = re.compile(rf"^\s*event\.type\s*==\s*({_CEL_STRING})\s*$")
_CEL_IN = re.compile(
    rf"^\s*event\.type\s+in\s*\[\s*((?:{_CEL_STRING})(?:\s*,\s*(?:{_CEL_STRING}))*)?\s*,?\s*\]\s*$"
)


def _cel_literal(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def compile_match(expression: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile the supported CEL subset; an empty match matches every event (as in daprd)."""
    if not expression.strip():
        return lambda event: True
    if found := _CEL_EQ.match(expression):
        wanted = _cel_literal(found.group(1))
        return lambda event: event.get("type") == wanted
    if found := _CEL_IN.match(expression):
        items = frozenset(_cel_literal(item) for item in re.findall(_CEL_STRING, found.group(1) or ""))
        return lambda event: event.get("type") in items
    raise UnsupportedCEL(
        f"unsupported CEL match {expression!r}: the fake sidecar evaluates only "
        '`event.type == "x"` and `event.type in ["a", "b"]`'
    )


@dataclass(frozen=True)
class Subscription:
    """A programmatic (v1 or v2) or declarative subscription, parsed."""

    pubsubname: str
    topic: str
    rules: tuple[tuple[str, str], ...] = ()
    default: str | None = None
    dead_letter_topic: str | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Subscription:
        spec: Mapping[str, Any] = raw.get("spec", raw) if isinstance(raw.get("spec"), Mapping) else raw
        pubsub, topic = spec.get("pubsubname"), spec.get("topic")
        if not isinstance(pubsub, str) or not isinstance(topic, str) or not pubsub or not topic:
            raise ValueError(f"subscription without pubsubname/topic: {raw!r}")
        rules: list[tuple[str, str]] = []
        default: str | None = None
        routes = spec.get("routes")
        if isinstance(routes, Mapping):
            for rule in routes.get("rules") or ():
                match, path = str(rule.get("match", "")), str(rule.get("path", ""))
                compile_match(match)  # validate before anything is delivered
                rules.append((match, path))
            default = routes.get("default") or None
        if default is None and isinstance(spec.get("route"), str) and spec["route"]:
            default = spec["route"]
        dead_letter = spec.get("deadLetterTopic") or None
        return cls(pubsub, topic, tuple(rules), default, dead_letter)

    def route_for(self, event: Mapping[str, Any]) -> str | None:
        """The first rule whose match holds, else the default route; None = no route (skipped)."""
        for match, path in self.rules:
            if compile_match(match)(event):
                return path
        return self.default

    @property
    def identity(self) -> str:
        return json.dumps([self.pubsubname, self.topic, self.rules, self.default])


# ---------------------------------------------------------------------------------------------
# How daprd reads the app's answer to a delivery


def _app_status(body: bytes) -> str | None:
    """The `status` field as Go's json.Decoder would read it into AppResponse; None = unreadable."""
    text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    status = ""
    for key, item in value.items():
        if key.lower() == "status":  # encoding/json matches field names case-insensitively
            if item is None:
                continue
            if not isinstance(item, str):
                return None
            status = item
    return status


def outcome_of(http_status: int | None, body: bytes) -> Outcome:
    """daprd's reading of a delivery answer (contract section 2); None status = connection error."""
    if http_status is None:
        return "RETRY"
    if 200 <= http_status <= 299:
        status = _app_status(body)
        if status is None or status in ("", "SUCCESS"):
            return "SUCCESS"
        if status == "DROP":
            return "DROP"
        return "RETRY"  # RETRY or an unknown status string
    if http_status == 404:
        return "DROP"
    return "RETRY"


# ---------------------------------------------------------------------------------------------
# Times, durations, cron


def _utc_rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_GO_UNIT_SECONDS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),
    "μs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}
_GO_PART = r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_GO_DURATION = re.compile(rf"^[+-]?(?:{_GO_PART})+$")
_ISO_DURATION = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_PB_DURATION = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")


def parse_go_duration(text: str) -> timedelta:
    """Go's time.ParseDuration ("90s", "1m30s", "1.5h", "0")."""
    if text in ("0", "+0", "-0"):
        return timedelta(0)
    if not _GO_DURATION.match(text):
        raise ValueError(f"invalid Go duration {text!r}")
    total = sum(
        (Decimal(number) * _GO_UNIT_SECONDS[unit] for number, unit in re.findall(_GO_PART, text)),
        Decimal(0),
    )
    micro = int(total * 1_000_000)
    return -timedelta(microseconds=micro) if text.startswith("-") else timedelta(microseconds=micro)


def _parse_iso_duration(text: str) -> relativedelta:
    found = _ISO_DURATION.match(text)
    if not found or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"invalid ISO 8601 duration {text!r}")
    years, months, weeks, days, hours, minutes = (int(g) if g else 0 for g in found.groups()[:6])
    seconds = Decimal(found.group(7) or 0)
    return relativedelta(
        years=years,
        months=months,
        weeks=weeks,
        days=days,
        hours=hours,
        minutes=minutes,
        seconds=int(seconds),
        microseconds=int((seconds % 1) * 1_000_000),
    )


def parse_pb_duration(text: str) -> timedelta:
    """A protobuf Duration in JSON: decimal seconds with an `s` suffix ("3s", "0.5s")."""
    found = _PB_DURATION.match(text)
    if not found:
        raise ValueError(f"invalid google.protobuf.Duration {text!r}")
    sign, seconds, fraction = found.groups()
    if int(seconds) > 315_576_000_000:
        raise ValueError(f"google.protobuf.Duration out of range: {text!r}")
    nanos = int((fraction or "").ljust(9, "0"))
    delta = timedelta(seconds=int(seconds), microseconds=nanos // 1000)
    return -delta if sign else delta


def format_pb_duration(delta: timedelta) -> str:
    """protojson output: 0, 3, 6 or 9 fractional digits."""
    micros = int(delta / timedelta(microseconds=1))
    sign = "-" if micros < 0 else ""
    seconds, rest = divmod(abs(micros), 1_000_000)
    if rest == 0:
        return f"{sign}{seconds}s"
    if rest % 1000 == 0:
        return f"{sign}{seconds}.{rest // 1000:03d}s"
    return f"{sign}{seconds}.{rest:06d}s"


def parse_when(text: str, now: datetime) -> datetime:
    """A dueTime/ttl: RFC 3339 timestamp, Go duration or ISO 8601 duration (relative to `now`)."""
    if "T" in text and not text.startswith("P"):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
        raise ValueError(f"invalid RFC 3339 time {text!r} (a time zone offset is required)")
    with contextlib.suppress(ValueError):
        return now + parse_go_duration(text)
    return now + _parse_iso_duration(text)


_CRON_MACROS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_CRON_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: index + 1 for index, name in enumerate(_MONTH_NAMES)}
_WEEKDAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


@dataclass(frozen=True)
class _Cron:
    """A 6-field cron spec (seconds first), evaluated like robfig/cron in UTC."""

    fields: tuple[frozenset[int], ...]
    dom_star: bool
    dow_star: bool

    @classmethod
    def parse(cls, spec: str) -> _Cron:
        spec = _CRON_MACROS.get(spec.strip(), spec)
        parts = spec.split()
        if len(parts) != 6:
            raise ValueError(f"expected 6 cron fields (seconds first), got {len(parts)} in {spec!r}")
        fields: list[frozenset[int]] = []
        stars: list[bool] = []
        for index, part in enumerate(parts):
            names = _MONTHS if index == 4 else _WEEKDAYS if index == 5 else {}
            values, star = cls._field(part, *_CRON_BOUNDS[index], names)
            fields.append(values)
            stars.append(star)
        return cls(tuple(fields), stars[3], stars[5])

    @staticmethod
    def _field(part: str, low: int, high: int, names: Mapping[str, int]) -> tuple[frozenset[int], bool]:
        values: set[int] = set()
        star = False

        def number(text: str) -> int:
            value = names.get(text.upper()) if names else None
            value = int(text) if value is None else value
            if not low <= value <= high:
                raise ValueError(f"cron value {text} out of range [{low}, {high}]")
            return value

        for item in part.split(","):
            span, _, step_text = item.partition("/")
            step = int(step_text) if step_text else 1
            if step < 1:
                raise ValueError(f"invalid cron step in {item!r}")
            if span in ("*", "?"):
                start, end = low, high
                star = star or not step_text or step == 1
            elif "-" in span:
                first, _, last = span.partition("-")
                start, end = number(first), number(last)
            else:
                start = number(span)
                end = high if step_text else start
            if start > end:
                raise ValueError(f"invalid cron range {item!r}")
            values.update(range(start, end + 1, step))
        return frozenset(values), star

    def _day_matches(self, moment: datetime) -> bool:
        dom = moment.day in self.fields[3]
        dow = (moment.isoweekday() % 7) in self.fields[5]
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime) -> datetime | None:
        seconds, minutes, hours, _, months, _ = self.fields
        moment = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        limit = moment.year + 5
        while moment.year <= limit:
            if moment.month not in months:
                year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
                moment = moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
            elif not self._day_matches(moment):
                moment = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif moment.hour not in hours:
                moment = (moment + timedelta(hours=1)).replace(minute=0, second=0)
            elif moment.minute not in minutes:
                moment = (moment + timedelta(minutes=1)).replace(second=0)
            elif moment.second not in seconds:
                moment += timedelta(seconds=1)
            else:
                return moment
        return None


def next_occurrence(schedule: str, after: datetime) -> datetime | None:
    """The first time strictly after `after` that `schedule` fires (cron, macro or `@every d`)."""
    text = schedule.strip()
    if text.startswith("@every"):
        period = parse_go_duration(text.removeprefix("@every").strip())
        period = max(timedelta(seconds=period // timedelta(seconds=1)), timedelta(seconds=1))
        return after + period
    return _Cron.parse(text).next_after(after)


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def answer(self) -> _Answer:
        return _Answer.json(self.status, {"errorCode": self.code, "message": self.message, **self.extra})


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None

    @classmethod
    def json(cls, status: int, payload: Any) -> _Answer:
        return cls(status, json.dumps(payload).encode(), "application/json")

    @classmethod
    def text(cls, status: int, text: str) -> _Answer:
        return cls(status, text.encode(), "text/plain; charset=utf-8")


_BULK_PATH = re.compile(r"^/v1\.0(?:-alpha1)?/publish/bulk/(?P<pubsub>[^/]+)/(?P<topic>.+)$")
_PUBLISH_PATH = re.compile(r"^/v1\.0/publish/(?P<pubsub>[^/]+)/(?P<topic>.+)$")
_JOBS_PATH = re.compile(r"^/v1\.0(?:-alpha1)?/jobs/(?P<name>[^/]+)$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def _classify(path: str) -> RequestKind:
    if _BULK_PATH.match(path):
        return "publish_bulk"
    if _PUBLISH_PATH.match(path):
        return "publish"
    if _JOBS_PATH.match(path):
        return "jobs"
    if path in ("/v1.0/healthz", "/v1.0/healthz/outbound"):
        return "health"
    if path == "/v1.0/metadata":
        return "metadata"
    return "other"


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_cloudevents(content_type: str) -> bool:
    return _media_type(content_type) == CLOUDEVENTS_JSON


def _is_json(content_type: str) -> bool:
    media = _media_type(content_type)
    return media == "application/json" or media.endswith("+json")


def _go_json(body: bytes | str) -> Any:
    """Parse JSON as Go does into interface{}: numbers are float64 (big integers lose precision)."""

    def number(text: str) -> int | float:
        value = int(text)
        return float(value) if abs(value) > _MAX_SAFE_INT else value

    return json.loads(body, parse_int=number)


def _traceparent(incoming: str | None) -> str:
    """A new span: a child of the request's `traceparent` when valid, else a fresh sampled trace."""
    if incoming and (found := _TRACEPARENT.match(incoming.strip())) and found.group(1) != "0" * 32:
        return f"00-{found.group(1)}-{secrets.token_hex(8)}-{found.group(3)}"
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _partition_for(key: str, partitions: int) -> int:
    """Sarama's hash partitioner (FNV-1a 32, int32 modulo, absolute value)."""
    hashed = 0x811C9DC5
    for byte in key.encode():
        hashed = ((hashed ^ byte) * 0x01000193) & 0xFFFFFFFF
    signed = hashed - 2**32 if hashed >= 2**31 else hashed
    return abs(signed) % partitions


class _Dice:
    """A bounded, seeded fault: fires with probability `rate`, at most `times` times."""

    def __init__(self, rate: float, seed: int | None, times: int | None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        self.rate, self.times = rate, times
        self.random = random.Random(seed)

    def roll(self) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        hit = self.random.random() < self.rate
        if hit and self.times is not None:
            self.times -= 1
        return hit


@dataclass
class _Fault:
    dice: _Dice
    status: int
    publish: bool
    jobs: bool


@dataclass
class _Drop:
    dice: _Dice
    after_processing: bool
    kinds: frozenset[str] | None


@dataclass
class Hold:
    """Requests kept waiting before they take effect, as a slow sidecar would: see `FakeSidecar.hold`."""

    kinds: frozenset[str]
    remaining: int
    waiting: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def until_waiting(self, count: int = 1) -> None:
        while self.waiting < count:
            await self.arrived.wait()
            self.arrived.clear()

    def release(self) -> None:
        self.released.set()


# ---------------------------------------------------------------------------------------------
# The sidecar


class FakeSidecar:
    """A loopback daprd: `async with FakeSidecar() as sidecar:` then point the app at `sidecar.port`."""

    def __init__(
        self,
        *,
        api_token: str | None = None,
        pubsubs: Sequence[str] = ("taskpubsub", "taskpubsub-broadcast"),
        app_id: str = "todo-chatbot",
        port: int | None = None,
        partitions: int = 3,
        clusters: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        time_scale: float = 0.01,
        retry_cap: int = 20,
        app_timeout: float = 10.0,
    ) -> None:
        self.api_token = api_token
        self.pubsubs = tuple(pubsubs)
        self.app_id = app_id
        self.partitions = partitions
        self.clusters = dict(clusters) if clusters else {name: "kafka" for name in self.pubsubs}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.time_scale = time_scale
        self.retry_cap = retry_cap
        self.app_timeout = app_timeout
        self._port = port or 0

        self.published: list[Published] = []
        self.received: list[Received] = []
        self.requests: Counter[str] = Counter()
        self.jobs: dict[str, Job] = {}
        self.job_calls: list[JobCall] = []
        self.job_runs: list[JobRun] = []
        self.dead_letters: list[DeadLetter] = []

        self._fault: _Fault | None = None
        self._drop: _Drop | None = None
        self._hold: Hold | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._client: httpx.AsyncClient | None = None
        self._offsets: Counter[tuple[str, str, int]] = Counter()
        self._round_robin = 0
        self._settled: set[tuple[int, str]] = set()
        self._changed = asyncio.Event()
        self._jobs_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the sidecar has not started listening yet")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for an app talking to this sidecar."""
        env = {"DAPR_HTTP_PORT": str(self.port)}
        if self.api_token is not None:
            env["DAPR_API_TOKEN"] = self.api_token
        return env

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> FakeSidecar:
        await self.start_listening()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.stop_listening()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def start_listening(self) -> None:
        """Accept connections on the sidecar's port (the same port after `stop_listening`)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve_connection, "127.0.0.1", self._port, reuse_address=True
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop_listening(self) -> None:
        """Close the listening socket and every open connection: clients get ECONNREFUSED."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._connections):
            writer.transport.abort()
        await server.wait_closed()
        await asyncio.sleep(0)  # let connection handlers see the abort

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """`async with sidecar.down():` the sidecar refuses connections, then comes back."""
        await self.stop_listening()
        try:
            yield
        finally:
            await self.start_listening()

    def clear(self) -> None:
        """Forget recorded traffic (published, received, counters, job calls, dead letters)."""
        self.published.clear()
        self.received.clear()
        self.requests.clear()
        self.job_calls.clear()
        self.job_runs.clear()
        self.dead_letters.clear()
        self._settled.clear()

    def rewind(self) -> None:
        """Reset every consumer to the start of its topics: the next `pump` redelivers everything."""
        self._settled.clear()

    # -- fault injection -------------------------------------------------------------------

    def fail(
        self,
        *,
        publish: bool | None = None,
        jobs: bool | None = None,
        status: int = 500,
        rate: float = 1.0,
        seed: int | None = None,
        times: int | None = None,
    ) -> None:
        """Answer publishes (each bulk entry separately) and/or job calls with `status` at `rate`,
        at most `times` times. With neither flag given, both fail."""
        if publish is None and jobs is None:
            publish = jobs = True
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        self._fault = _Fault(_Dice(rate, seed, times), status, bool(publish), bool(jobs))

    def drop_connections(
        self,
        rate: float = 1.0,
        seed: int | None = None,
        *,
        times: int | None = None,
        after_processing: bool = False,
        kinds: Collection[RequestKind] | None = None,
    ) -> None:
        """Close the connection without an HTTP answer at `rate`. With `after_processing`, the
        request takes effect first (the answer is lost: the app cannot know it was published)."""
        self._drop = _Drop(_Dice(rate, seed, times), after_processing, frozenset(kinds) if kinds else None)

    def hold(self, kinds: Collection[RequestKind] = frozenset({"jobs"}), *, times: int = 1) -> Hold:
        """Keep the next `times` requests of `kinds` waiting, before they take effect, until the
        returned hold is released: calls that overtake one another, for ordering races."""
        self._hold = Hold(frozenset(kinds), times)
        return self._hold

    def heal(self) -> None:
        """Stop every injected failure and connection drop."""
        self._fault = None
        self._drop = None

    def _injected(self, kind: Literal["publish", "jobs"]) -> int | None:
        fault = self._fault
        if fault is None or not (fault.publish if kind == "publish" else fault.jobs):
            return None
        return fault.status if fault.dice.roll() else None

    # -- the server ------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(connection, reader)
                if request is None:
                    return
                answer = await self._handle(request)
                if answer is None:
                    return  # dropped: close without an answer
                writer.write(self._encode(connection, answer))
                await writer.drain()
                if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                    return
                connection.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(connection: h11.Connection, reader: asyncio.StreamReader) -> _Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                target = head.target.decode("latin-1")
                path, _, query = target.partition("?")
                headers: dict[str, str] = {}
                for name, value in head.headers:
                    key = name.decode("latin-1").lower()
                    text = value.decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
                return _Request(head.method.decode("ascii"), path, query, headers, bytes(body))
            else:  # ConnectionClosed, PAUSED
                return None

    @staticmethod
    def _encode(connection: h11.Connection, answer: _Answer) -> bytes:
        headers: list[tuple[str, str]] = []
        if answer.status != 204:
            headers.append(("content-length", str(len(answer.body))))
            if answer.content_type:
                headers.append(("content-type", answer.content_type))
        out = connection.send(h11.Response(status_code=answer.status, headers=headers)) or b""
        if answer.body and answer.status != 204:
            out += connection.send(h11.Data(data=answer.body)) or b""
        out += connection.send(h11.EndOfMessage()) or b""
        return out

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if self.api_token is None:
            return True
        sent = headers.get("dapr-api-token")
        return sent is not None and hmac.compare_digest(sent.encode(), self.api_token.encode())

    async def _handle(self, request: _Request) -> _Answer | None:
        kind = _classify(request.path)
        self.requests[kind] += 1
        hold = self._hold
        if hold is not None and kind in hold.kinds and hold.remaining > 0:
            hold.remaining -= 1
            hold.waiting += 1
            hold.arrived.set()
            await hold.released.wait()
        drop = self._drop
        dropping = drop is not None and (drop.kinds is None or kind in drop.kinds) and drop.dice.roll()
        if dropping and drop is not None and not drop.after_processing:
            self._record(kind, request, None, answered=False)
            return None
        if kind != "health" and not self._authorized(request.headers):
            answer = _Answer.text(401, "invalid api token")
            if kind == "jobs":
                self.job_calls.append(JobCall(request.method, self._job_name(request.path), 401))
        else:
            try:
                answer = self._route(kind, request)
            except _ApiError as error:
                answer = error.answer()
                if kind == "jobs":
                    self.job_calls.append(JobCall(request.method, self._job_name(request.path), error.status))
        self._record(kind, request, answer.status, answered=not dropping)
        self._changed.set()
        self._changed = asyncio.Event()
        return None if dropping else answer

    def _record(self, kind: RequestKind, request: _Request, status: int | None, *, answered: bool) -> None:
        self.received.append(
            Received(
                kind,
                request.method,
                request.path,
                request.query,
                request.headers,
                request.body,
                status,
                answered,
            )
        )

    def _route(self, kind: RequestKind, request: _Request) -> _Answer:
        if kind == "health":
            return _Answer(204)
        if kind == "metadata":
            components = [{"name": name, "type": "pubsub.kafka", "version": "v1"} for name in self.pubsubs]
            return _Answer.json(200, {"id": self.app_id, "components": components})
        if kind == "publish":
            if request.method not in ("POST", "PUT"):
                return _Answer.text(405, "Method Not Allowed")
            return self._publish(request)
        if kind == "publish_bulk":
            if request.method != "POST":
                return _Answer.text(405, "Method Not Allowed")
            return self._publish_bulk(request)
        if kind == "jobs":
            return self._jobs(request)
        return _Answer.text(404, "404 page not found")

    # -- publishing ------------------------------------------------------------------------

    @staticmethod
    def _metadata(query: str) -> dict[str, str]:
        metadata: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key.startswith("metadata.") and key[9:] not in metadata:
                metadata[key[9:]] = value
        return metadata

    def _check_pubsub(self, pubsub: str, topic: str) -> None:
        if not self.pubsubs:
            raise _ApiError(400, "ERR_PUBSUB_NOT_CONFIGURED", "no pubsub is configured")
        if pubsub not in self.pubsubs:
            raise _ApiError(404, "ERR_PUBSUB_NOT_FOUND", f"pubsub {pubsub} not found")
        if not topic:
            raise _ApiError(404, "ERR_TOPIC_NAME_EMPTY", f"topic is empty in pubsub {pubsub}")

    def _envelope(
        self,
        *,
        body: bytes,
        content_type: str,
        pubsub: str,
        topic: str,
        metadata: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """The CloudEvent the publishing sidecar writes (contrib pubsub/envelope.go)."""
        traceparent = _traceparent(headers.get("traceparent"))
        tracestate = headers.get("tracestate", "")
        now = _utc_rfc3339(self.clock())
        if _is_cloudevents(content_type):
            try:
                event = _go_json(body)
            except ValueError as error:
                event = error
            if not isinstance(event, dict):
                raise _ApiError(
                    500,
                    "ERR_PUBSUB_CLOUD_EVENTS_SER",
                    f"error when publishing to topic {topic} in pubsub {pubsub}: "
                    f"cannot unmarshal the body as a CloudEvent: {event}",
                )
            if "traceid" not in event:
                event["traceid"] = traceparent
                event["traceparent"] = traceparent
                event["tracestate"] = tracestate
            event["topic"] = topic
            event["pubsubname"] = pubsub
            for name, default in (("source", DEFAULT_SOURCE), ("type", DEFAULT_TYPE)):
                if event.get(name) is None:
                    event[name] = default
            if event.get("specversion") is None:
                event["specversion"] = SPEC_VERSION
            if event.get("time") is None:
                event["time"] = now
        else:
            data_content_type = content_type or "text/plain"
            overrides = {k[11:]: v for k, v in metadata.items() if k.startswith("cloudevent.")}
            traceparent = overrides.get("traceparent", overrides.get("traceid", traceparent))
            event = {
                "id": overrides.get("id") or str(uuid.uuid4()),
                "specversion": SPEC_VERSION,
                "datacontenttype": data_content_type,
                "source": overrides.get("source") or self.app_id,
                "type": overrides.get("type") or DEFAULT_TYPE,
                "topic": topic,
                "pubsubname": pubsub,
                "traceid": overrides.get("traceid", traceparent),
                "traceparent": traceparent,
                "tracestate": overrides.get("tracestate", tracestate),
                "time": now,
            }
            if _is_json(data_content_type):
                try:
                    event["data"] = _go_json(body)
                except ValueError:
                    event["data"] = body.decode("utf-8", errors="replace")
            elif _media_type(data_content_type) == "application/octet-stream":
                event["data_base64"] = base64.b64encode(body).decode()
            else:
                event["data"] = body.decode("utf-8", errors="replace")
        ttl = metadata.get("ttlInSeconds")
        if ttl is not None:
            with contextlib.suppress(ValueError):  # daprd ignores an unreadable TTL
                event["expiration"] = _utc_rfc3339(self.clock() + timedelta(seconds=int(ttl)))
        return event

    def _write(
        self,
        *,
        pubsub: str,
        topic: str,
        metadata: dict[str, str],
        content_type: str,
        headers: dict[str, str],
        event: dict[str, Any],
        entry_id: str | None = None,
    ) -> Published:
        """Append the message to the (modelled) Kafka topic."""
        key = metadata.get("partitionKey") or None
        if key is not None:
            partition = _partition_for(key, self.partitions)
        else:
            partition, self._round_robin = self._round_robin % self.partitions, self._round_robin + 1
        cluster = self.clusters.get(pubsub, pubsub)
        offset = self._offsets[(cluster, topic, partition)]
        self._offsets[(cluster, topic, partition)] += 1
        record = Published(
            pubsub=pubsub,
            topic=topic,
            metadata=metadata,
            content_type=content_type,
            headers=headers,
            event=event,
            key=key,
            partition=partition,
            offset=offset,
            timestamp_ms=int(self.clock().timestamp() * 1000),
            seq=len(self.published),
            entry_id=entry_id,
        )
        self.published.append(record)
        return record

    @staticmethod
    def _publish_fault(status: int, pubsub: str, topic: str) -> _ApiError:
        code = {
            400: "ERR_PUBSUB_REQUEST_METADATA",
            403: "ERR_PUBSUB_FORBIDDEN",
            404: "ERR_PUBSUB_NOT_FOUND",
        }.get(status, "ERR_PUBSUB_PUBLISH_MESSAGE")
        return _ApiError(
            status, code, f"error when publish to topic {topic} in pubsub {pubsub}: injected failure"
        )

    def _publish(self, request: _Request) -> _Answer:
        found = _PUBLISH_PATH.match(request.path)
        assert found is not None
        pubsub, topic = unquote(found["pubsub"]), unquote(found["topic"])
        self._check_pubsub(pubsub, topic)
        metadata = self._metadata(request.query)
        content_type = request.headers.get("content-type", "")
        event = self._envelope(
            body=request.body,
            content_type=content_type,
            pubsub=pubsub,
            topic=topic,
            metadata=metadata,
            headers=request.headers,
        )
        status = self._injected("publish")
        if status is not None:
            raise self._publish_fault(status, pubsub, topic)
        self._write(
            pubsub=pubsub,
            topic=topic,
            metadata=metadata,
            content_type=content_type,
            headers=request.headers,
            event=event,
        )
        return _Answer(204)

    def _publish_bulk(self, request: _Request) -> _Answer:
        found = _BULK_PATH.match(request.path)
        assert found is not None
        pubsub, topic = unquote(found["pubsub"]), unquote(found["topic"])
        self._check_pubsub(pubsub, topic)
        metadata = self._metadata(request.query)
        try:
            entries = json.loads(request.body) if request.body.strip() else None
        except ValueError as error:
            raise _ApiError(
                400, "ERR_PUBSUB_EVENTS_SER", f"error when unmarshaling the events: {error}"
            ) from None
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise _ApiError(400, "ERR_PUBSUB_EVENTS_SER", "the body must be a JSON array of entries")
        seen: set[str] = set()
        prepared: list[tuple[str, dict[str, str], str, dict[str, Any]]] = []
        for entry in entries:
            entry_id = entry.get("entryId")
            if not isinstance(entry_id, str) or not entry_id or entry_id in seen:
                raise _ApiError(
                    400, "ERR_PUBSUB_EVENTS_SER", "entryId is duplicated or not present for entry"
                )
            seen.add(entry_id)
            content_type = str(entry.get("contentType") or "")
            raw_event = entry.get("event")
            if isinstance(raw_event, str):
                data = raw_event.encode()
            elif _is_json(content_type):
                data = json.dumps(raw_event).encode()
            else:
                raise _ApiError(
                    400,
                    "ERR_PUBSUB_EVENTS_SER",
                    f"error when marshaling the event of entry {entry_id} for content type {content_type!r}",
                )
            entry_metadata = entry.get("metadata") or {}
            merged = {**metadata, **{str(k): str(v) for k, v in dict(entry_metadata).items()}}
            event = self._envelope(
                body=data,
                content_type=content_type,
                pubsub=pubsub,
                topic=topic,
                metadata=merged,
                headers=request.headers,
            )
            prepared.append((entry_id, merged, content_type, event))
        failed: list[dict[str, str]] = []
        for entry_id, merged, content_type, event in prepared:
            if self._injected("publish") is not None:
                failed.append({"entryId": entry_id, "error": "injected broker failure"})
                continue
            self._write(
                pubsub=pubsub,
                topic=topic,
                metadata=merged,
                content_type=content_type,
                headers=request.headers,
                event=event,
                entry_id=entry_id,
            )
        if failed:
            return _Answer.json(500, {"failedEntries": failed, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE"})
        return _Answer(204)

    async def wait_published(
        self, count: int = 1, *, topic: str | None = None, timeout: float = 5.0
    ) -> list[Published]:
        """Wait until at least `count` messages (on `topic`, if given) were published."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            matching = [p for p in self.published if topic is None or p.topic == topic]
            if len(matching) >= count:
                return matching
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"expected {count} published message(s), got {len(matching)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # -- jobs (app -> sidecar) -------------------------------------------------------------

    @staticmethod
    def _job_name(path: str) -> str:
        found = _JOBS_PATH.match(path)
        return unquote(found["name"]) if found else ""

    def _jobs(self, request: _Request) -> _Answer:
        name = self._job_name(request.path)
        method = request.method
        if method not in ("POST", "GET", "DELETE"):
            return _Answer.text(405, "Method Not Allowed")
        if "|" in name:
            raise _ApiError(400, "DAPR_SCHEDULER_JOB_NAME_EMPTY", "Name is empty")
        if method == "POST":
            answer = self._schedule(name, request.body)
        elif method == "GET":
            if (status := self._injected("jobs")) is not None:
                raise _ApiError(
                    status, "DAPR_SCHEDULER_GET_JOB", "failed to get job due to: injected failure"
                )
            job = self.jobs.get(name)
            if job is None:
                raise _ApiError(
                    500,
                    "DAPR_SCHEDULER_GET_JOB",
                    f"failed to get job due to: rpc error: code = NotFound desc = job not found: {name}",
                )
            answer = _Answer.json(200, job.to_json())
        else:
            if (status := self._injected("jobs")) is not None:
                raise _ApiError(
                    status, "DAPR_SCHEDULER_DELETE_JOB", "failed to delete job due to: injected failure"
                )
            self.jobs.pop(name, None)
            answer = _Answer(204)
        self.job_calls.append(JobCall(method, name, answer.status))
        return answer

    def _schedule(self, name: str, body: bytes) -> _Answer:
        fields = self._job_fields(body)
        given_name = fields.get("name")
        if given_name is not None and (not isinstance(given_name, str) or given_name.strip()):
            raise _ApiError(400, "DAPR_SCHEDULER_JOB_NAME", "Set the job name in the url only")
        if fields.get("schedule") is None and fields.get("dueTime") is None:
            raise _ApiError(400, "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty")
        policy, policy_json = self._failure_policy(fields.get("failurePolicy"))
        if (status := self._injected("jobs")) is not None:
            raise _ApiError(
                status, "DAPR_SCHEDULER_SCHEDULE_JOB", "failed to schedule job due to: injected failure"
            )
        now = self.clock()
        schedule: str | None = fields.get("schedule")
        due_time: str | None = fields.get("dueTime")
        ttl: str | None = fields.get("ttl")
        try:
            if due_time is not None:
                due_at = parse_when(due_time, now)
                if schedule is not None:
                    next_occurrence(schedule, now)  # validate
            else:
                assert schedule is not None
                first = next_occurrence(schedule, now)
                if first is None:
                    raise ValueError(f"schedule {schedule!r} never fires")
                due_at = first
            expires_at = parse_when(ttl, now) if ttl is not None else None
        except ValueError as error:
            raise _ApiError(
                500,
                "DAPR_SCHEDULER_SCHEDULE_JOB",
                f"failed to schedule job due to: rpc error: code = InvalidArgument desc = {error}",
            ) from None
        if name in self.jobs and fields.get("overwrite") is not True:
            raise _ApiError(
                409,
                "DAPR_SCHEDULER_SCHEDULE_JOB",
                "failed to schedule job due to: rpc error: code = AlreadyExists "
                f"desc = job {name} already exists",
            )
        self.jobs[name] = Job(
            name=name,
            due_at=due_at,
            data=fields.get("data"),
            failure_policy=policy,
            raw=fields["__raw__"],
            has_data=fields.get("data") is not None,
            schedule=schedule,
            due_time=due_time,
            repeats=fields.get("repeats"),
            ttl=ttl,
            expires_at=expires_at,
            scheduled_at=now,
            policy_json=policy_json,
        )
        return _Answer(204)

    @staticmethod
    def _malformed(message: str) -> _ApiError:
        return _ApiError(400, "ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {message}")

    def _job_fields(self, body: bytes) -> dict[str, Any]:
        """protojson into JobHTTPRequest: JSON and proto names, unknown fields ignored, null = unset."""
        try:
            raw = json.loads(body) if body.strip() else {}
        except ValueError as error:
            raise self._malformed(str(error)) from None
        if not isinstance(raw, dict):
            raise self._malformed("the body must be a JSON object")
        names = {
            "name": "name",
            "schedule": "schedule",
            "repeats": "repeats",
            "dueTime": "dueTime",
            "due_time": "dueTime",
            "ttl": "ttl",
            "data": "data",
            "overwrite": "overwrite",
            "failurePolicy": "failurePolicy",
            "failure_policy": "failurePolicy",
        }
        fields: dict[str, Any] = {"__raw__": raw}
        for key, value in raw.items():
            target = names.get(key)
            if target is None or value is None:
                continue
            if target in fields:
                raise self._malformed(f"duplicate field {key!r}")
            if target in ("name", "schedule", "dueTime", "ttl") and not isinstance(value, str):
                raise self._malformed(f"invalid value for string field {key}: {value!r}")
            if target == "overwrite" and not isinstance(value, bool):
                raise self._malformed(f"invalid value for bool field overwrite: {value!r}")
            if target == "repeats":
                value = self._uint32(key, value)
            if target == "failurePolicy" and not isinstance(value, dict):
                raise self._malformed(f"invalid value for message field failurePolicy: {value!r}")
            fields[target] = value
        return fields

    def _uint32(self, key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self._malformed(f"invalid value for uint32 field {key}: {value!r}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self._malformed(f"invalid value for uint32 field {key}: {value!r}") from None
        if not isinstance(value, int | float | str) or number != number.to_integral_value():
            raise self._malformed(f"invalid value for uint32 field {key}: {value!r}")
        if not 0 <= number <= 2**32 - 1:
            raise self._malformed(f"uint32 field {key} out of range: {value!r}")
        return int(number)

    def _failure_policy(self, raw: dict[str, Any] | None) -> tuple[FailurePolicy, dict[str, Any] | None]:
        if raw is None:
            return DEFAULT_FAILURE_POLICY, None
        policies = {k: v for k, v in raw.items() if k in ("drop", "constant") and v is not None}
        if len(policies) > 1:
            raise self._malformed("failurePolicy: oneof policy is already set")
        if "drop" in policies:
            if not isinstance(policies["drop"], dict):
                raise self._malformed("failurePolicy.drop must be an object")
            return FailurePolicy("drop", timedelta(0), 0), {"drop": {}}
        if "constant" in policies:
            constant = policies["constant"]
            if not isinstance(constant, dict):
                raise self._malformed("failurePolicy.constant must be an object")
            interval = timedelta(0)
            out: dict[str, Any] = {}
            raw_interval = constant.get("interval")
            if raw_interval is not None:
                if not isinstance(raw_interval, str):
                    raise self._malformed(f"invalid google.protobuf.Duration value {raw_interval!r}")
                try:
                    interval = parse_pb_duration(raw_interval)
                except ValueError as error:
                    raise self._malformed(str(error)) from None
                out["interval"] = format_pb_duration(interval)
            raw_retries = constant.get("maxRetries", constant.get("max_retries"))
            retries = None if raw_retries is None else self._uint32("maxRetries", raw_retries)
            if retries is not None:
                out["maxRetries"] = retries
            return FailurePolicy("constant", interval, retries), {"constant": out}
        return DEFAULT_FAILURE_POLICY, {}

    # -- sidecar -> app ----------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        """The sidecar's own HTTP client towards the app (no proxies, loopback only)."""
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, timeout=self.app_timeout)
        return self._client

    @staticmethod
    def _join(app_url: str, route: str) -> str:
        return app_url.rstrip("/") + "/" + route.lstrip("/")

    async def subscriptions(self, app_url: str, app_token: str | None = None) -> list[dict[str, Any]]:
        """`GET /dapr/subscribe` as daprd sends it at start-up; 404 means no subscriptions."""
        headers = {"dapr-api-token": app_token} if app_token is not None else {}
        response = await self.client.get(self._join(app_url, "/dapr/subscribe"), headers=headers)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        payload = response.json()
        if payload is None:
            return []
        if not isinstance(payload, list):
            raise ValueError(f"/dapr/subscribe must answer a JSON array, got {payload!r}")
        return payload

    async def deliver_raw(
        self,
        app_url: str,
        route: str,
        body: bytes,
        content_type: str = CLOUDEVENTS_JSON,
        *,
        headers: Mapping[str, str] | None = None,
        app_token: str | None = None,
    ) -> Delivery:
        """POST arbitrary bytes to an event route and read the answer as daprd does."""
        sent = {"content-type": content_type, **(headers or {})}
        if app_token is not None:
            sent["dapr-api-token"] = app_token
        try:
            response = await self.client.post(self._join(app_url, route), content=body, headers=sent)
        except httpx.TransportError as error:
            return Delivery("RETRY", None, b"", f"{type(error).__name__}: {error}", sent, body)
        return Delivery(
            outcome_of(response.status_code, response.content),
            response.status_code,
            response.content,
            None,
            sent,
            body,
        )

    def _event_headers(
        self,
        event: Mapping[str, Any],
        *,
        pubsub: str,
        topic: str,
        key: str | None,
        partition: int,
        offset: int,
        timestamp_ms: int,
    ) -> dict[str, str]:
        headers = {
            "traceparent": str(event.get("traceparent") or event.get("traceid") or ""),
            "tracestate": str(event.get("tracestate") or ""),
            "pubsubname": pubsub,
        }
        if key is not None:
            headers["__key"] = key
        headers.update(
            {
                "__topic": topic,
                "__partition": str(partition),
                "__offset": str(offset),
                "__timestamp": str(timestamp_ms),
            }
        )
        return headers

    async def deliver(
        self,
        app_url: str,
        route: str,
        event: Mapping[str, Any],
        *,
        topic: str = "task-events",
        pubsub: str = "taskpubsub",
        app_token: str | None = None,
        partition: int = 0,
        offset: int = 0,
        key: str | None = None,
    ) -> Delivery:
        """Deliver one CloudEvent as daprd does after a Kafka read: the body is the event as the
        publishing sidecar wrote it (topic, pubsubname and trace attributes added)."""
        body = dict(event)
        body["topic"] = topic
        body["pubsubname"] = pubsub
        own = body.get("traceid") or body.get("traceparent")
        traceparent = str(own) if own else _traceparent(None)
        body.setdefault("traceid", traceparent)
        body.setdefault("traceparent", traceparent)
        body.setdefault("tracestate", "")
        metadata = body.get("metadata")
        if key is None:
            key = body.get("partitionkey") or (
                metadata.get("partitionKey") if isinstance(metadata, Mapping) else None
            )
        headers = self._event_headers(
            body,
            pubsub=pubsub,
            topic=topic,
            key=None if key is None else str(key),
            partition=partition,
            offset=offset,
            timestamp_ms=int(self.clock().timestamp() * 1000),
        )
        encoded = json.dumps(body, separators=(",", ":")).encode()
        return await self.deliver_raw(app_url, route, encoded, headers=headers, app_token=app_token)

    async def pump(
        self,
        app_url: str,
        *,
        app_token: str | None = None,
        subscriptions: Sequence[Mapping[str, Any]] | None = None,
        max_attempts: int = 3,
        dead_letter_topic: str | None = "task-events-dlq",
        duplicate: int = 1,
        interleave: bool = False,
        seed: int | None = None,
    ) -> PumpReport:
        """Deliver every published message not yet settled to the app, as daprd's consumers would.

        Subscriptions come from `subscriptions` or `GET /dapr/subscribe`. A subscription receives a
        message when it is on the message's topic and its component reads the same Kafka cluster
        (see the module docstring). Routes: the first CEL rule that matches, else the default; no
        route = skipped (acknowledged). Outcomes: SUCCESS settles; RETRY is retried up to
        `max_attempts` in all (the inbound resiliency policy), then dead-lettered; DROP is
        dead-lettered at once. The dead-letter topic is the subscription's `deadLetterTopic`, else
        `dead_letter_topic`; with neither, DROP just drops and exhausted retries leave the message
        `blocked`: it stays pending (Kafka redelivers it) and later messages of that partition are
        `held` for the subscription until a later pump settles it. Expired messages (`expiration`
        in the past) are dropped unseen. `duplicate=n` delivers each message n times in a row
        (at-least-once); `interleave` shuffles messages of different partition keys while keeping
        per-key order (seeded by `seed`).
        """
        if max_attempts < 1 or duplicate < 1:
            raise ValueError("max_attempts and duplicate must be at least 1")
        raw = (
            list(subscriptions) if subscriptions is not None else await self.subscriptions(app_url, app_token)
        )
        parsed = [Subscription.parse(item) for item in raw]
        report = PumpReport()
        active: list[Subscription] = []
        for sub in parsed:
            (active if sub.pubsubname in self.pubsubs else report.ignored).append(sub)

        items: list[tuple[Published, Subscription]] = []
        for record in list(self.published):
            cluster = self.clusters.get(record.pubsub, record.pubsub)
            for sub in active:
                if sub.topic != record.topic or self.clusters.get(sub.pubsubname, sub.pubsubname) != cluster:
                    continue
                if (record.seq, sub.identity) not in self._settled:
                    items.extend([(record, sub)] * duplicate)
        if interleave:
            items = self._interleave(items, seed)

        blocked: set[tuple[str, int]] = set()
        held: set[tuple[int, str]] = set()
        for record, sub in items:
            lane = (sub.identity, record.partition)
            if lane in blocked:
                if (record.seq, sub.identity) not in held:
                    held.add((record.seq, sub.identity))
                    report.settled.append(Settled(record, sub, None, "held", 0))
                continue
            settled = await self._pump_one(
                app_url, record, sub, report, app_token, max_attempts, dead_letter_topic
            )
            report.settled.append(settled)
            if settled.fate == "blocked":
                blocked.add(lane)
            else:
                self._settled.add((record.seq, sub.identity))
        return report

    @staticmethod
    def _interleave(
        items: list[tuple[Published, Subscription]], seed: int | None
    ) -> list[tuple[Published, Subscription]]:
        lanes: dict[tuple[str, str], deque[tuple[Published, Subscription]]] = {}
        for record, sub in items:
            lane_key = record.key if record.key is not None else f"\x00partition-{record.partition}"
            lanes.setdefault((sub.identity, lane_key), deque()).append((record, sub))
        rng = random.Random(seed)
        order = list(lanes.values())
        out: list[tuple[Published, Subscription]] = []
        while order:
            index = rng.randrange(len(order))
            out.append(order[index].popleft())
            if not order[index]:
                order.pop(index)
        return out

    def _expired(self, event: Mapping[str, Any]) -> bool:
        expiration = event.get("expiration")
        if not isinstance(expiration, str):
            return False
        try:
            return datetime.fromisoformat(expiration) <= self.clock()
        except (ValueError, TypeError):
            return False

    async def _pump_one(
        self,
        app_url: str,
        record: Published,
        sub: Subscription,
        report: PumpReport,
        app_token: str | None,
        max_attempts: int,
        dead_letter_topic: str | None,
    ) -> Settled:
        if self._expired(record.event):
            return Settled(record, sub, None, "expired", 0)
        route = sub.route_for(record.event)
        if route is None:
            return Settled(record, sub, None, "skipped", 0)
        headers = self._event_headers(
            record.event,
            pubsub=sub.pubsubname,
            topic=record.topic,
            key=record.key,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
        )
        body = json.dumps(record.event, separators=(",", ":")).encode()
        dlq = sub.dead_letter_topic or dead_letter_topic
        delivery: Delivery | None = None
        for attempt in range(1, max_attempts + 1):
            delivery = await self.deliver_raw(app_url, route, body, headers=headers, app_token=app_token)
            report.deliveries.append(PumpedDelivery(record, sub, route, attempt, delivery))
            if delivery.outcome == "SUCCESS":
                return Settled(record, sub, route, "delivered", attempt, delivery)
            if delivery.outcome == "DROP":
                return self._dead_letter(record, sub, route, dlq, "DROP", attempt, delivery)
        assert delivery is not None
        return self._dead_letter(record, sub, route, dlq, "RETRIES_EXHAUSTED", max_attempts, delivery)

    def _dead_letter(
        self,
        record: Published,
        sub: Subscription,
        route: str,
        dlq: str | None,
        reason: Literal["DROP", "RETRIES_EXHAUSTED"],
        attempts: int,
        last: Delivery,
    ) -> Settled:
        if dlq is None:
            fate: Fate = "dropped" if reason == "DROP" else "blocked"
            return Settled(record, sub, route, fate, attempts, last)
        self.dead_letters.append(DeadLetter(record, sub, route, dlq, reason, attempts, last))
        return Settled(record, sub, route, "dead_lettered", attempts, last)

    # -- jobs (sidecar -> app) -------------------------------------------------------------

    async def _post_job(self, app_url: str, job: Job, app_token: str | None) -> int:
        headers = {"content-type": "application/json"}
        if app_token is not None:
            headers["dapr-api-token"] = app_token
        url = self._join(app_url, "/job/" + quote(job.name, safe=""))
        response = await self.client.post(url, content=job.body(), headers=headers)
        return response.status_code

    async def trigger_job(self, app_url: str, name: str, *, app_token: str | None = None) -> int:
        """POST `/job/{name}` once with the job's data, as daprd does; returns the HTTP status.
        The job itself is left as it is (`run_due_jobs` applies due times and failure policies)."""
        job = self.jobs.get(name)
        if job is None:
            raise KeyError(f"no job named {name!r} is scheduled")
        return await self._post_job(app_url, job, app_token)

    async def run_due_jobs(
        self, app_url: str, *, now: datetime | None = None, app_token: str | None = None
    ) -> list[JobRun]:
        """Fire every job whose due time has passed (never before), in due order.

        2xx and 404 count as done. Any other status or a connection error is a failure, and the
        job's failure policy applies: default 4 attempts 1 s apart, `constant` per its interval and
        maxRetries (forever = `retry_cap` attempts here), `drop` one attempt; intervals are scaled
        by `time_scale`. One-shot jobs (no schedule, or repeats 1) are deleted after success or
        final failure; recurring ones move to their next occurrence after the one that fired
        (deleted when `repeats` is reached or `ttl` passed). A job the app deleted or replaced
        during its own trigger is left alone.
        """
        async with self._jobs_lock:
            moment = now or self.clock()
            due = sorted(
                (j for j in self.jobs.values() if j.due_at <= moment), key=lambda j: (j.due_at, j.name)
            )
            runs: list[JobRun] = []
            for job in due:
                if self.jobs.get(job.name) is not job:
                    continue
                if job.expires_at is not None and job.expires_at <= job.due_at:
                    del self.jobs[job.name]
                    continue
                run = await self._fire(app_url, job, app_token)
                runs.append(run)
                self.job_runs.append(run)
                self._advance(job)
            return runs

    async def _fire(self, app_url: str, job: Job, app_token: str | None) -> JobRun:
        policy = job.failure_policy
        max_attempts = policy.max_attempts or self.retry_cap
        status: int | None = None
        for attempt in range(1, max_attempts + 1):
            try:
                status = await self._post_job(app_url, job, app_token)
            except httpx.TransportError:
                status = None
            if status is not None and (200 <= status <= 299 or status == 404):
                return JobRun(job.name, attempt, status, "done", job.due_at)
            if attempt < max_attempts:
                await asyncio.sleep(policy.interval.total_seconds() * self.time_scale)
        return JobRun(job.name, max_attempts, status, "failed", job.due_at)

    def _advance(self, job: Job) -> None:
        if self.jobs.get(job.name) is not job:
            return
        job.triggered += 1
        if job.one_shot or (job.repeats is not None and job.triggered >= job.repeats):
            del self.jobs[job.name]
            return
        assert job.schedule is not None
        following = next_occurrence(job.schedule, job.due_at)
        if following is None or (job.expires_at is not None and following > job.expires_at):
            del self.jobs[job.name]
            return
        job.due_at = following

    @contextlib.asynccontextmanager
    async def run_jobs_forever(
        self, app_url: str, *, poll: float = 0.05, app_token: str | None = None
    ) -> AsyncIterator[list[JobRun]]:
        """Fire jobs on time in the background while the block runs; yields the list of runs."""
        runs: list[JobRun] = []

        async def loop() -> None:
            while True:
                runs.extend(await self.run_due_jobs(app_url, app_token=app_token))
                await asyncio.sleep(poll)

        task = asyncio.create_task(loop())
        try:
            yield runs
        finally:
            if task.done():
                task.result()  # surface a crash of the loop
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
