"""Idle from a tmux tab's output (`tab_idle_seconds`): a live agent that shows
nothing and changes no file goes idle; one that prints, or one that writes a
file, does not. Real agents in windows of a private tmux server, each under
`hf run` as `hf open` starts them."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time

import pytest
from test_tabs_tmux import tmux  # noqa: F401  (the private tmux server fixture)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

# silent: sleeps; talk: prints a line every 0.2 s; write: silent, but rewrites an
# owned file every 0.2 s. Each ends after a minute (or when the server goes).
AGENT = """\
import sys, time
mode = sys.argv[1]
deadline = time.monotonic() + 60
n = 0
while time.monotonic() < deadline:
    n += 1
    if mode == "talk":
        print(f"step {n}", flush=True)
    elif mode == "write":
        with open(sys.argv[2], "w") as f:
            f.write(f"x = {n}\\n")
    time.sleep(0.2)
"""


def parts(hf, repo):
    r = hf("status", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    return {p["name"]: p for p in r.json["data"]["batches"][0]["parts"]}


def test_a_silent_tab_goes_idle_a_talking_or_writing_one_does_not(
        split3, hf, seal, tmp_path, tmux):  # noqa: F811
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    repo = split3["repo"]
    # api is silent, ui talks, docs writes its own file
    modes = {"api": "silent", "ui": "talk", "docs": "write"}
    for name, mode in modes.items():
        agent = " ".join([shlex.quote(sys.executable), shlex.quote(str(script)), mode,
                          shlex.quote(str(split3[name] / "docs" / "guide.md"))])
        config.write_text(f"agent = {json.dumps(agent)}\ntab_idle_seconds = 3\n")
        r = hf("open", f"b1/{name}", "--launcher", "tmux", "--json", cwd=repo)
        assert r.code == 0 and r.json["data"]["tabs"][0]["action"] == "opened", r.err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = parts(hf, repo)
        if shown["api"]["state"] == "idle":
            break
        time.sleep(0.2)
    assert shown["api"]["state"] == "idle", shown["api"]
    assert shown["ui"]["state"] == "running", shown["ui"]
    assert shown["docs"]["state"] == "running", shown["docs"]
    # the talking tab's output is its last activity
    assert shown["ui"]["last_activity"] >= shown["api"]["last_activity"]


def test_a_tab_idle_threshold_that_is_not_a_number_is_one_line(split3, hf, seal, tmp_path,
                                                                tmux):  # noqa: F811
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    agent = " ".join([shlex.quote(sys.executable), shlex.quote(str(script)), "silent", "x"])
    config.write_text(f"agent = {json.dumps(agent)}\n")
    assert hf("open", "b1/api", "--launcher", "tmux", cwd=split3["repo"]).code == 0
    config.write_text(f"agent = {json.dumps(agent)}\ntab_idle_seconds = \"soon\"\n")
    deadline = time.monotonic() + 30  # read once the agent's `hf run` recorded it
    r = hf("status", "b1", cwd=split3["repo"])
    while r.code == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        r = hf("status", "b1", cwd=split3["repo"])
    assert r.code == 2
    assert "tab_idle_seconds" in r.err and "not a positive number" in r.err
