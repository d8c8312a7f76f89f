"""Repeat phrases and RRULEs, and their occurrences on the wall clock of the user's zone."""

from __future__ import annotations

import contextlib
import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from mcp_server.recurrence import (
    ALLOWED_FREQS,
    RecurrenceError,
    describe,
    first_from,
    first_occurrence,
    next_occurrence,
    parse_repeat,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 5, 22, 30, tzinfo=NEW_YORK)  # a Friday evening


def repeat(text: str, tz: ZoneInfo = NEW_YORK, now: datetime = NOW) -> str:
    return parse_repeat(text, tz=tz, now=now)


def series(rule: str, tz: ZoneInfo, start: datetime, count: int, index: int = 1) -> list[datetime | None]:
    """`count` occurrences after `start` (occurrence number `index`), following next_occurrence."""
    found: list[datetime | None] = []
    current: datetime | None = start
    for step in range(count):
        assert current is not None
        current = next_occurrence(rule, tz=tz, current=current, index=index + step)
        found.append(current)
        if current is None:
            break
    return found


def walls(moments: list[datetime | None]) -> list[str | None]:
    return [m.strftime("%Y-%m-%d %H:%M") if m else None for m in moments]


# ---------------------------------------------------------------- phrases

PHRASES = [
    ("daily", "FREQ=DAILY"),
    ("every day", "FREQ=DAILY"),
    ("each day", "FREQ=DAILY"),
    ("Every Day.", "FREQ=DAILY"),
    ("every weekday", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ("weekdays", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ("on weekdays", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ("every weekend", "FREQ=WEEKLY;BYDAY=SA,SU"),
    ("weekly", "FREQ=WEEKLY"),
    ("every week", "FREQ=WEEKLY"),
    ("every monday", "FREQ=WEEKLY;BYDAY=MO"),
    ("mondays", "FREQ=WEEKLY;BYDAY=MO"),
    ("every mon, wed and fri", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("every fri, mon & wed", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("every tuesday and thursday", "FREQ=WEEKLY;BYDAY=TU,TH"),
    ("every 2 weeks", "FREQ=WEEKLY;INTERVAL=2"),
    ("every other week", "FREQ=WEEKLY;INTERVAL=2"),
    ("biweekly", "FREQ=WEEKLY;INTERVAL=2"),
    ("fortnightly", "FREQ=WEEKLY;INTERVAL=2"),
    ("every 2 weeks on mon,wed", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE"),
    ("every other monday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"),
    ("weekly on tuesday", "FREQ=WEEKLY;BYDAY=TU"),
    ("monthly", "FREQ=MONTHLY"),
    ("every month", "FREQ=MONTHLY"),
    ("quarterly", "FREQ=MONTHLY;INTERVAL=3"),
    ("monthly on the 15th", "FREQ=MONTHLY;BYMONTHDAY=15"),
    ("every month on the 1st", "FREQ=MONTHLY;BYMONTHDAY=1"),
    ("monthly on the 1st and 15th", "FREQ=MONTHLY;BYMONTHDAY=1,15"),
    ("the 15th of every month", "FREQ=MONTHLY;BYMONTHDAY=15"),
    ("monthly on the last day", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("monthly on the last friday", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("every last friday of the month", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("every first monday of the month", "FREQ=MONTHLY;BYDAY=1MO"),
    ("every first and third monday of the month", "FREQ=MONTHLY;BYDAY=1MO,3MO"),
    ("every year", "FREQ=YEARLY"),
    ("yearly", "FREQ=YEARLY"),
    ("annually", "FREQ=YEARLY"),
    ("every year on feb 29", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
    ("every march 5", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=5"),
    ("every 3 days", "FREQ=DAILY;INTERVAL=3"),
    ("every other day", "FREQ=DAILY;INTERVAL=2"),
    ("every hour", "FREQ=HOURLY"),
    ("hourly", "FREQ=HOURLY"),
    ("every 2 hours", "FREQ=HOURLY;INTERVAL=2"),
    ("every morning", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"),
    ("every sunday morning", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=9;BYMINUTE=0"),
    ("every two weeks", "FREQ=WEEKLY;INTERVAL=2"),
    ("every three days at five pm", "FREQ=DAILY;INTERVAL=3;BYHOUR=17;BYMINUTE=0"),
    ("every monday at 5", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=17;BYMINUTE=0"),
    ("every weekday in the evening", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=18;BYMINUTE=0"),
    ("daily at night", "FREQ=DAILY;BYHOUR=20;BYMINUTE=0"),
    # 'for 3 weeks': a COUNT, the occurrences in that span of the series
    ("every tuesday for 4 weeks", "FREQ=WEEKLY;COUNT=4;BYDAY=TU"),
    ("daily for 2 weeks", "FREQ=DAILY;COUNT=14"),
    ("every mon and wed for 3 weeks", "FREQ=WEEKLY;COUNT=6;BYDAY=MO,WE"),
    ("every 2 weeks for 5 weeks", "FREQ=WEEKLY;INTERVAL=2;COUNT=3"),
    ("monthly on the 1st and 15th for 3 months", "FREQ=MONTHLY;COUNT=6;BYMONTHDAY=1,15"),
    ("quarterly for 2 years", "FREQ=MONTHLY;INTERVAL=3;COUNT=8"),
    ("every sunday at 10am for 4 weeks", "FREQ=WEEKLY;COUNT=4;BYDAY=SU;BYHOUR=10;BYMINUTE=0"),
    # suffixes: time of day, COUNT, UNTIL (the end of that local day, in UTC)
    ("every day at 9am", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"),
    ("every day at 9", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"),
    ("daily at 17:30", "FREQ=DAILY;BYHOUR=17;BYMINUTE=30"),
    ("daily at 3:30", "FREQ=DAILY;BYHOUR=15;BYMINUTE=30"),  # as 'at 3'
    ("daily at 03:30", "FREQ=DAILY;BYHOUR=3;BYMINUTE=30"),
    ("every weekday 8:15am", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=15"),
    ("every monday at noon", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=12;BYMINUTE=0"),
    ("daily for 5 times", "FREQ=DAILY;COUNT=5"),
    ("daily 5 times", "FREQ=DAILY;COUNT=5"),
    ("every day at 9 for 5 times", "FREQ=DAILY;COUNT=5;BYHOUR=9;BYMINUTE=0"),
    ("every day 5 times at 9am", "FREQ=DAILY;COUNT=5;BYHOUR=9;BYMINUTE=0"),
    ("every day until 2027-01-31", "FREQ=DAILY;UNTIL=20270201T045959Z"),
    ("every day until march 1", "FREQ=DAILY;UNTIL=20270302T045959Z"),
    (
        "every weekday at 9am until march 1",
        "FREQ=WEEKLY;UNTIL=20270302T045959Z;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0",
    ),
]


@pytest.mark.parametrize(("text", "rule"), PHRASES)
def test_phrases_become_rrules(text: str, rule: str) -> None:
    assert repeat(text) == rule


def test_until_is_the_end_of_the_local_day_in_utc() -> None:
    assert repeat("every day until 2027-01-31", tz=BERLIN) == "FREQ=DAILY;UNTIL=20270131T225959Z"


# ---------------------------------------------------------------- RRULEs

RRULES = [
    ("FREQ=DAILY", "FREQ=DAILY"),
    ("RRULE:FREQ=DAILY;COUNT=5", "FREQ=DAILY;COUNT=5"),
    ("rrule:freq=daily;count=5", "FREQ=DAILY;COUNT=5"),
    ("FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("freq=weekly;byday=we,mo;interval=2", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE"),
    ("BYDAY=MO;FREQ=WEEKLY;", "FREQ=WEEKLY;BYDAY=MO"),
    ("FREQ=DAILY; INTERVAL=1", "FREQ=DAILY"),
    ("FREQ=DAILY;BYMINUTE=30;BYHOUR=9", "FREQ=DAILY;BYHOUR=9;BYMINUTE=30"),
    ("FREQ=DAILY;UNTIL=20270131", "FREQ=DAILY;UNTIL=20270201T045959Z"),
    ("FREQ=DAILY;UNTIL=20270131T090000", "FREQ=DAILY;UNTIL=20270131T140000Z"),
    ("FREQ=DAILY;UNTIL=20270131T090000Z", "FREQ=DAILY;UNTIL=20270131T090000Z"),
    ("FREQ=YEARLY;BYMONTHDAY=29;BYMONTH=2", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;WKST=SU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;WKST=SU"),
]


@pytest.mark.parametrize(("text", "rule"), RRULES)
def test_rrules_are_validated_and_normalised(text: str, rule: str) -> None:
    assert repeat(text) == rule


def test_allowed_freqs() -> None:
    assert ALLOWED_FREQS == ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("FREQ=FORTNIGHTLY", "unknown FREQ 'FORTNIGHTLY'; use HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=MINUTELY", "FREQ=MINUTELY is not allowed"),
        ("FREQ=SECONDLY", "FREQ=SECONDLY is not allowed"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20270101T000000Z", "COUNT or UNTIL but not both"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a whole number of at least 1 (got '0')"),
        ("FREQ=DAILY;COUNT=-3", "COUNT must be a whole number of at least 1"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number of at least 1"),
        ("FREQ=DAILY;DTSTART=20260101T090000", "DTSTART is not allowed"),
        ("DTSTART:20260101T090000\nRRULE:FREQ=DAILY", "DTSTART is not allowed"),
        ("BYDAY=MO", "an RRULE needs FREQ"),
        ("FREQ=DAILY;FOO=1", "unknown RRULE part 'FOO'"),
        ("FREQ=DAILY;FREQ=WEEKLY", "appears twice"),
        ("FREQ=DAILY;BYHOUR=25", "BYHOUR values must be 0 to 23 (got 25)"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY values must be 1 to 31 or -31 to -1"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY must list days"),
        ("FREQ=WEEKLY;BYDAY=1MO", "a numbered weekday needs FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=3", "BYMONTHDAY cannot be used with FREQ=WEEKLY"),
        ("FREQ=HOURLY;BYMINUTE=0,10,20,30,40", "BYMINUTE may hold at most 4"),
        ("FREQ=DAILY;BYSECOND=0,30", "BYSECOND may hold at most 1"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL must look like '20270131'"),
        ("FREQ=DAILY;UNTIL=20200101T000000Z", "ends before now"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never occurs (no date in the next 30 years matches it)"),
        # rules that never match would make dateutil walk every period up to the year 9999
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "never occurs"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=2", "never occurs"),
        ("FREQ=HOURLY;BYMONTHDAY=1", "an HOURLY repeat may only be narrowed with BYDAY, BYHOUR and BYMINUTE"),
        ("FREQ=YEARLY;INTERVAL=11", "INTERVAL must be at most 10 with FREQ=YEARLY"),
        ("garbage=1", "unknown RRULE part 'GARBAGE'"),
        ("FREQ", "could not understand 'FREQ' as a repeat"),
        ("whenever", "could not understand 'whenever' as a repeat; try 'daily', 'every weekday'"),
        ("every day at work", "could not understand"),
        ("every minute", "more often than every hour is not allowed"),
        ("every 5 minutes", "more often than every hour is not allowed"),
        ("every 0 days", "INTERVAL must be a whole number of at least 1"),
        ("every 2 hours at 9am", "a time of day does not fit an hourly repeat"),
        ("every day until blah", "the end of the repeat must be a date: could not understand 'blah'"),
        ("every day until 2020-01-01", "ends before now"),
        ("monthly on the 32nd", "BYMONTHDAY values must be 1 to 31"),
        ("every day 0 times", "COUNT must be a whole number of at least 1"),
        ("every day for 0 days", "is no time at all"),
        ("weekly for 2 months", "'for 2 months' does not fit a weekly repeat; say how many times"),
        ("daily for a month", "does not fit a daily repeat"),
        ("every day for 5 days until march 1", "give how long a repeat lasts once"),
        ("daily for 2 weeks 3 times", "give how long a repeat lasts once"),
        ("", "a repeat is required"),
        ("d" * 201, "at most 200 characters"),
    ],
)
def test_bad_repeats_are_refused_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(RecurrenceError) as caught:
        repeat(text)
    assert fragment in str(caught.value)


# ---------------------------------------------------------------- DST: 'every day at 9' stays 09:00 local


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        (NEW_YORK, datetime(2026, 3, 6, 9, 0)),  # spring forward on 2026-03-08
        (NEW_YORK, datetime(2026, 10, 30, 9, 0)),  # fall back on 2026-11-01
        (BERLIN, datetime(2026, 3, 27, 9, 0)),  # spring forward on 2026-03-29
        (BERLIN, datetime(2026, 10, 23, 9, 0)),  # fall back on 2026-10-25
    ],
)
def test_every_day_at_9_stays_at_9_local_across_dst(tz: ZoneInfo, start: datetime) -> None:
    rule = repeat("every day at 9", tz=tz, now=start.replace(tzinfo=tz) - timedelta(days=1))
    moments = series(rule, tz, start.replace(tzinfo=tz), 4)
    assert all(m is not None and (m.hour, m.minute) == (9, 0) for m in moments)
    offsets = {m.utcoffset() for m in moments if m is not None}
    assert len(offsets) == 2  # the UTC offset changed on the way
    chain = [start.replace(tzinfo=tz), *moments]
    elapsed = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in itertools.pairwise(chain) if a and b}
    assert timedelta(hours=24) in elapsed
    assert elapsed & {timedelta(hours=23), timedelta(hours=25)}  # the day of the change is shorter or longer


def test_every_day_without_a_time_keeps_the_wall_time_of_the_current_occurrence() -> None:
    moments = series("FREQ=DAILY", BERLIN, datetime(2026, 10, 24, 18, 0, tzinfo=BERLIN), 2)
    assert walls(moments) == ["2026-10-25 18:00", "2026-10-26 18:00"]


def test_a_time_in_the_gap_moves_forward_only_that_day() -> None:
    rule = "FREQ=DAILY;BYHOUR=2;BYMINUTE=30"
    moments = series(rule, NEW_YORK, datetime(2026, 3, 7, 2, 30, tzinfo=NEW_YORK), 3)
    assert walls(moments) == ["2026-03-08 03:30", "2026-03-09 02:30", "2026-03-10 02:30"]


def test_a_time_in_the_overlap_takes_the_first() -> None:
    rule = "FREQ=DAILY;BYHOUR=1;BYMINUTE=30"
    (moment,) = series(rule, NEW_YORK, datetime(2026, 10, 31, 1, 30, tzinfo=NEW_YORK), 1)
    assert moment is not None
    assert moment.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


# ---------------------------------------------------------------- month ends, leap years, last weekdays


@pytest.mark.parametrize(
    ("rule", "start", "expected"),
    [
        ("FREQ=MONTHLY;BYMONTHDAY=31", datetime(2026, 1, 31, 9), ["2026-03-31 09:00", "2026-05-31 09:00"]),
        ("FREQ=MONTHLY", datetime(2026, 1, 31, 9), ["2026-03-31 09:00", "2026-05-31 09:00"]),
        (
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            datetime(2026, 1, 31, 9),
            ["2026-02-28 09:00", "2026-03-31 09:00", "2026-04-30 09:00"],
        ),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2028, 1, 31, 9), ["2028-02-29 09:00", "2028-03-31 09:00"]),
        ("FREQ=YEARLY", datetime(2028, 2, 29, 9), ["2032-02-29 09:00", "2036-02-29 09:00"]),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", datetime(2028, 2, 29, 9), ["2032-02-29 09:00"]),
        (
            "FREQ=MONTHLY;BYDAY=-1FR",
            datetime(2026, 1, 30, 9),
            [
                "2026-02-27 09:00",
                "2026-03-27 09:00",
                "2026-04-24 09:00",
                "2026-05-29 09:00",
                "2026-06-26 09:00",
            ],
        ),
        ("FREQ=MONTHLY;BYDAY=1MO", datetime(2026, 6, 1, 9), ["2026-07-06 09:00", "2026-08-03 09:00"]),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
            datetime(2026, 6, 1, 9),  # a Monday
            ["2026-06-03 09:00", "2026-06-15 09:00", "2026-06-17 09:00", "2026-06-29 09:00"],
        ),
        (
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            datetime(2026, 6, 5, 9),  # a Friday
            ["2026-06-08 09:00", "2026-06-09 09:00"],
        ),
        ("FREQ=HOURLY;INTERVAL=2", datetime(2026, 6, 5, 23, 0), ["2026-06-06 01:00", "2026-06-06 03:00"]),
    ],
)
def test_next_occurrences(rule: str, start: datetime, expected: list[str]) -> None:
    assert walls(series(rule, NEW_YORK, start.replace(tzinfo=NEW_YORK), len(expected))) == expected


# ---------------------------------------------------------------- COUNT and UNTIL


def test_count_counts_the_whole_series() -> None:
    start = datetime(2026, 1, 30, 9, tzinfo=NEW_YORK)
    assert walls(series("FREQ=DAILY;COUNT=3", NEW_YORK, start, 5)) == [
        "2026-01-31 09:00",
        "2026-02-01 09:00",
        None,
    ]
    assert next_occurrence("FREQ=DAILY;COUNT=3", tz=NEW_YORK, current=start, index=3) is None
    assert next_occurrence("FREQ=DAILY;COUNT=3", tz=NEW_YORK, current=start, index=7) is None
    assert next_occurrence("FREQ=DAILY;COUNT=1", tz=NEW_YORK, current=start, index=1) is None


def test_until_ends_the_series_at_the_end_of_its_day() -> None:
    rule = repeat("every day until feb 1", now=datetime(2026, 1, 20, tzinfo=NEW_YORK))
    assert rule == "FREQ=DAILY;UNTIL=20260202T045959Z"
    start = datetime(2026, 1, 30, 9, tzinfo=NEW_YORK)
    assert walls(series(rule, NEW_YORK, start, 5)) == ["2026-01-31 09:00", "2026-02-01 09:00", None]


def test_until_is_compared_in_utc() -> None:
    rule = "FREQ=DAILY;UNTIL=20260201T140000Z"  # 09:00 in New York
    assert next_occurrence(rule, tz=NEW_YORK, current=datetime(2026, 1, 31, 9, tzinfo=NEW_YORK), index=1) == (
        datetime(2026, 2, 1, 14, 0, tzinfo=UTC)
    )
    assert (
        next_occurrence(rule, tz=NEW_YORK, current=datetime(2026, 1, 31, 9, 1, tzinfo=NEW_YORK), index=1)
        is None
    )


# ---------------------------------------------------------------- first_occurrence


@pytest.mark.parametrize(
    ("rule", "default_time", "expected"),
    [
        ("FREQ=DAILY", time(9), "2026-06-06 09:00"),  # 09:00 today has passed
        ("FREQ=DAILY", time(23, 59), "2026-06-05 23:59"),  # still ahead today
        ("FREQ=DAILY;BYHOUR=17;BYMINUTE=30", time(9), "2026-06-06 17:30"),
        ("FREQ=DAILY;BYHOUR=23;BYMINUTE=0", time(9), "2026-06-05 23:00"),
        ("FREQ=DAILY;BYHOUR=23", time(9, 45), "2026-06-05 23:00"),  # BYHOUR alone means minute 0
        ("FREQ=WEEKLY;BYDAY=MO", time(9), "2026-06-08 09:00"),
        ("FREQ=WEEKLY;BYDAY=FR", time(9), "2026-06-12 09:00"),
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=0", time(9), "2026-06-08 08:00"),
        ("FREQ=MONTHLY;BYDAY=-1FR", time(9), "2026-06-26 09:00"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", time(9), "2026-06-30 09:00"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", time(9), "2028-02-29 09:00"),
        ("FREQ=HOURLY", time(9), "2026-06-05 23:00"),
        ("FREQ=HOURLY;INTERVAL=2", time(9), "2026-06-06 00:00"),
    ],
)
def test_first_occurrence(rule: str, default_time: time, expected: str) -> None:
    moment = first_occurrence(rule, tz=NEW_YORK, after=NOW, default_time=default_time)
    assert moment is not None
    assert moment.tzinfo is NEW_YORK
    assert moment.strftime("%Y-%m-%d %H:%M") == expected


def test_first_occurrence_is_strictly_after() -> None:
    after = datetime(2026, 6, 5, 9, 0, tzinfo=NEW_YORK)
    moment = first_occurrence("FREQ=DAILY", tz=NEW_YORK, after=after)
    assert moment == datetime(2026, 6, 6, 9, 0, tzinfo=NEW_YORK)


def test_first_occurrence_after_until_is_none() -> None:
    later = datetime(2027, 6, 1, tzinfo=NEW_YORK)
    assert first_occurrence("FREQ=DAILY;UNTIL=20270101T000000Z", tz=NEW_YORK, after=later) is None


# ---------------------------------------------------------------- first_from


@pytest.mark.parametrize(
    ("rule", "start", "expected"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "2026-06-06 09:30", "2026-06-08 09:30"),  # Sat -> Mon
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "2026-06-05 09:30", "2026-06-05 09:30"),  # on the rule
        ("FREQ=WEEKLY;BYDAY=MO,WE", "2026-06-09 07:00", "2026-06-10 07:00"),  # Tue -> Wed
        ("FREQ=MONTHLY;BYMONTHDAY=1", "2026-06-05 09:00", "2026-07-01 09:00"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "2026-06-27 09:00", "2026-07-31 09:00"),  # after June's last
        ("FREQ=DAILY;BYHOUR=8;BYMINUTE=0", "2026-06-05 17:00", "2026-06-06 08:00"),  # fixed time
        ("FREQ=DAILY", "2026-06-05 17:45", "2026-06-05 17:45"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "2026-06-05 09:00", "2028-02-29 09:00"),
    ],
)
def test_first_from_begins_on_the_rules_first_day(rule: str, start: str, expected: str) -> None:
    begin = datetime.strptime(start, "%Y-%m-%d %H:%M").replace(tzinfo=NEW_YORK)
    moment = first_from(rule, tz=NEW_YORK, start=begin)
    assert moment is not None and moment.strftime("%Y-%m-%d %H:%M") == expected


def test_first_from_keeps_the_wall_time_across_a_dst_change() -> None:
    # Saturday 2026-03-07 in New York; the clocks go forward on Sunday the 8th.
    start = datetime(2026, 3, 7, 9, 30, tzinfo=NEW_YORK)
    moment = first_from("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", tz=NEW_YORK, start=start)
    assert moment == datetime(2026, 3, 9, 9, 30, tzinfo=NEW_YORK)
    assert moment.utcoffset() == timedelta(hours=-4)


def test_first_from_is_none_when_the_rule_has_ended() -> None:
    start = datetime(2026, 6, 6, 9, 0, tzinfo=NEW_YORK)
    assert first_from("FREQ=DAILY;UNTIL=20260601T000000Z", tz=NEW_YORK, start=start) is None


# ---------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("FREQ=DAILY", "every day"),
        ("FREQ=DAILY;INTERVAL=3", "every 3 days"),
        ("FREQ=HOURLY", "every hour"),
        ("FREQ=HOURLY;INTERVAL=2", "every 2 hours"),
        ("FREQ=WEEKLY", "every week"),
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "every weekday"),
        ("FREQ=WEEKLY;BYDAY=SA,SU", "every weekend"),
        ("FREQ=WEEKLY;BYDAY=MO", "every Monday"),
        ("FREQ=WEEKLY;BYDAY=MO,WE,FR", "every Monday, Wednesday and Friday"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", "every 2 weeks on Monday and Wednesday"),
        ("FREQ=MONTHLY", "every month"),
        ("FREQ=MONTHLY;BYMONTHDAY=15", "monthly on the 15th"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,22", "monthly on the 1st and 22nd"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", "monthly on the last day"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "monthly on the last Friday"),
        ("FREQ=MONTHLY;BYDAY=1MO", "monthly on the first Monday"),
        ("FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=11", "every 3 months on the 11th"),
        ("FREQ=YEARLY", "every year"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "every year on 29 Feb"),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "every day at 09:00"),
        ("FREQ=WEEKLY;BYDAY=MO;BYHOUR=17;BYMINUTE=30", "every Monday at 17:30"),
        ("FREQ=DAILY;COUNT=5", "every day, 5 times"),
        ("FREQ=DAILY;COUNT=1", "every day, once"),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;COUNT=5", "every day at 09:00, 5 times"),
        ("FREQ=DAILY;UNTIL=20270201T045959Z", "every day until 31 Jan 2027"),  # end of 31 Jan in New York
        ("FREQ=DAILY;UNTIL=20270131T225959Z", "every day until 31 Jan 2027"),  # end of 31 Jan in Berlin
        ("RRULE:freq=daily", "every day"),
        # shapes without words fall back to the rule itself
        ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
        ("FREQ=YEARLY;BYWEEKNO=20", "FREQ=YEARLY;BYWEEKNO=20"),
        ("not a rule", "not a rule"),
    ],
)
def test_describe(rule: str, words: str) -> None:
    assert describe(rule) == words


def test_describe_uses_the_zone_for_until_when_given() -> None:
    assert describe("FREQ=DAILY;UNTIL=20270201T045959Z", tz=NEW_YORK) == "every day until 31 Jan 2027"
    assert describe("FREQ=DAILY;UNTIL=20270201T045959Z", tz=BERLIN) == "every day until 1 Feb 2027"


@pytest.mark.parametrize(("text", "rule"), PHRASES)
def test_every_phrase_rule_is_described_in_words(text: str, rule: str) -> None:
    assert "FREQ=" not in describe(rule)


# ---------------------------------------------------------------- any text: a rule or a RecurrenceError

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass
else:
    WORDS = [
        *("every", "each", "other", "day", "week", "weeks", "month", "year", "hour", "monday", "fri", "and"),
        *("on", "the", "last", "first", "15th", "of", "at", "9am", "17:30", "for", "5", "times", "until"),
        *("march", "1", "2027-01-31", "weekday", "weekends", "daily", "monthly", "FREQ=DAILY", "COUNT=0"),
        *("BYDAY=MO", "INTERVAL=2", "UNTIL=20270101", ";", "=", "RRULE:", "minutes", "0", "-1", "99999"),
    ]
    texts = st.one_of(st.text(max_size=210), st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join))
    rrules = st.lists(
        st.sampled_from([*WORDS[-12:], "FREQ=WEEKLY", "BYHOUR=9", "BYMONTHDAY=-1"]), max_size=4
    ).map(";".join)

    @settings(max_examples=300, deadline=None)
    @given(text=st.one_of(texts, rrules))
    def test_any_text_gives_a_rule_or_a_recurrence_error(text: str) -> None:
        with contextlib.suppress(RecurrenceError):
            rule = repeat(text)
            assert rule.startswith("FREQ=")
            assert repeat(rule) == rule  # normalised rules read back unchanged
            assert describe(rule)
            assert first_occurrence(rule, tz=NEW_YORK, after=NOW) is not None

    @settings(max_examples=200, deadline=None)
    @given(text=texts)
    def test_describe_never_fails(text: str) -> None:
        assert isinstance(describe(text), str)
