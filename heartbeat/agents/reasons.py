"""Why an agent stopped: its last words matched against patterns.toml (and the user's own
patterns, which come first), and what an exit code alone says."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from functools import cache

from heartbeat.config import Pattern, compile_patterns
from heartbeat.model import RATE_LIMITED, Reason

# "try again in 20m0s", "retry after 37 seconds", "resets in 2h 10m", "in 4 days 3 hours"
_UNIT = r"(?:ms|d(?:ays?)?|h(?:ours?|rs?)?|m(?:in(?:utes?|s)?)?|s(?:ec(?:onds?|s)?)?)"
_IN = re.compile(
    r"(?:try again|retry|resets?|available again)\s+(?:in|after)\s+"
    rf"((?:\d+(?:\.\d+)?\s*{_UNIT}(?![a-z])[\s,]*(?:and\s+)?)+)",
    re.IGNORECASE,
)
_PART = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT})(?![a-z])", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "d": 86400, "h": 3600, "m": 60, "s": 1}
# "resets at 2026-11-25T09:00:00Z"
_AT_ISO = re.compile(
    r"(?:try again|retry|resets?)\s+at\s+"
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)",
    re.IGNORECASE,
)
# "try again at 3:05 PM", "resets at 17:00", "limit will reset at 5pm", "resets 3pm",
# "resets 4:50am (Europe/Rome)", "resets Dec 2, 7pm (Europe/Moscow)", "resets Oct 24",
# "try again at Jul 5th, 2026 8:19 PM" (Claude Code's and Codex's own wordings)
_MONTH = r"(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{4}))?"
_CLOCK = r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<meridiem>[ap]\.?m\.?)?"
_AT = re.compile(
    rf"(?:try again|retry|resets?)\s+(?:at\s+)?(?:{_MONTH}\s+{_DAY}(?:,?\s+|\s*$|(?=\s*[(·.])))?"
    rf"(?:{_CLOCK})?(?:\s*\((?P<zone>[A-Za-z_]+(?:/[A-Za-z_+-]+)+)\))?",
    re.IGNORECASE,
)
# Claude Code's older headless form: "Claude AI usage limit reached|1762952400"
_EPOCH = re.compile(r"limit reached\|(\d{9,11})\b", re.IGNORECASE)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@cache
def builtin_patterns() -> tuple[Pattern, ...]:
    import tomllib  # here, like the file: only a run that reads an agent's last words needs it
    from importlib import resources

    text = resources.files("heartbeat.agents").joinpath("patterns.toml").read_text(encoding="utf-8")
    return compile_patterns(tomllib.loads(text)["pattern"], "patterns.toml")


def classify(lines: Sequence[str], now: datetime, extra: Sequence[Pattern] = ()) -> Reason | None:
    """The reason the agent's latest words give: of the patterns that match, the one whose
    last match ends last (a "retrying after 529" line followed by a usage limit is the
    limit); on one line, the person's own patterns first, then the built-in families in
    order. A rate limit's reset time is the last one the text names."""
    text = "\n".join(lines)
    best: tuple[int, int, Pattern] | None = None
    for rank, pattern in enumerate((*extra, *builtin_patterns())):
        ends = [found.end() for found in pattern.regex.finditer(text)]
        if not ends:
            continue
        line_end = text.find("\n", ends[-1] - 1)
        key = (line_end if line_end >= 0 else len(text), -rank)
        if best is None or key > best[:2]:
            best = (*key, pattern)
    if best is None:
        return None
    pattern = best[2]
    retry_at = retry_time(text, now) if pattern.reason == RATE_LIMITED else None
    return Reason(pattern.reason, pattern.hint, retry_at)


# Longer than any provider's limit window (weekly, at most monthly): a reset time
# further off is misread.
LONGEST_WAIT = timedelta(days=31)


def retry_time(text: str, now: datetime) -> datetime | None:
    """When a rate limit lifts, if the text says; None for a time it does not say, or
    cannot mean (a month 13, a zone +99:00, a wait of years)."""
    try:
        found = _retry_time(text, now)
    except (ValueError, OverflowError):
        return None
    return found if found is None or found - now <= LONGEST_WAIT else None


def _retry_time(text: str, now: datetime) -> datetime | None:
    """The last reset time the text names (the agent's latest word on it)."""
    named: list[tuple[int, datetime]] = []
    for found in _IN.finditer(text):
        seconds = 0.0
        for amount, unit in _PART.findall(found[1]):
            key = "ms" if unit.lower() == "ms" else unit[0].lower()
            seconds += float(amount) * _SECONDS[key]
        named.append((found.start(), now + timedelta(seconds=seconds)))
    for found in _AT_ISO.finditer(text):
        moment = datetime.fromisoformat(found[1].replace(" ", "T"))
        if moment.tzinfo is not None:  # to this machine's local time
            moment = moment.astimezone().replace(tzinfo=None)
        named.append((found.start(), moment))
    for found in _EPOCH.finditer(text):
        named.append((found.start(), datetime.fromtimestamp(int(found[1]))))
    iso_starts = {start for start, _ in named}
    for found in _AT.finditer(text):
        said = _moment(found, now)
        if said is not None and found.start() not in iso_starts:
            named.append((found.start(), said))
    return max(named, key=lambda item: item[0])[1] if named else None


def _moment(found: re.Match[str], now: datetime) -> datetime | None:
    """The local time a "resets ..." phrase names: the next such moment after `now`, in
    the zone it names (else this machine's)."""
    if found["hour"] is None and found["month"] is None:
        return None
    hour, minute = int(found["hour"] or 0), int(found["minute"] or 0)
    meridiem = (found["meridiem"] or "").lower().replace(".", "")
    if meridiem == "pm" and hour < 12:
        hour += 12
    if meridiem == "am" and hour == 12:
        hour = 0
    # A bare number ("retry 3 times") is no time of day.
    bare = found["hour"] is not None and not meridiem and found["minute"] is None
    if hour > 23 or minute > 59 or bare or (meridiem and int(found["hour"] or 0) > 12):
        return None
    zone = _zone(found["zone"])
    here = now.astimezone(zone) if zone else now
    try:
        day = here
        if found["month"]:
            month = _MONTHS.index(found["month"][:3].lower()) + 1
            year = int(found["year"]) if found["year"] else here.year
            day = here.replace(year=year, month=month, day=int(found["day"]))
        moment = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        return None
    moment = _next(moment, here, dated=found["month"] is not None, year=found["year"])
    return moment.astimezone().replace(tzinfo=None) if zone else moment


# A time just past was the reset the agent saw coming (it is lifted); one long past
# means its next turn: tomorrow for a time of day, next year for a date.
JUST_PAST = {False: timedelta(hours=3), True: timedelta(days=180)}


def _next(moment: datetime, here: datetime, dated: bool, year: str | None) -> datetime:
    if moment > here or year or here - moment <= JUST_PAST[dated]:
        return moment
    if dated:
        return moment.replace(year=moment.year + 1)
    return moment + timedelta(days=1)


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        from zoneinfo import ZoneInfo  # here: only a reset time with a zone needs it

        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        return None
