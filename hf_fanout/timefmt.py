"""The one timestamp format of hf's records and output: UTC, ISO 8601, to the second
(`2026-11-21T12:00:00Z`), and the compact form used in file names."""

from __future__ import annotations

import os
import time

_ISO = "%Y-%m-%dT%H:%M:%SZ"


def now() -> float:
    """Seconds since the epoch: the clock of records and of ages hf acts on (`hf gc`
    forgetting old batches). `HF_CLOCK` (an `iso` timestamp) sets it, for tests and
    demos that need days to pass."""
    fixed = parse_iso(os.environ.get("HF_CLOCK"))
    return time.time() if fixed is None else fixed


def iso(ts: float | None = None) -> str:
    """`ts` (seconds since the epoch; default: now) as `2026-11-21T12:00:00Z`."""
    return time.strftime(_ISO, time.gmtime(now() if ts is None else ts))


def compact(ts: float | None = None) -> str:
    """`ts` (default: now) as `20261121T120000Z`, for file names."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


def parse_iso(text: object) -> float | None:
    """Seconds since the epoch of an `iso` timestamp; None when it is not one."""
    # read by hand: `time.strptime` imports `_strptime` and `calendar`, which cost
    # more start-up time than every other step of a plain `hf status`
    if not isinstance(text, str) or len(text) != 20 or not text.isascii():
        return None
    fields = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
    separators = text[4] + text[7] + text[10] + text[13] + text[16] + text[19]
    if separators != "--T::Z" or not all(f.isdigit() for f in fields):
        return None
    year, month, day, hour, minute, second = (int(f) for f in fields)
    if not (1 <= month <= 12 and 1 <= day <= _days_in(year, month) and hour <= 23
            and minute <= 59 and second <= 61):
        return None
    # days since 1970-01-01 (the proleptic Gregorian calendar, as calendar.timegm)
    y = year - (month <= 2)
    era_day = (y // 400) * 146097 + (y % 400) * 365 + (y % 400) // 4 - (y % 400) // 100 \
        + (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era_day - 719468
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def ago(text: object, now: float | None = None) -> str:
    """An `iso` timestamp as a short relative time (`12s`, `4m`, `3h`, `2d`); "" if none."""
    ts = parse_iso(text)
    if ts is None:
        return ""
    seconds = max(0, int((time.time() if now is None else now) - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def clock() -> float:
    """Now, for decisions that depend on the time (a window of an hour, `--since`,
    how long an unfinished batch has run): `now()`, which `HF_CLOCK` sets."""
    return now()


_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float | None:
    """`90s`, `30m`, `2h`, `1d`, `1w` (or a plain number of seconds) in seconds;
    None when it is not one."""
    import re

    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*", text)
    if found is None:
        return None
    return float(found[1]) * _UNITS[found[2] or "s"]


def since(text: str, now: float) -> float | None:
    """The moment `--since TEXT` names: a duration back from `now` (`2h`) or an
    `iso` timestamp; None when it is neither."""
    back = parse_duration(text)
    return now - back if back is not None else parse_iso(text.strip())


def span(seconds: float) -> str:
    """A length of time for people: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def relative(then: float, now: float) -> str:
    """`then` relative to `now`: `12 min ago`, `just now`, `in 5 s` (a clock ahead)."""
    delta = now - then
    if abs(delta) < 1:
        return "just now"
    return f"{span(delta)} ago" if delta > 0 else f"in {span(-delta)}"
