"""Everyday task commands -> intents, for the offline model. Pure: no I/O, no clock of its own.

Date, reminder and repeat phrases are handed on as tidy words ("tomorrow 9am", "30 minutes before",
"every monday") for the server to resolve in the user's zone; only listing windows ("due today", "this
week") and "on the 1st" are computed here, from `now`, and a listing's "the first friday of december" or
"the end of next month" is found by the server's own date parser (`mcp_server.dates.parse_when`), so a
listing means the day a task added with those words gets. Every input yields an `Intent`, never an exception.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo

from mcp_server.dates import NUMBER_WORDS, DateParseError, parse_when

Priority = Literal["none", "low", "medium", "high", "urgent"]
Status = Literal["open", "done", "all"]
SortKey = Literal["due", "priority", "created", "updated", "title"]
Action = Literal["complete", "reopen", "delete", "rename", "update"]

MAX_INPUT = 1_000
"""Longer messages are not parsed (an `Unknown` says so)."""

PRONOUNS = frozenset({
    "it", "that", "this", "that one", "this one", "that task", "this task", "the task", "last one", "last",
    "the last one", "the same one", "same one",
})  # fmt: skip
"""References meaning 'the task we just talked about'; the model resolves them from the conversation."""


# ---------------------------------------------------------------------------------------------- intents


@dataclass(frozen=True)
class Add:
    """Add one task. Date, reminder and repeat are words for the server to resolve."""

    title: str
    description: str | None = None
    priority: Priority | None = None
    tags: tuple[str, ...] = ()
    due: str | None = None
    remind: str | None = None
    repeat: str | None = None

    def arguments(self) -> dict[str, object]:
        """The `add_task` arguments."""
        args: dict[str, object] = {"title": self.title}
        if self.description is not None:
            args["description"] = self.description
        if self.priority is not None:
            args["priority"] = self.priority
        if self.tags:
            args["tags"] = list(self.tags)
        for key in ("due", "remind", "repeat"):
            value = getattr(self, key)
            if value is not None:
                args[key] = value
        return args


@dataclass(frozen=True)
class AddSeveral:
    """Add each of a list of tasks: 'add tasks: milk, eggs tomorrow, bread #shop'."""

    tasks: tuple[Add, ...]


@dataclass(frozen=True)
class Filters:
    """`list_tasks` filters; date bounds are ISO 8601 in the user's zone."""

    status: Status = "open"
    priority: Priority | None = None
    tag: str | None = None
    due_before: str | None = None
    due_after: str | None = None
    overdue: bool | None = None
    query: str | None = None
    sort: SortKey = "due"
    done_after: str | None = None
    done_before: str | None = None

    def arguments(self, limit: int = 20) -> dict[str, object]:
        """The `list_tasks` arguments (defaults left out, `limit` always given)."""
        args: dict[str, object] = {"status": self.status}
        for key in (
            "priority",
            "tag",
            "due_before",
            "due_after",
            "overdue",
            "query",
            "done_after",
            "done_before",
        ):
            value = getattr(self, key)
            if value is not None:
                args[key] = value
        if self.sort != "due":
            args["sort"] = self.sort
        args["limit"] = limit
        return args


@dataclass(frozen=True)
class ListTasks:
    """List or search tasks. `window` names the date window ('today', 'this week', ...) for the answer."""

    filters: Filters = field(default_factory=Filters)
    window: str | None = None
    ask: Literal["when", "finished", "next"] | None = None
    """'when': answer 'when is the dentist?' with due times; 'finished': 'what did I finish yesterday',
    which no filter answers (there is none by completion time), so `window` holds the words asked;
    'next': 'what's next?', answered with the one open task due soonest."""


@dataclass(frozen=True)
class Skip:
    """'skip the gym today': not this time. Never a change; the answer says what can be done instead."""

    ref: str


@dataclass(frozen=True)
class Changes:
    """Fields to change on one task; "" clears description, due, remind or repeat."""

    title: str | None = None
    description: str | None = None
    priority: Priority | None = None
    tags: tuple[str, ...] | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    due: str | None = None
    remind: str | None = None
    repeat: str | None = None

    def arguments(self) -> dict[str, object]:
        """The `update_task` arguments besides `task_id`."""
        args: dict[str, object] = {}
        for key in ("title", "description", "priority", "due", "remind", "repeat"):
            value = getattr(self, key)
            if value is not None:
                args[key] = value
        if self.tags is not None:
            args["tags"] = list(self.tags)
        if self.add_tags:
            args["add_tags"] = list(self.add_tags)
        if self.remove_tags:
            args["remove_tags"] = list(self.remove_tags)
        return args

    def __bool__(self) -> bool:
        return bool(self.arguments())


@dataclass(frozen=True)
class Act:
    """Do something to ONE task named by its words (`ref`), or by a pronoun ('it') or its id.

    `position` (1-based, -1 for the last) is a place in the listing just shown: 'the first one'."""

    action: Action
    ref: str
    changes: Changes = field(default_factory=Changes)
    position: int | None = None


@dataclass(frozen=True)
class BulkDelete:
    """Delete every task matching `filters`: only ever after an explicit 'yes, delete all N'."""

    filters: Filters = field(default_factory=lambda: Filters(status="all"))
    window: str | None = None


@dataclass(frozen=True)
class Select:
    """An answer to 'which one?': a 1-based `index` (-1 for the last) or words (`hint`)."""

    index: int | None = None
    hint: str | None = None


@dataclass(frozen=True)
class Confirm:
    """'yes' (count None) or 'yes, delete all 12' (count 12)."""

    count: int | None = None


@dataclass(frozen=True)
class Deny:
    """'no', 'cancel', 'never mind'."""


@dataclass(frozen=True)
class Undo:
    """'undo', 'undo that', 'take that back': revert the last change this conversation made.

    `just_now`: 'cancel that', which means the change the previous answer made, and no older one."""

    just_now: bool = False


@dataclass(frozen=True)
class Help:
    """'help', 'what can you do', or a greeting."""

    greeting: bool = False


@dataclass(frozen=True)
class Thanks:
    """'thanks', 'great'."""


@dataclass(frozen=True)
class Unknown:
    """Not understood: `reason` says what was missing; `suggestion` is a command that may have been meant."""

    reason: str
    suggestion: str | None = None


Intent: TypeAlias = (
    Add
    | AddSeveral
    | ListTasks
    | Act
    | BulkDelete
    | Skip
    | Select
    | Confirm
    | Deny
    | Undo
    | Help
    | Thanks
    | Unknown
)


# ---------------------------------------------------------------------------------------- vocabulary

_I = re.IGNORECASE
_WD_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WD_FULL = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_WD_ABBR = r"(?:mon|tues?|weds?|thu(?:rs?)?|fri|sat|sun)"
_WD_ANY = rf"(?:{_WD_FULL}|{_WD_ABBR})"
_WD_PLURAL = r"(?:mondays|tuesdays|wednesdays|thursdays|fridays|saturdays|sundays)"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ORD = r"(?:st|nd|rd|th)"
_NUM = (
    r"(?:\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty"
    r"|forty[- ]five|ninety)"
)
_UNIT = r"(?:minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w)"
# "14h", "9h30" are 24-hour times; a bare "1h" to "9h" is left to mean an hour ("at 9h" is a time)
_TIME = (
    r"(?:(?:1[0-2]|0?[1-9])(?::[0-5]\d)?\s*(?:a\.?m\.?|p\.?m\.?)(?![\w])"
    r"|(?:[01]?\d|2[0-3]):[0-5]\d(?![\d:])"
    r"|(?:[01]?\d|2[0-3])h[0-5]\d(?![\w:])|(?:0\d|1\d|2[0-3])h(?![\w:])"
    r"|noon|midday|midnight"
    r"|(?:1[0-2]|0?[1-9])\s*o'?clock)"
)
_AT_TIME = rf"(?:(?:(?:at|@|around|by)\s*)?{_TIME}|at\s+(?:1[0-9]|2[0-3]|0?[1-9])h?(?![\d:\w]))"
_DAYPART = r"(?:(?:in\s+the\s+)?(?:morning|afternoon|evening)|at\s+night)"
# "the month", "next month", "december", "feb 2028": the month of "the first monday of ...", "end of ..."
_WHICH_MONTH = rf"(?:(?:(?:the|this|next)\s+)?month|{_MONTH}\b(?:,?\s+\d{{4}})?)"
_NTH = r"(?:first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th)"
# "the first friday of december", "last fri of the month", "2nd tuesday in next month"
_NTH_WEEKDAY = rf"(?:the\s+)?{_NTH}\s+{_WD_ANY}\.?\s+(?:of|in)\s+{_WHICH_MONTH}"
# "the end of next month", "last day of february", "the end of the year"
_PERIOD_END = rf"(?:the\s+)?(?:end|last\s+day)\s+of\s+(?:{_WHICH_MONTH}|(?:(?:the|this)\s+)?year)"
_WD_WORD = rf"(?:{_WD_FULL}|{_WD_ABBR}\.?)(?![\w])"
# "monday next week", "next week mon": that weekday in the (Monday-Sunday) week after this one
_WEEK_DAY = rf"(?:{_WD_WORD}\s+next\s+week|next\s+week\s+{_WD_WORD})"
# The days "a week from monday" and "2 days after friday" count from (the server's `_later_day`);
# "for 2 weeks from monday" is a stay that starts on Monday, so its count stays in the title, and
# "every 2 weeks from monday" is a repeat that starts on Monday
_FROM_DAY = (
    rf"(?:today|tomorrow|now|(?:(?:next|this)\s+)?{_WD_WORD}|{_MONTH}\.?\s+\d{{1,2}}{_ORD}?"
    rf"|\d{{1,2}}{_ORD}?\s+(?:of\s+)?{_MONTH}|\d{{4}}-\d{{2}}-\d{{2}})"
)
_LATER_DAY = (
    rf"(?<!\bfor\s)(?<!\bevery\s)(?<!\beach\s)(?:{_NUM})\s+(?:days?|weeks?)"
    rf"\s+(?:from|after)\s+{_FROM_DAY}(?![\w])"
)
_DAY = (
    r"(?:(?:the\s+)?day\s+after\s+tomorrow|today|tonight|tomorrow"
    r"|this\s+(?:morning|afternoon|evening)"
    r"|(?:this|next|coming|on\s+the|over\s+the|by\s+the)\s+weekend"
    rf"|{_NTH_WEEKDAY}|{_WEEK_DAY}|{_LATER_DAY}"
    r"|(?:next|this|coming)\s+(?:week|month|year)"
    r"|(?:the\s+)?end\s+of\s+(?:(?:the|this|next)\s+)?week|(?:the\s+)?end\s+of\s+(?:the\s+)?day"
    r"|eod|eow|eom|eoy"
    rf"|{_PERIOD_END}"
    rf"|(?:(?:next|this|coming)\s+)?{_WD_FULL}"
    rf"|(?:next|this|coming|on|by)\s+{_WD_ABBR}\.?"
    rf"|{_MONTH}\.?\s+\d{{1,2}}{_ORD}?(?:,?\s+\d{{4}})?"
    rf"|\d{{1,2}}{_ORD}?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?"
    r"|\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2})?)?"
    r"|\d{1,2}/\d{1,2}(?:/\d{2,4})?"
    rf"|(?:on\s+)?the\s+\d{{1,2}}{_ORD}(?:\s+of\s+(?:the|this|next)\s+month)?)"
)
_REL = (
    rf"(?:in\s+{_NUM}\s*(?:{_UNIT}|months?)|in\s+(?:an?|one)\s+(?:hour|minute|day|week|month)"
    r"|in\s+half\s+an\s+hour)"
)
# Whole days from now, which may take a time: "in 2 days at 5pm", "at 7am in a week"
_REL_DAYS = rf"in\s+(?:{_NUM}\s*(?:days?|d|weeks?|wks?|w|months?)|(?:an?|one)\s+(?:day|week|month))\b"
_DATETIME = (
    rf"(?:{_DAY}(?:\s*,?\s*(?:{_AT_TIME}|{_DAYPART}))?"
    rf"|{_WD_ABBR}\.?\s+{_AT_TIME}"
    rf"|{_AT_TIME}(?:\s*,?\s*(?:(?:on\s+)?{_DAY}|{_DAYPART}|{_REL_DAYS}))?"
    rf"|{_REL_DAYS}\s*,?\s*(?:{_AT_TIME}|{_DAYPART})"
    rf"|{_REL})"
)
_DUE_PREFIX = r"(?:(?:due(?:\s+(?:on|by|at))?|by|on|for|before|until|till|starting|from)\s+)?"
# "30 minutes", "1h", "an hour": a number word needs its space ("and" is not "an" + "d"ay)
_OFFSET_TERM = rf"(?:\d{{1,3}}\s*|\b(?:{_NUM})\s+){_UNIT}\b"
_OFFSET = (
    rf"(?:{_OFFSET_TERM}(?:\s*,?\s*(?:and\s+)?{_OFFSET_TERM})*|half\s+an\s+hour|the\s+(?:day|night|week|hour)"
    rf"|an?\s+(?:hour|day|week))\s+"
    r"(?:before|earlier|early|ahead|in\s+advance|prior)(?:\s+(?:it'?s\s+due|it\s+is\s+due|due|the\s+due\s+time|that))?"
)
# How long a repeat lasts: "every tuesday for 4 weeks" (the server counts the occurrences in that span)
_LENGTH = rf"(?:\s+for\s+(?:the\s+next\s+)?{_NUM}\s+(?:days?|weeks?|fortnights?|months?|quarters?|years?)\b)"
_REPEAT = (
    r"(?:(?:every|each)\s+(?:other\s+)?(?:day|weekday|workday|business\s+day|weekend|week|fortnight|month|year"
    r"|morning|evening|night"
    rf"|{_NTH}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*)(?:the\s+)?{_NTH})*\s+{_WD_ANY}(?:\s+of\s+(?:the|every|each)\s+month)?"
    rf"|{_WD_ANY}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*|\s+){_WD_ANY})*"
    rf"|(?:\d{{1,3}}|(?!an?\s){_NUM})\s+(?:days?|weeks?|months?|years?)(?:\s+on\s+{_WD_ANY}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*){_WD_ANY})*)?)"
    r"|daily|weekly|biweekly|bi-weekly|fortnightly|monthly|yearly|annually|hourly"
    r"|(?:on\s+)?weekdays|on\s+weekends"
    rf"|(?:on\s+)?(?:the\s+)?\d{{1,2}}{_ORD}\s+(?:day\s+)?of\s+(?:every|each)\s+month"
    rf"|on\s+{_WD_PLURAL}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*){_WD_PLURAL})*"
    # "on mon wed fri", "on monday and thursday": two days or more are a week's days, as are
    # "sundays" and "mondays and thursdays" (one day, "on monday", is a due date)
    rf"|on\s+{_WD_ANY}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*|\s+){_WD_ANY})+"
    rf"|{_WD_PLURAL}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*){_WD_PLURAL})*)"
    r"(?:\s+on\s+(?:the\s+)?(?:(?:last|first|second|third|fourth)\s+(?:" + _WD_ANY + r"|day|weekday)"
    r"(?:\s+of\s+(?:the|every|each)\s+month)?"
    rf"|\d{{1,2}}{_ORD}?(?:\s+day)?|{_WD_ANY}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*){_WD_ANY})*))?"
    rf"(?:\s*,?\s*(?:{_AT_TIME}|{_DAYPART}))?"
    rf"(?:{_LENGTH}(?:\s*,?\s*(?:{_AT_TIME}|{_DAYPART}))?|\s+(?:until|till)\s+{_DAY})?"
)
_PRIORITY_WORD = (
    r"(?:urgent|asap|critical|top\s+priority|highest\s+priority|important"
    r"|(?:high|medium|med|normal|low|no)(?:\s+|-)priority|priority\s*(?::|=|of|is)?\s*(?:urgent|high|medium|low|none|[1-4])"
    r"|p[0-4])"
)
_TAG_WORD = r"(?!(?:it|as|with|and|or|the|to)\b)#?[a-z0-9][\w-]{0,39}"
_TAG_LIST = rf"{_TAG_WORD}(?:(?:\s*,\s*|\s+and\s+|\s*&\s*){_TAG_WORD})*"

_ISO_WHEN = re.compile(r"\d{4}-\d{2}-\d{2}(?:[tT ]\d{2}:\d{2}(?::\d{2})?)?$")
_WHEN_ONLY = re.compile(rf"{_DUE_PREFIX}{_DATETIME}", _I)
_WHEN_AT_END = re.compile(rf"\s+(?P<w>{_DUE_PREFIX}{_DATETIME})[\s.!?]*$", _I)
_TIME_AT_END = re.compile(rf"\s*,?\s*(?<!\w)({_AT_TIME})$", _I)
_PRIORITY_ONLY = re.compile(rf"{_PRIORITY_WORD}|high|low|medium|none", _I)
_REPEAT_ONLY = re.compile(_REPEAT, _I)

_TYPOS = {
    "tomorow": "tomorrow", "tommorow": "tomorrow", "tommorrow": "tomorrow", "tomorrrow": "tomorrow",
    "tmrw": "tomorrow", "tmr": "tomorrow", "tmrow": "tomorrow", "2moro": "tomorrow", "2morrow": "tomorrow",
    "tonite": "tonight", "2nite": "tonight", "tdy": "today", "2day": "today", "wensday": "wednesday",
    "wednsday": "wednesday", "wedensday": "wednesday", "thrusday": "thursday", "thurday": "thursday",
    "firday": "friday", "fridy": "friday", "saterday": "saturday", "sundy": "sunday", "monady": "monday",
    "tuseday": "tuesday", "teusday": "tuesday", "priorty": "priority", "prority": "priority",
    "pririty": "priority", "prioity": "priority", "urgnet": "urgent", "urgant": "urgent",
    "remaind": "remind", "remmind": "remind", "rmind": "remind", "delte": "delete", "deleet": "delete",
    "dlete": "delete", "compelte": "complete", "comlete": "complete", "taks": "tasks", "tsks": "tasks",
    "tak": "task", "tsk": "task", "overdew": "overdue", "ovedue": "overdue",
}  # fmt: skip
_TYPO_RE = re.compile(r"\b(" + "|".join(sorted(_TYPOS, key=len, reverse=True)) + r")\b", _I)
# "5:30p", "at 7a" -> "5:30pm", "at 7am"
_SHORT_MERIDIEM = re.compile(
    r"(?<![\w:.])((?:1[0-2]|0?[1-9]):[0-5]\d|(?<=\bat )(?:1[0-2]|0?[1-9]))([ap])(?![\w.'])", _I
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u2060\ufeff]")
_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"'}
)

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, **NUMBER_WORDS}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8,
    "9th": 9, "10th": 10, "last": -1,
}  # fmt: skip
_PRIORITY_BY_WORD: dict[str, Priority] = {
    "urgent": "urgent", "asap": "urgent", "critical": "urgent", "top": "urgent", "highest": "urgent",
    "p0": "urgent", "p1": "urgent", "1": "urgent", "high": "high", "important": "high", "p2": "high",
    "2": "high", "medium": "medium", "med": "medium", "normal": "medium", "p3": "medium", "3": "medium",
    "low": "low", "p4": "low", "4": "low", "no": "none", "none": "none",
}  # fmt: skip
_WD_BY_ABBR = {
    "mon": "monday", "tue": "tuesday", "tues": "tuesday", "wed": "wednesday", "weds": "wednesday",
    "thu": "thursday", "thur": "thursday", "thurs": "thursday", "fri": "friday", "sat": "saturday",
    "sun": "sunday",
}  # fmt: skip
_MONTH_NAMES = tuple(calendar.month_name)


# ------------------------------------------------------------------------------------------ helpers


def _clean_text(utterance: str) -> str:
    text = unicodedata.normalize("NFKC", utterance).translate(_QUOTES)
    text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


def _tidy_title(text: str) -> str:
    title = " ".join(text.split()).strip(" ,;:-–—")
    title = re.sub(r"[.!?,;:]+$", "", title).strip()
    if len(title) >= 2 and title[0] == title[-1] and title[0] in "\"'`":
        title = title[1:-1].strip()
    return title[:1].upper() + title[1:] if title else ""


def _tags(text: str) -> tuple[str, ...]:
    words = re.split(r"\s*,\s*|\s+and\s+|\s*&\s*|\s+", text.strip(), flags=_I)
    tags: list[str] = []
    for word in words:
        tag = word.strip().lstrip("#").strip(".,;:!?\"'").lower()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _priority(text: str) -> Priority | None:
    words = re.findall(r"[a-z0-9]+", text.lower())
    for word in words:
        if word in _PRIORITY_BY_WORD and word not in {"no", "1", "2", "3", "4"}:
            return _PRIORITY_BY_WORD[word]
    if "no" in words:
        return "none"
    for word in words:
        if word in _PRIORITY_BY_WORD:
            return _PRIORITY_BY_WORD[word]
    return None


def _number(word: str) -> int | None:
    word = word.lower().strip()
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word)


def _clock_of(text: str) -> tuple[int, int] | None:
    """Hour and minute of '9am', '5:30 pm', '17:00', '14h', 'noon' or 'at 5' (a bare 1-7 is taken as pm)."""
    low = text.lower().replace(".", "").strip()
    low = re.sub(r"^(?:at|@|around|by)\s*", "", low)
    if low in {"noon", "midday"}:
        return 12, 0
    if low == "midnight":
        return 23, 59
    match = re.fullmatch(r"(\d{1,2})h(\d{2})?", low)  # "14h", "9h30": a 24-hour clock
    if match:
        hour, minute = int(match[1]), int(match[2] or 0)
        return (hour, minute) if hour <= 23 and minute <= 59 else None
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm|o'?clock)?", low)
    if match is None:
        return None
    hour, minute, suffix = int(match[1]), int(match[2] or 0), match[3]
    if hour > 23 or minute > 59:
        return None
    if suffix == "am":
        hour = 0 if hour == 12 else hour
    elif suffix == "pm":
        hour = hour if hour == 12 else hour + 12
    elif 1 <= hour <= 7 and not match[1].startswith("0"):
        hour += 12  # 'at 5' and '3:30' mean the afternoon ('03:30' is a 24-hour clock)
    return (hour % 24), minute


def time_of_day(phrase: str) -> tuple[int, int] | None:
    """(hour, minute) when `phrase` is a time of day alone ('4pm', '9:30am', 'noon'), else None."""
    return _clock_of(phrase)


def _clock_words(hour: int, minute: int) -> str:
    if (hour, minute) == (12, 0):
        return "noon"
    if (hour, minute) == (23, 59):
        return "11:59pm"
    suffix = "am" if hour < 12 else "pm"
    twelve = hour % 12 or 12
    return f"{twelve}{suffix}" if minute == 0 else f"{twelve}:{minute:02d}{suffix}"


_DAYPART_TIMES = {"morning": "9am", "afternoon": "3pm", "evening": "6pm", "night": "9pm"}


def _next_month_day(day: int, now: datetime, *, next_month: bool = False) -> str:
    year, month = now.year, now.month
    if next_month or day < now.day:
        month += 1
    for _ in range(13):
        if month > 12:
            year, month = year + 1, 1
        if day <= calendar.monthrange(year, month)[1]:
            return f"{_MONTH_NAMES[month].lower()} {day}" + (f" {year}" if year != now.year else "")
        month += 1
    return f"the {day}th"


def _when(raw: str, now: datetime) -> str:
    """Tidy a date/time phrase into words the server reads: 'tomorrow at 9 am' -> 'tomorrow 9am'."""
    iso = _ISO_WHEN.search(raw)
    if iso is not None:
        return iso[0].upper()
    text = " ".join(raw.lower().replace(",", " ").split())
    text = re.sub(r"^(?:due(?:\s+(?:on|by|at))?|by|on|for|before|until|till|starting|from)\s+", "", text)
    text = re.sub(r"\b(a|p)\.?m\.?(?=\s|$)", r"\1m", text)
    text = re.sub(r"(\d)\s+(am|pm)\b", r"\1\2", text)
    text = re.sub(r"\b(?:on|by|over)\s+the\s+weekend\b", "saturday", text)
    text = re.sub(r"\b(?:this|coming)\s+weekend\b", "saturday", text)
    text = re.sub(r"\bnext\s+weekend\b", "next saturday", text)
    text = re.sub(r"\bthe\s+(end|last\s+day)\s+of\b", r"\1 of", text)
    text = re.sub(r"\b(?:end\s+of\s+(?:the\s+)?day|eod)\b", "today 5pm", text)
    text = re.sub(r"\b(?:end\s+of\s+(?:the\s+|this\s+)?week|eow)\b", "friday 5pm", text)
    text = re.sub(r"\b(?:(?:end|last\s+day)\s+of\s+(?:the\s+|this\s+)?month|eom)\b", "end of the month", text)
    text = re.sub(r"\b(?:(?:end|last\s+day)\s+of\s+(?:the\s+|this\s+)?year|eoy)\b", "end of the year", text)
    # "the 2nd tuesday of next month" is a weekday, not "the 2nd": the server finds it
    text = re.sub(
        rf"\b(?:the\s+)?({_NTH}\s+)({_WD_ANY})\.?(?=\s+(?:of|in)\s)",
        lambda m: m[1] + _WD_BY_ABBR.get(m[2], m[2]),
        text,
    )
    text = re.sub(r"\bthis\s+(morning|afternoon|evening)\b", lambda m: "today " + _DAYPART_TIMES[m[1]], text)
    text = re.sub(r"\b(?:in\s+the\s+)?(morning|afternoon|evening)\b", lambda m: _DAYPART_TIMES[m[1]], text)
    text = re.sub(r"\bat\s+night\b", "9pm", text)
    text = re.sub(r"^the\s+day\s+after", "day after", text)
    text = re.sub(
        r"\b(?:on\s+)?the\s+(\d{1,2})(?:st|nd|rd|th)(\s+of\s+(?:the|this|next)\s+month)?\b",
        lambda m: _next_month_day(int(m[1]), now, next_month="next" in (m[2] or "")),
        text,
    )
    text = re.sub(
        r"\b(next|this|coming|on|by)\s+" + _WD_ABBR + r"\.?(?=\s|$)",
        lambda m: ("" if m[1] in {"on", "by"} else m[1] + " ") + _WD_BY_ABBR[m[0].split()[-1].rstrip(".")],
        text,
    )
    text = re.sub(r"^" + _WD_ABBR + r"\.?(?=\s)", lambda m: _WD_BY_ABBR[m[0].rstrip(".")], text)
    # "next week fri", "a week from mon": the weekday's name; "two weeks from" -> "2 weeks from"
    text = re.sub(
        r"\b(week|from|after)\s+" + _WD_ABBR + r"\.?(?=\s|$)",
        lambda m: m[1] + " " + _WD_BY_ABBR[m[0].split()[-1].rstrip(".")],
        text,
    )
    text = re.sub(
        r"\b(" + _NUM + r")\s+(days?|weeks?)\s+(from|after)\b", lambda m: f"{_count(m[1], m[2])} {m[3]}", text
    )
    text = re.sub(r"\bin\s+half\s+an\s+hour\b", "in 30 minutes", text)
    text = re.sub(r"\bin\s+(an?|one)\s+(hour|minute|day|week|month)\b", r"in 1 \2", text)
    text = re.sub(
        r"\bin\s+(" + _NUM + r")\s*(" + _UNIT + r"|months?)\b", lambda m: _relative(m[1], m[2]), text
    )

    def clock(match: re.Match[str]) -> str:
        hm = _clock_of(match[0])
        return _clock_words(*hm) if hm else match[0]

    text = re.sub(
        r"(?:\b(?:at|around|by)\s*|@\s*)?\b(?:\d{1,2}(?::\d{2})?(?:am|pm)|\d{1,2}[:h]\d{2}|\d{1,2}\s*o'?clock"
        r"|noon|midday|midnight)(?![\w:])",
        clock,
        text,
    )
    text = re.sub(r"\b(?:at|@)\s+(\d{1,2})$", clock, text)
    text = re.sub(r"\b(?:at|@)\s+(\d{1,2})(?=\s)", clock, text)
    text = re.sub(r"(?:\b(?:at|around|by)\s*|@\s*)?\b\d{1,2}h(?![\w:])", clock, text)  # "14h" -> "2pm"
    text = " ".join(re.sub(r"(?:^|\s)(?:at|on)(?=\s|$)", " ", text).split())
    leading_time = re.fullmatch(r"(noon|\d{1,2}(?::\d{2})?[ap]m)\s+(\D.*)", text)
    return f"{leading_time[2]} {leading_time[1]}" if leading_time else text


def _relative(amount: str, unit: str) -> str:
    count = _number(amount) or 1
    unit = unit.lower()
    if unit.startswith("mo"):
        name = "month"
    elif unit.startswith("m"):
        name = "minute"
    elif unit.startswith("h"):
        name = "hour"
    elif unit.startswith("d"):
        name = "day"
    else:
        name = "week"
    return f"in {count} {name}{'s' if count != 1 else ''}"


def _count(amount: str, unit: str) -> str:
    """'two', 'weeks' -> '2 weeks'; 'a', 'week' -> 'a week' (as said); 'one', 'days' -> '1 day'."""
    count = _number(amount) or 1
    unit = unit.lower().removesuffix("s")
    if amount.lower() in {"a", "an"}:
        return f"a {unit}"
    return f"{count} {unit}{'s' if count != 1 else ''}"


def _offset_before(raw: str) -> str:
    """'half an hour early' -> '30 minutes before'; 'the day before' -> '1 day before'."""
    low = " ".join(raw.lower().split())
    if re.match(r"half\s+an\s+hour", low):
        return "30 minutes before"
    match = re.match(r"(?:the|an?)\s+(day|night|week|hour)\b", low)
    if match:
        return f"1 {'day' if match[1] == 'night' else match[1]} before"
    terms = re.findall(rf"(?:(\d{{1,3}})\s*|\b({_NUM})\s+)({_UNIT})\b", low)
    if terms:  # "1 hour and 30 minutes early" -> "1 hour 30 minutes before"
        return (
            " ".join(_relative(digits or words, unit).removeprefix("in ") for digits, words, unit in terms)
            + " before"
        )
    return low


@dataclass
class _Repeat:
    phrase: str
    time: str | None = None
    weekdays: tuple[str, ...] = ()  # the days of a weekly rule, as said
    month_day: int | None = None


def _repeat(raw: str) -> _Repeat:
    text = " ".join(raw.lower().replace("&", " and ").split())
    until = ""
    match = re.search(r"\s+(?:until|till)\s+(.+)$", text)
    if match:
        until, text = f" until {match[1]}", text[: match.start()]  # the server reads the end date
    length = ""
    match = re.search(rf"\s+for\s+(?:the\s+next\s+)?({_NUM})\s+([a-z]+?)s?\b", text)
    if match and re.fullmatch(_LENGTH, match[0]):  # "for two weeks" -> "for 2 weeks", at the end
        count = _number(match[1]) or 1
        length = f" for {count} {match[2]}{'s' if count != 1 else ''}"
        text = text[: match.start()] + text[match.end() :]
    time_words: str | None = None
    match = _TIME_AT_END.search(text)
    if match and match.start() > 0:
        hm = _clock_of(match[1])
        time_words = _clock_words(*hm) if hm else None
        text = text[: match.start()].strip()
    match = re.search(r",?\s+(?:in\s+the\s+)?(morning|afternoon|evening)$|,?\s+at\s+(night)$", text)
    if match and text[: match.start()].split()[-1:] not in ([], ["every"], ["each"], ["other"]):
        time_words = time_words or _DAYPART_TIMES[match[1] or match[2]]
        text = text[: match.start()]
    month_day: int | None = None
    match = re.search(rf"\s+on\s+(?:the\s+)?(\d{{1,2}}){_ORD}?(?:\s+day)?$", text) or re.fullmatch(
        rf"(?:on\s+)?(?:the\s+)?(\d{{1,2}}){_ORD}\s+(?:day\s+)?of\s+(?:every|each)\s+month", text
    )
    if match:
        month_day = int(match[1])
        text = text[: match.start()] or "every month"
    text = re.sub(r"^each\b", "every", text)
    text = re.sub(  # "every two weeks" -> "every 2 weeks", "every one day" -> "every day"
        rf"^every\s+({_NUM})\s+(days?|weeks?|months?|years?)\b",
        lambda m: "every " + _count(m[1], m[2]).removeprefix("a ").removeprefix("1 "),
        text,
    )
    text = re.sub(r"^every\s+other\s+(day|week|month|year)$", r"every 2 \1s", text)
    text = re.sub(r"^(?:every\s+fortnight|biweekly|bi-weekly|fortnightly)$", "every 2 weeks", text)
    text = re.sub(r"^(?:every\s+(?:workday|business\s+day)|(?:on\s+)?weekdays)$", "every weekday", text)
    text = re.sub(r"^on\s+weekends$", "every weekend", text)
    text = text.replace("annually", "yearly")
    if re.fullmatch(r"every\s+(morning|evening|night)", text):
        part = text.split()[-1]
        time_words = time_words or _DAYPART_TIMES[part]
        text = "daily"
    if re.search(_WD_PLURAL, text) or re.fullmatch(rf"on\s+{_WD_ANY}\W.*", text):
        days = re.findall(rf"\b{_WD_ANY}", re.sub(r"s\b", "", text.removeprefix("on ")))  # "on mon wed fri"
        text = "every " + (days[0] if len(days) == 1 else ", ".join(days[:-1]) + " and " + days[-1])

    def full(day: re.Match[str]) -> str:
        return _WD_BY_ABBR.get(day[0], day[0])

    text = re.sub(r"\b" + _WD_ABBR + r"\b", full, text)
    weekdays: tuple[str, ...] = ()
    if not re.search(r"\b(?:last|first|second|third|fourth|fifth|\d(?:st|nd|rd|th))\b", text):
        weekdays = tuple(re.findall(_WD_FULL, text))
    return _Repeat(text + length + until, time_words, weekdays, month_day)


# ------------------------------------------------------------------------------------- add commands

_ADD_VERB = re.compile(
    r"(?:please\s+)?(?:"
    r"(?:add|create|make|set\s+up|set|put|schedule|new)\s+(?:(?:a|an|another|one|me\s+a|new)\s+)*"
    r"(?P<adj>urgent|important|high[\s-]priority|low[\s-]priority|medium[\s-]priority|recurring|repeating)?\s*"
    r"(?P<noun>task|todo|to-?do|item|entry|reminder|note)\b\s*(?:(?:to|called|named|titled|that\s+says|saying"
    r"|:|-)\s*)?"
    r"|(?:add|create|new|schedule|save|log|jot\s+down|note\s+down|write\s+down|note|track)"
    r"(?:\s+(?:new\s+)?(?:task|todo|to-?do|item))?\s*(?:[:\-]\s*|\s+)"
    r"|(?:todo|to-?do|task|new\s+task)\s*[:\-]\s*"
    r")(?P<body>\S.*)",
    _I,
)
_REMIND_TO = re.compile(
    rf"(?:please\s+)?(?:remind\s+me|set\s+(?:a|an)\s+reminder|add\s+(?:a|an)\s+reminder)"
    rf"(?:\s+(?P<when>{_DUE_PREFIX}{_DATETIME})|\s+(?P<repeat>{_REPEAT}))?\s+(?:to|that\s+i\s+(?:need|have)\s+to)\s+"
    r"(?P<body>\S.*)",
    _I,
)
_REMIND_BARE = re.compile(
    rf"(?:remind\s+me|(?:set|add|create)\s+(?:a|an|me\s+a)\s+reminder)(?:\s+(?:for\s+)?{_DUE_PREFIX}{_DATETIME})?",
    _I,
)
_NEED_TO = re.compile(
    r"(?:i\s+(?:need|have|want|must|should|gotta|got)\s+to|i\s+must|i\s+should|need\s+to|have\s+to"
    r"|remember\s+to|don'?t\s+(?:let\s+me\s+)?forget(?:\s+(?:to|about))?(?:\s+the(?=\s))?|do\s+not\s+forget\s+to)"
    r"\s+(?P<body>(?!(?:it|that|this|them)\b|(?:the|a|an)$)\S.*)",
    _I,
)

_PUT_ON_LIST = re.compile(
    r"(?:put|stick|throw|pop)\s+(?P<body>.+\s+(?:on|onto|to)\s+(?:my|the)\s+(?:todo\s+|to-do\s+|task\s+)?list\b.*)",
    _I,
)
_TAIL = r"[\s,.;!?)]*$"
_HEAD = r"(?:^|(?<=[\s,;(]))"


def _tail(pattern: str) -> re.Pattern[str]:
    return re.compile(_HEAD + r"\(?" + pattern + _TAIL, _I)


_PEEL_LIST = _tail(
    r"(?:to|on|onto|in|into)\s+(?:my|the)\s+(?:todo\s+|to-do\s+|task\s+|tasks\s+)?(?:list|todos?|to-dos?|tasks)"
)
_PEEL_DESCRIPTION = re.compile(
    r"(?:^|[\s,;(]+)(?:with\s+(?:the\s+|a\s+)?)?(?:notes?|description|desc|details)\s*(?::|=|-)\s*(?P<d>.+?)\)?$",
    _I,
)
_PEEL_TAGS = _tail(
    r"(?:(?:and|,)\s*)?(?:tagged|labell?ed|tag\s+(?:it|this)|tag\s+(?:as|with|under)|(?:with\s+)?(?:the\s+)?tags?\s*:"
    r"|with\s+(?:the\s+)?(?:tags?|labels?)|(?<=,\s)tag|(?<=and\s)tag)(?:\s+(?:as|with|under))?"
    rf"\s+(?P<tags>{_TAG_LIST})"
)
_PEEL_PRIORITY = _tail(
    rf"(?:(?:and|,)\s*)?(?:(?:with|at|as|it'?s|it\s+is|make\s+it|mark\s+it)\s+)?(?P<p>{_PRIORITY_WORD}|!{{1,3}}(?:urgent|high|medium|low))!*"
)
_PEEL_REPEAT = _tail(rf"(?:(?:and|,)\s*)?(?:(?:repeat(?:ing|s)?|recurring|recurs?)\s+)?(?P<r>{_REPEAT})")
_PEEL_REMIND = _tail(
    r"(?:(?:and|,)\s*)?(?:with\s+(?:a\s+)?)?(?:remind(?:\s+me)?|reminders?|alert(?:\s+me)?|notify(?:\s+me)?|ping(?:\s+me)?)"
    rf"(?:\s+(?:(?P<offset>{_OFFSET})|(?P<at>{_DUE_PREFIX}{_DATETIME})))?"
)
_PEEL_DUE = _tail(rf"(?P<d>{_DUE_PREFIX}{_DATETIME})")
_LEAD_DUE = re.compile(rf"^(?P<d>{_DUE_PREFIX}{_DATETIME})(?:\s*[,:;\-]\s*|\s+)(?=\S)", _I)
_LEAD_PRIORITY = re.compile(rf"^(?P<p>{_PRIORITY_WORD})\s*[,:;\-!]\s*(?=\S)", _I)
# "every first monday of the month", "the first and third monday of the month": a repeat's words, not a date
_NTH_DATE = re.compile(rf"{_DUE_PREFIX}{_NTH_WEEKDAY}", _I)
_NOT_A_DATE_AFTER = re.compile(rf"\b(?:every|each|{_NTH}\s*(?:,|and|&))(?:\s+the)?\s*$", _I)
_HASHTAG = re.compile(r"(?<![\w&#])#([a-z][\w-]{0,39})", _I)
_QUOTED = re.compile(r"\"([^\"]{1,300})\"")


@dataclass
class _Fields:
    due: str | None = None
    remind: str | None = None
    repeat: str | None = None
    priority: Priority | None = None
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    remind_at_due: bool = False
    repeat_info: _Repeat | None = None


def _peel(body: str, fields: _Fields, now: datetime) -> str:
    """Take modifiers (due, remind, repeat, priority, tags) off the end and the start of `body`."""
    for hashtag in _HASHTAG.finditer(body):
        tag = hashtag[1].lower()
        if tag not in fields.tags:
            fields.tags.append(tag)
    body = _HASHTAG.sub(" ", body)
    body = " ".join(body.split())
    match = _PEEL_DESCRIPTION.search(body)
    if match and match.start() > 0:
        fields.description = match["d"].strip().strip('"') or None
        body = body[: match.start()]

    def take_list(m: re.Match[str]) -> bool:
        return True

    def take_tags(m: re.Match[str]) -> bool:
        for tag in _tags(m["tags"]):
            if tag not in fields.tags:
                fields.tags.append(tag)
        return True

    def take_priority(m: re.Match[str]) -> bool:
        if fields.priority is not None:
            return False
        fields.priority = _priority(m["p"])
        return fields.priority is not None

    def take_repeat(m: re.Match[str]) -> bool:
        if fields.repeat is not None:
            return False
        info = _repeat(m["r"])
        fields.repeat, fields.repeat_info = info.phrase, info
        return True

    def take_remind(m: re.Match[str]) -> bool:
        if fields.remind is not None or fields.remind_at_due:
            return False
        if m["offset"]:
            fields.remind = _offset_before(m["offset"])
        elif m["at"]:
            fields.remind = _when(m["at"], now)
        else:
            fields.remind_at_due = True
        return True

    def take_due(m: re.Match[str]) -> bool:
        if fields.due is not None:
            return False
        if _NTH_DATE.match(m["d"]) and _NOT_A_DATE_AFTER.search(body[: m.start()]):
            return False
        fields.due = _when(m["d"], now)
        return True

    handlers: list[tuple[re.Pattern[str], Callable[[re.Match[str]], bool]]] = [
        (_PEEL_LIST, take_list),
        (_PEEL_TAGS, take_tags),
        (_PEEL_PRIORITY, take_priority),
        (_PEEL_REPEAT, take_repeat),
        (_PEEL_REMIND, take_remind),
        (_PEEL_DUE, take_due),
    ]
    for _ in range(12):
        found = sorted(
            (
                (m.start(), index, m)
                for index, (pattern, _) in enumerate(handlers)
                if (m := pattern.search(body)) is not None and m.start() > 0
            ),  # keep something for the title
            key=lambda item: (item[0], item[1]),
        )
        taken = next((start for start, index, m in found if handlers[index][1](m)), None)
        if taken is None:
            break
        body = body[:taken].rstrip(" ,;:-")
        body = re.sub(r"\s+(?:and|with|at|on|by|due)$", "", body, flags=_I)
    lead = _LEAD_PRIORITY.match(body)
    if lead and fields.priority is None:
        fields.priority = _priority(lead["p"])
        body = body[lead.end() :]
    lead = _LEAD_DUE.match(body)
    if lead and fields.due is None:
        words = lead["d"].lower()
        if re.search(r"\d|today|tonight|tomorrow|\bin\s|next|this", words) or re.match(
            r".*[,:;\-]\s*$", lead[0]
        ):
            fields.due = _when(lead["d"], now)
            body = body[lead.end() :]
    return body


def _later_today(clock: str, now: datetime) -> bool:
    """Whether the time of day `clock` ('8am') is still ahead today."""
    hm = _clock_of(clock)
    return hm is not None and hm > (now.hour, now.minute)


def _soonest(weekdays: tuple[str, ...], clock: str | None, now: datetime) -> str:
    """The first of `weekdays` to come: today while its time (09:00 if none) is still ahead."""
    later_today = _later_today(clock or "9am", now)

    def ahead(day: str) -> int:
        days = (_WD_NAMES.index(day) - now.weekday()) % 7
        return days if days or later_today else 7

    return min(weekdays, key=ahead)


def _finish_add(title_text: str, fields: _Fields, now: datetime, *, remind_at_due: bool = False) -> Intent:
    title = _tidy_title(title_text)
    if not title:
        return Unknown("I need a title for the new task.", "add buy milk tomorrow at 9am")
    info = fields.repeat_info
    if info is not None and fields.due is None:
        if info.month_day is not None:
            fields.due = _next_month_day(info.month_day, now) + (f" {info.time}" if info.time else "")
        elif info.weekdays:
            day = _soonest(info.weekdays, info.time, now)
            fields.due = f"{day} {info.time}" if info.time else day
        elif info.time is not None:
            fields.due = info.time if _later_today(info.time, now) else f"tomorrow {info.time}"
    remind = fields.remind
    if remind is None and (remind_at_due or fields.remind_at_due) and fields.due is not None:
        remind = fields.due
    return Add(
        title=title,
        description=fields.description,
        priority=fields.priority,
        tags=tuple(fields.tags),
        due=fields.due,
        remind=remind,
        repeat=fields.repeat,
    )


def _parse_add_body(
    body: str,
    now: datetime,
    *,
    priority_hint: str | None = None,
    remind_at_due: bool = False,
    due: str | None = None,
) -> Intent:
    fields = _Fields(due=due)
    if priority_hint:
        fields.priority = _priority(priority_hint)
    quoted = _QUOTED.search(body)
    if quoted is not None:
        rest = (body[: quoted.start()] + " " + body[quoted.end() :]).strip()
        rest = re.sub(r"^(?:called|named|titled|:)\s*", "", rest, flags=_I)
        left = _peel("x " + rest, fields, now)[1:].strip() if rest else ""
        left = re.sub(r"^(?:called|named|titled)\b", "", left, flags=_I).strip()
        title = quoted[1] + (" " + left if left else "")
        return _finish_add(title, fields, now, remind_at_due=remind_at_due)
    title = _peel(body, fields, now)
    return _finish_add(title, fields, now, remind_at_due=remind_at_due)


ADD_SEVERAL_MAX = 20
_ADD_SEVERAL = re.compile(
    r"(?:add|create|new|make)\s+(?:(?:these|the\s+following|\d{1,2}|two|three|four|five|six|seven|eight|nine"
    r"|ten)\s+)?(?:new\s+)?(?:tasks|todos|to-dos|items)\s*:\s*(?P<list>.*)",
    _I | re.DOTALL,
)


def _parse_add_several(text: str, now: datetime) -> Intent | None:
    """An explicit list ('add tasks: a, b and c'), split at commas, semicolons, line breaks and an
    'and' in the last item."""
    match = _ADD_SEVERAL.fullmatch(text)
    if match is None:
        return None
    items = [re.sub(r"^and\s+", "", item.strip(), flags=_I) for item in re.split(r"[,;\n]", match["list"])]
    items = [item for item in items if item]
    if items:
        items[-1:] = re.split(r"\s+and\s+", items[-1], flags=_I)  # "..., b and c"
    if len(items) > ADD_SEVERAL_MAX:
        return Unknown(
            f"That is {len(items)} tasks; I add at most {ADD_SEVERAL_MAX} at a time.",
            "add tasks: milk, eggs, bread",
        )
    adds = tuple(intent for item in items if isinstance(intent := _parse_add_body(item, now), Add))
    if not adds:
        return Unknown("Which tasks should I add?", "add tasks: milk, eggs, bread")
    return adds[0] if len(adds) == 1 else AddSeveral(adds)


def _parse_add(text: str, now: datetime) -> Intent | None:
    several = _parse_add_several(text, now)
    if several is not None:
        return several
    match = _REMIND_TO.fullmatch(text)
    if match and match["repeat"]:  # "remind me every morning at 8 to take vitamins": said after it
        return _parse_add_body(f"{match['body']} {match['repeat']}", now, remind_at_due=True)
    if match:
        due = _when(match["when"], now) if match["when"] else None
        return _parse_add_body(match["body"], now, remind_at_due=True, due=due)
    match = _ADD_VERB.fullmatch(text)
    if match:
        noun = (match.groupdict().get("noun") or "").lower()
        adj = match.groupdict().get("adj")
        priority_hint = adj if adj and ("priority" in adj or adj.lower() in {"urgent", "important"}) else None
        return _parse_add_body(
            match["body"], now, priority_hint=priority_hint, remind_at_due=noun == "reminder"
        )
    match = _NEED_TO.fullmatch(text) or _PUT_ON_LIST.fullmatch(text)
    if match:
        return _parse_add_body(match["body"], now)
    return None


# ------------------------------------------------------------------------------------ list commands

_LIST_FILLER = frozenset((
    "what", "what's", "whats", "which", "show", "list", "me", "my", "all", "the", "tasks", "task", "todos",
    "todo", "to-dos", "to-do", "items", "item", "do", "i", "have", "has", "got", "are", "is", "there",
    "any", "anything", "for", "due", "on", "of", "in", "a", "an", "please", "can", "you", "could", "would",
    "see", "get", "give", "display", "view", "tell", "about", "that", "with", "status", "still", "now",
    "up", "plate", "agenda", "schedule", "everything", "things", "stuff", "left", "remaining", "open",
    "pending", "outstanding", "incomplete", "unfinished", "current", "active", "let's", "lets", "look",
    "at", "i've", "ive", "need", "to", "we", "should", "coming", "doing", "going", "how", "many", "much",
    "it", "them", "you're", "your", "our", "ones", "set", "by", "sorted", "sort", "order", "ordered",
    "today's", "tomorrow's", "week's", "to", "be", "should", "must", "next", "this", "and", "from",
))  # fmt: skip
_LIST_CUES = frozenset((
    "what", "what's", "whats", "which", "show", "list", "tasks", "task", "todos", "todo", "to-dos", "to-do",
    "items", "agenda", "plate", "schedule", "everything", "anything", "pending", "remaining", "outstanding",
    "left", "due",
))  # fmt: skip


def _day_bounds(day: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=tz)
    return start, end


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _window_key(raw: str) -> str:
    key = " ".join(raw.lower().replace("'", " ").replace(",", " ").replace(".", " ").split())
    key = re.sub(r"\s+s$", "", key).removeprefix("the ")
    ahead = re.fullmatch(
        r"(?:with)?(?:in\s+)?(?:the\s+)?next\s+(\S+)\s+(day|week)s?|within\s+(\S+)\s+(day|week)s?", key
    )
    count = _number(ahead[1] or ahead[3]) if ahead else None
    if ahead and count:
        return f"next {min(count * (7 if 'week' in (ahead[2] or ahead[4]) else 1), 3660)} days"
    if key in {"eow", "eom"} or re.fullmatch(r"end of (?:the |this )?(?:week|month)", key):
        return "end of month" if key == "eom" or key.endswith("month") else "end of week"
    if key in {"today", "tonight"}:
        return "today"
    if re.fullmatch(rf"(?:this|coming)\s+{_WD_FULL}", key):
        return key.split()[-1]
    if re.fullmatch(rf"next\s+{_WD_FULL}", key):
        return key
    if key.startswith("next") and "week" not in key and "month" not in key:
        return "next 7 days"
    if key in {"upcoming", "coming up", "soon"}:
        return "next 7 days"
    if key in {"week", "this weeks"}:
        return "this week"
    if key == "weekend":
        return "this weekend"
    return key


def _window(name: str, now: datetime, tz: ZoneInfo) -> tuple[str | None, str | None, str]:
    """(due_after, due_before, label) for a named window."""
    today = now.astimezone(tz)
    name = name.lower()
    if name == "today":
        start, end = _day_bounds(today, tz)
        return _iso(start), _iso(end), "today"
    if name == "tomorrow":
        start, end = _day_bounds(today + timedelta(days=1), tz)
        return _iso(start), _iso(end), "tomorrow"
    if name == "this week":
        start, _ = _day_bounds(today, tz)
        _, end = _day_bounds(today + timedelta(days=6 - today.weekday()), tz)
        return _iso(start), _iso(end), "this week"
    if name == "next week":
        monday = today + timedelta(days=7 - today.weekday())
        start, _ = _day_bounds(monday, tz)
        _, end = _day_bounds(monday + timedelta(days=6), tz)
        return _iso(start), _iso(end), "next week"
    if name == "this month":
        start, _ = _day_bounds(today, tz)
        last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
        _, end = _day_bounds(last, tz)
        return _iso(start), _iso(end), "this month"
    if name == "next month":
        first = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
        start, _ = _day_bounds(first, tz)
        _, end = _day_bounds(first.replace(day=calendar.monthrange(first.year, first.month)[1]), tz)
        return _iso(start), _iso(end), "next month"
    if name == "this weekend":
        first = today if today.weekday() == 6 else today + timedelta(days=(5 - today.weekday()) % 7)
        start, _ = _day_bounds(first, tz)
        _, end = _day_bounds(first + timedelta(days=6 - first.weekday()), tz)
        return _iso(start), _iso(end), "this weekend"
    days = re.fullmatch(r"next (\d+) days", name)
    if days:
        _, end = _day_bounds(today + timedelta(days=int(days[1])), tz)
        label = "in the next " + ("day" if days[1] == "1" else f"{days[1]} days")
        return _iso(today.replace(microsecond=0)), _iso(end), label
    if name in {"end of week", "end of month"}:
        after, before, _ = _window(name.replace("end of", "this"), now, tz)
        return after, before, "the " + name.replace("end of", "end of the")
    if name == "end of next week":  # through its Sunday, as "the end of the week" is this week
        after, before, _ = _window("next week", now, tz)
        return after, before, "the end of next week"
    if _SERVER_DAY.fullmatch(name):
        return _server_day_window(name, today, tz)
    dated = re.fullmatch(
        r"(?P<m>[a-z]{3})[a-z]*\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:\s+(?P<y>\d{4}))?"
        r"|(?P<d2>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>[a-z]{3})[a-z]*(?:\s+(?P<y2>\d{4}))?",
        name,
    )
    months = [month[:3].lower() for month in _MONTH_NAMES[1:]]
    if dated and (dated["m"] or dated["m2"]) in months:
        month, day = months.index(dated["m"] or dated["m2"]) + 1, int(dated["d"] or dated["d2"])
        year = int(dated["y"] or dated["y2"] or today.year)
        if not dated["y"] and not dated["y2"] and (month, day) < (today.month, today.day):
            year += 1  # "dec 5" in late December: next year's
        if day <= calendar.monthrange(year, month)[1]:
            return _on_day(date(year, month, day), today, tz)
    following = name.startswith(
        "next "
    )  # "next friday": the first Friday after today, as the server reads it
    weekday = _WD_BY_ABBR.get(name, name).removeprefix("next ")
    if weekday in _WD_NAMES:
        ahead = (_WD_NAMES.index(weekday) - today.weekday()) % 7 or (7 if following else 0)
        start, end = _day_bounds(today + timedelta(days=ahead), tz)
        return _iso(start), _iso(end), f"{'next' if following else 'on'} {weekday.capitalize()}"
    return None, None, name


def _on_day(day: date, today: datetime, tz: ZoneInfo) -> tuple[str, str, str]:
    """The bounds of one calendar day and its label: 'on December 5', 'on January 3 2027'."""
    first, last = _day_bounds(datetime(day.year, day.month, day.day, tzinfo=tz), tz)
    suffix = f" {day.year}" if day.year != today.year else ""
    return _iso(first), _iso(last), f"on {_MONTH_NAMES[day.month]} {day.day}{suffix}"


# Days the server's date parser finds: "end of next month", "last day of february", "eoy",
# "first friday of december", "monday next week", "a week from monday" (a window key: lower case,
# no leading "the", no dots or commas)
_SERVER_DAY = re.compile(rf"{_PERIOD_END}|eoy|{_NTH_WEEKDAY}|{_WEEK_DAY}|{_LATER_DAY}", _I)


def _server_day_window(name: str, today: datetime, tz: ZoneInfo) -> tuple[str | None, str | None, str]:
    """The day `name` means, as `mcp_server.dates.parse_when` reads it when a task is added or moved:
    'the end of next month' is labelled so; 'the last day of the month', 'the first friday of december'
    are labelled with their date ('on November 30'). A day that does not exist gives no bounds."""
    try:
        day = parse_when(name, tz=tz, now=today).date()
    except DateParseError:
        return None, None, name
    if not date.min < day < date.max:  # a second before or after it must still be a datetime
        return None, None, name
    after, before, label = _on_day(day, today, tz)
    end = re.fullmatch(r"(?:end\s+of\s+(?P<which>.+)|eoy)", name)
    if end is None:
        return after, before, label
    which = end["which"] or "year"
    if which.endswith("year"):
        label = "the end of the year"
    elif which.endswith("month"):
        label = "the end of " + ("next month" if which.startswith("next") else "the month")
    else:  # a named month: "the end of February 2027"
        year = f" {day.year}" if day.year != today.year else ""
        label = f"the end of {_MONTH_NAMES[day.month]}{year}"
    return after, before, label


_LIST_WINDOW = re.compile(
    rf"\b(?:due\s+|for\s+|on\s+)?({_WEEK_DAY}|{_LATER_DAY}|{_NTH_WEEKDAY}|(?:the\s+)?last\s+day\s+of\s+(?:{_WHICH_MONTH}|(?:(?:the|this)\s+)?year)"
    r"|today'?s?|tonight|tomorrow'?s?|this\s+week'?s?|the\s+week|next\s+week|(?:this|next)\s+month"
    r"|this\s+weekend|the\s+weekend|upcoming|coming\s+up|soon|(?:the\s+)?next\s+(?:7|seven|few)\s+days"
    rf"|(?:(?:with)?in\s+)?(?:the\s+)?next\s+{_NUM}\s+(?:days?|weeks?)|within\s+{_NUM}\s+(?:days?|weeks?)"
    rf"|{_MONTH}\.?\s+\d{{1,2}}{_ORD}?(?:,?\s+\d{{4}})?|\d{{1,2}}{_ORD}?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?"
    rf"|(?:(?:next|this|coming)\s+)?{_WD_FULL})\b",
    _I,
)
# "due before friday", "by tomorrow", "after monday": one side of a named window ("2 days after friday"
# is a day, above).
_LIST_BOUND = re.compile(
    r"\b(?:due\s+)?(?:(?P<rel>before|(?<!day\s)(?<!days\s)(?<!week\s)(?<!weeks\s)after|by|until|till)\s+|(?=(?:the\s+)?end\s+of\s|eo[wmy]\b))"
    rf"(?P<w>{_WEEK_DAY}|{_LATER_DAY}|today|tonight|tomorrow|next\s+week|next\s+month"
    r"|(?:the\s+)?end\s+of\s+(?:the\s+|this\s+|next\s+)?week"
    rf"|{_PERIOD_END}|{_NTH_WEEKDAY}|eow|eom|eoy|this\s+weekend|the\s+weekend|(?:next\s+)?{_WD_FULL})\b",
    _I,
)
_LIST_STATUS_DONE = re.compile(
    r"\b(?:what\s+(?:have|did)\s+i\s+(?:done|do|did|finish(?:ed)?|complete(?:d)?|get\s+done)"
    r"|(?:already\s+)?(?:done|completed|finished|closed|checked\s+off|ticked\s+off)|(?:i\s+)?(?:finished|completed)"
    r"|history|archive|archived)\b",
    _I,
)
_LIST_INCLUDING_DONE = re.compile(
    r"\b(?:including|incl\.?|with|plus|and\s+also|and)\s+(?:the\s+)?(?:done|completed|finished)(?:\s+ones)?\b"
    r"|\b(?:done|completed|finished)\s+(?:ones\s+)?(?:too|as\s+well)\b",
    _I,
)
_LIST_STATUS_ALL = re.compile(
    r"\b(?:all(?:\s+(?:of\s+)?(?:my|the))?|everything|every\s+task|including\s+(?:done|completed)|both)\b", _I
)
_LIST_OVERDUE = re.compile(r"\b(?:overdue|late|past\s+due|missed|behind(?:\s+on)?)\b", _I)
_LIST_PRIORITY = re.compile(
    r"\b(?:(?:with\s+)?(?P<w>urgent|high|medium|low|important|top)(?:[\s-]+priority)?|priority\s+(?P<w2>urgent|high|medium|low)"
    r"|(?P<p>p[0-4]))\b",
    _I,
)
_LIST_TAG = re.compile(
    r"(?:(?:tagged|labell?ed|with\s+(?:the\s+)?tag|tag)\s+#?(?P<t>[a-z0-9][\w-]{0,39})|#(?P<h>[a-z][\w-]{0,39}))",
    _I,
)
_LIST_SORT = re.compile(
    r"\b(?:sorted\s+|sort(?:ed)?\s+|order(?:ed)?\s+)?by\s+(?P<s>due(?:\s+date)?|date|priority|created|creation"
    r"|newest|oldest|updated|title|name|alphabet(?:ically)?)\b|\b(?P<n>newest|latest|recent(?:ly\s+added)?)\s+first\b",
    _I,
)
# "show me the leak task", "open my passport one": the tasks with those words
_SHOW_ONE = re.compile(
    r"(?:show|open|display|view|see)\s+(?:me\s+)?(?:the|my)\s+(?P<q>.+?)\s+(?:task|todo|to-do|item|one)", _I
)
_SEARCH = re.compile(
    r"(?:(?:search|find|look\s+for|look\s+up|lookup|grep)\s+(?:for\s+)?(?:(?:my|the|all)\s+)?(?:(?:tasks?|todos?|items?)\s+)?"
    r"(?:(?:about|with|containing|matching|mentioning|called|named|for|on|that\s+mention|that\s+contain)\s+)?"
    r"|(?:(?:show|list)\s+(?:me\s+)?)?(?:(?:my|all)\s+)?(?:tasks?|todos?|anything|something|everything|items?)\s+"
    r"(?:about|containing|matching|mentioning|with\s+the\s+words?|that\s+mentions?|called|named)\s+"
    r"|do\s+i\s+have\s+(?:anything|a\s+task|any\s+tasks?|something)\s+(?:about|for|with|on|mentioning)\s+)"
    r"(?P<q>\S.*)",
    _I,
)


def _take_bounds(work: str, now: datetime, tz: ZoneInfo, values: dict[str, object]) -> tuple[str, str | None]:
    """'due before friday', 'by tomorrow', 'after monday': sets `due_before`/`due_after` in `values`;
    returns `work` without them, and their label ('after Monday and before Friday') if any."""
    labels: list[str] = []
    for bound in reversed(list(_LIST_BOUND.finditer(work))):
        start, end, label = _window(_window_key(bound["w"]), now, tz)
        if start is None or end is None:
            continue
        rel = (bound["rel"] or "by").lower()
        if rel == "before" and label.startswith("the end of"):
            rel = "by"  # "before the end of the week": by then
        first = datetime.fromisoformat(start)
        on_weekday = label.removeprefix("on ").lower() in _WD_NAMES
        if rel == "before" and on_weekday and first.date() == now.astimezone(tz).date():
            first += timedelta(days=7)  # "before friday" on a Friday: the next one
        if rel == "before":
            values["due_before"] = _iso(first - timedelta(seconds=1))
        elif rel == "after":
            values["due_after"] = _iso(datetime.fromisoformat(end) + timedelta(seconds=1))
        else:
            values["due_before"] = end
        labels.insert(0, f"{rel if rel in {'before', 'after'} else 'by'} {label.removeprefix('on ')}")
        work = work[: bound.start()] + " " + work[bound.end() :]
    return work, " and ".join(labels) or None


def _parse_filters(
    low: str, now: datetime, tz: ZoneInfo, *, allow_words: bool = False
) -> tuple[Filters, str | None, list[str], bool, str]:
    """Filters found in `low`, the window label, the words left over, whether any filter was found,
    and `low` with the filters taken out ('show work tasks due today' -> 'show work tasks')."""
    values: dict[str, object] = {}
    work, window = _take_bounds(" " + low + " ", now, tz, values)
    found = window is not None
    match = None if window else _LIST_WINDOW.search(work)
    if match:
        values["due_after"], values["due_before"], window = _window(_window_key(match[1]), now, tz)
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    match = _LIST_OVERDUE.search(work)
    if match:
        values["overdue"] = True
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    match = _LIST_INCLUDING_DONE.search(work)
    if match:
        values["status"] = "all"
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    match = None if match else _LIST_STATUS_DONE.search(work)
    if match:
        values["status"] = "done"
        values["sort"] = "updated"
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    match = _LIST_SORT.search(work)
    if match:
        key = (match["s"] or match["n"] or "").lower()
        sort: SortKey = "due"
        if key.startswith("prio"):
            sort = "priority"
        elif key in {"created", "creation", "newest", "latest"} or key.startswith("recent"):
            sort = "created"
        elif key == "updated":
            sort = "updated"
        elif key in {"title", "name"} or key.startswith("alphabet"):
            sort = "title"
        values["sort"] = sort
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    match = _LIST_PRIORITY.search(work)
    if match:
        values["priority"] = _priority(match["w"] or match["w2"] or match["p"] or "")
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    match = _LIST_TAG.search(work)
    if match:
        values["tag"] = (match["t"] or match["h"]).lower()
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    match = _LIST_STATUS_ALL.search(work)
    if match and "status" not in values:
        values["status"] = "all"
        work = work[: match.start()] + " " + work[match.end() :]
        found = True
    elif match:
        work = work[: match.start()] + " " + work[match.end() :]
    leftover = [w for w in re.findall(r"[\w'#-]+", work.lower()) if w not in _LIST_FILLER]
    filters = Filters(**values)  # type: ignore[arg-type]
    return filters, window, leftover, found, " ".join(work.split())


# "what did I finish yesterday": done tasks by their completion time (list_tasks' done_after/done_before)
_DONE_WHEN = re.compile(
    r"(?:what|which|show|list|tasks?|todos?|everything|anything)\b.*\b(?:(?:did|have|i'?ve)\s+(?:i\s+|we\s+)?"
    r"(?:complete|completed|finish|finished|do|done|did|get\s+done|got\s+done|tick(?:ed)?\s+off|check(?:ed)?\s+off)"
    # "what I did today", but not "what should I do today" (that is what is due)
    r"|i\s+(?:completed|finished|did|got\s+done|ticked\s+off|checked\s+off))"
    r"\s+(?P<when>yesterday|today|tonight|this\s+(?:week|month|morning)|last\s+(?:week|month|night)|recently"
    r"|lately|so\s+far(?:\s+this\s+(?:week|month))?)",
    _I,
)


def _completion_window(when: str, now: datetime) -> tuple[str, str | None]:
    """ISO bounds of 'yesterday', 'this week', 'last month', 'recently'... for completion times."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    end: datetime | None = None
    if when == "yesterday":
        start, end = today - timedelta(days=1), today - timedelta(microseconds=1)
    elif when in ("today", "tonight", "this morning"):
        start = today
    elif when == "last night":
        start, end = today - timedelta(hours=6), today + timedelta(hours=6)
    elif when.endswith("week"):
        start = monday - timedelta(days=7) if when.startswith("last") else monday
        end = monday - timedelta(microseconds=1) if when.startswith("last") else None
    elif when.endswith("month"):
        start = (first - timedelta(days=1)).replace(day=1) if when.startswith("last") else first
        end = first - timedelta(microseconds=1) if when.startswith("last") else None
    else:  # recently, lately, so far
        start = today - timedelta(days=7)
    return start.isoformat(), None if end is None else end.isoformat()


_TAG_LEAD = r"(?:(?:show|list|what\s+are)\s+)?(?:me\s+)?(?:my\s+|the\s+|all\s+)?(?P<tag>[a-z][\w-]{0,39})\s+"
_TAG_TASKS = re.compile(rf"{_TAG_LEAD}(?:tasks|todos|to-dos|items|stuff)", _I)
_TAG_TASKS_FILTERED = re.compile(rf"{_TAG_LEAD}(?:tasks|todos|to-dos|items)", _I)


def _parse_list(text: str, now: datetime, tz: ZoneInfo) -> Intent | None:
    low = text.lower().rstrip("?!. ")
    finished = _DONE_WHEN.fullmatch(low)
    if finished is not None:
        when = " ".join(finished["when"].split())
        after, before = _completion_window(when, now.astimezone(tz))
        filters = Filters(status="done", sort="updated", done_after=after, done_before=before)
        return ListTasks(filters, when, "finished")
    match = _SEARCH.fullmatch(text.rstrip("?!. ")) or _SHOW_ONE.fullmatch(text.rstrip("?!. "))
    if match:
        query = _clean_ref(match["q"])
        query = re.sub(r"\s+(?:tasks?|todos?)$", "", query, flags=_I).strip()
        if query and query.lower() not in _LIST_FILLER:
            return ListTasks(Filters(status="all", query=query[:200]))
    filters, window, leftover, found, rest = _parse_filters(low, now, tz)
    words = set(re.findall(r"[\w'-]+", low))
    cue = found or bool(words & _LIST_CUES)
    if not cue:
        return None
    if not leftover:
        return ListTasks(filters, window)
    # "work tasks", "show me errands todos": one unknown word before tasks/todos is a tag; so it is once
    # the filters are taken out ("overdue work tasks", "show work tasks due this week"), but not before
    # "stuff" ("work stuff due friday" is a task to add)
    match = _TAG_TASKS.fullmatch(low) or _TAG_TASKS_FILTERED.fullmatch(rest)
    if match and len(leftover) == 1 and leftover[0] == match["tag"] and filters.tag is None:
        return ListTasks(replace(filters, tag=match["tag"]), window)
    return None


# -------------------------------------------------------------------------------- task references

_REF_LEAD = re.compile(
    r"^(?:(?:the|my|that|this|a|an|our|task|todo|to-do|item|reminder|one)\s+)*(?:(?:task|todo|item|one|reminder)\s+)?"
    r"(?:(?:called|named|titled|about|for|to|that\s+says|saying)\s+)?",
    _I,
)
_REF_TAIL = re.compile(
    r"(?:'s)?(?:\s+(?:one|task|tasks|todo|to-do|item|reminder|thing|entry))+$|\s+(?:please|pls|now)$|'s$", _I
)


def _clean_ref(raw: str) -> str:
    ref = " ".join(raw.split()).strip(" .,!?;:")
    if len(ref) >= 2 and ref[0] == ref[-1] and ref[0] in "\"'`":
        return ref[1:-1].strip()
    if ref.lower() in PRONOUNS:
        return "it"
    previous = None
    while previous != ref:
        previous = ref
        ref = _REF_LEAD.sub("", ref, count=1).strip()
        ref = _REF_TAIL.sub("", ref).strip(" .,!?;:")
    ref = ref.lstrip("#").strip()
    if ref.lower() in PRONOUNS:
        return "it"
    return ref


_BULK_REFS = re.compile(
    r"(?:all|everything|every\s+(?:single\s+)?(?:task|todo|one|thing)|all\s+of\s+them|them\s+all|them|these|those"
    r"|(?:all\s+)?(?:my|the)\s+(?:tasks|todos|list)|the\s+(?:whole|entire)\s+list|my\s+(?:whole|entire)\s+list)",
    _I,
)


# "all of today's tasks", "everything from today", "the overdue ones": several tasks, never one found by words
_SEVERAL_REF = re.compile(
    r"(?:all|everything|every|each|both)\b|.*\b(?:tasks|todos|to-dos)\b|the\s+[\w']+\s+ones$", _I
)


_POSITION_REF = re.compile(
    r"(?:the\s+)?(?P<o>first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|1st|2nd|3rd|[4-9]th"
    r"|10th)(?:\s+(?:one|task|todo|to-do|item))?",
    _I,
)


def _act(action: Action, raw_ref: str, changes: Changes | None = None) -> Intent:
    ref = _clean_ref(raw_ref)
    verb = {
        "complete": "mark done",
        "reopen": "reopen",
        "delete": "delete",
        "rename": "rename",
        "update": "change",
    }[action]
    if not ref:
        return Unknown(
            f"Which task should I {verb}? Name it by words from its title.",
            f"{'mark the milk one done' if action == 'complete' else verb + ' the milk task'}",
        )
    place = _POSITION_REF.fullmatch(raw_ref.strip(" .,!?;:"))
    if place is not None:  # "the first one": the model counts in the listing just shown ("last": or 'it')
        return Act(action, ref, changes or Changes(), position=_ORDINALS[place["o"].lower()])
    several = not raw_ref.lstrip().startswith(('"', "'")) and _SEVERAL_REF.match(raw_ref.strip())
    if several or _BULK_REFS.fullmatch(ref) or ref.lower() in {"tasks", "todos", "everything", "all tasks"}:
        return Unknown(
            f"I can only {verb} one task at a time; name the task by words from its title.",
            "mark the milk one done",
        )
    return Act(action, ref[:200], changes or Changes())


# ---------------------------------------------------------------------------------- act commands

_REOPEN_PATTERNS = [
    re.compile(
        r"(?:reopen|re-open|unmark|uncomplete|un-complete|undo|restore|unfinish|uncheck|untick)\s+(?P<ref>.+)",
        _I,
    ),
    re.compile(
        r"mark\s+(?P<ref>.+?)\s+(?:as\s+)?(?:not\s+(?:done|complete|completed|finished)|undone|incomplete"
        r"|open|unfinished|to\s?do|pending|active)",
        _I,
    ),
    re.compile(
        r"(?P<ref>.+?)\s+(?:is\s+not|isn'?t|was\s+not|wasn'?t|is\s+not\s+yet|isn'?t\s+yet)\s+"
        r"(?:done|finished|complete|completed)(?:\s+yet)?",
        _I,
    ),
]
_COMPLETE_PATTERNS = [
    re.compile(
        r"(?:mark|set|flag|check|tick)\s+(?P<ref>.+?)\s+(?:as\s+)?(?:done|complete|completed|finished"
        r"|checked|off|ticked)",
        _I,
    ),
    re.compile(r"(?:complete|finish|check\s+off|tick\s+off|cross\s+off|close|strike)\s+(?P<ref>.+)", _I),
    re.compile(r"(?:cross|check|tick|strike)\s+(?P<ref>.+?)\s+off(?:\s+(?:my|the)\s+list)?", _I),
    re.compile(
        r"i(?:'ve|\s+have)?\s+(?:just\s+|already\s+)?(?:done|did|finished|completed)\s+(?P<ref>.+)", _I
    ),
]
_COMPLETE_LOOSE = [
    re.compile(r"(?:(?:i'?m|i\s+am)\s+)?(?:done|finished|completed)\s*(?:with\s+|:\s*|-\s*)(?P<ref>.+)", _I),
    re.compile(r"(?:i\s+)?(?:just\s+|have\s+|'ve\s+)?(?:finished|completed)\s+(?P<ref>.+)", _I),
    re.compile(r"(?P<ref>.+?)\s+(?:is|are)\s+(?:now\s+|all\s+)?(?:done|complete|completed|finished)", _I),
    re.compile(r"(?P<ref>.+?)\s*(?:-|:)?\s+(?:done|finished|completed)", _I),
]
_DELETE = re.compile(
    r"(?:delete|remove|erase|trash|drop|get\s+rid\s+of|bin|discard|scrap|purge|wipe|clear|cancel)\s+(?:out\s+)?(?P<ref>.+)",
    _I,
)
_RENAME_PATTERNS = [
    re.compile(r"(?:rename|retitle)\s+(?P<ref>.+?)\s+(?:to|as|into)\s+(?P<new>.+)", _I),
    re.compile(r"(?:rename|retitle)\s+(?P<ref>.+?)\s*:\s*(?P<new>.+)", _I),
    re.compile(
        r"(?:change|update|set|edit)\s+(?:the\s+)?(?:title|name|wording)\s+(?:of|for|on)\s+(?P<ref>.+?)\s+"
        r"(?:to|as)\s+(?P<new>.+)",
        _I,
    ),
    re.compile(r"(?:change|update|set|edit)\s+(?P<ref>.+?)(?:'s)?\s+(?:title|name)\s+to\s+(?P<new>.+)", _I),
]
_MOVE = re.compile(
    r"(?:move|reschedule|postpone|push(?:\s+back)?|shift|delay|put\s+off|bump|defer)\s+(?P<rest>.+)", _I
)
# "postpone milk by 2 days", "push milk back a week", "move the report a day earlier": moved by a length
_MOVE_BY = re.compile(
    rf"(?P<ref>.+?)\s+(?:back\s+|out\s+)?(?:by\s+)?(?P<n>{_NUM})\s*(?P<u>{_UNIT})(?:\s+(?P<side>later|earlier))?",
    _I,
)
_MOVE_TO_PRIORITY = re.compile(
    rf"(?P<ref>.+?)\s+(?:up\s+|down\s+)?to\s+(?P<p>{_PRIORITY_WORD}|(?:urgent|high|medium|low|none)(?:\s+priority)?)",
    _I,
)
# "what is due friday" asks; it names no task to change.
_NOT_A_QUESTION = r"(?!(?:what|what'?s|which|who|anything|something|everything|nothing|any|all)\b)"
_DUE_SET_PATTERNS = [
    re.compile(
        r"(?:set|change|make|update|move)\s+(?:the\s+)?(?:due\s*(?:date|time)?|deadline)\s+(?:of|for|on)\s+"
        r"(?P<ref>.+?)\s+(?:to|for|as)\s+(?P<when>.+)",
        _I,
    ),
    re.compile(r"(?:make|set)\s+(?P<ref>.+?)\s+(?:to\s+)?(?:be\s+)?due\s+(?P<when>.+)", _I),
    re.compile(rf"{_NOT_A_QUESTION}(?P<ref>.+?)\s+(?:is|should\s+be)\s+(?:now\s+)?due\s+(?P<when>.+)", _I),
    re.compile(
        r"(?:change|update|move|set)\s+(?:the\s+)?(?P<ref>.+?)(?:'s)?\s+(?:due\s*(?:date|time)?|deadline|time|date)"
        r"\s+to\s+(?P<when>.+)",
        _I,
    ),
    # "set the dentist for next tuesday at 4", "dentist moved to dec 5" (checked to be a date below)
    re.compile(r"set\s+(?P<ref>.+?)\s+(?:for|to)\s+(?P<when>.+)", _I),
    re.compile(
        r"(?P<ref>.+?)\s+(?:is\s+|was\s+|got\s+|has\s+been\s+)?(?:moved|rescheduled|postponed|pushed(?:\s+back)?)"
        r"\s+(?:to|until|till)\s+(?P<when>.+)",
        _I,
    ),
]
# "make it friday", "actually make it 6pm": the task just talked about (a date, checked below)
_DUE_SET_PATTERNS.append(
    re.compile(
        r"(?:make|set|move|change|switch)\s+(?P<ref>it|that|this|that\s+one|this\s+one)\s+(?:to\s+|for\s+)?(?P<when>.+)",
        _I,
    )
)
_DUE_SET_LOOSE = frozenset(_DUE_SET_PATTERNS[-3:])
_DUE_CLEAR = re.compile(
    r"(?:clear|remove|delete|drop|unset)\s+(?:the\s+)?(?:due\s*(?:date|time)?|deadline)\s+(?:of|from|for|on)\s+(?P<ref>.+)",
    _I,
)
_PRIORITY_PATTERNS = [
    re.compile(
        r"(?:set|change|make|update)\s+(?:the\s+)?priority\s+(?:of|for|on)\s+(?P<ref>.+?)\s+(?:to\s+)?"
        rf"(?P<p>{_PRIORITY_WORD}|urgent|high|medium|low|none)",
        _I,
    ),
    re.compile(
        r"(?:set|change|make|update)\s+(?P<ref>.+?)(?:'s)?\s+priority\s+(?:to\s+)?"
        r"(?P<p>urgent|high|medium|low|none|p[0-4])",
        _I,
    ),
    re.compile(
        r"(?:make|set|mark|change|flag|bump|raise|lower|drop)\s+(?P<ref>.+?)\s+(?:to\s+|as\s+)?"
        rf"(?P<p>{_PRIORITY_WORD}|not\s+urgent|unimportant)",
        _I,
    ),
    re.compile(
        rf"{_NOT_A_QUESTION}(?P<ref>.+?)\s+is\s+(?:now\s+|very\s+|really\s+|super\s+)?(?P<p>{_PRIORITY_WORD})",
        _I,
    ),
]
_PRIORITIZE = re.compile(r"(?P<verb>prioriti[sz]e|deprioriti[sz]e|escalate)\s+(?P<ref>.+)", _I)
_TAG_ADD_PATTERNS = [
    re.compile(
        r"(?:add\s+(?:the\s+)?tags?|add|put)\s+(?P<tags>#[^\s,#]+(?:(?:\s*,\s*|\s+and\s+|\s+)#[^\s,#]+)*)\s+"
        r"(?:to|on)\s+(?P<ref>.+)",
        _I,
    ),
    re.compile(rf"add\s+(?:the\s+)?tags?\s+(?P<tags>{_TAG_LIST})\s+(?:to|on)\s+(?P<ref>.+)", _I),
    re.compile(r"tag\s+(?P<ref>.+?)\s+(?:with|as|under)\s+(?P<tags>.+)", _I),
    re.compile(r"tag\s+(?P<ref>.+?)\s+(?P<tags>#[^\s,#]+(?:(?:\s*,\s*|\s+and\s+|\s+)#[^\s,#]+)*)", _I),
    re.compile(r"tag\s+(?P<ref>.+)\s+(?P<tags>[a-z0-9][\w-]{0,39})", _I),
]
_TAG_REMOVE_PATTERNS = [
    re.compile(
        r"(?:remove|delete|drop|take\s+off|clear)\s+(?:the\s+)?(?:tags?\s+)?(?P<tags>#[^\s,#]+(?:(?:\s*,\s*|\s+and\s+|\s+)#[^\s,#]+)*)"
        r"\s+(?:from|on|off)\s+(?P<ref>.+)",
        _I,
    ),
    re.compile(
        rf"(?:remove|delete|drop|take\s+off)\s+(?:the\s+)?tags?\s+(?P<tags>{_TAG_LIST})\s+(?:from|on|off)\s+(?P<ref>.+)",
        _I,
    ),
    re.compile(
        rf"(?:remove|delete|drop|take(?:\s+off)?)\s+(?:the\s+)?(?P<tags>{_TAG_LIST})\s+tags?\s+(?:from|of|on|off)\s+(?P<ref>.+)",
        _I,
    ),
    re.compile(r"untag\s+(?P<ref>.+?)\s+(?P<tags>#?[a-z0-9][\w-]{0,39})", _I),
]
_TAG_CLEAR = re.compile(
    r"(?:remove|clear|delete|drop)\s+(?:all\s+)?(?:the\s+)?tags\s+(?:from|of|on)\s+(?P<ref>.+)", _I
)
_SNOOZE = re.compile(
    r"(?:snooze|delay|push|move|postpone)\s+(?:the\s+)?(?:reminder|alert|notification)\s+(?:for|of|on|about)\s+"
    r"(?P<ref3>.+?)\s+(?:to|until|till|by|for|at)\s+(?P<when3>.+)"
    r"|(?:snooze|delay|push|move|postpone)\s+(?:the\s+)?(?P<ref>.+?)(?:'s)?\s+(?:reminder|alert|notification)\s+"
    r"(?:to|until|till|by|for|at)\s+(?P<when>.+)"
    r"|snooze\s+(?P<ref2>.+?)\s+(?:to|until|till|by|for|at)\s+(?P<when2>.+)",
    _I,
)
_SNOOZE_BARE = re.compile(r"snooze\s+(?P<ref>.+)", _I)
_REMIND_ABOUT = re.compile(
    r"(?:remind\s+me\s+(?:about|of)|set\s+(?:a\s+)?reminder\s+(?:for|on)|change\s+(?:the\s+)?reminder\s+(?:for|of|on))"
    rf"\s+(?P<ref>.+?)\s+(?:(?:to\s+)?(?P<offset>{_OFFSET})|(?P<when>(?:to\s+|for\s+)?{_DUE_PREFIX}{_DATETIME}))",
    _I,
)
_REMIND_CLEAR = re.compile(
    r"(?:clear|remove|delete|cancel|turn\s+off|disable|drop|stop)\s+(?:the\s+)?(?:reminders?|alerts?|notifications?)"
    r"\s+(?:of|from|for|on|about)\s+(?P<ref>.+)"
    r"|(?:don'?t|do\s+not|stop)\s+remind(?:ing)?\s+me\s+(?:about|of)\s+(?P<ref2>.+)",
    _I,
)
_REPEAT_SET_PATTERNS = [
    re.compile(rf"(?:make|set)\s+(?P<ref>.+?)\s+(?:to\s+)?(?:repeat|recur)s?\s+(?P<r>{_REPEAT})", _I),
    re.compile(rf"repeat\s+(?P<ref>.+?)\s+(?P<r>{_REPEAT})", _I),
    re.compile(rf"(?P<ref>.+?)\s+(?:should\s+)?(?:repeats?|recurs?)\s+(?P<r>{_REPEAT})", _I),
    re.compile(r"make\s+(?P<ref>.+?)\s+(?P<r>daily|weekly|monthly|yearly|fortnightly|biweekly)", _I),
]
_FIELD = (
    r"(?:(?:repeat|recurrence|repetition|schedule|priority|reminder|due\s*date|deadline|tag|note"
    r"|description)s?)"
)
_REPEAT_CLEAR = re.compile(
    r"(?:stop\s+repeating|don'?t\s+repeat|do\s+not\s+repeat|no\s+longer\s+repeat|unrepeat|stop\s+recurring)\s+(?P<ref>.+)"
    r"|(?P<ref2>.+?)\s+(?:should\s+)?(?:not|no\s+longer|shouldn'?t)\s+(?:repeat|recur)"
    r"|make\s+(?P<ref3>.+?)\s+(?:not\s+repeat|one[\s-]off|non[\s-]repeating|a\s+one[\s-]off)"
    r"|stop\s+(?P<ref4>.+?)\s+(?:from\s+)?(?:repeating|recurring)"
    r"|(?:remove|clear|delete|drop|cancel|end)\s+(?:the\s+)?(?:repeat|recurrence|repetition|series)\s+(?:of|from|for|on)\s+"
    r"(?P<ref5>.+)",
    _I,
)
_PRIORITY_CLEAR = re.compile(
    r"(?:remove|clear|delete|drop|unset|reset)\s+(?:the\s+)?(?:(?:urgent|high|medium|low)\s+)?priority\s+"
    r"(?:of|from|for|on)\s+(?P<ref>.+)",
    _I,
)
# "remove <something> from/of <task>" where the something is one of a task's fields: never a delete.
_FIELD_OF = re.compile(rf"(?:\S+\s+){{0,3}}?{_FIELD}\s+(?:of|from|for|on|off)\s+\S.*", _I)
# "clear my reminders", "remove all due dates": a field of every task, which is not a delete either
_FIELD_ALONE = re.compile(rf"(?:(?:my|all|the|every|of|these|those|your)\s+)*{_FIELD}", _I)
_FIELD_OF_EVERY_TASK = Unknown(
    "I clear a field one task at a time, and I won't delete tasks for it; name the task.",
    "remove the reminder from the dentist",
)
_DESCRIPTION_SET = re.compile(
    r"(?:add|set|put|change|update|attach|write)\s+(?:a\s+|the\s+|some\s+)?(?:notes?|description|details|comments?)\s+"
    r"(?:to|on|for|of)\s+(?P<ref>.+?)\s*(?::|\s-|\ssaying|\sthat\s+says|\sto)\s+(?P<d>.+)"
    r"|describe\s+(?P<ref2>.+?)\s+as\s+(?P<d2>.+)",
    _I,
)
_DESCRIPTION_CLEAR = re.compile(
    r"(?:clear|remove|delete|drop)\s+(?:the\s+)?(?:note|notes|description|details)\s+(?:of|from|for|on)\s+(?P<ref>.+)",
    _I,
)
_CHANGE_TO = re.compile(r"(?:change|update|set|edit|switch)\s+(?P<ref>.+?)\s+to\s+(?P<value>.+)", _I)
_EDIT_BARE = re.compile(r"(?:change|update|edit|modify)\s+(?P<ref>.+)", _I)


def _is_datetime(text: str) -> bool:
    return _WHEN_ONLY.fullmatch(text.strip(" .!?")) is not None


def _split_when(rest: str, now: datetime) -> tuple[str, str] | None:
    """'the trip to paris to friday 3pm' -> ('the trip to paris', 'friday 3pm'), trying each 'to'/'until'."""
    separators = list(re.finditer(r"\s+(?:to|until|till|for|on|by|back\s+to)\s+", rest, _I))
    for sep in separators:
        when = rest[sep.end() :]
        if _is_datetime(when):
            return rest[: sep.start()], _when(when, now)
    match = _WHEN_AT_END.search(rest)
    if match and match.start() > 0:
        return rest[: match.start()], _when(match["w"], now)
    if separators:
        sep = separators[0]
        return rest[: sep.start()], " ".join(rest[sep.end() :].lower().split())
    return None


def _parse_explicit_act(text: str, now: datetime) -> Intent | None:
    """Changes worded like an add: 'add tag x to y', 'add a note to y: ...', 'set a reminder for y at 6pm'."""
    for pattern in _TAG_ADD_PATTERNS[:2]:
        match = pattern.fullmatch(text)
        if match and _tags(match["tags"]):
            return _act("update", match["ref"], Changes(add_tags=_tags(match["tags"])))
    match = _DESCRIPTION_SET.fullmatch(text)
    if match:
        ref, description = (match["ref"], match["d"]) if match["ref"] else (match["ref2"], match["d2"])
        return _act("update", ref, Changes(description=description.strip().strip('"')))
    match = _REMIND_ABOUT.fullmatch(text)
    if match:
        remind = (
            _offset_before(match["offset"])
            if match["offset"]
            else _when(re.sub(r"^(?:to|for)\s+", "", match["when"], flags=_I), now)
        )
        return _act("update", match["ref"], Changes(remind=remind))
    return None


def _parse_act(text: str, now: datetime) -> Intent | None:
    for pattern in _RENAME_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            title = _tidy_title(match["new"])
            if not title:
                return Unknown("What should the new title be?", "rename the milk one to buy oat milk")
            return _act("rename", match["ref"], Changes(title=title))
    match = _DESCRIPTION_CLEAR.fullmatch(text)
    if match:
        return _act("update", match["ref"], Changes(description=""))
    explicit = _parse_explicit_act(text, now)
    if explicit is not None:
        return explicit
    match = _REMIND_CLEAR.fullmatch(text)
    if match:
        return _act("update", match["ref"] or match["ref2"], Changes(remind=""))
    match = _DUE_CLEAR.fullmatch(text)
    if match:
        return _act("update", match["ref"], Changes(due=""))
    match = _TAG_CLEAR.fullmatch(text)
    if match:
        return _act("update", match["ref"], Changes(tags=()))
    for pattern in _TAG_REMOVE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return _act("update", match["ref"], Changes(remove_tags=_tags(match["tags"])))
    match = _REPEAT_CLEAR.fullmatch(text)
    if match:
        ref = next(match[name] for name in ("ref", "ref2", "ref3", "ref4", "ref5") if match[name])
        return _act("update", ref, Changes(repeat=""))
    match = _PRIORITY_CLEAR.fullmatch(text)
    if match:
        return _act("update", match["ref"], Changes(priority="none"))
    match = _SNOOZE.fullmatch(text)
    if match:
        ref = match["ref3"] or match["ref"] or match["ref2"]
        when = match["when3"] or match["when"] or match["when2"]
        remind = _snooze_when(when, now)
        return _act("update", ref, Changes(remind=remind))
    match = _SNOOZE_BARE.fullmatch(text)
    if match:
        return Unknown("Until when should I snooze it?", "snooze the call mom reminder to 7pm")
    for pattern in _REOPEN_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return _act("reopen", match["ref"])
    for pattern in _COMPLETE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return _act("complete", match["ref"])
    match = _PRIORITIZE.fullmatch(text)
    if match:
        level: Priority = "low" if match["verb"].lower().startswith("de") else "high"
        return _act("update", match["ref"], Changes(priority=level))
    for pattern in _PRIORITY_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            words = match["p"].lower()
            level_found: Priority | None = (
                "low" if words in {"not urgent", "unimportant"} else _priority(words)
            )
            if level_found is not None:
                return _act("update", match["ref"], Changes(priority=level_found))
    for pattern in _TAG_ADD_PATTERNS[2:]:
        match = pattern.fullmatch(text)
        if match:
            tags = _tags(match["tags"])
            if tags:
                return _act("update", match["ref"], Changes(add_tags=tags))
    for pattern in _REPEAT_SET_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            info = _repeat(match["r"])
            return _act("update", match["ref"], Changes(repeat=info.phrase))
    for pattern in _DUE_SET_PATTERNS:
        match = pattern.fullmatch(text)
        if match and (pattern not in _DUE_SET_LOOSE or _is_datetime(match["when"])):
            return _act("update", match["ref"], Changes(due=_when(match["when"], now)))
    match = _MOVE.fullmatch(text)
    if match:
        to_level = _MOVE_TO_PRIORITY.fullmatch(match["rest"])
        level_moved = _priority(to_level["p"]) if to_level else None
        if to_level and level_moved is not None:
            return _act("update", to_level["ref"], Changes(priority=level_moved))
        by = _MOVE_BY.fullmatch(match["rest"])
        if by:  # the service moves the current due date: "+2 days", "-1 day"
            length = _relative(by["n"], by["u"]).removeprefix("in ")
            return _act("update", by["ref"], Changes(due=("-" if by["side"] == "earlier" else "+") + length))
        split = _split_when(match["rest"], now)
        if split is None:
            return Unknown("When should I move it to?", "move the dentist to friday 3pm")
        return _act("update", split[0], Changes(due=split[1]))
    match = _CHANGE_TO.fullmatch(text)
    if match:
        value = match["value"].strip()
        level_value = _priority(value) if _PRIORITY_ONLY.fullmatch(value) else None
        if level_value is not None:
            return _act("update", match["ref"], Changes(priority=level_value))
        if _is_datetime(value):
            return _act("update", match["ref"], Changes(due=_when(value, now)))
        if _REPEAT_ONLY.fullmatch(value):
            return _act("update", match["ref"], Changes(repeat=_repeat(value).phrase))
        title = _tidy_title(value)
        if title:
            return _act("rename", match["ref"], Changes(title=title))
    match = _EDIT_BARE.fullmatch(text)
    if match:
        return Unknown("What should I change about it?", "move the dentist to friday 3pm")
    return None


def _snooze_when(when: str, now: datetime) -> str:
    """A length moves the reminder ('+30 minutes': from its time while it is ahead, from now once it
    has fired); anything else is the new time."""
    match = re.fullmatch(rf"(?:another\s+)?({_NUM})\s*({_UNIT}|months?)(?:\s+more)?", when.strip(" .!?"), _I)
    if match:
        return "+" + _relative(match[1], match[2]).removeprefix("in ")
    if re.fullmatch(r"(?:an?|one)\s+(?:more\s+)?(hour|minute|day|week)", when.strip(" .!?"), _I):
        return "+1 " + when.split()[-1].lower()
    return _when(when, now)


# ------------------------------------------------------------------------------ bulk delete

_BULK_DELETE = re.compile(
    r"(?:delete|remove|erase|clear|wipe|trash|purge|drop|get\s+rid\s+of|clean\s+up|nuke|empty|bin)\s+(?:out\s+)?"
    r"(?P<scope>.*)",
    _I,
)
_BULK_CUE = re.compile(
    r"\b(?:all|everything|every|entire|whole|them|these|those|tasks|todos|to-dos|items|ones|list|completed|done|finished)\b",
    _I,
)


def _parse_bulk_delete(text: str, now: datetime, tz: ZoneInfo) -> Intent | None:
    match = _BULK_DELETE.fullmatch(text.rstrip("!.? "))
    if match is None:
        return None
    scope = match["scope"].strip()
    if not scope:
        return Unknown("What should I delete? Name the task by words from its title.", "delete the milk task")
    if _FIELD_ALONE.fullmatch(scope):
        return _FIELD_OF_EVERY_TASK
    if not _BULK_CUE.search(scope):
        return None
    low = scope.lower()
    if re.fullmatch(
        r"(?:them|these|those)(?:\s+(?:all|tasks|ones|todos))?|all\s+of\s+(?:them|these|those)|them\s+all",
        low,
    ):
        return Unknown(
            "Which tasks should I delete? Say, for example, 'delete all completed tasks'.",
            "delete all completed tasks",
        )
    if re.fullmatch(
        r"(?:the\s+|my\s+|this\s+|that\s+)?(?:\S+\s+){0,6}?(?:task|todo|to-do|one|item|reminder)", low
    ) and not re.search(r"\b(?:all|every|everything|completed|done|finished)\b", low):
        return None  # "delete the milk task": one task
    filters, window, leftover, _found, _rest = _parse_filters(low, now, tz)
    if filters.status == "open" and not re.search(
        r"\b(?:open|pending|remaining|outstanding|incomplete|unfinished)\b", low
    ):
        filters = replace(filters, status="all")
    leftover = [
        w
        for w in leftover
        if w
        not in {
            "every",
            "single",
            "entire",
            "whole",
            "ones",
            "from",
            "list",
            "off",
            "out",
            "clean",
            "tasks",
            "todos",
            "items",
            "those",
            "these",
        }
    ]
    if leftover:
        query = " ".join(leftover)[:200]
        filters = replace(filters, query=query)
    return BulkDelete(filters, window)


# ---------------------------------------------------------------------------------- short replies

_SELECT_NUMBER = re.compile(
    r"(?:(?:it'?s|its|i\s+mean|i\s+meant|pick|choose|select|take|go\s+with|make\s+it)\s+)?(?:the\s+)?"
    r"(?:#|no\.?\s*|number\s+|num\s+|option\s+|item\s+|task\s+)?(?P<n>\d{1,3})(?:\.|\))?(?:\s+(?:one|please))?",
    _I,
)
_SELECT_ORDINAL = re.compile(
    r"(?:(?:it'?s|its|i\s+mean|i\s+meant|pick|choose|select|take|go\s+with|make\s+it)\s+)?(?:the\s+)?"
    r"(?P<o>first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|1st|2nd|3rd|[4-9]th|10th)"
    r"(?:\s+(?:one|task|option|item|choice))?(?:\s+please)?",
    _I,
)
_SELECT_HINT = re.compile(
    r"(?:(?:it'?s|its|i\s+mean|i\s+meant|pick|choose|select)\s+)?(?:the\s+)?(?:one|task)\s+(?:that'?s\s+|that\s+is\s+|which\s+is\s+)?"
    r"(?P<h>(?:due|tagged|with|about|called|named|for|on|from|that|in)\s+.+)"
    r"|(?:(?:it'?s|its|i\s+mean|i\s+meant)\s+)?the\s+(?P<h2>.+?)\s+one",
    _I,
)
_CONFIRM = re.compile(
    r"(?:(?:yes|yep|yeah|yup|y|sure|ok|okay|confirm(?:ed)?|i\s+confirm|correct|absolutely|do\s+it|go\s+ahead"
    r"|please\s+do|affirmative)[\s,.!:;-]*)+"
    r"(?:(?:please\s+)?(?:delete|remove|erase)\s*(?:them\s+)?(?:all\s+)?(?:of\s+them\s+)?(?P<n>\d{1,4})?"
    r"(?:\s+(?:of\s+them|tasks?|todos?|items?))?(?:\s+please)?)?[\s.!]*",
    _I,
)
_CONFIRM_COUNT = re.compile(
    r"(?:delete|remove|erase)\s+(?:them\s+)?(?:all\s+)?(?:of\s+them\s+)?(?P<n>\d{1,4})(?:\s+(?:of\s+them|tasks?|todos?|items?))?"
    r"(?:\s+please)?[\s.!]*",
    _I,
)
_DENY = re.compile(
    r"(?:no|nope|nah|n|no\s+thanks|no\s+thank\s+you|cancel|stop|abort|never\s*mind|nvm|forget\s+it|don'?t|do\s+not"
    r"|don'?t\s+(?:delete|do)\s+(?:it|that|them|anything)|keep\s+(?:it|them)|not\s+now|wait)(?:[\s,.!]+(?:thanks|please))?[\s.!]*",
    _I,
)
_HELP = re.compile(
    r"(?:help|\?+|h|commands?|examples?|usage|menu|options|instructions|what\s+can\s+(?:you|i)\s+(?:do|say|ask)"
    r"|what\s+do\s+you\s+do|how\s+(?:does\s+(?:this|it)|do\s+(?:i|you))\s+(?:work|use\s+(?:this|you|it))"
    r"|how\s+(?:do\s+i\s+)?use\s+(?:this|you|it)|what\s+are\s+you|who\s+are\s+you|what\s+can\s+you\s+help\s+(?:me\s+)?with"
    r"|help\s+me|i\s+need\s+help|show\s+(?:me\s+)?(?:the\s+)?(?:help|commands|examples))[\s?!.]*",
    _I,
)
_GREETING = re.compile(
    r"(?:hi|hello|hey|hiya|howdy|yo|hola|greetings|good\s+(?:morning|afternoon|evening)|hey\s+there|hi\s+there)"
    r"(?:\s+there)?[\s!.,]*",
    _I,
)
_THANKS = re.compile(
    r"(?:(?:ok|okay|oh|ah)[\s,]+)?(?:thanks|thank\s+you|thx|ty|cheers|great|perfect|cool|nice|awesome|got\s+it|good|brilliant|lovely|excellent"
    r"|ok\s+thanks|great\s+thanks|thanks\s+a\s+lot|much\s+appreciated)(?:[\s,!.]+(?:a\s+lot|so\s+much|very\s+much|!))?[\s!.]*",
    _I,
)
# "I'm done", "that's all", "bye": the person is leaving, not naming a task called "im"
_SIGN_OFF = re.compile(
    r"(?:(?:ok|okay|alright|cool)[\s,]+)?(?:(?:i'?m|i\s+am|we'?re|we\s+are)\s+(?:all\s+)?(?:done|finished|good|set)"
    r"(?:\s+(?:here|now|for\s+(?:now|today|tonight|the\s+day)))?|that'?s\s+(?:all|it|everything)(?:\s+for\s+(?:now|today))?"
    r"|(?:good)?bye|good\s*night|see\s+(?:you|ya)|cya|nothing(?:\s+(?:else|more))?)(?:[\s,!.]+(?:thanks|thank\s+you|bye))?[\s!.]*",
    _I,
)
_POLITE_HEAD = re.compile(
    r"^(?:(?:hey|hi|ok|okay|so|um|uh|yes|yeah|yep|sure|actually|oops|oh|sorry|instead|please|pls|plz|can\s+you|could\s+you|would\s+you|will\s+you|kindly"
    r"|i\s+want\s+(?:you\s+)?to|i'?d\s+like\s+(?:you\s+)?to|i\s+would\s+like\s+(?:you\s+)?to|i\s+wanna|let'?s|lets)"
    r"[\s,]+)+(?=\S)",
    _I,
)
_POLITE_TAIL = re.compile(r"(?:[\s,]+(?:please|pls|plz|thanks|thank\s+you|thx|for\s+me))+[\s.!?]*$", _I)


def _parse_short(text: str) -> Intent | None:
    if _HELP.fullmatch(text):
        return Help()
    if _GREETING.fullmatch(text):
        return Help(greeting=True)
    match = _SELECT_NUMBER.fullmatch(text)
    if match:
        return Select(index=int(match["n"]))
    match = _CONFIRM_COUNT.fullmatch(text)
    if match:
        return Confirm(int(match["n"]))
    match = _CONFIRM.fullmatch(text)
    if match:
        return Confirm(int(match["n"]) if match["n"] else None)
    if _DENY.fullmatch(text):
        return Deny()
    if _THANKS.fullmatch(text) or _SIGN_OFF.fullmatch(text):
        return Thanks()
    match = _SELECT_ORDINAL.fullmatch(text)
    if match:
        return Select(index=_ORDINALS[match["o"].lower()])
    match = _SELECT_HINT.fullmatch(text)
    if match:
        hint = (match["h"] or match["h2"] or "").strip()
        if hint:
            return Select(hint=hint)
    return None


# ------------------------------------------------------------------------------------------ parse


_EXAMPLES = ("add buy milk tomorrow at 9am #errands", "what's due today?", "mark the milk one done", "help")


def parse(utterance: str, *, now: datetime, tz: ZoneInfo) -> Intent:
    """What the user asked for, as one intent. Never raises."""
    try:
        return _parse(utterance, now=now.astimezone(tz), tz=tz)
    except Exception:  # a parser bug must not break the chat: say so honestly
        return Unknown("I could not make sense of that message.")


def _parse(utterance: str, *, now: datetime, tz: ZoneInfo) -> Intent:
    text = _clean_text(utterance)
    if not text:
        return Unknown("Your message was empty.")
    if len(text) > MAX_INPUT:
        return Unknown(
            f"That message is too long for me (over {MAX_INPUT} characters); please send one short command."
        )
    text = _TYPO_RE.sub(lambda m: _TYPOS[m[0].lower()], text)
    text = _SHORT_MERIDIEM.sub(lambda m: m[1] + m[2].lower() + "m", text)
    short = _parse_short(text)
    if short is not None:
        return short
    question = text.rstrip().endswith("?")
    text = _POLITE_HEAD.sub("", text)
    text = _POLITE_TAIL.sub("", text)
    text = text.rstrip(" .!?").strip()
    if not text:
        return Help()
    short = _parse_short(text) or _parse_undo(text)
    if short is not None:
        return short
    asked = _parse_asking(text, now, tz, question)
    if asked is not None:
        return asked
    if _REMIND_BARE.fullmatch(text):
        return Unknown("What should I remind you about?", "remind me to call mom at 6pm")
    if _REMIND_TO.fullmatch(text):
        return _parse_add(text, now) or _unknown(text, now, question)
    explicit = _parse_explicit_act(text, now) or _parse_skip(text) or _parse_off_list(text)
    if explicit is not None:
        return explicit
    if _ADD_VERB.fullmatch(text) or _PUT_ON_LIST.fullmatch(text):
        return _parse_add(text, now) or _unknown(text, now, question)
    intent = (
        _parse_bulk_delete(text, now, tz)
        or _parse_changes(text, now)
        or _parse_act(text, now)
        or _parse_list(text, now, tz)
        or _parse_add(text, now)
        or _parse_loose(text)
    )
    return intent if intent is not None else _unknown(text, now, question)


# Several changes to one task: "make the report urgent and tag it work", "move the dentist to friday
# and remind me an hour before". A rename is left whole: a title may hold "and".
_AND = re.compile(r"\s*,?\s+and\s+(?:also\s+)?|\s*,\s+(?:and\s+)?", _I)
_REMIND_ME = re.compile(r"remind\s+me\s+(?:about\s+it\s+)?", _I)


def _parse_changes(text: str, now: datetime, depth: int = 2) -> Act | None:
    """Up to `depth` + 1 changes; the text is split after the first one only, so a long message
    costs a few parses, not one per way of cutting it."""
    for joint in _AND.finditer(text):
        first = _parse_act(text[: joint.start()], now)
        if not (isinstance(first, Act) and first.action == "update" and first.changes.title is None):
            continue
        rest = text[joint.end() :]
        rewordings = [rest, "make it " + rest, _REMIND_ME.sub("set a reminder for it ", rest, count=1)]
        if first.changes.add_tags:  # "tag the report work and home"
            rewordings.append("tag it " + rest)
        for said in rewordings:
            then = (_parse_changes(said, now, depth - 1) if depth > 1 else None) or _parse_act(said, now)
            if (
                isinstance(then, Act)
                and then.action == "update"
                and then.ref == "it"
                and then.position is None
            ):
                changes = _merged(first.changes, then.changes)
                if changes is not None:
                    return replace(first, changes=changes)
        return None
    return None


def _merged(first: Changes, then: Changes) -> Changes | None:
    """Both sets of changes, or None when they set the same field (or the second renames)."""
    if then.title is not None or then.description is not None:
        return None
    values: dict[str, object] = {}
    for name in ("priority", "tags", "due", "remind", "repeat"):
        mine, theirs = getattr(first, name), getattr(then, name)
        if mine is not None and theirs is not None:
            return None
        values[name] = theirs if mine is None else mine
    return replace(
        first,
        **values,  # type: ignore[arg-type]
        add_tags=first.add_tags + then.add_tags,
        remove_tags=first.remove_tags + then.remove_tags,
    )


# "undo", "undo that", "revert the last change", "take that back", "put it back": the last change this
# conversation made; "cancel that", "scratch that": the change just made. "undo the milk task" and
# "undo the last one" (a task) are reopens, below.
_UNDO = re.compile(
    r"(?P<now>(?:cancel|scratch)\s+(?:that|this)(?:\s+change)?|cancel\s+(?:the|my)\s+last\s+change)"
    r"|(?:undo|revert|reverse|roll\s*back)(?:\s+(?:it|that|this|that\s+change|this\s+change|last|what\s+you\s+(?:just\s+)?did"
    r"|(?:the\s+|my\s+|your\s+)?(?:last|previous|latest)(?:\s+(?:change|thing|action|step|edit))?))?"
    r"|take\s+(?:that|it)\s+back|(?:put|change|set)\s+(?:that|it)\s+back(?:\s+the\s+way\s+it\s+was)?",
    _I,
)


def _parse_undo(text: str) -> Intent | None:
    match = _UNDO.fullmatch(text)
    if match is None:
        return None
    return Undo(just_now=match["now"] is not None)


# A question is answered (by listing) or declined, never turned into a change.
_ASKING = re.compile(
    r"(?:is|are|was|were|am|did|does|has(?!\s+to\b)|why|where|when|who|whose|how|what\s+(?:if|happens|about)"
    r"|(?:can|could|may|should|shall|do)\s+(?:i|we))\b",
    _I,
)
_ASK_HOW = re.compile(r"how\s+(?:do|can|could|should|would|to)\b.*", _I)
_ASK_MAY = re.compile(r"(?:can|could|may|should|shall)\s+(?:i|we)\s+(?:please\s+)?(?P<rest>\S.*)", _I)
_ASK_DONE = re.compile(
    r"(?:is|are|was|were|has|have)\s+(?P<ref>.+?)\s+(?:been\s+)?(?:already\s+)?(?:done|finished|complete|completed"
    r"|checked\s+off|ticked\s+off)(?:\s+(?:yet|already))?"
    r"|did\s+(?:i|we)\s+(?:already\s+|ever\s+)?(?:finish|complete|do)\s+(?P<ref2>.+?)(?:\s+(?:yet|already))?",
    _I,
)
_ASK_WHEN = re.compile(
    r"(?:when(?:'s|\s+is|\s+are|\s+was|\s+do\s+i\s+have)|what\s+(?:time|day|date)\s+is)\s+(?P<ref>.+?)"
    r"(?:\s+(?:due|happening|scheduled|set\s+for|again))?",
    _I,
)
_DONE_ASKED = re.compile(
    r"(?P<ref>.+?)\s+(?:is|are)\s+(?:already\s+)?(?:done|finished|complete|completed)", _I
)


# "what's next?", "when is my next task due", "what should I do first": the open task due soonest, not
# a task with the word "next"
_ASK_NEXT = re.compile(
    r"(?:(?:what|when)(?:'?s|\s+is)\s+(?:(?:my|the)\s+)?(?:up\s+|due\s+)?(?:next|first)"
    r"|what\s+(?:do\s+i\s+have|should\s+i\s+do)\s+next"
    r"|what\s+(?:should|do|shall)\s+i\s+(?:do|work\s+on|tackle|start\s+with)(?:\s+(?:first|next|now))?"
    r"|(?:my\s+|the\s+)?next(?=\s+(?:task|thing|todo)))"
    r"(?:\s+(?:task|thing|todo|to-do|item|one))?(?:\s+(?:due|up|on\s+my\s+list))?",
    _I,
)


def _parse_asking(text: str, now: datetime, tz: ZoneInfo, question: bool) -> Intent | None:
    """'is the report done?', 'how do I delete a task?': a listing, help, or an honest answer; no change."""
    if _ASK_NEXT.fullmatch(text):
        return ListTasks(ask="next")
    when = _ASK_WHEN.fullmatch(text)
    if when is not None:
        ref = _clean_ref(when["ref"])
        if ref == "it":
            return Unknown("Which task do you mean? Name it by words from its title.", "when is the dentist?")
        if ref and not _BULK_REFS.fullmatch(ref) and not _parse_list(ref, now, tz):
            return ListTasks(Filters(status="all", query=ref[:200]), ask="when")
    done = _ASK_DONE.fullmatch(text) or (_DONE_ASKED.fullmatch(text) if question else None)
    if done is not None:
        ref = _clean_ref(done["ref"] or done["ref2"] or "")
        if ref and ref != "it" and not _BULK_REFS.fullmatch(ref):
            return ListTasks(Filters(status="all", query=ref[:200]))
    if not _ASKING.match(text):
        return None
    if _ASK_HOW.fullmatch(text):
        return _parse_list(text, now, tz) or Help()
    may = _ASK_MAY.fullmatch(text)
    if may is not None and not _parse_list(text, now, tz):
        return Unknown(
            "A question never changes your tasks; to have it done, say it as a command.", may["rest"]
        )
    return _parse_list(text, now, tz) or _unknown(text, now, question=True)


_SKIP = re.compile(
    r"(?:(?:i'?ll|i\s+will|i'?m|i\s+am|we'?ll|i'?m\s+going\s+to|i'?m\s+gonna|gonna)\s+)?"
    r"(?:skip|skipping|pass\s+on|sit\s+out)\s+(?P<ref>.+)",
    _I,
)
_SKIP_WHEN = re.compile(
    r"\s+(?:this\s+(?:time|once|one\s+time)|(?:just\s+)?(?:for\s+)?(?:now|once|today|tonight)"
    r"|this\s+(?:week|month|morning|evening))$",
    _I,
)


def _parse_skip(text: str) -> Intent | None:
    """'skip the gym today': not this time, which is no tool's job; never a task called 'Skip ...'."""
    match = _SKIP.fullmatch(text)
    if match is None:
        return None
    ref = _SKIP_WHEN.sub("", match["ref"])
    when = _WHEN_AT_END.search(" " + ref)
    ref = _clean_ref(ref if when is None or when.start() == 0 else (" " + ref)[: when.start()])
    if not ref or _BULK_REFS.fullmatch(ref):
        return Unknown("Which task do you want to skip? Name it by words from its title.", "skip the gym")
    return Skip(ref[:200])


# "take milk off my list", "remove milk from my list": one task, unless the words name several
_OFF_LIST = re.compile(
    r"(?:take|remove|delete|drop|erase|scratch|get\s+rid\s+of)\s+(?P<ref>.+?)\s+(?:off|from|out\s+of)\s+"
    r"(?:(?:my|the)\s+)?(?:todo\s+|to-do\s+|task\s+)?(?:list|todos?|to-dos?|tasks)",
    _I,
)


def _parse_off_list(text: str) -> Intent | None:
    match = _OFF_LIST.fullmatch(text)
    if match is None or _BULK_CUE.search(match["ref"]) or re.search(rf"#|\b{_FIELD}\b", match["ref"], _I):
        return None
    return _act("delete", match["ref"])


def _parse_loose(text: str) -> Intent | None:
    if _LISTING_VERB.match(text):
        return None  # "show all tasks including done" asks to see, never to change
    match = _DELETE.fullmatch(text)
    if match:
        if _PRONOUN_CANCEL.fullmatch(text):  # "cancel it": undo my change, or delete the task? Not guessed
            return Unknown(
                'To undo my last change, say "undo"; to delete a task, name it by words from its title.',
                "delete the milk task",
            )
        if _FIELD_ALONE.fullmatch(match["ref"]):
            return _FIELD_OF_EVERY_TASK
        if _FIELD_OF.fullmatch(match["ref"]):
            return Unknown(
                "That reads like a change to one of a task's fields, which I don't know how to make,"
                " and I won't delete a task on a guess.",
                "remove the reminder from the dentist",
            )
        return _act("delete", match["ref"])
    for pattern in _COMPLETE_LOOSE:
        match = pattern.fullmatch(text)
        if match:
            return _act("complete", match["ref"])
    return None


_LISTING_VERB = re.compile(r"(?:show|list|display|view|see|find|search|what|which)\b", _I)
_PRONOUN_CANCEL = re.compile(r"cancel\s+(?:it|that\s+one|this\s+one|the\s+last\s+one)", _I)


_NOT_A_TASK = re.compile(
    r"(?:what|who|why|how|when|where|which|is|are|am|was|can|could|would|will|should|do|does|did|tell|explain|write"
    r"|the|a|an|my|your|it|this|that|there|here|weather|hello|hi|no|nope|not|instead|rather|actually|remind"
    r"|ignore|forget|pretend|act|you|i'?m|i\s+am|translate|calculate|give"
    r"|show|list|display|find|search|what'?s|tasks?|todos?|anything|everything)\b",
    _I,
)


_VAGUE = (
    (
        {"add", "create", "new", "schedule", "todo", "task"},
        "what should the task say?",
        "add buy milk tomorrow at 9am",
    ),
    ({"delete", "remove", "erase", "trash", "drop"}, "which task should I delete?", "delete the milk task"),
    (
        {"mark", "complete", "finish", "done", "check", "tick"},
        "which task should I mark done?",
        "mark the milk one done",
    ),
    ({"reopen", "unmark", "undo"}, "which task should I reopen?", "reopen the milk task"),
    (
        {"move", "reschedule", "postpone", "delay", "push"},
        "which task, and to when?",
        "move the dentist to friday 3pm",
    ),
    (
        {"rename", "retitle"},
        "which task, and what should it be called?",
        "rename the milk one to buy oat milk",
    ),
    ({"tag", "untag"}, "which task, and which tag?", "tag the milk task errands"),
    (
        {"change", "update", "edit", "set", "make"},
        "which task, and what should change?",
        "make the report urgent",
    ),
)


def _unknown(text: str, now: datetime, question: bool = False) -> Intent:
    """A bare task with a date, repeat, priority or tag is added (as an LLM would); the rest is not."""
    snippet = text if len(text) <= 60 else text[:57] + "..."
    words = text.split()
    candidate: Intent | None = None
    if 1 <= len(words) <= 15 and not question and not _NOT_A_TASK.match(text):
        candidate = _parse_add_body(text, now)
        if isinstance(candidate, Add) and (
            candidate.due or candidate.repeat or candidate.tags or candidate.priority
        ):
            return candidate
    verb = words[0].lower() if words else ""
    for verbs, reason, example in _VAGUE:
        if verb in verbs:
            return Unknown(f'I need more than "{snippet}": {reason}', example)
    if isinstance(candidate, Add) and len(words) <= 8:
        return Unknown(f'I didn\'t understand "{snippet}".', f"add {text}")
    return Unknown(f'I didn\'t understand "{snippet}".')
