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
    if not isinstance(text, str):
        return None
    import calendar  # (here: it costs start-up time, and agents' hooks run hf often)

    try:
        return float(calendar.timegm(time.strptime(text, _ISO)))
    except ValueError:
        return None


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
