"""Fault points: places where a test makes hf's own process die or stop, to prove
that what it leaves is recovered (`HF_TEST_CRASH_AT=NAME`: SIGKILL there) or to
line racing processes up (`HF_TEST_STOP_AT=NAME`: SIGSTOP until SIGCONT).

The names, by where they are: the join's and the undo's write (`journal`,
`applied`, `swapped`, `ref`), the split (`split-records`, `split-batch`), the
sync (`sync-cleared`, `sync-reapplied`), the queue (`claimed`, `takeover`,
`spawn`), the pause (`pause-written`), the remote gc (`remote-gc-listed`),
a worktree's removal once its folder is moved aside (`removal-aside`), git's
index lock taken by hf (`index-claimed`: recorded, not yet in place;
`index-locked`: in place, nothing written yet).
"""

from __future__ import annotations

import contextlib
import os
import signal


def fault_point(name: str) -> None:
    """Die or stop here when a test asks for it by `name`; nothing otherwise."""
    for variable, sig in (("HF_TEST_CRASH_AT", signal.SIGKILL),
                          ("HF_TEST_STOP_AT", signal.SIGSTOP)):
        if os.environ.get(variable) == name:
            with contextlib.suppress(Exception):
                os.kill(os.getpid(), sig)
