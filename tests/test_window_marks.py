"""A part's state in its tmux window's name (tabs/window_marks.py), against a real
private tmux server: the agent in the window reports, the name follows; hf still
finds the renamed window as the part's."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest
from test_tabs_tmux import tmux  # noqa: F401  (the private tmux server fixture)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ROOT = Path(__file__).resolve().parent.parent

# A stand-in agent: it runs, in its window (so with its $TMUX), each script the
# test drops into its directory, in order, and says when each is done.
AGENT = """\
import os, subprocess, sys, time
inbox = sys.argv[1]
done = set()
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    for name in sorted(os.listdir(inbox)):
        if name.endswith(".sh") and name not in done:
            done.add(name)
            proc = subprocess.run(["sh", os.path.join(inbox, name)], capture_output=True,
                                  text=True)
            with open(os.path.join(inbox, name[:-3] + ".out"), "w") as f:
                f.write(f"{proc.returncode}\\n{proc.stderr}")
            if name.startswith("zz"):
                sys.exit(0)
    time.sleep(0.05)
"""


@pytest.fixture
def windows(repo, hf, seal, tmp_path, tmux):  # noqa: F811
    """b1 split with --open in tmux; per part an inbox its window's agent runs."""
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    inboxes = tmp_path / "inbox"
    for name in ("api", "ui", "docs"):
        (inboxes / name).mkdir(parents=True)
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    template = " ".join([shlex.quote(sys.executable), shlex.quote(str(script)),
                         shlex.quote(str(inboxes)) + "/{part}"])
    config.write_text(f"agent = {json.dumps(template)}\n")
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**,README.md", "--open", "--launcher", "tmux", cwd=repo)
    assert r.code == 0, r.out + r.err
    return {"repo": repo, "inboxes": inboxes, "server": tmux}


def names(server) -> dict[str, str]:
    """@hf_part -> window name of the batch's windows."""
    proc = server("list-windows", "-t", "=hf-b1", "-F", "#{@hf_part}\t#{window_name}")
    return dict(line.split("\t") for line in proc.stdout.splitlines())


def in_window(inboxes: Path, part: str, step: str, *args: str) -> str:
    """`hf ARGS` run by the part's agent inside its window; its stderr (exit 0 asserted)."""
    command = shlex.join([sys.executable, "-m", "hf_fanout", *args])
    (inboxes / part / f"{step}.tmp").write_text(f"PYTHONPATH={shlex.quote(str(ROOT))} "
                                                f"exec {command}\n")
    (inboxes / part / f"{step}.tmp").rename(inboxes / part / f"{step}.sh")
    out = inboxes / part / f"{step}.out"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().endswith("\n"):
            code, _, err = out.read_text().partition("\n")
            assert code == "0", err
            return err
        time.sleep(0.05)
    raise AssertionError(f"the agent of {part} never ran {step}")


def wait_name(server, part: str, wanted: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if names(server).get(part) == wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"window of {part} is {names(server).get(part)!r}, not {wanted!r}")


def test_the_window_name_follows_the_parts_state(windows, hf):
    server, inboxes, repo = windows["server"], windows["inboxes"], windows["repo"]
    assert names(server) == {"api": "api", "ui": "ui", "docs": "docs"}
    in_window(inboxes, "api", "01", "agent-event", "waiting")
    wait_name(server, "api", "api ⏳")
    in_window(inboxes, "api", "02", "agent-event", "working")
    wait_name(server, "api", "api")
    in_window(inboxes, "api", "03", "agent-event", "waiting")
    in_window(inboxes, "ui", "01", "blocked", "--reason", "needs the schema")
    in_window(inboxes, "docs", "01", "done")
    wait_name(server, "api", "api ⏳")
    assert names(server) == {"api": "api ⏳", "ui": "ui ✖", "docs": "docs ✔"}
    # the agent's turn ends after `hf done` / `hf blocked`: the part's mark stays
    in_window(inboxes, "docs", "02", "agent-event", "waiting")
    in_window(inboxes, "ui", "02", "agent-event", "working")
    assert names(server) == {"api": "api ⏳", "ui": "ui ✖", "docs": "docs ✔"}
    # renamed windows are still the parts' own: nothing is opened twice
    r = hf("open", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert [t["action"] for t in r.json["data"]["tabs"]] == ["alive", "skipped", "skipped"]
    assert len(names(server)) == 3
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
    assert [p["state"] for p in status] == ["waiting", "blocked", "done"]


def test_outside_tmux_nothing_is_renamed_and_the_command_still_works(windows, hf):
    server, repo = windows["server"], windows["repo"]
    assert "TMUX" not in os.environ
    r = hf("done", "b1/docs", cwd=repo)
    assert r.code == 0, r.err
    assert names(server)["docs"] == "docs"


def test_a_window_whose_agent_ended_is_plain_again_when_opened_anew(windows, hf):
    server, inboxes, repo = windows["server"], windows["inboxes"], windows["repo"]
    in_window(inboxes, "api", "01", "agent-event", "waiting")
    wait_name(server, "api", "api ⏳")
    in_window(inboxes, "api", "zz", "agent-event", "exited")  # then the agent ends
    deadline = time.monotonic() + 10
    while "1" not in server("list-windows", "-t", "=hf-b1", "-F",
                          "#{@hf_part} #{pane_dead}").stdout.split("\n")[0]:
        assert time.monotonic() < deadline, "the agent never ended"
        time.sleep(0.05)
    r = hf("open", "b1/api", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert r.json["data"]["tabs"][0]["action"] == "opened"
    wait_name(server, "api", "api")
    assert len(names(server)) == 3


def test_the_sweep_marks_an_orphans_window_from_inside_tmux(windows, hf, monkeypatch):
    server, inboxes, repo = windows["server"], windows["inboxes"], windows["repo"]
    in_window(inboxes, "api", "zz", "agent-event", "working")  # then the agent ends
    deadline = time.monotonic() + 30
    while True:  # `hf run` records the exit: the part, not done, is an orphan
        r = hf("sweep", "--dry-run", "--json", cwd=repo)
        if '"rescue+block"' in r.out:
            break
        assert time.monotonic() < deadline, r.out
        time.sleep(0.1)
    assert names(server)["api"] == "api"
    socket = server("list-sessions", "-F", "#{socket_path}").stdout.split()[0]
    monkeypatch.setenv("TMUX", f"{socket},1,0")  # the sweep run from a tmux pane
    r = hf("sweep", cwd=repo)
    assert r.code == 0, r.err
    wait_name(server, "api", "api ✖")
    assert names(server)["ui"] == "ui"
