"""The live board's drawing (`hf status --watch`, `hf board`): a known batch at 80
and 200 columns, through rich's console capture."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

from conftest import write
from test_tabs_tmux import tmux  # noqa: F401  (the private tmux server fixture)


def draw(split3, width: int) -> str:
    from rich.console import Console

    from hf_fanout.cli.board import render
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.orchestrator.status import all_status

    ws = Workspace.open(split3["repo"])
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(render(all_status(ws, "b1", owned=True)[0], width))
    return console.export_text()


def known_batch(split3, hf) -> None:
    """api waiting (its agent's hook said so) with one change outside its ownership,
    docs done, ui running."""
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "x\n", "src/ui/page.html": "<p>mine?</p>\n"})
    env = {**os.environ, "HF_REPO": str(repo / ".git")}
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "agent-event", "notification",
                        "--part", "b1/api"], input=json.dumps(
                            {"hook_event_name": "Notification",
                             "notification_type": "permission_prompt"}),
                       text=True, capture_output=True, cwd=split3["api"],
                       env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert hf("done", "b1/docs", cwd=repo).code == 0


def rows(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        words = re.sub(r"[│┃|]", " ", line).split()
        if words and words[0] in ("api", "ui", "docs"):
            found[words[0]] = " ".join(words[1:])
    return found


def test_the_board_at_200_columns_shows_every_column(split3, hf):
    known_batch(split3, hf)
    text = draw(split3, 200)
    shown = rows(text)
    assert set(shown) == {"api", "ui", "docs"}
    assert re.match(r"waiting \d+s claude 2 3 1 \d+s ago hf/b1/api", shown["api"]), shown["api"]
    assert re.match(r"done \d+s 0 3 0 \d+s ago hf/b1/docs", shown["docs"]), shown["docs"]
    assert re.match(r"running \d+[sm] 0 2 0 ", shown["ui"]), shown["ui"]
    assert "1/3 done · 1 running · 1 waiting · next: part api waits for you" in text
    assert "api: outside its ownership: src/ui/page.html" in text
    assert max(len(line) for line in text.splitlines()) <= 200


def test_the_board_at_80_columns_drops_columns_not_rows(split3, hf):
    known_batch(split3, hf)
    text = draw(split3, 80)
    shown = rows(text)
    assert set(shown) == {"api", "ui", "docs"}
    assert "hf/b1/api" not in text  # the branch column went first
    assert re.match(r"waiting \d+s claude 2 3 1 \d+s ago$", shown["api"]), shown["api"]
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    assert "1/3 done · 1 running · 1 waiting · next: part api waits for you" in flat
    narrow = rows(draw(split3, 40))
    assert set(narrow) == {"api", "ui", "docs"}
    assert narrow["api"].startswith("waiting")


class Terminal:
    """`hf board` on a real pseudo-terminal of 160x40; `until` reads what it draws."""

    def __init__(self, repo, env: dict[str, str] | None = None) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "GIT_PAGER": "cat", **(env or {})}
        env.pop("COLUMNS", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", "board", "b1"],
                                     cwd=repo, stdin=slave, stdout=slave, stderr=slave,
                                     env=env)
        os.close(slave)
        self.seen = b""

    def until(self, marker: bytes, timeout: float = 30) -> None:
        import select
        import time

        deadline = time.monotonic() + timeout
        while marker not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    break
        plain = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", self.seen)  # without escapes
        assert marker in self.seen, re.sub(rb"\s+", b" ", plain)[-1500:]

    def press(self, key: bytes) -> None:
        os.write(self.master, key)

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.master)


def last_message(repo) -> str:
    return subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout


def test_the_board_in_a_terminal_d_shows_the_diff_j_refuses_q_quits(split3, hf):
    known_batch(split3, hf)
    term = Terminal(split3["repo"])
    term.until(b"next: part api waits for you")
    term.press(b"d")  # the chosen row is the first: api
    term.until(b"+++ b/src/api/new.py")
    term.until(b"src/ui/page.html (owned by part ui)")
    term.press(b"j")  # api and ui are not done: the join refuses, and says why
    term.until(b"join b1: ")
    term.press(b"\r")  # no tmux window for api
    term.until(b"b1/api has no tmux window")
    term.press(b"q")
    assert term.close() == 0
    assert "Hf-Batch" not in last_message(split3["repo"])


def test_the_board_joins_with_j_once_every_part_is_done(split3, hf):
    repo = split3["repo"]
    write(split3["ui"], {"src/ui/app.js": "console.log(2)\n"})
    for part in ("api", "ui", "docs"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    term = Terminal(repo)
    term.until(b"3/3 done")
    term.press(b"\x1b[B")  # down: ui
    term.press(b"j")
    term.until(b"joined b1: commit ")
    term.press(b"q")
    assert term.close() == 0
    assert "Hf-Batch: b1" in last_message(repo)


def test_the_board_shows_how_far_main_moved_past_each_part(split3, hf):
    repo = split3["repo"]
    write(repo, {"NEWS.md": "news\n"})
    subprocess.run(["git", "add", "NEWS.md"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "news"], cwd=repo, check=True)
    shown = rows(draw(split3, 200))
    assert all(re.match(r"running \d+[sm] main \+1 ", row) for row in shown.values()), shown
    assert "main +1" in hf("status", "b1", cwd=repo).out


def test_enter_on_the_board_inside_tmux_goes_to_the_parts_window(split3, hf, seal,
                                                                 tmp_path, tmux):  # noqa: F811
    import shlex
    import time

    agent = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(60)'"
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"agent = {json.dumps(agent)}\n")
    repo = split3["repo"]
    assert hf("open", "b1", "--launcher", "tmux", cwd=repo).code == 0

    def active() -> str:
        shown = tmux("list-windows", "-t", "=hf-b1", "-F", "#{window_active} #{@hf_part}")
        return next((line[2:] for line in shown.stdout.splitlines()
                     if line.startswith("1 ")), "")

    assert active() == "api"  # the session's first window
    socket = tmux("list-sessions", "-F", "#{socket_path}").stdout.split()[0]
    term = Terminal(repo, env={"TMUX": f"{socket},1,0"})  # as if run in a tmux pane
    term.until(b"0/3 done")
    term.press(b"\x1b[B")  # down: ui
    term.press(b"\r")
    term.until(b"went to hf-b1:ui")
    deadline = time.monotonic() + 10
    while active() != "ui" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert active() == "ui"
    term.press(b"q")
    assert term.close() == 0
