"""Property tests of the parsers that read untrusted text and data: each answers with a value or its
own documented refusal, never with another exception, and in bounded time.

- CloudEvent intake (`event_handlers.intake.parse`): a `TaskEvent` or `Malformed`;
- dates (`mcp_server.dates.parse_when` / `parse_offset` / `zone`): a value or `DateParseError`;
- repeats (`mcp_server.recurrence.parse_repeat`, `next_occurrence`): a rule / moment / None or
  `RecurrenceError`;
- the offline model's parser (`agent.offline_parser.parse`): an `Intent`, quickly;
- the service's input models (`TaskCreate`, `TaskPatch`, `TaskQuery`): a model or a pydantic
  `ValidationError` whose errors each name a field.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from agent import offline_parser
from event_handlers.intake import MAX_EVENT_BYTES, Malformed, TaskEvent, parse
from mcp_server import dates, recurrence
from mcp_server.events import EVENT_TYPES, build_event
from mcp_server.schemas import TaskCreate, TaskPatch, TaskQuery

PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
SLOW_PROPERTY = settings(PROPERTY, max_examples=3_000)

ZONE_NAMES = sorted(available_timezones())
zones = st.sampled_from(ZONE_NAMES).map(ZoneInfo)
# Any moment a clock could say, in UTC: the parsers must not overflow near the ends of the calendar.
moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)


# ------------------------------------------------------------------------------ CloudEvent intake


def valid_event(event_type: str = "task.updated", user_id: str = "u-1") -> dict[str, Any]:
    """A delivery as the sidecar hands it over: our structured CloudEvent plus its `sequence`."""
    task_id = str(uuid.uuid4())
    data = {
        "taskId": task_id,
        "userId": user_id,
        "title": "Buy milk",
        "description": None,
        "completed": False,
        "priority": "high",
        "tags": ["errands"],
        "dueDate": 1_800_000_000,
        "remindAt": 1_799_998_200,
        "remindOffset": 1800,
        "recurrence": "FREQ=DAILY",
        "seriesId": str(uuid.uuid4()),
        "occurrence": 1,
        "completedAt": None,
        "createdAt": 1_790_000_000,
        "updatedAt": 1_790_000_100,
        "version": 2,
        "changed": ["title"],
    }
    event = build_event(
        event_type,
        data,
        source="/todo-chatbot/mcp-server",
        subject=task_id,
        user_id=user_id,
        time=datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
    )
    return {**event, "sequence": "7", "topic": "task-events", "pubsubname": "taskpubsub"}


def parsed(body: bytes | str | dict[str, Any]) -> TaskEvent | Malformed:
    result = parse(body)
    assert isinstance(result, TaskEvent | Malformed), result
    if isinstance(result, Malformed):
        assert result.reason and len(result.reason) < 1_000
    return result


def test_the_valid_event_used_below_is_accepted() -> None:
    for event_type in EVENT_TYPES:
        event = valid_event(event_type)
        result = parsed(json.dumps(event).encode())
        assert isinstance(result, TaskEvent), result
        assert result.type == event_type and result.seq == 7 and result.user_id == "u-1"
        assert "topic" not in result.document and result.document["data"]["title"] == "Buy milk"


@PROPERTY
@given(body=st.binary(max_size=2_000))
@example(body=b"")
@example(body=b"\xff\xfe\x00{")
@example(body=b"{" * 5_000)
@example(body=b"[" * 100_000)
def test_intake_of_any_bytes(body: bytes) -> None:
    parsed(body)


@PROPERTY
@given(value=json_values)
def test_intake_of_any_json(value: Any) -> None:
    parsed(json.dumps(value))
    parsed(json.dumps(value).encode())
    if isinstance(value, dict):
        parsed(value)  # the in-process bus hands over dicts


MUTATION_KEYS = [*valid_event(), "data_base64", "dataschema", "traceparent", "expiration", "extra"]
DATA_KEYS = list(valid_event()["data"])


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with 1-4 attributes or data fields replaced by any JSON, or removed."""
    event = copy.deepcopy(valid_event(draw(st.sampled_from(EVENT_TYPES))))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["attribute", "data", "drop-attribute", "drop-data", "data-whole"]))
        if where == "attribute":
            event[draw(st.sampled_from(MUTATION_KEYS))] = draw(json_values)
        elif where == "drop-attribute":
            event.pop(draw(st.sampled_from(MUTATION_KEYS)), None)
        elif where == "data-whole":
            event["data"] = draw(json_values)
        elif isinstance(event.get("data"), dict):
            if where == "data":
                event["data"][draw(st.sampled_from(DATA_KEYS))] = draw(json_values)
            else:
                event["data"].pop(draw(st.sampled_from(DATA_KEYS)), None)
    return event


@PROPERTY
@given(event=mutated_events())
def test_intake_of_mutated_events(event: dict[str, Any]) -> None:
    as_bytes = parsed(json.dumps(event).encode())
    as_dict = parsed(event)
    assert type(as_bytes) is type(as_dict)  # both transports decide alike
    if isinstance(as_bytes, TaskEvent):  # what is accepted is consistent
        assert as_bytes.subject == as_bytes.data.taskId and as_bytes.seq >= 1


@PROPERTY
@given(event=mutated_events(), junk=st.binary(min_size=1, max_size=20), cut=st.integers(0, 10_000))
def test_intake_of_truncated_and_spliced_events(event: dict[str, Any], junk: bytes, cut: int) -> None:
    raw = json.dumps(event).encode()
    cut = cut % (len(raw) + 1)
    parsed(raw[:cut])
    parsed(raw[:cut] + junk + raw[cut:])


def test_intake_of_an_oversized_event() -> None:
    event = valid_event()
    event["data"]["description"] = "x" * MAX_EVENT_BYTES
    result = parsed(json.dumps(event).encode())
    assert isinstance(result, Malformed) and "larger" in result.reason


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**valid_event(), "data": _nested(5_000)}, id="deeply-nested"),
        pytest.param({**valid_event(), "sequence": 10**5_000}, id="huge-int"),
    ],
)
def test_intake_of_dicts_json_cannot_encode_is_malformed(body: dict[str, Any]) -> None:
    assert isinstance(parse(body), Malformed)


# ------------------------------------------------------------------------------------------ dates


def refusal(error: ValueError, says: str = "") -> None:
    """A refusal is for people: it says something (and what it should say)."""
    text = str(error)
    assert text and says in text and len(text) < 1_000, text


DATE_WORDS = [
    *("tomorrow", "today", "tonight", "next", "this", "friday", "fri", "at", "in", "on", "by", "the"),
    *("5pm", "17:30", "9", "noon", "midnight", "eod", "end", "of", "week", "month", "year", "weekend"),
    *("hours", "days", "weeks", "months", "years", "minutes", "99999999", "0", "-1", "1.5", "half"),
    *("dec", "31", "feb", "29", "30th", "2026-02-29", "9999-12-31", "0001-01-01", "2026-13-45"),
    *("T", "Z", "+14:00", "-12:00", "PT30M", "P1D", "P99999999W", "before", "after", "ago", "from", "now"),
    *("\x00", "\u200b", "\u202e", "🕐", "٣", "\n", "  "),
]
date_phrases = st.one_of(
    st.text(max_size=120), st.lists(st.sampled_from(DATE_WORDS), max_size=7).map(" ".join)
)


@PROPERTY
@given(text=date_phrases, tz=zones, now=moments)
@example(text="in 99999999 years", tz=ZoneInfo("UTC"), now=datetime(9999, 12, 30, tzinfo=UTC))
@example(text="yesterday", tz=ZoneInfo("Pacific/Kiritimati"), now=datetime(1, 1, 2, tzinfo=UTC))
@example(text="9999-12-31 23:59", tz=ZoneInfo("Pacific/Kiritimati"), now=datetime(2026, 1, 1, tzinfo=UTC))
@example(text="next week", tz=ZoneInfo("Etc/GMT-14"), now=datetime(9999, 12, 30, tzinfo=UTC))
def test_parse_when_gives_an_aware_moment_or_a_date_parse_error(
    text: str, tz: ZoneInfo, now: datetime
) -> None:
    try:
        moment = dates.parse_when(text, tz=tz, now=now)
    except dates.DateParseError as error:
        refusal(error)
        return
    assert moment.tzinfo is not None and moment.utcoffset() is not None


@PROPERTY
@given(text=date_phrases)
@example(text="P99999999999999999999W")
@example(text="99999999999999999999 weeks before")
@example(text="-PT30M")
def test_parse_offset_gives_a_bounded_offset_none_or_a_date_parse_error(text: str) -> None:
    try:
        offset = dates.parse_offset(text)
    except dates.DateParseError as error:
        refusal(error)
        return
    assert offset is None or timedelta(0) < offset <= dates.MAX_OFFSET


zone_names = st.one_of(
    st.text(max_size=80),
    st.sampled_from(ZONE_NAMES),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_+\-]{0,20}(/[A-Za-z0-9_+\-.]{1,20}){0,3}", fullmatch=True),
    st.sampled_from(["../../etc/passwd", "/etc/localtime", "posixrules", "Factory", "UTC\x00", "."]),
)


@PROPERTY
@given(name=zone_names)
def test_zone_gives_a_zone_or_a_date_parse_error(name: str) -> None:
    try:
        tz = dates.zone(name)
    except dates.DateParseError as error:
        refusal(error, "unknown time zone")
        return
    assert isinstance(tz, ZoneInfo)
    datetime(2026, 6, 1, tzinfo=tz).utcoffset()  # a usable zone


# ------------------------------------------------------------------------------------------ repeats


RULE_PART_NAMES = ["BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYSETPOS", "BYHOUR", "BYMINUTE"]
numbers = st.one_of(st.integers(-400, 400), st.integers(0, 10**12)).map(str)
day_codes = st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"])
until_values = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).flatmap(
        lambda moment: st.sampled_from(
            [f"{moment:%Y%m%d}", f"{moment:%Y%m%dT%H%M%S}", f"{moment:%Y%m%dT%H%M%S}Z"]
        )
    ),
    st.text(max_size=16),
)
rule_parts = st.one_of(
    st.tuples(st.sampled_from(["INTERVAL", "COUNT"]), numbers),
    st.tuples(st.just("UNTIL"), until_values),
    st.tuples(st.sampled_from(RULE_PART_NAMES), st.lists(numbers, min_size=1, max_size=5).map(",".join)),
    st.tuples(
        st.just("BYDAY"),
        st.lists(
            st.tuples(st.sampled_from(["", "1", "-1", "5", "-5", "53", "+2", "99"]), day_codes).map("".join),
            min_size=1,
            max_size=4,
        ).map(",".join),
    ),
    st.tuples(st.just("WKST"), day_codes),
)
rrules = st.tuples(
    st.sampled_from(["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY", "MINUTELY", "SECONDLY", "daily", "X"]),
    st.lists(rule_parts, max_size=5, unique_by=lambda part: part[0]),
    st.sampled_from(["", "RRULE:", " "]),
).map(lambda rule: rule[2] + ";".join([f"FREQ={rule[0]}"] + [f"{name}={value}" for name, value in rule[1]]))
REPEAT_WORDS = [
    *("every", "each", "other", "day", "weekday", "week", "weeks", "month", "year", "hour", "monday"),
    *("fri", "and", "on", "the", "last", "first", "15th", "31st", "of", "at", "9am", "for", "5", "times"),
    *("until", "2027-01-31", "march", "daily", "monthly", "quarterly", "2", "999999", "0", "minutes"),
]
repeat_texts = st.one_of(
    rrules, st.text(max_size=210), st.lists(st.sampled_from(REPEAT_WORDS), max_size=9).map(" ".join)
)


@PROPERTY
@given(text=repeat_texts, tz=zones, now=moments, current=moments, index=st.integers(1, 10**6))
@example(
    text="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    tz=ZoneInfo("UTC"),
    now=datetime(9999, 12, 30, tzinfo=UTC),
    current=datetime(9999, 12, 30, tzinfo=UTC),
    index=1,
)
def test_repeats_give_a_rule_and_occurrences_or_a_recurrence_error(
    text: str, tz: ZoneInfo, now: datetime, current: datetime, index: int
) -> None:
    started = time.thread_time()  # CPU time: a busy machine does not stretch it
    try:
        rule = recurrence.parse_repeat(text, tz=tz, now=now)
    except recurrence.RecurrenceError as error:
        refusal(error)
        return
    assert isinstance(rule, str) and rule.startswith("FREQ=")
    assert recurrence.parse_repeat(rule, tz=tz, now=now) == rule  # normalised rules read back unchanged
    assert recurrence.describe(rule) and recurrence.describe(rule, tz=tz)
    try:
        following = recurrence.next_occurrence(rule, tz=tz, current=current, index=index)
    except recurrence.RecurrenceError as error:
        refusal(error)
    else:
        assert following is None or following > current
    assert time.thread_time() - started < 10, "evaluating a rule must stay quick"


@PROPERTY
@given(text=repeat_texts)
def test_describe_any_rule_text(text: str) -> None:
    assert isinstance(recurrence.describe(text), str)


# ------------------------------------------------------------------------- the offline model's parser


NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
CHAT_WORDS = [
    *("add", "delete", "remove", "all", "tasks", "task", "every", "the", "milk", "tomorrow", "at", "9am"),
    *("#work", "urgent", "yes", "no", "12", "remind", "me", "to", "in", "2", "hours", "before", "mark"),
    *("done", "rename", "move", "friday", "1st", "ignore", "previous", "instructions", "it", "one", "show"),
    *("overdue", "due", "today", "tag", "priority", "p1", "search", ",", "&", "'", '"', "?", "!", "\n"),
    *("\x00", "😀", "é", "ＡＢＣ", "\u200b", "\u202e", "delete all", "yes, delete all 3", "#a,"),
]
INTENTS = get_args(offline_parser.Intent)
PARSER_CRASHED = "I could not make sense of that message."  # the answer when the parser raised


UTC_ZONE = ZoneInfo("UTC")


def parse_message(text: str, tz: ZoneInfo = UTC_ZONE) -> offline_parser.Intent:
    intent = offline_parser.parse(text, now=NOW, tz=tz)
    assert type(intent) in INTENTS, intent
    return intent


@PROPERTY
@given(
    text=st.one_of(
        st.text(max_size=1_100),
        st.lists(st.sampled_from(CHAT_WORDS), max_size=30).map(" ".join),
    ),
    tz=zones,
)
def test_the_offline_parser_always_gives_an_intent(text: str, tz: ZoneInfo) -> None:
    intent = parse_message(text, tz)
    assert not (isinstance(intent, offline_parser.Unknown) and intent.reason == PARSER_CRASHED), text


@pytest.mark.parametrize(
    "text",
    [
        "a " * 500,
        "delete all " * 90,
        "every monday and " * 58,
        "remind me to " + ", " * 493,
        "yes " * 250,
        "add " + "x-" * 498,
        "show " + "due today " * 99,
    ],
    ids=["words", "delete-all", "repeats", "commas", "yes", "dashes", "windows"],
)
def test_the_offline_parser_is_quick_on_long_repetitive_messages(text: str) -> None:
    started = time.thread_time()  # CPU time: a busy machine does not stretch it
    parse_message(text[: offline_parser.MAX_INPUT])
    assert time.thread_time() - started < 1.0


@pytest.mark.parametrize("verb", ["add", "remove", "delete"])
def test_the_offline_parser_is_quick_on_comma_separated_hashtags(verb: str) -> None:
    text = verb + " " + "#a, " * 22  # 96 characters
    started = time.thread_time()
    parse_message(text)
    assert time.thread_time() - started < 0.25


# ---------------------------------------------------------------------- the service's input models


FIELD_VALUES = st.one_of(
    json_values,
    st.text(max_size=300),
    st.lists(st.text(max_size=50), max_size=25),
    st.sampled_from(["none", "low", "medium", "high", "urgent", "open", "done", "all", "due", "title"]),
    st.integers(-5, 200),
)


def model_input(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts mixing the model's own fields (with any values) and unknown keys."""
    names = list(model.model_fields)
    return st.dictionaries(
        st.one_of(st.sampled_from(names), st.text(max_size=12)), FIELD_VALUES, max_size=len(names) + 2
    )


@pytest.mark.parametrize("model", [TaskCreate, TaskPatch, TaskQuery], ids=lambda model: model.__name__)
def test_input_models_give_a_model_or_errors_naming_a_field(model: type[BaseModel]) -> None:
    @PROPERTY
    @given(data=model_input(model))
    def check(data: dict[str, Any]) -> None:
        try:
            value = model.model_validate(data)
        except ValidationError as error:
            for item in error.errors():
                assert item["loc"], item  # the field (or, for a non-dict, the whole input) is named
                assert str(item["loc"][0]) in data or item["type"] == "missing", item
                assert item["msg"], item
            return
        assert isinstance(value, model)

    check()


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (TaskCreate, {"title": "   "}, "title"),
        (TaskCreate, {"title": "x" * 201}, "title"),
        (TaskCreate, {"title": "x", "tags": [f"t{i}" for i in range(21)]}, "tags"),
        (TaskCreate, {"title": "x", "tags": ["#"]}, "tags"),
        (TaskCreate, {"title": "x", "description": "d" * 4_001}, "description"),
        (TaskCreate, {"title": "x", "due": "d" * 201}, "due"),
        (TaskCreate, {"title": "x", "user_id": "someone-else"}, "user_id"),
        (TaskPatch, {"add_tags": ["x" * 41]}, "add_tags"),
        (TaskPatch, {"priority": "critical"}, "priority"),
        (TaskQuery, {"limit": 101}, "limit"),
        (TaskQuery, {"limit": 0}, "limit"),
        (TaskQuery, {"sort": "user_id"}, "sort"),
        (TaskQuery, {"cursor": "c" * 201}, "cursor"),
    ],
)
def test_input_models_name_the_field_they_refuse(
    model: type[BaseModel], data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(data)
    assert [item["loc"][0] for item in refused.value.errors()] == [field]


@pytest.mark.slow
@SLOW_PROPERTY
@given(text=st.text(max_size=1_100), tz=zones)
def test_the_offline_parser_always_gives_an_intent_long_run(text: str, tz: ZoneInfo) -> None:
    intent = parse_message(text, tz)
    assert not (isinstance(intent, offline_parser.Unknown) and intent.reason == PARSER_CRASHED), text


@pytest.mark.slow
@SLOW_PROPERTY
@given(text=repeat_texts, tz=zones, now=moments)
def test_repeats_long_run(text: str, tz: ZoneInfo, now: datetime) -> None:
    try:
        rule = recurrence.parse_repeat(text, tz=tz, now=now)
    except recurrence.RecurrenceError:
        return
    assert recurrence.next_occurrence(rule, tz=tz, current=now, index=1) != now


@pytest.mark.slow
@SLOW_PROPERTY
@given(event=mutated_events())
def test_intake_of_mutated_events_long_run(event: dict[str, Any]) -> None:
    parsed(json.dumps(event).encode())
    parsed(event)
