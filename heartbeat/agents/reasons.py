"""Why an agent stopped: its last words matched against patterns.toml (and the user's own
patterns, which come first), and what an exit code alone says."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
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
# "try again at 3:05 PM", "resets at 17:00", "limit will reset at 5pm", "resets 3pm"
_AT = re.compile(
    r"(?:try again|retry|resets?)\s+(?:at\s+(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)?"
    r"|(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?))",
    re.IGNORECASE,
)


@cache
def builtin_patterns() -> tuple[Pattern, ...]:
    import tomllib  # here, like the file: only a run that reads an agent's last words needs it
    from importlib import resources

    text = resources.files("heartbeat.agents").joinpath("patterns.toml").read_text(encoding="utf-8")
    return compile_patterns(tomllib.loads(text)["pattern"], "patterns.toml")


def classify(lines: Sequence[str], now: datetime, extra: Sequence[Pattern] = ()) -> Reason | None:
    """The first pattern that matches the text, most recent lines first."""
    text = "\n".join(lines)
    for pattern in (*extra, *builtin_patterns()):
        if pattern.regex.search(text):
            retry_at = retry_time(text, now) if pattern.reason == RATE_LIMITED else None
            return Reason(pattern.reason, pattern.hint, retry_at)
    return None


def retry_time(text: str, now: datetime) -> datetime | None:
    """When a rate limit lifts, if the text says."""
    found = _IN.search(text)
    if found:
        seconds = 0.0
        for amount, unit in _PART.findall(found[1]):
            key = "ms" if unit.lower() == "ms" else unit[0].lower()
            seconds += float(amount) * _SECONDS[key]
        return now + timedelta(seconds=seconds)
    iso = _AT_ISO.search(text)
    if iso:
        moment = datetime.fromisoformat(iso[1].replace(" ", "T"))
        if moment.tzinfo is not None:  # to this machine's local time
            moment = moment.astimezone().replace(tzinfo=None)
        return moment
    found = _AT.search(text)
    if found:
        at, bare = found.group(1, 2, 3), found.group(4, 5, 6)
        hour_text, minute_text, meridiem_text = at if at[0] is not None else bare
        hour, minute = int(hour_text), int(minute_text or 0)
        meridiem = (meridiem_text or "").lower().replace(".", "")
        if meridiem == "pm" and hour < 12:
            hour += 12
        if meridiem == "am" and hour == 12:
            hour = 0
        if hour > 23 or minute > 59:
            return None
        moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)
    return None
