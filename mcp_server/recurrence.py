"""Repeating tasks: phrases and RFC 5545 RRULEs, evaluated on the wall clock of the user's time zone.

A rule is stored as a normalised RRULE body without DTSTART ('FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE');
the series is anchored on each occurrence's due moment, so "every day at 9" stays at 09:00 local
across DST changes. COUNT counts the occurrences of the whole series; UNTIL is a UTC moment (a phrase
"until march 1" means the end of that local day).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from mcp_server.dates import (
    MONTHS,
    ORDINALS,
    WEEKDAYS,
    DateParseError,
    alternation,
    amount_of,
    localise,
    normalise_phrase,
    parse_time_of_day,
    parse_when,
)

ALLOWED_FREQS: Final = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_RULE: Final = 200
HORIZON_YEARS: Final = 30  # occurrences are looked for this far ahead, no further

_FREQS_TEXT: Final = "HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY"
_EXAMPLES: Final = (
    "try 'daily', 'every weekday', 'every 2 weeks on mon,wed', 'monthly on the last friday' "
    "or an RRULE such as 'FREQ=WEEKLY;BYDAY=MO'"
)
_PART_ORDER: Final = (
    "FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY",
    "BYSETPOS", "BYHOUR", "BYMINUTE", "BYSECOND", "WKST",
)  # fmt: skip
_DAY_CODES: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WORKWEEK: Final = "MO,TU,WE,TH,FR"
_WEEKEND: Final = "SA,SU"

Parts = dict[str, str]


class RecurrenceError(ValueError):
    """A repeat rule or phrase could not be used; `str(error)` says which rule and what works."""


# ---------------------------------------------------------------- RRULE text -> canonical parts


_INT_RANGES: Final = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}  # name: (low, high, whether -high..-low is allowed too)
_MAX_VALUES: Final = {"BYSECOND": 1, "BYMINUTE": 4}  # more would fire every few minutes
_BYDAY_ITEM: Final = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL: Final = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?")


def _int_list(name: str, value: str) -> str:
    low, high, negative = _INT_RANGES[name]
    allowed = f"{low} to {high}" + (f" or -{high} to -{low}" if negative else "")
    numbers: set[int] = set()
    for item in value.split(","):
        if not re.fullmatch(r"[+-]?\d{1,3}", item.strip()):
            raise RecurrenceError(
                f"{name} must be a comma-separated list of numbers {allowed} (got {value!r})"
            )
        number = int(item)
        if not (low <= number <= high or (negative and -high <= number <= -low)):
            raise RecurrenceError(f"{name} values must be {allowed} (got {number})")
        numbers.add(number)
    if len(numbers) > _MAX_VALUES.get(name, 400):
        raise RecurrenceError(
            f"{name} may hold at most {_MAX_VALUES[name]} value(s); more would make a task fire every "
            f"few minutes (got {value!r})"
        )
    return ",".join(str(n) for n in sorted(numbers))


def _byday(value: str, freq: str) -> str:
    items: set[tuple[int, int]] = set()
    for item in value.split(","):
        m = _BYDAY_ITEM.fullmatch(item.strip())
        if not m:
            raise RecurrenceError(
                f"BYDAY must list days such as 'MO,WE' or, for MONTHLY and YEARLY, '1MO' or '-1FR' "
                f"(got {value!r})"
            )
        nth = int(m[1] or 0)
        limit = 5 if freq == "MONTHLY" else 53
        if m[1] and (freq not in ("MONTHLY", "YEARLY") or not 1 <= abs(nth) <= limit):
            raise RecurrenceError(
                f"BYDAY {item.strip()!r}: a numbered weekday needs FREQ=MONTHLY (1 to 5 or -1 to -5) or "
                "FREQ=YEARLY (1 to 53 or -1 to -53), e.g. 'FREQ=MONTHLY;BYDAY=-1FR'"
            )
        items.add((_DAY_CODES.index(m[2]), nth))
    return ",".join(f"{nth or ''}{_DAY_CODES[day]}" for day, nth in sorted(items))


def _whole_number(name: str, value: str, example: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value) or int(value) < 1:
        raise RecurrenceError(f"{name} must be a whole number of at least 1 (got {value!r}); e.g. {example}")
    return int(value)


def _until_utc(value: str, tz: ZoneInfo | None) -> datetime:
    """UNTIL as an aware UTC moment; a date means the end of that day, a floating time is wall time in tz."""
    m = _UNTIL.fullmatch(value)
    if not m:
        raise RecurrenceError(
            f"UNTIL must look like '20270131' or '20270131T235959Z' (got {value!r}); "
            "in a phrase say 'until 2027-01-31' or 'until march 1'"
        )
    try:
        if m[4] is None:
            wall = datetime(int(m[1]), int(m[2]), int(m[3]), 23, 59, 59)
        else:
            wall = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
        if m[7]:
            return wall.replace(tzinfo=UTC)
        return localise(wall, tz or ZoneInfo("UTC")).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise RecurrenceError(f"UNTIL {value!r} is not a real date and time ({exc})") from exc


def _format_until(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _split(body: str) -> Parts:
    raw: Parts = {}
    for item in body.split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or not name or not value:
            raise RecurrenceError(
                f"every RRULE part must be NAME=VALUE (got {item.strip()[:40]!r}); {_EXAMPLES}"
            )
        if name == "DTSTART":
            raise RecurrenceError(
                "DTSTART is not allowed in a repeat rule; the series starts at the task's due date"
            )
        if name not in _PART_ORDER:
            raise RecurrenceError(f"unknown RRULE part {name[:20]!r}; use {', '.join(_PART_ORDER)}")
        if name in raw:
            raise RecurrenceError(f"the RRULE part {name} appears twice; give it once")
        raw[name] = value
    return raw


def _check_freq(raw: Parts) -> str:
    freq = raw.get("FREQ")
    if freq is None:
        raise RecurrenceError(f"an RRULE needs FREQ, one of {_FREQS_TEXT}; e.g. 'FREQ=WEEKLY;BYDAY=MO'")
    if freq in ("MINUTELY", "SECONDLY"):
        raise RecurrenceError(
            f"FREQ={freq} is not allowed: repeating more often than hourly would flood reminders; "
            f"use {_FREQS_TEXT}"
        )
    if freq not in ALLOWED_FREQS:
        raise RecurrenceError(f"unknown FREQ {freq[:20]!r}; use {_FREQS_TEXT}")
    return freq


_NOT_WITH: Final = {
    "BYWEEKNO": ("YEARLY",),
    "BYYEARDAY": ("HOURLY", "YEARLY"),
    "BYMONTHDAY": ("HOURLY", "DAILY", "MONTHLY", "YEARLY"),
}  # part: the FREQs RFC 5545 allows it with


_MAX_INTERVAL: Final = {"HOURLY": 1000, "DAILY": 1000, "WEEKLY": 520, "MONTHLY": 120, "YEARLY": 10}
_HOURLY_PARTS: Final = frozenset({"BYDAY", "BYHOUR", "BYMINUTE", "BYSECOND", "WKST"})


def _interval(raw: Parts, freq: str) -> int:
    if "INTERVAL" not in raw:
        return 1
    n = _whole_number("INTERVAL", raw["INTERVAL"], "'FREQ=WEEKLY;INTERVAL=2'")
    if n > _MAX_INTERVAL[freq]:
        raise RecurrenceError(f"INTERVAL must be at most {_MAX_INTERVAL[freq]} with FREQ={freq} (got {n})")
    return n


def _by_part(name: str, value: str, freq: str) -> str:
    if name in _NOT_WITH and freq not in _NOT_WITH[name]:
        raise RecurrenceError(f"{name} cannot be used with FREQ={freq} (RFC 5545)")
    if freq == "HOURLY" and name not in _HOURLY_PARTS:
        raise RecurrenceError(
            f"an HOURLY repeat may only be narrowed with BYDAY, BYHOUR and BYMINUTE (got {name})"
        )
    if name == "BYDAY":
        return _byday(value, freq)
    if name == "WKST":
        if value not in _DAY_CODES:
            raise RecurrenceError(f"WKST must be one of {','.join(_DAY_CODES)} (got {value[:10]!r})")
        return value
    return _int_list(name, value)


def _canonical(raw: Parts, tz: ZoneInfo | None) -> Parts:
    """Check every part of an RRULE and give each its canonical spelling."""
    freq = _check_freq(raw)
    parts: Parts = {"FREQ": freq}
    if "COUNT" in raw and "UNTIL" in raw:
        raise RecurrenceError("an RRULE may have COUNT or UNTIL but not both; e.g. 'FREQ=DAILY;COUNT=5'")
    if (interval := _interval(raw, freq)) > 1:
        parts["INTERVAL"] = str(interval)
    if "COUNT" in raw:
        parts["COUNT"] = str(_whole_number("COUNT", raw["COUNT"], "'FREQ=DAILY;COUNT=5'"))
    if "UNTIL" in raw:
        parts["UNTIL"] = _format_until(_until_utc(raw["UNTIL"], tz))
    for name in _PART_ORDER[4:]:
        if name in raw:
            parts[name] = _by_part(name, raw[name], freq)
    return {name: parts[name] for name in _PART_ORDER if name in parts}


def _format(parts: Parts) -> str:
    return ";".join(f"{name}={parts[name]}" for name in _PART_ORDER if name in parts)


def _parse_rule(rule: str, tz: ZoneInfo | None) -> Parts:
    body = rule.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if "DTSTART" in body.upper():
        raise RecurrenceError(
            "DTSTART is not allowed in a repeat rule; the series starts at the task's due date"
        )
    if "\n" in body or "\r" in body or ":" in body:
        raise RecurrenceError(f"give a single RRULE such as 'FREQ=WEEKLY;BYDAY=MO' (got {rule[:60]!r})")
    return _canonical(_split(body), tz)


# ---------------------------------------------------------------- evaluating a rule


def _walls(parts: Parts, dtstart: datetime) -> Iterator[datetime]:
    """Naive wall times of the rule from `dtstart`, without COUNT and UNTIL, at most HORIZON_YEARS ahead."""
    horizon = datetime(min(dtstart.year + HORIZON_YEARS, 9999), 12, 31, 23, 59, 59)
    body = _format({k: v for k, v in parts.items() if k not in ("COUNT", "UNTIL")})
    try:
        rule = rrulestr(f"{body};UNTIL={horizon:%Y%m%dT%H%M%S}", dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"the rule {_format(parts)!r} is not valid: {exc}") from exc
    return iter(rule)


_PROBE_FROM: Final = 9944


def _ever_occurs(parts: Parts, dtstart: datetime) -> bool:
    """Whether the rule matches any day at all ('FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30' never does).

    dateutil checks UNTIL only when a period has matches, so for a rule that never matches it walks
    every period up to the year 9999 (seconds for DAILY). Asking from a start with the same calendar
    (same year modulo 28) in 9944-9971, a span with no skipped leap year, keeps that walk short.
    """
    probe = dtstart.replace(year=_PROBE_FROM + (dtstart.year - _PROBE_FROM) % 28)
    return next(_walls(parts, probe), None) is not None


def _first_after(
    parts: Parts, tz: ZoneInfo, dtstart: datetime, after: datetime, *, inclusive: bool = False
) -> datetime | None:
    """The first occurrence after the aware `after` (or at it, if `inclusive`), or None when the
    series has ended."""
    if not _ever_occurs(parts, dtstart):
        return None
    until = _until_utc(parts["UNTIL"], tz) if "UNTIL" in parts else None
    try:
        for wall in _walls(parts, dtstart):
            moment = localise(wall, tz)
            if moment.timestamp() < after.timestamp() or (
                not inclusive and moment.timestamp() == after.timestamp()
            ):
                continue
            if until is not None and moment.timestamp() > until.timestamp():
                return None
            return moment
    except OverflowError:  # the end of the calendar
        return None
    return None


def _time_default(parts: Parts, default_time: time) -> time:
    """The time of day to anchor a new series on when the rule does not fix it."""
    if "BYHOUR" in parts:
        return time(0, 0)
    return default_time.replace(
        second=0, microsecond=0, minute=0 if "BYMINUTE" in parts else default_time.minute
    )


def first_occurrence(
    rule: str, *, tz: ZoneInfo, after: datetime, default_time: time = time(9, 0)
) -> datetime | None:
    """The first occurrence strictly after `after`, for a repeating task added without a due date."""
    parts = _parse_rule(rule, tz)
    local = after.astimezone(tz)
    if parts["FREQ"] == "HOURLY":
        dtstart = local.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    else:
        dtstart = datetime.combine(local.date(), _time_default(parts, default_time))
    return _first_after(parts, tz, dtstart, after)


def first_from(rule: str, *, tz: ZoneInfo, start: datetime) -> datetime | None:
    """The first occurrence at or after `start`, the due date a rule was given with.

    A start off the rule ("every weekday" from a Saturday) is undefined in RFC 5545; a task due on
    a day its own rule skips would make no sense, so the series begins at the rule's first day
    from there, at the start's time of day unless the rule fixes one. None when the rule has
    ended by then.
    """
    parts = _parse_rule(rule, tz)
    wall = start.astimezone(tz).replace(tzinfo=None)
    return _first_after(parts, tz, wall, start, inclusive=True)


def next_occurrence(rule: str, *, tz: ZoneInfo, current: datetime, index: int) -> datetime | None:
    """The occurrence after `current` (occurrence number `index`, 1-based); None when the series is over."""
    parts = _parse_rule(rule, tz)
    if "COUNT" in parts and index >= int(parts["COUNT"]):
        return None
    wall = current.astimezone(tz).replace(tzinfo=None)
    return _first_after(parts, tz, wall, current)


# ---------------------------------------------------------------- phrases -> parts


_ORDINALS: Final = {
    **ORDINALS, "second last": -2, "second to last": -2, "next to last": -2, "penultimate": -2,
}  # fmt: skip
_DAY_WORDS: Final = {**WEEKDAYS, **{f"{name}s": n for name, n in WEEKDAYS.items() if name.endswith("day")}}
_DAY: Final = alternation(_DAY_WORDS)
_DAYLIST: Final = rf"(?:{_DAY})(?: (?:and )?(?:{_DAY}))*"
_ORD: Final = alternation(_ORDINALS)
_MONTH: Final = alternation(MONTHS)
_MDAY: Final = r"\d{1,2}(?:st|nd|rd|th)?"
_CLOCK: Final = r"\d{1,2}(?:[:.]\d{2})?[ap]\.?m\.?|\d{1,2}[:h]\d{2}"

_ADVERBS: Final = {
    "hourly": ("HOURLY", 1), "daily": ("DAILY", 1), "everyday": ("DAILY", 1), "weekly": ("WEEKLY", 1),
    "biweekly": ("WEEKLY", 2), "fortnightly": ("WEEKLY", 2), "monthly": ("MONTHLY", 1),
    "quarterly": ("MONTHLY", 3), "yearly": ("YEARLY", 1), "annually": ("YEARLY", 1),
}  # fmt: skip
_UNITS: Final = {
    "hour": ("HOURLY", 1), "day": ("DAILY", 1), "week": ("WEEKLY", 1), "fortnight": ("WEEKLY", 2),
    "month": ("MONTHLY", 1), "quarter": ("MONTHLY", 3), "year": ("YEARLY", 1),
}  # fmt: skip
_PARTS_OF_DAY: Final = {"morning": 9, "afternoon": 15, "evening": 18, "night": 20}
# A span in larger units, in the periods of a repeat: (unit's FREQ, repeat's FREQ) -> periods per unit.
_SPANS: Final = {
    ("DAILY", "HOURLY"): 24, ("WEEKLY", "HOURLY"): 168, ("WEEKLY", "DAILY"): 7, ("YEARLY", "MONTHLY"): 12,
}  # fmt: skip

_FREQUENT: Final = re.compile(r"(?:every (?:\d+ )?|each )?(?:minute|min|second|sec)s?|minutely|secondly")
_WORKDAYS_WORDS: Final = re.compile(r"(?:every )?(?:weekday|week day|workday|work day|business day)s?")
_WEEKEND_WORDS: Final = re.compile(r"(?:every )?weekends?(?: days?)?")
_EVERY_UNIT: Final = re.compile(
    rf"(?:every (?:(?P<n>\d{{1,4}}) )?(?P<unit>{alternation(_UNITS)})s?|(?P<adverb>{alternation(_ADVERBS)}))"
    r"(?: on (?P<spec>.+))?"
)
_EVERY_DAYS: Final = re.compile(rf"(?:every (?:(?P<n>\d{{1,4}}) )?)?(?P<days>{_DAYLIST})")
_EVERY_PART: Final = re.compile(r"every (?P<part>morning|afternoon|evening|night)")
_OF_MONTH: Final = re.compile(r"(?:every )?(?P<spec>.+?) of (?:the|every|each) month")
_EVERY_SPEC: Final = re.compile(rf"every (?P<spec>(?:the )?(?:(?:{_ORD}) .+|{_MDAY}))")
_EVERY_DATE: Final = re.compile(
    rf"every (?P<spec>(?:{_MONTH}) {_MDAY}|(?:the )?{_MDAY} (?:of )?(?:{_MONTH}))"
)


def _day_codes(days: str) -> str:
    return ",".join(_DAY_CODES[_DAY_WORDS[word]] for word in re.findall(_DAY, days))


def _weekly_spec(spec: str) -> Parts:
    if _WORKDAYS_WORDS.fullmatch(spec):
        return {"BYDAY": _WORKWEEK}
    if _WEEKEND_WORDS.fullmatch(spec):
        return {"BYDAY": _WEEKEND}
    if re.fullmatch(_DAYLIST, spec):
        return {"BYDAY": _day_codes(spec)}
    raise RecurrenceError(f"could not understand the days {spec!r}; try 'every week on mon, wed and fri'")


def _monthly_spec(spec: str) -> Parts:
    spec = spec.removeprefix("the ").removesuffix(" of the month")
    if m := re.fullmatch(rf"(?P<ords>(?:{_ORD})(?: (?:and )?(?:the )?(?:{_ORD}))*) (?P<day>{_DAY})", spec):
        numbers = [_ORDINALS[o] for o in re.findall(_ORD, m["ords"])]
        code = _DAY_CODES[_DAY_WORDS[m["day"]]]
        return {"BYDAY": ",".join(f"{n}{code}" for n in numbers)}
    if m := re.fullmatch(rf"(?P<ord>{_ORD}) day", spec):
        return {"BYMONTHDAY": str(_ORDINALS[m["ord"]])}
    if spec == "last":
        return {"BYMONTHDAY": "-1"}
    if re.fullmatch(rf"(?:day )?{_MDAY}(?: (?:and )?(?:the )?{_MDAY})*", spec):
        return {"BYMONTHDAY": ",".join(re.findall(r"\d{1,2}", spec))}
    raise RecurrenceError(
        f"could not understand {spec!r} as a day of the month; try 'monthly on the 15th', "
        "'monthly on the last day' or 'monthly on the last friday'"
    )


def _yearly_spec(spec: str) -> Parts:
    spec = spec.removeprefix("the ")
    m = re.fullmatch(rf"(?P<m1>{_MONTH}) (?:the )?(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?", spec) or re.fullmatch(
        rf"(?P<d2>\d{{1,2}})(?:st|nd|rd|th)? (?:of )?(?P<m2>{_MONTH})", spec
    )
    if not m:
        raise RecurrenceError(
            f"could not understand {spec!r} as a date in the year; try 'every year on march 5'"
        )
    return {"BYMONTH": str(MONTHS[m["m1"] or m["m2"]]), "BYMONTHDAY": m["d1"] or m["d2"]}


def _on(freq: str, spec: str) -> Parts:
    readers = {"WEEKLY": _weekly_spec, "MONTHLY": _monthly_spec, "YEARLY": _yearly_spec}
    if freq not in readers:
        raise RecurrenceError(
            f"'on {spec}' does not fit a {freq.lower()} repeat; try 'every week on mon, wed' or "
            "'monthly on the 15th'"
        )
    return readers[freq](spec)


def _core(phrase: str) -> Parts | None:
    """The repeat itself, without 'at ...', '5 times' or 'until ...'; None if not understood."""
    if _FREQUENT.fullmatch(phrase) or re.fullmatch(r"every \d+ (?:minute|min|second|sec)s?", phrase):
        raise RecurrenceError(
            "repeating more often than every hour is not allowed (it would flood reminders); "
            "the most frequent repeat is 'every hour'"
        )
    if _WORKDAYS_WORDS.fullmatch(phrase):
        return {"FREQ": "WEEKLY", "BYDAY": _WORKWEEK}
    if _WEEKEND_WORDS.fullmatch(phrase):
        return {"FREQ": "WEEKLY", "BYDAY": _WEEKEND}
    if m := _EVERY_PART.fullmatch(phrase):
        return {"FREQ": "DAILY", "BYHOUR": str(_PARTS_OF_DAY[m["part"]]), "BYMINUTE": "0"}
    if m := _EVERY_UNIT.fullmatch(phrase):
        freq, step = _UNITS[m["unit"]] if m["unit"] else _ADVERBS[m["adverb"]]
        parts = {"FREQ": freq, "INTERVAL": str(step * int(m["n"] or 1))}
        return parts | (_on(freq, m["spec"]) if m["spec"] else {})
    if m := _EVERY_DAYS.fullmatch(phrase):
        return {"FREQ": "WEEKLY", "INTERVAL": m["n"] or "1", "BYDAY": _day_codes(m["days"])}
    if m := _EVERY_DATE.fullmatch(phrase):
        return {"FREQ": "YEARLY", **_yearly_spec(m["spec"])}
    if m := (_OF_MONTH.fullmatch(phrase) or _EVERY_SPEC.fullmatch(phrase)):
        return {"FREQ": "MONTHLY", **_monthly_spec(m["spec"])}
    return None


def _clean_phrase(text: str) -> str:
    phrase = normalise_phrase(text.replace("&", " and ")).rstrip(".!")
    phrase = re.sub(r"\b(?:each|every single)\b", "every", phrase)
    phrase = re.sub(r"\bevery other\b", "every 2", phrase)
    for prefix in ("repeat ", "repeats ", "repeating ", "recurring ", "recur ", "on "):
        phrase = phrase.removeprefix(prefix)
    return phrase.strip()


def _take_until(phrase: str, tz: ZoneInfo, now: datetime) -> tuple[str, str | None]:
    m = re.fullmatch(
        r"(?P<core>.+?) (?:until|till|til|through|thru|ending on|ending|ends on|ends) (?P<end>.+)", phrase
    )
    if not m:
        return phrase, None
    try:
        last_day = parse_when(m["end"], tz=tz, now=now, default_time=time(23, 59)).date()
    except DateParseError as exc:
        raise RecurrenceError(f"the end of the repeat must be a date: {exc}") from exc
    end = localise(datetime.combine(last_day, time(23, 59, 59)), tz)
    return m["core"], _format_until(end)


_LENGTH: Final = re.compile(
    rf"(?P<core>.+?) for (?:the next )?(?P<n>an?|one|\d{{1,4}}) (?P<unit>{alternation(_UNITS)})s?"
)
_PART_OF_DAY: Final = re.compile(rf"(?P<core>.+?) (?:in the |at )?(?P<part>{alternation(_PARTS_OF_DAY)})s?")


@dataclass
class _Modifiers:
    """What follows the repeat itself: '5 times', 'for 3 weeks', 'at 9am', 'in the morning'."""

    count: str | None = None
    length: tuple[int, str] | None = None  # 'for 3 weeks': (3, 'week')
    at: time | None = None


def _take_modifiers(phrase: str) -> tuple[str, _Modifiers]:
    found = _Modifiers()
    while True:
        if found.count is None and (
            m := re.fullmatch(r"(?P<core>.+?) (?:for )?(?P<n>\d{1,9}) (?:times?|occurrences?)", phrase)
        ):
            phrase, found.count = m["core"], m["n"]
            continue
        if found.length is None and (m := _LENGTH.fullmatch(phrase)):
            amount = int(amount_of(m["n"]))
            phrase, found.length = m["core"], (amount, m["unit"])
            continue
        m = re.fullmatch(rf"(?P<core>.+?) (?:at (?P<t1>.+)|(?P<t2>{_CLOCK}|noon|midnight))", phrase)
        if found.at is None and m and (at := parse_time_of_day(f"at {m['t1']}" if m["t1"] else m["t2"])):
            phrase, found.at = m["core"], at
            continue
        # 'every sunday morning' (but 'every morning' is a repeat of its own)
        m = _PART_OF_DAY.fullmatch(phrase)
        if found.at is None and m and m["core"] != "every":
            phrase, found.at = m["core"], time(_PARTS_OF_DAY[m["part"]])
            continue
        return phrase, found


def _count_for_length(parts: Parts, amount: int, unit: str) -> str:
    """COUNT for 'for 3 weeks': the occurrences in that span, from the series' first.

    Only where the span is a whole number of the repeat's periods, each holding the same number of
    occurrences ('every mon and wed for 3 weeks' is 6); otherwise the person is asked for a count
    or an end date.
    """
    if amount < 1:
        raise RecurrenceError(f"'for {amount} {unit}s' is no time at all; a repeat lasts at least one {unit}")
    freq, step = _UNITS[unit]
    periods = amount * step  # in `freq`s: a fortnight is 2 weeks, a quarter 3 months
    if freq != parts["FREQ"]:
        periods *= _SPANS.get((freq, parts["FREQ"]), 0)
    # Phrases give each period the same days: 'mon and wed' (weekly), 'the 1st and 15th' or
    # 'the first monday' (monthly).
    days_in_period = parts.get("BYDAY") or parts.get("BYMONTHDAY")
    per_period = len(days_in_period.split(",")) if days_in_period else 1
    if not periods:
        raise RecurrenceError(
            f"'for {amount} {unit}{'s' if amount != 1 else ''}' does not fit a "
            f"{parts['FREQ'].lower()} repeat; say how many times ('5 times') or until when ('until march 1')"
        )
    interval = int(parts.get("INTERVAL", "1"))
    return str(-(-periods // interval) * per_period)


def _phrase_parts(text: str, tz: ZoneInfo, now: datetime) -> Parts:
    phrase, until = _take_until(_clean_phrase(text), tz, now)
    phrase, found = _take_modifiers(phrase)
    core = _core(phrase)
    if core is None:
        raise RecurrenceError(f"could not understand {text.strip()[:80]!r} as a repeat; {_EXAMPLES}")
    if found.at is not None:
        if core["FREQ"] == "HOURLY":
            raise RecurrenceError("a time of day does not fit an hourly repeat; try 'every day at 9am'")
        core |= {"BYHOUR": str(found.at.hour), "BYMINUTE": str(found.at.minute)}
    if found.length is not None:
        if found.count is not None or until is not None:
            raise RecurrenceError(
                "give how long a repeat lasts once: 'for 3 weeks', '5 times' or 'until march 1'"
            )
        core["COUNT"] = _count_for_length(core, *found.length)
    if found.count is not None:
        core["COUNT"] = found.count
    if until is not None:
        core["UNTIL"] = until
    return core


# ---------------------------------------------------------------- the public face


def parse_repeat(text: str, *, tz: ZoneInfo, now: datetime) -> str:
    """A normalised RRULE body ('FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE') from an RRULE or a phrase."""
    if not text.strip():
        raise RecurrenceError(f"a repeat is required but the text is empty; {_EXAMPLES}")
    if len(text) > MAX_RULE:
        raise RecurrenceError(
            f"a repeat must be at most {MAX_RULE} characters (got {len(text)}); {_EXAMPLES}"
        )
    looks_like_rrule = "=" in text or text.strip().upper().startswith(("RRULE:", "DTSTART"))
    parts = _parse_rule(text, tz) if looks_like_rrule else _canonical(_phrase_parts(text, tz, now), tz)
    rule = _format(parts)
    if "UNTIL" in parts and _until_utc(parts["UNTIL"], tz) <= now:
        raise RecurrenceError(f"the repeat {rule!r} ends before now; give a later end date")
    if first_occurrence(rule, tz=tz, after=now) is None:
        raise RecurrenceError(
            f"the repeat {rule!r} never occurs (no date in the next {HORIZON_YEARS} years matches it); "
            f"{_EXAMPLES}"
        )
    return rule


def _ordinal(n: int) -> str:
    if n == -1:
        return "last"
    if n < 0:
        return f"{_ordinal(-n)}-to-last"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_ORDINAL_WORDS: Final = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _plural(n: int, unit: str) -> str:
    return f"every {unit}" if n == 1 else f"every {n} {unit}s"


def _describe_days(value: str) -> str | None:
    items = [_BYDAY_ITEM.fullmatch(item) for item in value.split(",")]
    words: list[str] = []
    for m in items:
        if m is None:
            return None
        name = _DAY_NAMES[_DAY_CODES.index(m[2])]
        if m[1]:
            nth = int(m[1])
            words.append(f"{_ORDINAL_WORDS.get(nth, _ordinal(nth))} {name}")
        else:
            words.append(name)
    return _and(words)


def _describe_weekly(parts: Parts, n: int) -> str | None:
    if parts["BYDAY"] in (_WORKWEEK, _WEEKEND):
        days_word = "weekday" if parts["BYDAY"] == _WORKWEEK else "weekend"
        return f"every {days_word}" if n == 1 else f"every {n} weeks on {days_word}s"
    days = _describe_days(parts["BYDAY"])
    if days is None:
        return None
    return f"every {days}" if n == 1 else f"every {n} weeks on {days}"


def _describe_monthly(parts: Parts, n: int) -> str | None:
    lead = "monthly" if n == 1 else f"every {n} months"
    if "BYMONTHDAY" in parts:
        numbers = [int(d) for d in parts["BYMONTHDAY"].split(",")]
        days = ["last day" if d == -1 else f"{_ordinal(d)} day" if d < 0 else _ordinal(d) for d in numbers]
        return f"{lead} on the {_and(days)}"
    if all(item[0] in "+-123456789" for item in parts["BYDAY"].split(",")):
        weekdays = _describe_days(parts["BYDAY"])
        return None if weekdays is None else f"{lead} on the {weekdays}"
    return None


def _describe_yearly(parts: Parts, n: int) -> str | None:
    if "," in parts["BYMONTH"] + parts["BYMONTHDAY"]:
        return None
    month = date(2000, int(parts["BYMONTH"]), 1).strftime("%b")
    return f"{_plural(n, 'year')} on {int(parts['BYMONTHDAY'])} {month}"


_FREQ_UNITS: Final = {
    "HOURLY": "hour",
    "DAILY": "day",
    "WEEKLY": "week",
    "MONTHLY": "month",
    "YEARLY": "year",
}
_DESCRIBED_SHAPES: Final = {
    ("WEEKLY", frozenset({"BYDAY"})): _describe_weekly,
    ("MONTHLY", frozenset({"BYMONTHDAY"})): _describe_monthly,
    ("MONTHLY", frozenset({"BYDAY"})): _describe_monthly,
    ("YEARLY", frozenset({"BYMONTH", "BYMONTHDAY"})): _describe_yearly,
}


def _describe_base(parts: Parts) -> str | None:
    """The repeat without its time of day, COUNT or UNTIL; None for shapes without words."""
    freq, n = parts["FREQ"], int(parts.get("INTERVAL", "1"))
    by = frozenset(k for k in parts if k.startswith("BY") and k not in ("BYHOUR", "BYMINUTE", "BYSECOND"))
    if not by:
        return _plural(n, _FREQ_UNITS[freq])
    describer = _DESCRIBED_SHAPES.get((freq, by))
    return describer(parts, n) if describer else None


def _describe_time(parts: Parts) -> str | None:
    if "BYHOUR" not in parts and "BYMINUTE" not in parts:
        return ""
    if parts.get("BYSECOND", "0") != "0" or "," in parts.get("BYMINUTE", "") or "BYHOUR" not in parts:
        return None
    minute = int(parts.get("BYMINUTE", "0"))
    return " at " + _and([f"{int(h):02d}:{minute:02d}" for h in parts["BYHOUR"].split(",")])


def _until_date(until: datetime, tz: ZoneInfo | None) -> date:
    if tz is not None:
        return until.astimezone(tz).date()
    if until.minute == 59 and until.second == 59 and until.hour < 10:
        return until.date() - timedelta(days=1)  # the end of a local day west of UTC (the Americas)
    return until.date()


def describe(rule: str, *, tz: ZoneInfo | None = None) -> str:
    """Words for people ('every 2 weeks on Monday and Wednesday'); the RRULE itself for other shapes."""
    try:
        parts = _parse_rule(rule, tz)
    except RecurrenceError:
        return rule
    base, at = _describe_base(parts), _describe_time(parts)
    week_start_matters = parts["FREQ"] == "WEEKLY" and "INTERVAL" in parts and parts.get("WKST", "MO") != "MO"
    if base is None or at is None or week_start_matters:
        return _format(parts)
    words = base + at
    if "COUNT" in parts:
        count = int(parts["COUNT"])
        words += ", once" if count == 1 else f", {count} times"
    if "UNTIL" in parts:
        last = _until_date(_until_utc(parts["UNTIL"], tz), tz)
        words += f" until {last.day} {last:%b %Y}"
    return words
