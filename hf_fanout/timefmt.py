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
