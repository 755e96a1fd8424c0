"""A part's state in the name of its tmux window: `api ⏳` waiting, `api ✔` done,
`api ✖` blocked or orphan, the plain name otherwise (working, running, idle).

hf finds its windows by the window option OPTION (set when it makes the
window), not by their name, so a renamed window is still the part's. A mark is
set on a transition (an agent's hook, `hf done`, `hf blocked`, the sweep's
orphan), only from inside the tmux server that shows the window (`$TMUX`: the
hook runs in the window itself), with two tmux calls, and never makes the
command fail.
"""

from __future__ import annotations

import os
import subprocess

OPTION = "@hf_part"  # the window's tab name: the part's name (or the queue entry's)
MARKS = {"waiting": "⏳", "done": "✔", "blocked": "✖", "orphan": "✖"}


def session(group: str) -> str:
    """The tmux session of a batch's tabs (`group`: the batch id, or "queue")."""
    return f"hf-{group}"


def label(name: str, state: str) -> str:
    """The window name of tab `name` in `state` (as tmux is given it: `#` doubled,
    tmux expands formats in names)."""
    mark = MARKS.get(state)
    return (f"{name} {mark}" if mark else name).replace("#", "##")


def show(batch: str, part: str, state: str) -> bool:
    """Rename the window of `batch/part` to show `state`; whether it was renamed.
    Only inside tmux (`$TMUX`), on that server; anything failing is no rename."""
    socket = os.environ.get("TMUX", "").split(",")[0]
    if not socket:
        return False
    base = ["tmux", "-S", socket]
    try:
        found = subprocess.run([*base, "list-windows", "-t", f"={session(batch)}", "-F",
                                f"#{{{OPTION}}}\t#{{window_id}}"], capture_output=True,
                               text=True, stdin=subprocess.DEVNULL, timeout=5, check=False)
        window = next((line.split("\t")[1] for line in found.stdout.splitlines()
                       if line.split("\t")[0] == part and "\t" in line), "")
        if found.returncode != 0 or not window:
            return False
        renamed = subprocess.run([*base, "rename-window", "-t", window, label(part, state)],
                                 capture_output=True, stdin=subprocess.DEVNULL, timeout=5,
                                 check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return renamed.returncode == 0
