"""Telling the person: a notification when a part enters waiting, done, blocked or
orphan, or a join finished.

A desktop notification where one can be shown (`notify-send` with a display on
Linux, `osascript` on macOS), else a tmux `display-message` inside tmux, else
the terminal bell on the controlling terminal (`/dev/tty`: never stdout, which
an agent's hook shares with the agent); nothing in CI (`CI` set) or with
`notify = false`. `notify_events` in the settings picks
the events (default all of EVENTS). One notification per transition: the same
part and state again within COALESCE seconds is not said twice
(`<common>/hf/notified.json` remembers when each was said).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

EVENTS = ("waiting", "done", "blocked", "orphan", "joined")
COALESCE = 5.0  # seconds


def enabled(settings: Any, event: str) -> bool:
    if os.environ.get("CI") or os.environ.get("HF_NOTIFY") == "0":
        return False
    if settings is not None and settings.get("notify") is False:
        return False
    wanted = settings.get("notify_events") if settings is not None else None
    return event in (wanted if isinstance(wanted, list) else EVENTS)


def main_tree(common_dir: str | os.PathLike[str]) -> str:
    """The main tree of a common dir `<main>/.git` ("" for any other layout: then
    hf does not guess)."""
    common = Path(os.path.realpath(common_dir))
    return str(common.parent) if common.name == ".git" else ""


def _settings(common_dir: str | os.PathLike[str]) -> Any:
    from hf_fanout.config import Settings

    main = main_tree(common_dir)
    return Settings.load(Path(main)) if main else Settings.load(Path("/nonexistent"))


def transition(common_dir: str | os.PathLike[str], batch: str, part: str, state: str,
               detail: str = "", settings: Any = None) -> bool:
    """Notify that `batch/part` entered `state` (part "" for the batch); whether
    a notification went out."""
    try:
        settings = settings if settings is not None else _settings(common_dir)
    except Exception:  # a broken config must not stop an agent's hook
        settings = None
    if not enabled(settings, state):
        return False
    where = f"{batch}/{part}" if part else batch
    if not _first_within(Path(common_dir) / "hf" / "notified.json", f"{where} {state}"):
        return False
    title = f"hf: {where} {state}"
    return send(title, detail or _DEFAULT.get(state, state))


_DEFAULT = {"waiting": "the agent needs you", "done": "the part is done",
            "blocked": "the part is blocked", "orphan": "the agent is gone",
            "joined": "the batch is joined"}


def _first_within(path: Path, key: str) -> bool:
    """Whether `key` was not said in the last COALESCE seconds (and remember it)."""
    from hf_fanout import atomic

    now = time.time()
    try:
        seen = json.loads(atomic.read_regular(path, limit=1 << 20))
    except (OSError, ValueError):
        seen = {}
    if not isinstance(seen, dict):
        seen = {}
    last = seen.get(key)
    if isinstance(last, int | float) and now - last < COALESCE:
        return False
    seen = {k: v for k, v in seen.items() if isinstance(v, int | float) and now - v < 3600}
    seen[key] = now
    try:
        atomic.replace_unsynced(path, json.dumps(seen).encode())
    except OSError:
        return True
    return True


def send(title: str, message: str) -> bool:
    """One notification, the best way this machine has; whether one was shown."""
    import shutil
    import subprocess
    import sys

    argv: list[str] | None = None
    if shutil.which("notify-send") and (os.environ.get("DISPLAY")
                                         or os.environ.get("WAYLAND_DISPLAY")
                                         or os.environ.get("DBUS_SESSION_BUS_ADDRESS")):
        argv = ["notify-send", "--app-name=hf", title, message]
    elif sys.platform == "darwin" and shutil.which("osascript"):
        text, head = message.replace('"', "'"), title.replace('"', "'")
        argv = ["osascript", "-e", f'display notification "{text}" with title "{head}"']
    elif os.environ.get("TMUX") and shutil.which("tmux"):
        # tmux expands formats (`#(...)` runs a command) in the message: `#` doubled
        argv = ["tmux", "display-message", f"{title}: {message}".replace("#", "##")]
    if argv is None:
        return bell()
    try:
        subprocess.run(argv, capture_output=True, timeout=5, check=False,
                       stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return True


def bell() -> bool:
    """The terminal bell on the controlling terminal; False without one (cron, a
    daemon)."""
    try:
        with open("/dev/tty", "wb", buffering=0) as tty:
            tty.write(b"\a")
    except OSError:
        return False
    return True
