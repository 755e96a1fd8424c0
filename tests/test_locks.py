"""hf's locks across real processes: a lock another process holds is waited for,
then refused in one line whose hint names a way on the command has."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hf_fanout import locks
from hf_fanout.errors import LockBusy


def test_a_held_lock_is_refused_with_the_way_on_its_command_has(tmp_path):
    path = tmp_path / "locks" / "take-b1.lock"
    path.parent.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from filelock import FileLock; "
        f"lock = FileLock({str(path)!r}); lock.acquire(); print('held', flush=True); "
        "time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy) as own, \
                locks.hold(path, wait=0.2, what="take", retry="then run the same hf take again"):
            pass
        assert own.value.hint == "wait for it to finish, then run the same hf take again " \
                                 "(waited 0.2s)"
        # a lock reached from commands without --wait (registry, trust, state) names none
        with pytest.raises(LockBusy) as default, locks.hold(path, wait=0.2, what="registry"):
            pass
        assert default.value.hint == "wait for it to finish, then run the same hf command " \
                                     "again (waited 0.2s)"
        # the commit lock is taken by join, undo, gc and commit, which take --wait
        with pytest.raises(LockBusy) as commit, \
                locks.hold(path, wait=0.2, what="commit", retry=locks.WITH_LONGER_WAIT):
            pass
        assert "or retry with a longer --wait" in commit.value.hint
    finally:
        holder.kill()
        holder.wait()
