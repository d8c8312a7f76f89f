"""Dates and times people type ("tomorrow 5pm", "30 minutes before"), resolved in their time zone.

Rules (wall times are in the caller's zone `tz`, relative to `now`):

- A phrase that names a day but no time of day gets `default_time` ("friday", "dec 3", "in 3 days").
- A bare time ("5pm", "at 17:00", "noon", "midnight", "in the evening") is the next such time after now.
- "at 9" and "9 o'clock" read as 24-hour times (09:00) unless a part of the day follows or precedes
  ("tonight at 9", "friday evening at 7" are 21:00 and 19:00).
- A weekday ("friday", "this friday", "friday 9am") is the soonest such day whose moment is still
  ahead of now, today included; "next friday" is the first Friday after today (on a Friday: a week on).
- "tonight" (20:00), "this morning" (09:00), "this afternoon" (15:00), "this evening" (18:00) and
  "end of day"/"eod" (17:00) are later today; once that hour has passed they mean 23:59 today.
- "end of week"/"eow" is Friday 17:00 of this week (the next Friday once that has passed); "end of
  next week" is the Friday after; "monday next week" is the Monday of the (Monday-Sunday) week after.
- "the 4th" is the next 4th of a month, today included; "a week from monday", "2 days after friday"
  count from the day named.
- Number words are read as digits ("in two days"); "14h" is 14:00.
- A due date that is already set can be moved by a length (`parse_shift`: "+2 days", "by a week",
  "1 hour later", "2 days earlier"); days keep the wall time, hours are elapsed time.
- "end of the month"/"eom" and "last day of february" are that day at 17:00; "end of the year"/"eoy"
  is 31 December at 17:00.
- "the first monday of december", "the last friday of the month", "2nd tuesday in next month": a
  month named alone, or "the month", is the first whose such day is still ahead (today included);
  "this month" and "next month" are taken as said.
- "this weekend" is Saturday (today if it is already Saturday or Sunday) at `default_time`;
  "next weekend" is the Saturday after that; "next week" is next Monday at `default_time`.
- "<day> midnight" is the end of that day (00:00 of the following day).
- "in 2 hours" is an exact moment; "in 3 days", "in 2 weeks", "in a month" keep only the day.
- A month and day without a year ("dec 3") is the next such date, today included.
- A day that is named explicitly ("today 9am", "dec 3 at 4pm") is kept even if that moment has passed.
- Nonexistent local times (DST gap) move forward by the gap; ambiguous ones take the first (fold=0).
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import dateparser
from dateutil.relativedelta import relativedelta

logger = logging.getLogger(__name__)

MAX_PHRASE: Final = 100
MAX_OFFSET: Final = timedelta(days=366)

_EXAMPLES: Final = "try '2026-12-01 17:00', 'tomorrow 5pm', 'next friday' or 'in 2 hours'"
_ZONE_EXAMPLES: Final = "use an IANA name such as 'Europe/Berlin' or 'America/New_York'"
_OFFSET_EXAMPLES: Final = "an offset such as '30 minutes before', '1 hour before', '2 days before' or 'PT30M'"

# dateparser is slow to set up: one settings dict, English only; the clock and zone are added per call.
_DATEPARSER_SETTINGS: Final[dict[str, Any]] = {
    "RETURN_AS_TIMEZONE_AWARE": True,
    "PREFER_DATES_FROM": "future",
    "RETURN_TIME_AS_PERIOD": True,
}
_DATEPARSER_LANGUAGES: Final = ["en"]


class DateParseError(ValueError):
    """A date, time, zone or offset could not be used; `str(error)` says which rule and what works."""


# ---------------------------------------------------------------- zones


_ZONE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "factory", "leapseconds", "tzdata"})


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone `name`; None or "" means UTC."""
    if not name or name.upper() in ("UTC", "Z", "GMT"):
        return ZoneInfo("UTC")
    unknown = DateParseError(f"unknown time zone {name[:64]!r}; {_ZONE_EXAMPLES}")
    if len(name) > 64 or not _ZONE_NAME.fullmatch(name) or name.lower() in _NOT_ZONES:
        raise unknown
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, LookupError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise unknown from exc


def localise(wall: datetime, tz: ZoneInfo) -> datetime:
    """Attach `tz` to a naive wall time; a time in a DST gap moves forward, an ambiguous one takes fold=0."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)


# ---------------------------------------------------------------- vocabularies


def _numbered(groups: Iterable[tuple[str, ...]], start: int) -> dict[str, int]:
    return {name: number for number, names in enumerate(groups, start=start) for name in names}


MONTHS: Final = _numbered(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
     ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
     ("october", "oct"), ("november", "nov"), ("december", "dec")],
    start=1,
)  # fmt: skip
WEEKDAYS: Final = _numbered(
    [("monday", "mon"), ("tuesday", "tue", "tues"), ("wednesday", "wed", "weds"),
     ("thursday", "thu", "thur", "thurs"), ("friday", "fri"), ("saturday", "sat"), ("sunday", "sun")],
    start=0,
)  # fmt: skip
ORDINALS: Final = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "last": -1,
}  # fmt: skip

_PARTS_OF_DAY: Final = {"morning": time(9), "afternoon": time(15), "evening": time(18), "night": time(20)}
_END_OF_TODAY: Final = time(23, 59)
_END_OF_WORKDAY: Final = time(17)

# Words dateparser may see: it "understands" almost anything ('an friday' is 5 January), so a phrase
# goes to it only when every word is one of these or holds a digit.
_DATE_WORDS: Final = frozenset(
    {*MONTHS, *WEEKDAYS, *_PARTS_OF_DAY, "today", "tomorrow", "yesterday", "tonight", "now", "noon",
     "midnight", "midday", "next", "last", "this", "coming", "previous", "ago", "from", "in", "at", "on",
     "of", "the", "and", "am", "pm", "a.m.", "p.m.", "weekend", "fortnight", "st", "nd", "rd", "th"}
)  # fmt: skip
_UNIT_WORDS: Final = frozenset(
    {"second", "minute", "hour", "day", "week", "month", "year", "seconds", "minutes", "hours", "days",
     "weeks", "months", "years", "fortnight"}
)  # fmt: skip


def _plausible(phrase: str) -> bool:
    """Whether every word could belong to a date ('a'/'an' only before a unit, as in 'a week ago')."""
    words = phrase.split()
    for word, following in zip(words, [*words[1:], ""], strict=True):
        if any(ch.isdigit() for ch in word) or word in _DATE_WORDS or word in _UNIT_WORDS:
            continue
        if word in ("a", "an") and following in _UNIT_WORDS:
            continue
        return False
    return True


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of `words`, longest first so 'thurs' wins over 'thu'."""
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_WEEKDAY_RE: Final = alternation(WEEKDAYS)
_MONTH_RE: Final = alternation(MONTHS)


# 'a', 'an' and 'one' are read where they stand ('an hour', 'one day'); these become digits.
NUMBER_WORDS: Final = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45,
    "forty five": 45, "sixty": 60, "ninety": 90,
}  # fmt: skip
_NUMBER_WORD: Final = re.compile(rf"\b(?:{alternation(NUMBER_WORDS)})\b")


def normalise_phrase(text: str) -> str:
    """Lower case, commas as spaces, single spaces, number words as digits ('in two days' -> 'in 2
    days') and '5 pm' written '5pm'."""
    text = " ".join(text.lower().replace(",", " ").split())
    text = _NUMBER_WORD.sub(lambda m: str(NUMBER_WORDS[m[0]]), text)
    return re.sub(r"(\d)\s+([ap]\.?m\.?)(?=\s|$)", r"\1\2", text)


# ---------------------------------------------------------------- times of day


@dataclass(frozen=True)
class _Clock:
    """A time of day as typed; `twelve_hour` when am/pm was given, `end_of_day` for 'midnight',
    `bare_hour` for an hour said without a clock's leading zero ('at 5', "5 o'clock", '3:30')."""

    at: time
    twelve_hour: bool = True
    end_of_day: bool = False
    bare_hour: bool = False

    def meant(self, part: str | None = None) -> time:
        """The time meant, with the part of the day it was said in: 'at 7' in the evening is 19:00,
        and an hour from 1 to 7 alone is the afternoon ('at 5' is 17:00, as people say it; the
        offline model reads it so too); 'at 5' in the morning stays 05:00."""
        hour = self.at.hour
        if self.twelve_hour:
            return self.at
        if part in ("afternoon", "evening", "night") and hour < 12:
            return self.at.replace(hour=hour + 12)
        if part is None and self.bare_hour and 1 <= hour <= 7:
            return self.at.replace(hour=hour + 12)
        return self.at


_CLOCK_TEXT: Final = (
    r"\d{1,2}(?:[:.]\d{2})?[ap]\.?m\.?|\d{1,2}[:h]\d{2}(?::\d{2})?|\d{1,2}h|\d{1,2}\s?o'?clock|noon|midday"
    r"|midnight"
)
_CLOCK_12: Final = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?([ap])\.?m\.?")
_CLOCK_24: Final = re.compile(r"(\d{1,2})[:h](\d{2})(?::(\d{2}))?")
_AT_HOUR: Final = re.compile(r"at (\d{1,2})")
_OCLOCK: Final = re.compile(r"(\d{1,2})(?:\s?o'?clock|h)")  # '9 o'clock', '14h


def _clock(text: str) -> _Clock | None:
    """A time of day from one expression ('5pm', 'at 17:30', 'at 9', 'noon'); None if it is not one."""
    m = _AT_HOUR.fullmatch(text)
    text = text.removeprefix("at ")
    if m or (m := _OCLOCK.fullmatch(text)):
        hour = int(m[1])
        bare = not m[0].endswith("h") and m[1][0] != "0"  # '14h', '5h', 'at 05' are a 24-hour clock
        return _Clock(time(hour), twelve_hour=False, bare_hour=bare) if hour <= 23 else None
    if text in ("noon", "midday"):
        return _Clock(time(12))
    if text == "midnight":
        return _Clock(time(0), end_of_day=True)
    if m := _CLOCK_12.fullmatch(text):
        hour, minute = int(m[1]), int(m[2] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return None
        return _Clock(time(hour % 12 + (12 if m[3] == "p" else 0), minute))
    if m := _CLOCK_24.fullmatch(text):
        hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            return None
        # '3:30' is said like 'at 3' (the afternoon); '03:30' and '3:30:00' are a 24-hour clock.
        bare = len(m[1]) == 1 and m[3] is None and m[0][1] == ":"
        return _Clock(time(hour, minute, second), twelve_hour=False, bare_hour=bare)
    return None


def parse_time_of_day(text: str) -> time | None:
    """A time of day such as '9am', '17:30', 'at 9' (09:00), 'at 5' (17:00), '3:30' (15:30), '03:30',
    'noon' or 'midnight' (00:00); None otherwise."""
    found = _clock(normalise_phrase(text[:MAX_PHRASE]))
    return found.meant() if found else None


# ---------------------------------------------------------------- splitting a phrase into day, time, part


_TIME_AT_END: Final = re.compile(rf"(?:(?P<rest>.*?)\s+)??(?P<clock>(?:at )?(?:{_CLOCK_TEXT})|at \d{{1,2}})")
_TIME_AT_START: Final = re.compile(rf"(?P<clock>(?:at )?(?:{_CLOCK_TEXT}))\s+(?:on\s+)?(?P<rest>.+)")
_PART_AT_END: Final = re.compile(
    r"(?:(?P<rest>.*?)\s+)??(?:(?P<lead>in the|at|this)\s+)?(?P<part>morning|afternoon|evening|night)"
)


def _take_clock(phrase: str) -> tuple[str, _Clock | None]:
    """Split a time of day off the end or the start: 'dec 3 at 4pm' -> ('dec 3', 16:00)."""
    for pattern in (_TIME_AT_END, _TIME_AT_START):
        m = pattern.fullmatch(phrase)
        if m and (found := _clock(m["clock"])):
            return (m["rest"] or "").removesuffix(" at").strip(), found
    return phrase, None


def _take_part(phrase: str) -> tuple[str, str | None, bool]:
    """Split a part of the day off the end: (rest, part, whether it pins today as in 'this evening')."""
    if phrase == "tonight" or phrase.endswith(" tonight"):
        return phrase.removesuffix("tonight").strip(), "night", True
    m = _PART_AT_END.fullmatch(phrase)
    if not m:
        return phrase, None, False
    return m["rest"] or "", m["part"], m["lead"] == "this"


# ---------------------------------------------------------------- which day


DayKind = Literal["pinned", "soonest", "later_today", "bare"]


@dataclass(frozen=True)
class _Day:
    """The day a phrase names and how to settle on it.

    pinned: that date even if the moment has passed; soonest: that date or a week later, whichever
    is the first still ahead; later_today: today, or 23:59 today once the hour has passed; bare: no
    day given, so today if the moment is still ahead, else tomorrow.
    """

    day: date
    kind: DayKind = "pinned"
    default: time | None = None


def _weekday_day(words: str, today: date) -> _Day | None:
    m = re.fullmatch(rf"(?:(this|coming|this coming|next)\s+)?({_WEEKDAY_RE})", words)
    if not m:
        return None
    ahead = (WEEKDAYS[m[2]] - today.weekday()) % 7
    if m[1] == "next":
        return _Day(today + timedelta(days=ahead or 7))
    return _Day(today + timedelta(days=ahead), kind="soonest")


def _check_day_of_month(month: int, day: int) -> None:
    if not 1 <= day <= calendar.monthrange(2028, month)[1]:  # 2028 is a leap year
        raise DateParseError(
            f"{calendar.month_name[month]} has no day {day}; give a real date such as "
            f"'{calendar.month_abbr[month].lower()} 1' or '2026-12-01'"
        )


def _month_day(words: str, today: date) -> _Day | None:
    m = re.fullmatch(
        rf"(?:(?P<m1>{_MONTH_RE})\s+(?:the\s+)?(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?"
        rf"|(?:the\s+)?(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_MONTH_RE}))"
        r"(?:\s+(?P<year>\d{4}))?",
        words,
    )
    if not m:
        return None
    month, day = MONTHS[m["m1"] or m["m2"]], int(m["d1"] or m["d2"])
    _check_day_of_month(month, day)
    if m["year"]:
        return _Day(_calendar_date(int(m["year"]), month, day))
    for year in range(today.year, today.year + 9):
        if calendar.monthrange(year, month)[1] >= day and date(year, month, day) >= today:
            return _Day(date(year, month, day))
    return None  # pragma: no cover - every month and day recurs within 8 years


def _calendar_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise DateParseError(
            f"{year:04d}-{month:02d}-{day:02d} is not a date on the calendar; {_EXAMPLES}"
        ) from exc


_RELATIVE_DAYS: Final = re.compile(
    r"(?:in\s+(?P<n1>an?|one|\d{1,4})\s+(?P<u1>day|week|month|year|fortnight)s?"
    r"|(?P<n2>an?|one|\d{1,4})\s+(?P<u2>day|week|month|year|fortnight)s?\s+from\s+(?:now|today))"
)


def _relative_day(words: str, today: date) -> _Day | None:
    m = _RELATIVE_DAYS.fullmatch(words)
    if not m:
        return None
    number, unit = m["n1"] or m["n2"], m["u1"] or m["u2"]
    amount = int(amount_of(number))
    steps = {
        "day": relativedelta(days=amount),
        "week": relativedelta(weeks=amount),
        "fortnight": relativedelta(weeks=2 * amount),
        "month": relativedelta(months=amount),
        "year": relativedelta(years=amount),
    }
    return _Day(today + steps[unit])


def _ordinal_day(words: str, today: date) -> _Day | None:
    """'the 4th': the next 4th of a month, today included (the 31st skips the months without one)."""
    m = re.fullmatch(r"(?:the )?(\d{1,2})(?:st|nd|rd|th)", words)
    if not m:
        return None
    if not 1 <= (day := int(m[1])) <= 31:
        raise DateParseError(f"no month has a {words.removeprefix('the ')} day; {_EXAMPLES}")
    for ahead in range(3):
        month = today.replace(day=1) + relativedelta(months=ahead)
        if (
            day <= calendar.monthrange(month.year, month.month)[1]
            and (found := month.replace(day=day)) >= today
        ):
            return _Day(found)
    return None  # pragma: no cover - a 1st to 31st comes within three months


def _later_day(words: str, today: date) -> _Day | None:
    """'a week from monday', '2 days after friday': counted from the day named."""
    m = re.fullmatch(r"(?P<n>an?|one|\d{1,3}) (?P<unit>day|week)s? (?:from|after) (?P<day>.+)", words)
    if not m or m["day"] in ("now", "today") or (base := _named_day(m["day"], today)) is None:
        return None
    amount = int(amount_of(m["n"]))
    return _Day(base.day + timedelta(days=amount * (7 if m["unit"] == "week" else 1)), default=base.default)


def _week_day(words: str, today: date) -> _Day | None:
    saturday = today + timedelta(days=5 - today.weekday())  # this (Monday-Sunday) week's Saturday
    if m := re.fullmatch(rf"({_WEEKDAY_RE}) next week|next week ({_WEEKDAY_RE})", words):
        return _Day(saturday + timedelta(days=2 + WEEKDAYS[m[1] or m[2]]))  # in the Monday-Sunday week after
    if words in ("end of next week", "the end of next week"):
        return _Day(saturday + timedelta(days=6), default=_END_OF_WORKDAY)
    if words in ("this weekend", "weekend", "the weekend", "this coming weekend"):
        return _Day(max(saturday, today))
    if words == "next weekend":
        return _Day(saturday + timedelta(days=7))
    if words == "next week":
        return _Day(today + timedelta(days=7 - today.weekday()))
    if words in ("end of week", "end of the week", "end of this week", "eow"):
        return _Day(saturday - timedelta(days=1), kind="soonest", default=_END_OF_WORKDAY)
    return None


_WHICH_MONTH: Final = (
    rf"(?P<this>this month)|(?:the )?month|(?P<next>next month)|(?P<month>{_MONTH_RE})(?: (?P<year>\d{{4}}))?"
)
_MONTH_END: Final = re.compile(rf"(?:the )?(?:end|last day) of (?:{_WHICH_MONTH})")
_YEAR_END: Final = re.compile(r"(?:the )?(?:end|last day) of (?:the |this )?year|eoy")
_NTH_WEEKDAY: Final = re.compile(
    rf"(?:the )?(?P<ord>{alternation(ORDINALS)}) (?P<day>{_WEEKDAY_RE}) (?:of|in) (?P<which>{_WHICH_MONTH})"
)


def _in_month(m: re.Match[str], today: date, pick: Callable[[int, int], date | None]) -> date | None:
    """`pick(year, month)` in the month a phrase names: 'this month' and 'next month' as said; 'the
    month' and 'december' the first whose day is still ahead (today included); 'december 2027' as said."""
    if m["this"] or m["next"]:
        month = today + relativedelta(months=1 if m["next"] else 0)
        return pick(month.year, month.month)
    if m["year"]:
        return pick(int(m["year"]), MONTHS[m["month"]])
    for ahead in range(13 if m["month"] else 2):
        month = today + relativedelta(months=ahead)
        if m["month"] and month.month != MONTHS[m["month"]]:
            continue
        if (found := pick(month.year, month.month)) and found >= today:
            return found
    return None


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _period_end_day(words: str, today: date) -> _Day | None:
    """'end of the month', 'last day of february', 'end of the year': that day, 17:00 by default."""
    found = None
    if words == "eom":
        found = _month_end(today.year, today.month)
    elif m := _MONTH_END.fullmatch(words):
        found = _in_month(m, today, _month_end)
    elif _YEAR_END.fullmatch(words):
        found = date(today.year, 12, 31)
    return _Day(found, default=_END_OF_WORKDAY) if found else None


def _nth_weekday_day(words: str, today: date) -> _Day | None:
    """'the first monday of december', 'the last friday of the month', '2nd tuesday in next month'."""
    if not (m := _NTH_WEEKDAY.fullmatch(words)):
        return None
    nth, weekday = ORDINALS[m["ord"]], WEEKDAYS[m["day"]]

    def nth_weekday(year: int, month: int) -> date | None:
        days = [
            d
            for d in range(1, calendar.monthrange(year, month)[1] + 1)
            if date(year, month, d).weekday() == weekday
        ]
        return date(year, month, days[nth - 1 if nth > 0 else nth]) if nth <= len(days) else None

    if found := _in_month(m, today, nth_weekday):
        return _Day(found)
    raise DateParseError(f"{m['which']} has no {m['ord']} {m['day']}; {_EXAMPLES}")


_SIMPLE_DAYS: Final = {
    "today": 0, "tomorrow": 1, "tmrw": 1, "tmr": 1, "day after tomorrow": 2, "the day after tomorrow": 2,
    "yesterday": -1,
}  # fmt: skip
_END_OF_DAY_WORDS: Final = frozenset(
    {"end of day", "end of the day", "end of today", "eod", "cob", "close of business"}
)


def _named_day(words: str, today: date) -> _Day | None:
    """The day named by a phrase stripped of its time of day; None if it is not one we know."""
    if words in _SIMPLE_DAYS:
        return _Day(today + timedelta(days=_SIMPLE_DAYS[words]))
    if words in _END_OF_DAY_WORDS:
        return _Day(today, kind="later_today", default=_END_OF_WORKDAY)
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", words):
        return _Day(_calendar_date(int(m[1]), int(m[2]), int(m[3])))
    readers = (
        _weekday_day,
        _month_day,
        _ordinal_day,
        _relative_day,
        _week_day,
        _period_end_day,
        _nth_weekday_day,
        _later_day,
    )
    for reader in readers:
        if found := reader(words, today):
            return found
    return None


# ---------------------------------------------------------------- day + time -> moment


def _time_for(clock: _Clock | None, part: str | None, day: _Day, default_time: time) -> time:
    if clock is not None:
        return clock.meant(part)
    if part is not None:
        return _PARTS_OF_DAY[part]
    return day.default or default_time


def _settle(day: _Day, at: time, end_of_day: bool, tz: ZoneInfo, now: datetime) -> datetime:
    def moment(on: date) -> datetime:
        return localise(datetime.combine(on + timedelta(days=int(end_of_day)), at), tz)

    first = moment(day.day)
    if day.kind == "pinned" or first.timestamp() > now.timestamp():  # same tzinfo would compare wall times
        return first
    if day.kind == "soonest":
        return moment(day.day + timedelta(days=7))
    if day.kind == "bare":
        return moment(day.day + timedelta(days=1))
    return localise(datetime.combine(day.day, _END_OF_TODAY), tz)


def _day_and_time(phrase: str, tz: ZoneInfo, now: datetime, default_time: time) -> datetime | None:
    rest, part, this_part = _take_part(phrase)
    rest, clock = _take_clock(rest)
    if part is None:
        rest, part, this_part = _take_part(rest)
    today = now.date()
    day: _Day | None
    if this_part:
        day = None if rest else _Day(today, kind="pinned" if clock else "later_today")
    elif not rest:
        day = _Day(today, kind="bare") if clock or part else None
    else:
        day = _named_day(rest, today)
    if day is None:
        return None
    at = _time_for(clock, part, day, default_time)
    return _settle(day, at, bool(clock and clock.end_of_day), tz, now)


# ---------------------------------------------------------------- exact forms


_ISO: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[t ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:z|[+-]\d{2}(?::?\d{2})?)?"
)


def _iso(phrase: str, tz: ZoneInfo) -> datetime | None:
    """An ISO 8601 date and time; a plain date goes through the day rules to get the default time."""
    if not _ISO.fullmatch(phrase):
        return None
    try:
        parsed = datetime.fromisoformat(phrase.upper())
    except ValueError as exc:
        raise DateParseError(
            f"{phrase!r} is not a valid ISO 8601 date and time ({exc}); {_EXAMPLES}"
        ) from exc
    return localise(parsed, tz) if parsed.tzinfo is None else parsed.astimezone(tz)


_DURATION_UNITS: Final = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "wk": 604800, "wks": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_DAY_SIZED: Final = 86400
# A number, or a word for one that stands alone ('and 30 minutes' is not 'an' 'd'ay and 30 minutes).
_AMOUNT: Final = r"(?:[+-]?\d{1,9}(?:\.\d{1,6})?|\b(?:an?|one|half an?)(?=\s))"
_UNIT_RE: Final = alternation(_DURATION_UNITS)
_TERM_TEXT: Final = rf"{_AMOUNT}\s*(?:{_UNIT_RE})"
_TERMS_TEXT: Final = rf"{_TERM_TEXT}(?:\s*(?:and\s+)?{_TERM_TEXT})*"
_TERM: Final = re.compile(rf"(?P<amount>{_AMOUNT})\s*(?P<unit>{_UNIT_RE})(?![a-z])")
_RELATIVE_EXACT: Final = re.compile(rf"in\s+(?P<a>{_TERMS_TEXT})|(?P<b>{_TERMS_TEXT})\s+(?:from now|later)")


def amount_of(text: str) -> float:
    """The number in '2', '1.5', 'a', 'an', 'one' or 'half an'."""
    if text.startswith("half"):
        return 0.5
    return 1.0 if text in ("a", "an", "one") else float(text)


def _duration(terms: str) -> tuple[float, bool]:
    """Seconds in '1 hour 30 minutes', and whether every unit is a whole day or week."""
    seconds, whole_days = 0.0, True
    for term in _TERM.finditer(terms):
        size = _DURATION_UNITS[term["unit"]]
        seconds += amount_of(term["amount"]) * size
        whole_days = whole_days and size >= _DAY_SIZED and amount_of(term["amount"]).is_integer()
    return seconds, whole_days


def _relative(phrase: str, now: datetime, tz: ZoneInfo, default_time: time) -> datetime | None:
    """'in 2 hours' (an exact moment) or 'in 3 days' (that day at `default_time`)."""
    if phrase in ("now", "right now", "immediately"):
        return now
    m = _RELATIVE_EXACT.fullmatch(phrase)
    if not m:
        return None
    seconds, whole_days = _duration(m["a"] or m["b"])
    if whole_days:
        on = now.date() + timedelta(days=seconds // _DAY_SIZED)
        return localise(datetime.combine(on, default_time), tz)
    return (now.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(tz)  # elapsed, not wall, time


# ---------------------------------------------------------------- moving a due date by a length


_SHIFT: Final = re.compile(
    rf"(?:(?P<sign>[+-])\s*|by\s+)?(?P<terms>{_TERMS_TEXT})(?:\s+(?P<side>later|earlier|back|forward|ahead))?"
)


def parse_shift(text: str) -> tuple[int, timedelta] | None:
    """How far to move a due date that is already set: '+2 days', 'by a week', '1 hour later',
    '2 days earlier' -> (whole days, the rest); None if the text is not such a length.

    Whole days and weeks move the day and keep the wall time (across a DST change too); hours and
    minutes are elapsed time.
    """
    phrase = normalise_phrase(text[:MAX_PHRASE]).rstrip(".!")
    m = _SHIFT.fullmatch(phrase)
    if not m or not (m["sign"] or m["side"] or phrase.startswith("by ")):
        return None  # a bare '2 days' is refused by parse_when as a length, not a moment
    seconds, whole_days = _duration(m["terms"])
    sign = -1 if m["sign"] == "-" or m["side"] == "earlier" else 1
    if whole_days:
        return sign * int(seconds // _DAY_SIZED), timedelta(0)
    return 0, timedelta(seconds=sign * seconds)


def shifted(moment: datetime, shift: tuple[int, timedelta], tz: ZoneInfo) -> datetime:
    """`moment` moved by a `parse_shift` result, in `tz`."""
    days, elapsed = shift
    if days:
        wall = moment.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
        return localise(wall, tz)
    return (moment.astimezone(UTC) + elapsed).astimezone(tz)


# ---------------------------------------------------------------- dateparser, for the rest


def _with_dateparser(phrase: str, tz: ZoneInfo, now: datetime, default_time: time) -> datetime | None:
    if not _plausible(phrase):
        return None
    settings = {**_DATEPARSER_SETTINGS, "RELATIVE_BASE": now.replace(tzinfo=None), "TIMEZONE": str(tz)}
    try:
        parser = dateparser.DateDataParser(languages=_DATEPARSER_LANGUAGES, settings=settings)
        data = parser.get_date_data(phrase)
    except Exception:  # dateparser fails in many ways on odd input; "not understood" is the answer
        logger.debug("dateparser failed on %r", phrase, exc_info=True)
        return None
    found = data.date_obj
    if not isinstance(found, datetime):
        return None
    if data.period in ("time", "part_of_day"):
        return found.astimezone(tz) if found.tzinfo else localise(found, tz)
    return localise(datetime.combine(found.date(), default_time), tz)


# ---------------------------------------------------------------- parse_when


def _clean(text: str) -> str:
    if not text.strip():
        raise DateParseError(f"a date or time is required but the text is empty; {_EXAMPLES}")
    if len(text) > MAX_PHRASE:
        raise DateParseError(
            f"a date or time must be at most {MAX_PHRASE} characters (got {len(text)}); {_EXAMPLES}"
        )
    phrase = normalise_phrase(text).rstrip(".!?")
    for prefix in ("due on ", "due by ", "due ", "by ", "on "):
        phrase = phrase.removeprefix(prefix)
    return phrase.strip()


def _refuse_ambiguous(phrase: str) -> None:
    if re.fullmatch(r"\d+", phrase):
        raise DateParseError(
            f"{phrase[:20]!r} alone is ambiguous; give a date or time such as 'at 9', '9am' or 'dec 9'"
        )
    if m := re.fullmatch(rf"{_TERMS_TEXT}", phrase):
        raise DateParseError(
            f"{m[0]!r} is a length of time, not a moment; say 'in {m[0]}' for a moment from now, "
            f"or '{m[0]} before' for a reminder before the due time"
        )


# Written as a time of day, valid or not ('25:00', '13pm', 'at 24'): refused when invalid, never
# dropped (a parser that skips what it cannot read would save "tomorrow 25:00" as tomorrow 9:00).
_CLOCK_SHAPED: Final = re.compile(
    r"(?<![\w:.+-])(?:\d{1,2}(?:[:.]\d{2})?[ap]\.?m\.?|\d{1,2}:\d{2}(?::\d{2})?|at \d{1,2})(?![\w:])"
)

_RELATIVE_WITHIN: Final = re.compile(rf"\b(?:{_RELATIVE_EXACT.pattern})(?![a-z])")  # whole words


def _a_number_in_place(words: list[str], index: int) -> bool:
    """Whether the bare number `words[index]` reads as part of a date or time: a day beside its
    month ('dec 5', '5 dec'), 'the 5', an hour after 'at', an amount before its unit ('2 days').
    Elsewhere ('tomorrow 5', 'monday 5', '5 30') dateparser would drop it or make it a month."""
    before = words[index - 1] if index else ""
    after = words[index + 1] if index + 1 < len(words) else ""
    if before in MONTHS or after in MONTHS or before in ("at", "the") or after in ("o'clock", "oclock"):
        return True
    return after in _UNIT_WORDS or (bool(after) and _TERM.fullmatch(f"{words[index]} {after}") is not None)


def _refuse_contradictions(phrase: str) -> None:
    """Refuse what no reading could honour whole: an impossible time of day, a bare number that is
    neither a day nor a time ('tomorrow 5'), or a moment 'in 3 hours' given together with another
    day or time ('in 3 hours 5pm'). Each was read before as part of the phrase, the rest dropped."""
    for clock in _CLOCK_SHAPED.finditer(phrase):
        if _clock(clock[0]) is None:
            raise DateParseError(
                f"{clock[0].removeprefix('at ')!r} is not a time of day: hours 0-23 and minutes 0-59, "
                f"or 1-12 with am/pm; {_EXAMPLES}"
            )
    words = phrase.split()
    for index, word in enumerate(words):
        if re.fullmatch(r"\d{1,2}", word) and not _a_number_in_place(words, index):
            raise DateParseError(
                f"{word!r} in {phrase!r} is neither a day of a month nor a time of day: write a day"
                f" as 'dec {word}' and a time as '5pm' or '17:30'"
            )
    m = _RELATIVE_WITHIN.search(phrase)
    if m and m[0] != phrase and not _duration(m["a"] or m["b"])[1]:
        raise DateParseError(
            f"{m[0]!r} is a moment by itself: give it alone, or a day and a time such as 'tomorrow 5pm'"
        )


def parse_when(text: str, *, tz: ZoneInfo, now: datetime, default_time: time = time(9, 0)) -> datetime:
    """An absolute moment from ISO 8601 or everyday English, in `tz`, relative to the aware `now`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    phrase = _clean(text)
    _refuse_ambiguous(phrase)
    _refuse_contradictions(phrase)
    local_now = now.astimezone(tz)
    try:
        found = (
            _iso(phrase, tz)
            or _relative(phrase, local_now, tz, default_time)
            or _day_and_time(phrase, tz, local_now, default_time)
            or _with_dateparser(phrase, tz, local_now, default_time)
        )
    except DateParseError:
        raise
    except (OverflowError, ValueError) as exc:
        raise DateParseError(f"{text.strip()[:40]!r} is out of range (too far away); {_EXAMPLES}") from exc
    if found is None:
        raise DateParseError(f"could not understand {text.strip()!r} as a date or time; {_EXAMPLES}")
    return found


# ---------------------------------------------------------------- offsets before a due time


_OFFSET_PHRASE: Final = re.compile(
    rf"(?P<terms>{_TERMS_TEXT})\s+(?P<side>before|early|earlier|prior|ahead|in advance|beforehand"
    r"|before due|before it is due|before the due time|after|later|late)"
)
_ISO_DURATION: Final = re.compile(
    r"(?P<sign>[+-])?p(?:(?P<y>\d+)y)?(?:(?P<mo>\d+)m)?(?:(?P<w>\d+(?:\.\d+)?)w)?(?:(?P<d>\d+(?:\.\d+)?)d)?"
    r"(?:t(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<mi>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?)?"
)
_ISO_SIZES: Final = (("w", 604800), ("d", 86400), ("h", 3600), ("mi", 60), ("s", 1))


def _iso_offset(phrase: str) -> timedelta | None:
    m = _ISO_DURATION.fullmatch(phrase)
    if not m or phrase.endswith("t") or not any(m[k] for k in ("y", "mo", "w", "d", "h", "mi", "s")):
        return None
    if m["y"] or m["mo"]:
        raise DateParseError(
            f"{phrase.upper()!r}: years and months have no fixed length, so a reminder offset cannot use "
            "them; use days or weeks, e.g. 'P30D' or 'P2W'"
        )
    seconds = sum(float(m[key] or 0) * size for key, size in _ISO_SIZES)
    return timedelta(seconds=-seconds if m["sign"] == "-" else seconds)


def _phrase_offset(phrase: str) -> timedelta | None:
    m = _OFFSET_PHRASE.fullmatch(phrase)
    if not m:
        return None
    seconds, _ = _duration(m["terms"])
    return timedelta(seconds=-seconds if m["side"] in ("after", "later", "late") else seconds)


# "the day before" is a day before ("the night before" too: a reminder the evening before would
# need a time of day, which an offset does not have)
_THE_UNIT: Final = re.compile(r"^the (day|night|week|hour)(?= )")


def parse_offset(text: str) -> timedelta | None:
    """How long before a due time ('30 minutes before', 'the day before', 'PT30M'); None if the text
    is not an offset."""
    if len(text) > MAX_PHRASE:
        return None
    phrase = normalise_phrase(text).rstrip(".!")
    phrase = _THE_UNIT.sub(lambda m: "1 day" if m[1] == "night" else f"1 {m[1]}", phrase)
    try:
        offset = _iso_offset(phrase)
        if offset is None:
            offset = _phrase_offset(phrase)
    except OverflowError:
        offset = MAX_OFFSET * 2
    if offset is None:
        return None
    if offset <= timedelta(0):
        raise DateParseError(
            f"a reminder offset must be more than zero and before the due time (got {text.strip()!r}); "
            f"use {_OFFSET_EXAMPLES}"
        )
    if offset > MAX_OFFSET:
        raise DateParseError(
            f"a reminder offset can be at most 366 days before the due time (got {text.strip()!r}); "
            f"use {_OFFSET_EXAMPLES}"
        )
    return timedelta(seconds=max(1, round(offset.total_seconds())))


_DESCRIBE_UNITS: Final = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def describe_offset(offset: timedelta) -> str:
    """Words in the largest whole unit: '30 minutes before', '1 hour before', '90 minutes before'."""
    seconds = int(offset.total_seconds())
    for unit, size in _DESCRIBE_UNITS:
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} before"
    return f"{seconds} seconds before"
