"""Dates and times people type, resolved in their zone against a fixed clock."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from mcp_server.dates import (
    DateParseError,
    describe_offset,
    parse_offset,
    parse_shift,
    parse_time_of_day,
    parse_when,
    zone,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [NEW_YORK, BERLIN]

# Wall times of `now` (the same wall time in each zone): Friday late evening, Wednesday morning, Sunday noon.
FRI_LATE = datetime(2026, 6, 5, 22, 30)
WED_MORNING = datetime(2026, 6, 3, 8, 0)
SUN_NOON = datetime(2026, 6, 7, 12, 0)


def at(wall: datetime, tz: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=tz)


def wall(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def when(text: str, now: datetime, tz: ZoneInfo = NEW_YORK, **kwargs: time) -> datetime:
    return parse_when(text, tz=tz, now=at(now, tz), **kwargs)


# ---------------------------------------------------------------- phrases

PHRASES = [
    # phrase, now, expected wall time in the same zone
    ("tomorrow 5pm", FRI_LATE, "2026-06-06 17:00"),
    ("tomorrow 5pm", WED_MORNING, "2026-06-04 17:00"),
    ("Tomorrow 5 PM", WED_MORNING, "2026-06-04 17:00"),
    ("tomorrow at 17:30", FRI_LATE, "2026-06-06 17:30"),
    ("next friday", FRI_LATE, "2026-06-12 09:00"),
    ("next friday", WED_MORNING, "2026-06-05 09:00"),
    ("friday", FRI_LATE, "2026-06-12 09:00"),
    ("friday", WED_MORNING, "2026-06-05 09:00"),
    ("friday at 9", FRI_LATE, "2026-06-12 09:00"),
    ("friday at 9", WED_MORNING, "2026-06-05 09:00"),
    ("friday 9am", WED_MORNING, "2026-06-05 09:00"),
    ("friday 9am", FRI_LATE, "2026-06-12 09:00"),
    ("this friday", WED_MORNING, "2026-06-05 09:00"),
    ("by friday", WED_MORNING, "2026-06-05 09:00"),
    ("wednesday 10am", WED_MORNING, "2026-06-03 10:00"),  # today, still ahead
    ("wednesday 7am", WED_MORNING, "2026-06-10 07:00"),  # today's has passed
    ("next wednesday", WED_MORNING, "2026-06-10 09:00"),
    ("monday morning", FRI_LATE, "2026-06-08 09:00"),
    ("friday evening at 7", WED_MORNING, "2026-06-05 19:00"),
    ("friday at 5", WED_MORNING, "2026-06-05 17:00"),  # 'at 5' alone is the afternoon
    ("friday morning at 5", WED_MORNING, "2026-06-05 05:00"),
    ("friday at 3:30", WED_MORNING, "2026-06-05 15:30"),  # as 'at 3'
    ("friday at 03:30", WED_MORNING, "2026-06-05 03:30"),
    ("friday morning at 7:15", WED_MORNING, "2026-06-05 07:15"),
    ("friday at 8", WED_MORNING, "2026-06-05 08:00"),
    ("in 2 hours", FRI_LATE, "2026-06-06 00:30"),
    ("in 30 minutes", FRI_LATE, "2026-06-05 23:00"),
    ("in 1.5 hours", WED_MORNING, "2026-06-03 09:30"),
    ("in an hour", WED_MORNING, "2026-06-03 09:00"),
    ("2 hours from now", WED_MORNING, "2026-06-03 10:00"),
    ("in 3 days", FRI_LATE, "2026-06-08 09:00"),
    ("in a week", WED_MORNING, "2026-06-10 09:00"),
    ("in 2 months", WED_MORNING, "2026-08-03 09:00"),
    ("in two days at 5pm", WED_MORNING, "2026-06-05 17:00"),  # whole days take a time
    ("7am in a week", WED_MORNING, "2026-06-10 07:00"),
    ("in 30h", WED_MORNING, "2026-06-04 14:00"),  # 30 hours, not a time of day
    ("5 dec", WED_MORNING, "2026-12-05 09:00"),  # a number beside its month is its day
    ("the 5 of december", WED_MORNING, "2026-12-05 09:00"),
    ("december 5 2026", WED_MORNING, "2026-12-05 09:00"),
    ("today", WED_MORNING, "2026-06-03 09:00"),
    ("today", FRI_LATE, "2026-06-05 09:00"),  # a named day is kept even when the moment has passed
    ("today at 5pm", WED_MORNING, "2026-06-03 17:00"),
    ("tonight", WED_MORNING, "2026-06-03 20:00"),
    ("tonight", FRI_LATE, "2026-06-05 23:59"),  # 20:00 has passed: still tonight
    ("tonight at 9", WED_MORNING, "2026-06-03 21:00"),
    ("9pm tonight", WED_MORNING, "2026-06-03 21:00"),
    ("this evening", WED_MORNING, "2026-06-03 18:00"),
    ("this evening", FRI_LATE, "2026-06-05 23:59"),
    ("this afternoon", WED_MORNING, "2026-06-03 15:00"),
    ("noon", WED_MORNING, "2026-06-03 12:00"),
    ("noon", FRI_LATE, "2026-06-06 12:00"),
    ("midnight", WED_MORNING, "2026-06-04 00:00"),
    ("midnight", FRI_LATE, "2026-06-06 00:00"),
    ("friday midnight", WED_MORNING, "2026-06-06 00:00"),  # the end of Friday
    ("dec 3", WED_MORNING, "2026-12-03 09:00"),
    ("december 3 at 4pm", FRI_LATE, "2026-12-03 16:00"),
    ("3rd of december 2027", WED_MORNING, "2027-12-03 09:00"),
    ("december 3, 2027 5pm", WED_MORNING, "2027-12-03 17:00"),
    ("jun 3", WED_MORNING, "2026-06-03 09:00"),  # a month and day without a year: today counts
    ("jun 3", FRI_LATE, "2027-06-03 09:00"),
    ("feb 29", WED_MORNING, "2028-02-29 09:00"),
    ("end of day", WED_MORNING, "2026-06-03 17:00"),
    ("eod", WED_MORNING, "2026-06-03 17:00"),
    ("end of day", FRI_LATE, "2026-06-05 23:59"),
    ("eod", FRI_LATE, "2026-06-05 23:59"),
    ("end of week", WED_MORNING, "2026-06-05 17:00"),
    ("end of week", FRI_LATE, "2026-06-12 17:00"),
    ("this weekend", WED_MORNING, "2026-06-06 09:00"),
    ("this weekend", FRI_LATE, "2026-06-06 09:00"),
    ("this weekend", SUN_NOON, "2026-06-07 09:00"),
    ("next weekend", WED_MORNING, "2026-06-13 09:00"),
    ("next week", WED_MORNING, "2026-06-08 09:00"),
    ("next week", FRI_LATE, "2026-06-08 09:00"),
    ("next week", SUN_NOON, "2026-06-08 09:00"),
    ("the day after tomorrow", FRI_LATE, "2026-06-07 09:00"),
    ("5pm", WED_MORNING, "2026-06-03 17:00"),
    ("5pm", FRI_LATE, "2026-06-06 17:00"),
    ("at 17:00", WED_MORNING, "2026-06-03 17:00"),
    ("at 17:00", FRI_LATE, "2026-06-06 17:00"),
    ("at 9", FRI_LATE, "2026-06-06 09:00"),
    ("in the evening", WED_MORNING, "2026-06-03 18:00"),
    ("in 2 days and 3 hours", WED_MORNING, "2026-06-05 11:00"),
    ("next month", WED_MORNING, "2026-07-03 09:00"),  # through dateparser
    ("12/03", WED_MORNING, "2026-12-03 09:00"),  # through dateparser, month first
    # number words, '14h', the nth of a month, days counted from a day, next week's days
    ("in two days", WED_MORNING, "2026-06-05 09:00"),
    ("in five minutes", WED_MORNING, "2026-06-03 08:05"),
    ("two weeks from now", WED_MORNING, "2026-06-17 09:00"),
    ("tomorrow 14h", WED_MORNING, "2026-06-04 14:00"),
    ("the 4th", WED_MORNING, "2026-06-04 09:00"),
    ("on the 3rd", WED_MORNING, "2026-06-03 09:00"),
    ("the 31st", WED_MORNING, "2026-07-31 09:00"),
    ("the 2nd at 5pm", WED_MORNING, "2026-07-02 17:00"),
    ("monday next week", WED_MORNING, "2026-06-08 09:00"),
    ("next week friday", SUN_NOON, "2026-06-12 09:00"),
    ("end of next week", WED_MORNING, "2026-06-12 17:00"),
    ("a week from monday", WED_MORNING, "2026-06-15 09:00"),
    ("2 days after friday", WED_MORNING, "2026-06-07 09:00"),
    ("a week from tomorrow", FRI_LATE, "2026-06-13 09:00"),
    # ends of months and years, at the end of the working day
    ("end of the month", WED_MORNING, "2026-06-30 17:00"),
    ("eom", FRI_LATE, "2026-06-30 17:00"),
    ("last day of the month at 9am", WED_MORNING, "2026-06-30 09:00"),
    ("end of next month", WED_MORNING, "2026-07-31 17:00"),
    ("last day of february", WED_MORNING, "2027-02-28 17:00"),
    ("end of february 2028", WED_MORNING, "2028-02-29 17:00"),
    ("end of the year", WED_MORNING, "2026-12-31 17:00"),
    # the nth weekday of a month: the first such day still ahead, unless the month is 'this' or 'next'
    ("the last friday of the month", WED_MORNING, "2026-06-26 09:00"),
    ("the first monday of the month", WED_MORNING, "2026-07-06 09:00"),
    ("first monday of this month", WED_MORNING, "2026-06-01 09:00"),
    ("2nd tuesday in next month", WED_MORNING, "2026-07-14 09:00"),
    ("first monday of december at 10am", WED_MORNING, "2026-12-07 10:00"),
    ("third thursday of may", WED_MORNING, "2027-05-20 09:00"),
]


@pytest.mark.parametrize("tz", ZONES, ids=str)
@pytest.mark.parametrize(("text", "now", "expected"), PHRASES)
def test_phrases_resolve_in_the_callers_zone(text: str, now: datetime, expected: str, tz: ZoneInfo) -> None:
    moment = when(text, now, tz)
    assert moment.tzinfo is tz
    assert wall(moment) == expected


def test_now_is_compared_as_a_moment_not_as_wall_time() -> None:
    # 23:30 in New York is already tomorrow in UTC; 'tomorrow' is still the local tomorrow.
    now = datetime(2026, 6, 6, 3, 30, tzinfo=UTC)
    assert wall(parse_when("tomorrow", tz=NEW_YORK, now=now)) == "2026-06-06 09:00"


# ---------------------------------------------------------------- ISO 8601

ISO = [
    ("2026-12-01", "2026-12-01 09:00"),
    ("2026-12-01 17:00", "2026-12-01 17:00"),
    ("2026-12-01T17:00", "2026-12-01 17:00"),
    ("2026-12-01T17:00:30", "2026-12-01 17:00"),
    ("2026-12-01t17:00", "2026-12-01 17:00"),
    ("2026-12-01T17:00Z", "2026-12-01 12:00"),
    ("2026-12-01T17:00:00+01:00", "2026-12-01 11:00"),
    ("2026-12-01 17:00-05:00", "2026-12-01 17:00"),
]


@pytest.mark.parametrize(("text", "expected"), ISO)
def test_iso_8601(text: str, expected: str) -> None:
    moment = when(text, WED_MORNING)
    assert moment.tzinfo is NEW_YORK
    assert wall(moment) == expected


def test_iso_keeps_seconds_and_converts_offsets() -> None:
    moment = when("2026-12-01T17:00:30+01:00", WED_MORNING, BERLIN)
    assert moment == datetime(2026, 12, 1, 16, 0, 30, tzinfo=UTC)
    assert moment.tzinfo is BERLIN


# ---------------------------------------------------------------- default time and bare times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("friday", "2026-06-05 23:59"),
        ("today", "2026-06-03 23:59"),
        ("dec 3", "2026-12-03 23:59"),
        ("2026-12-01", "2026-12-01 23:59"),
        ("in 3 days", "2026-06-06 23:59"),
        ("next week", "2026-06-08 23:59"),
        ("this weekend", "2026-06-06 23:59"),
        ("5pm", "2026-06-03 17:00"),  # a time given wins
        ("friday 9am", "2026-06-05 09:00"),
        ("in 2 hours", "2026-06-03 10:00"),
    ],
)
def test_default_time_applies_only_when_no_time_is_given(text: str, expected: str) -> None:
    assert wall(when(text, WED_MORNING, default_time=time(23, 59))) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 6, 3, 8, 0), "2026-06-03 09:00"),
        (datetime(2026, 6, 3, 8, 59, 59), "2026-06-03 09:00"),
        (datetime(2026, 6, 3, 9, 0), "2026-06-04 09:00"),  # strictly after now
        (datetime(2026, 6, 3, 10, 0), "2026-06-04 09:00"),
        (datetime(2026, 12, 31, 23, 0), "2027-01-01 09:00"),
    ],
)
def test_a_bare_time_is_the_next_such_time(now: datetime, expected: str) -> None:
    assert wall(when("9am", now)) == expected
    assert wall(when("at 9:00", now)) == expected


# ---------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("tz", "text", "now", "expected_utc"),
    [
        # New York springs forward at 02:00 on 2026-03-08: 02:30 does not exist and moves to 03:30 EDT.
        (NEW_YORK, "2026-03-08 02:30", datetime(2026, 3, 7, 12), datetime(2026, 3, 8, 7, 30)),
        (NEW_YORK, "tomorrow 2:30am", datetime(2026, 3, 7, 12), datetime(2026, 3, 8, 7, 30)),
        (NEW_YORK, "tomorrow 9am", datetime(2026, 3, 7, 12), datetime(2026, 3, 8, 13, 0)),
        # New York falls back at 02:00 on 2026-11-01: 01:30 happens twice; the first (EDT) is taken.
        (NEW_YORK, "2026-11-01 01:30", datetime(2026, 10, 31, 12), datetime(2026, 11, 1, 5, 30)),
        (NEW_YORK, "tomorrow 1:30am", datetime(2026, 10, 31, 12), datetime(2026, 11, 1, 5, 30)),
        (NEW_YORK, "tomorrow 9am", datetime(2026, 10, 31, 12), datetime(2026, 11, 1, 14, 0)),
        # Berlin springs forward at 02:00 on 2026-03-29 and falls back at 03:00 on 2026-10-25.
        (BERLIN, "2026-03-29 02:30", datetime(2026, 3, 28, 12), datetime(2026, 3, 29, 1, 30)),
        (BERLIN, "2:30am", datetime(2026, 3, 29, 1, 0), datetime(2026, 3, 29, 1, 30)),
        (BERLIN, "2026-10-25 02:30", datetime(2026, 10, 24, 12), datetime(2026, 10, 25, 0, 30)),
        (BERLIN, "tomorrow 9am", datetime(2026, 10, 24, 12), datetime(2026, 10, 25, 8, 0)),
    ],
)
def test_dst_gaps_move_forward_and_overlaps_take_the_first(
    tz: ZoneInfo, text: str, now: datetime, expected_utc: datetime
) -> None:
    moment = when(text, now, tz)
    # Compare in UTC: PEP 495 makes == across zones False for a time in a fold.
    assert moment.astimezone(UTC) == expected_utc.replace(tzinfo=UTC)
    assert moment.fold == 0


@pytest.mark.parametrize(
    ("now_utc", "text", "expected_utc"),
    [
        (datetime(2026, 3, 8, 6, 30), "in 2 hours", datetime(2026, 3, 8, 8, 30)),  # across the gap
        (datetime(2026, 11, 1, 4, 30), "in 2 hours", datetime(2026, 11, 1, 6, 30)),  # across the overlap
        (datetime(2026, 11, 1, 4, 30), "in 90 minutes", datetime(2026, 11, 1, 6, 0)),
        # 'and' is not 'an' 'd'ay
        (datetime(2026, 11, 1, 4, 30), "in 1 hour and 30 minutes", datetime(2026, 11, 1, 6, 0)),
        (datetime(2026, 6, 1, 12, 0), "1 hour and 5 minutes from now", datetime(2026, 6, 1, 13, 5)),
    ],
)
def test_relative_hours_are_elapsed_time(now_utc: datetime, text: str, expected_utc: datetime) -> None:
    moment = parse_when(text, tz=NEW_YORK, now=now_utc.replace(tzinfo=UTC))
    assert moment.astimezone(UTC) == expected_utc.replace(tzinfo=UTC)
    assert moment.tzinfo is NEW_YORK


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "a date or time is required"),
        ("   ", "a date or time is required"),
        ("x" * 101, "at most 100 characters (got 101)"),
        ("blah", "could not understand 'blah' as a date or time; try '2026-12-01 17:00', 'tomorrow 5pm'"),
        ("xyzzy plugh", "could not understand 'xyzzy plugh'"),
        ("whenever you like", "could not understand"),
        ("13", "alone is ambiguous"),
        ("30 minutes", "is a length of time, not a moment; say 'in 30 minutes'"),
        ("2026-02-30", "2026-02-30 is not a date on the calendar"),
        ("2026-02-30 17:00", "not a valid ISO 8601 date and time"),
        ("feb 30", "February has no day 30"),
        ("fifth monday of february", "february has no fifth monday"),
        ("the 32nd", "no month has a 32nd day"),
        ("in 9999 years", "out of range"),
        # an impossible time is refused, never dropped (it was read as the day at 9:00)
        ("tomorrow 25:00", "'25:00' is not a time of day: hours 0-23 and minutes 0-59"),
        ("tomorrow 13pm", "'13pm' is not a time of day"),
        ("friday at 9:75", "'9:75' is not a time of day"),
        ("in 2 days at 24", "'24' is not a time of day"),
        # a moment from now with another day or time: it was read as the other one alone
        ("in 3 hours 5pm", "'in 3 hours' is a moment by itself: give it alone"),
        ("5pm in 30 minutes", "'in 30 minutes' is a moment by itself"),
        ("tomorrow in 2 hours", "'in 2 hours' is a moment by itself"),
        # a bare number beside a day: dateparser dropped it (9:00) or made it a month ('monday 5': May)
        ("tomorrow 5", "'5' in 'tomorrow 5' is neither a day of a month nor a time of day"),
        ("monday 5", "write a day as 'dec 5' and a time as '5pm' or '17:30'"),
        ("tomorrow at 5 30", "'30' in 'tomorrow at 5 30' is neither"),
        ("in 2 days 3", "'3' in 'in 2 days 3' is neither"),
    ],
)
def test_errors_name_the_rule(text: str, fragment: str) -> None:
    with pytest.raises(DateParseError) as caught:
        when(text, WED_MORNING)
    assert fragment in str(caught.value)


def test_a_100_character_phrase_is_still_read() -> None:
    text = "tomorrow 5pm".ljust(100)
    assert wall(when(text, WED_MORNING)) == "2026-06-04 17:00"


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("tomorrow", tz=NEW_YORK, now=WED_MORNING)


# ---------------------------------------------------------------- zones


@pytest.mark.parametrize(
    ("name", "key"), [(None, "UTC"), ("", "UTC"), ("utc", "UTC"), ("Europe/Berlin", "Europe/Berlin")]
)
def test_zone(name: str | None, key: str) -> None:
    assert zone(name).key == key


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Base",
        "../etc",
        "Europe/../Berlin",
        "\x00",
        "America",
        "x" * 300,
        "Europe/Berlin ",
        "localtime",
        "/etc/passwd",
    ],
)
def test_unknown_zones_are_refused_with_examples(name: str) -> None:
    with pytest.raises(DateParseError) as caught:
        zone(name)
    message = str(caught.value)
    assert message.startswith("unknown time zone ")
    assert "use an IANA name such as 'Europe/Berlin' or 'America/New_York'" in message


def test_unknown_zone_message_quotes_the_name() -> None:
    with pytest.raises(DateParseError, match=r"^unknown time zone 'Mars/Base'; use an IANA name"):
        zone("Mars/Base")


# ---------------------------------------------------------------- times of day


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9am", time(9)),
        ("9 AM", time(9)),
        ("12am", time(0)),
        ("12pm", time(12)),
        ("5:30pm", time(17, 30)),
        ("17:30", time(17, 30)),
        ("at 9", time(9)),
        ("at 5", time(17)),  # an hour from 1 to 7 alone is the afternoon
        ("5 o'clock", time(17)),
        ("5h", time(5)),  # a 24-hour clock
        ("at 05", time(5)),
        ("3:30", time(15, 30)),  # said like 'at 3'
        ("7:15", time(19, 15)),
        ("9:30", time(9, 30)),
        ("03:30", time(3, 30)),  # a 24-hour clock
        ("3:30:00", time(3, 30)),
        ("9h30", time(9, 30)),
        ("at 21", time(21)),
        ("noon", time(12)),
        ("midnight", time(0)),
        ("13pm", None),
        ("25:00", None),
        ("soon", None),
    ],
)
def test_parse_time_of_day(text: str, expected: time | None) -> None:
    assert parse_time_of_day(text) == expected


# ---------------------------------------------------------------- offsets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30 minutes before", timedelta(minutes=30)),
        ("30 min before", timedelta(minutes=30)),
        ("30m before", timedelta(minutes=30)),
        ("1 hour before", timedelta(hours=1)),
        ("an hour before", timedelta(hours=1)),
        ("half an hour before", timedelta(minutes=30)),
        ("1.5 hours before", timedelta(minutes=90)),
        ("1 hour 30 minutes before", timedelta(minutes=90)),
        ("1h30m before", timedelta(minutes=90)),
        ("1 hour and 30 minutes before", timedelta(minutes=90)),
        ("ten minutes before", timedelta(minutes=10)),
        ("2 days and 1 hour before", timedelta(days=2, hours=1)),
        ("2 days before", timedelta(days=2)),
        ("1 week before", timedelta(weeks=1)),
        ("15 minutes early", timedelta(minutes=15)),
        ("10 minutes in advance", timedelta(minutes=10)),
        ("PT30M", timedelta(minutes=30)),
        ("pt1h30m", timedelta(minutes=90)),
        ("P1D", timedelta(days=1)),
        ("P1DT12H", timedelta(hours=36)),
        ("P2W", timedelta(weeks=2)),
        ("366 days before", timedelta(days=366)),
        ("the day before", timedelta(days=1)),
        ("the night before", timedelta(days=1)),
        ("the week before", timedelta(weeks=1)),
    ],
)
def test_parse_offset(text: str, expected: timedelta) -> None:
    assert parse_offset(text) == expected


@pytest.mark.parametrize(
    "text", ["tomorrow 5pm", "in 30 minutes", "30 minutes", "", "blah", "P", "PT", "x" * 150]
)
def test_not_an_offset_phrase_is_none(text: str) -> None:
    assert parse_offset(text) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 minutes before", "must be more than zero"),
        ("-5 minutes before", "must be more than zero"),
        ("30 minutes after", "must be more than zero"),
        ("PT0M", "must be more than zero"),
        ("-PT30M", "must be more than zero"),
        ("367 days before", "at most 366 days"),
        ("53 weeks before", "at most 366 days"),
        ("P400D", "at most 366 days"),
        ("999999999 weeks before", "at most 366 days"),
        ("P1M", "years and months have no fixed length"),
    ],
)
def test_offsets_out_of_bounds_name_the_bound(text: str, fragment: str) -> None:
    with pytest.raises(DateParseError) as caught:
        parse_offset(text)
    assert fragment in str(caught.value)
    assert "'30 minutes before'" in str(caught.value) or "P30D" in str(caught.value)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(minutes=30), "30 minutes before"),
        (timedelta(hours=1), "1 hour before"),
        (timedelta(hours=2), "2 hours before"),
        (timedelta(days=1), "1 day before"),
        (timedelta(minutes=90), "90 minutes before"),
        (timedelta(weeks=1), "1 week before"),
        (timedelta(seconds=45), "45 seconds before"),
        (timedelta(minutes=1), "1 minute before"),
    ],
)
def test_describe_offset(offset: timedelta, expected: str) -> None:
    assert describe_offset(offset) == expected


def test_described_offsets_read_back() -> None:
    for minutes in (1, 5, 30, 90, 60, 1440, 2880, 10080):
        offset = timedelta(minutes=minutes)
        assert parse_offset(describe_offset(offset)) == offset


# ---------------------------------------------------------------- any text: a moment or a DateParseError

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass
else:
    WORDS = [
        *("tomorrow", "today", "tonight", "friday", "next", "this", "at", "in", "on", "by", "5pm", "17:30"),
        *(
            "9",
            "hours",
            "days",
            "weeks",
            "dec",
            "3rd",
            "of",
            "noon",
            "midnight",
            "am",
            "pm",
            "the",
            "a",
            "an",
        ),
        *("half", "before", "after", "eod", "weekend", "week", "month", "2026-12-01", "T", "Z", "+", "-"),
        *(":", ".", ",", "99999", "0", "-1", "PT30M", "P1D", "ago", "from", "now", "evening"),
    ]
    phrases = st.one_of(st.text(max_size=110), st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join))

    @settings(max_examples=300, deadline=None)
    @given(text=phrases, tz=st.sampled_from(ZONES))
    def test_any_text_gives_a_moment_or_a_date_parse_error(text: str, tz: ZoneInfo) -> None:
        with contextlib.suppress(DateParseError):
            assert parse_when(text, tz=tz, now=at(FRI_LATE, tz)).tzinfo is tz

    @settings(max_examples=300, deadline=None)
    @given(text=phrases)
    def test_any_text_gives_an_offset_none_or_a_date_parse_error(text: str) -> None:
        with contextlib.suppress(DateParseError):
            offset = parse_offset(text)
            assert offset is None or timedelta(0) < offset <= timedelta(days=366)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+2 days", (2, timedelta(0))),
        ("by a week", (7, timedelta(0))),
        ("two days later", (2, timedelta(0))),
        ("-1 day", (-1, timedelta(0))),
        ("3 days earlier", (-3, timedelta(0))),
        ("1 hour later", (0, timedelta(hours=1))),
        ("by 1 hour and 30 minutes", (0, timedelta(minutes=90))),
        ("+1 day 2 hours", (0, timedelta(hours=26))),  # not whole days: elapsed time
        ("2 days", None),  # a length alone is refused by parse_when, not taken as a move
        ("in 2 days", None),
        ("tomorrow", None),
        ("2 days from now", None),
    ],
)
def test_parse_shift(text: str, expected: tuple[int, timedelta] | None) -> None:
    assert parse_shift(text) == expected
