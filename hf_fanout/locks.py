"""Cross-process locks (filelock) that can say who holds them.

A lock is a flock()ed file; beside it a small holder file names the process
that took it, so a waiter that gives up can say whom it waited for.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from hf_fanout import timefmt
from hf_fanout.errors import LockBusy


def _holder_text() -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "command": " ".join(["hf", *sys.argv[1:]])[:200],
            "since": timefmt.iso(),
        }
    )


def describe_holder(lock_path: Path) -> str:
    from hf_fanout.atomic import read_json
    from hf_fanout.errors import StateCorrupt

    try:
        info = read_json(lock_path.with_suffix(".holder"), "lock holder")
        return f"pid {info['pid']} ({info['command']}) since {info['since']}"
    except (StateCorrupt, KeyError, TypeError):  # (only a description of the holder)
        return "another process"


def is_held(lock_path: Path) -> bool:
    """Whether a process holds `lock_path` now (one never taken: no). Nothing is
    written: a command that only reads may ask."""
    if not lock_path.exists():
        return False
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:  # (one it may not open: a sandbox's read-only view) not known held
        return False
    lock.release()
    return False


WITH_LONGER_WAIT = "or retry with a longer --wait"


@contextmanager
def hold(lock_path: Path, *, wait: float, what: str,
         on_wait: Callable[[str], None] | None = None,
         retry: str = "then run the same hf command again") -> Iterator[None]:
    """Hold `lock_path` exclusively, waiting up to `wait` seconds, else raise LockBusy.

    `on_wait` is told once, with who holds it, when the lock is not free at once.
    `retry`: the hint's way on (a command with `--wait` names it: WITH_LONGER_WAIT)."""
    from filelock import FileLock, Timeout

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=wait)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if wait <= 0:
                raise
            if on_wait is not None:
                on_wait(f"waiting up to {wait:g} s for the {what} lock, held by "
                        f"{describe_holder(lock_path)}")
            lock.acquire()
    except Timeout:
        raise LockBusy(
            f"the {what} lock is held by {describe_holder(lock_path)}",
            f"wait for it to finish, {retry} (waited {wait:g}s)",
        ) from None
    holder = lock_path.with_suffix(".holder")
    try:
        try:
            holder.write_text(_holder_text())
        except OSError:  # (a full disk) the lock holds without its description
            with suppress(OSError):
                holder.unlink()
        yield
    finally:
        with suppress(FileNotFoundError):
            holder.unlink()
        lock.release()
