"""Launchers that print or run a template, the handoff file, `hf task`, and what join leaves out."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git


def guard_bin() -> str:
    """The guard's stable directory (the test's own state dir): first on a tab's PATH."""
    from hf_fanout.config import guard_bin_dir

    return str(guard_bin_dir())


def supervised(argv: list[str]) -> list[str]:
    """The tab's command: under `hf run` (see docs/tabs.md)."""
    return [sys.executable, "-m", "hf_fanout", "run", "--", *argv]


@pytest.fixture
def spaced(repo, hf, tmp_path):
    """Batch b1 (api, ui) with worktrees under a directory whose name has spaces."""
    root = tmp_path / "my work trees"
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--task", "add search", "--worktree-root", str(root), cwd=repo)
    assert r.code == 0, r.err
    return {"repo": repo, "api": root / "b1" / "api", "ui": root / "b1" / "ui"}


def set_config(seal: Path, text: str) -> None:
    config = seal / ".config" / "hf" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)


def test_print_launcher_prints_exact_commands_with_spaced_paths_quoted(spaced, hf, seal):
    set_config(seal, 'agent = "aider --message-file {handoff}"\n')
    r = hf("open", "b1", "--launcher", "print", "--json", cwd=spaced["repo"])
    assert r.code == 0, r.err
    commands = [(t["tab"], t["action"], t["command"]) for t in r.json["data"]["tabs"]]
    expected = []
    for index, name in enumerate(["api", "ui"]):
        wt = str(spaced[name])
        handoff = f"{wt}/.hf/TASK.md"
        argv = supervised(["aider", "--message-file", handoff])
        line = (f"cd '{wt}' && HF_BATCH=b1 HF_PART={name} HF_WORKTREE='{wt}' "
                f"HF_PORT={4100 + index} HF_HANDOFF='{handoff}' "
                f'PATH={shlex.quote(guard_bin())}:"$PATH" {shlex.join(argv)}')
        expected.append((name, "printed", line))
    assert commands == expected
    # and the human output is the same lines, ready to paste
    r = hf("open", "b1", "--launcher", "print", cwd=spaced["repo"])
    assert r.out.splitlines() == ["# api", expected[0][2], "# ui", expected[1][2]]


def test_a_printed_line_runs_the_agent_in_the_worktree_with_its_variables(
        spaced, hf, seal, tmp_path):
    stubs = tmp_path / "stub bin"
    stubs.mkdir()
    out = tmp_path / "seen.json"
    stub = stubs / "aider"
    stub.write_text(f"#!{sys.executable}\n"
                    "import json, os, sys\n"
                    f"json.dump({{'cwd': os.getcwd(), 'argv': sys.argv[1:], "
                    "'path0': os.environ['PATH'].split(os.pathsep)[0], "
                    "'part': os.environ['HF_PART'], 'port': os.environ['HF_PORT']}, "
                    f"open({str(out)!r}, 'w'))\n")
    stub.chmod(0o755)
    set_config(seal, 'agent = "aider --message-file {handoff}"\n')
    r = hf("open", "b1/ui", "--launcher", "print", "--json", cwd=spaced["repo"])
    line = r.json["data"]["tabs"][0]["command"]
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(out.read_text())
    assert seen == {"cwd": str(spaced["ui"]),
                    "argv": ["--message-file", f"{spaced['ui']}/.hf/TASK.md"],
                    "path0": guard_bin(), "part": "ui", "port": "4101"}


def test_custom_template_fills_quoted_placeholders_and_runs(spaced, hf):
    template = ("printf '%s\\n' {worktree} {branch} {batch} {part} {handoff} "
                "> {worktree}/.hf/custom.txt")
    r = hf("open", "b1/api", "--launcher", template, "--dry-run", "--json",
           cwd=spaced["repo"])
    assert r.code == 0, r.err
    wt = str(spaced["api"])
    assert r.json["data"]["tabs"] == [{
        "tab": "api", "launcher": "custom", "action": "would-open",
        "command": (f"printf '%s\\n' '{wt}' hf/b1/api b1 api '{wt}/.hf/TASK.md' "
                    f"> '{wt}'/.hf/custom.txt"),
        "target": "", "hint": ""}]
    assert not (spaced["api"] / ".hf" / "custom.txt").exists()

    r = hf("open", "b1/api", "--launcher", template, "--json", cwd=spaced["repo"])
    assert r.json["data"]["tabs"][0]["action"] == "opened"
    written = spaced["api"] / ".hf" / "custom.txt"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if written.exists() and written.read_text().count("\n") == 5:
            break
        time.sleep(0.05)
    assert written.read_text().splitlines() == [wt, "hf/b1/api", "b1", "api",
                                                f"{wt}/.hf/TASK.md"]


def test_custom_launcher_from_config_and_unknown_placeholder(spaced, hf):
    (spaced["repo"] / ".hf.toml").write_text(
        'launcher = "custom"\nlauncher_command = "my-term --cwd {worktree} -e sh -c {command}"\n')
    assert hf("trust", cwd=spaced["repo"]).code == 0
    r = hf("open", "b1/api", "--dry-run", "--json", cwd=spaced["repo"])
    command = r.json["data"]["tabs"][0]["command"]
    printed = hf("open", "b1/api", "--launcher", "print", "--json", cwd=spaced["repo"])
    line = printed.json["data"]["tabs"][0]["command"]
    assert command == f"my-term --cwd '{spaced['api']}' -e sh -c {shlex.quote(line)}"

    r = hf("open", "b1/api", "--launcher", "x {nope}", cwd=spaced["repo"])
    assert r.code == 2
    assert "unknown placeholder {nope}" in r.err


def test_an_unavailable_launcher_fails_with_one_line_naming_the_available(spaced, hf):
    r = hf("open", "b1", "--launcher", "nosuch", cwd=spaced["repo"])
    assert r.code == 1
    first = r.err.splitlines()[0]
    available = "tmux, print" if shutil.which("tmux") else "print"
    assert first.startswith("hf: error: launcher nosuch is unknown; available: ")
    assert available in first
    if shutil.which("code") is None:
        r = hf("split", "b2", "--part", "api=src/api/**", "--open", "--launcher", "vscode",
               cwd=spaced["repo"])
        assert r.code == 1
        assert "launcher vscode is not available here; available:" in r.err
        # it failed before anything was made
        assert git(spaced["repo"], "branch", "--list", "hf/b2/*") == ""


def test_handoff_file_says_task_files_limits_finish_and_state(split3, hf):
    text = (split3["api"] / ".hf" / "TASK.md").read_text()
    assert "# Task for part `api` of batch `b1`" in text
    assert "add search" in text
    assert "- `src/api/**`" in text
    assert "- `src/api/orders.py`" in text and "- `src/api/users.py`" in text
    assert "src/ui/page.html" not in text  # only its own base files are listed
    assert "ui: `src/ui/**`" in text and "docs: `docs/**`, `README.md`" in text
    assert "hf done" in text and "hf blocked --reason" in text
    assert "`git push`: push publishes the branch" in text
    assert "`git tag`: tags are shared by every worktree" in text
    for line in ("## State", "Current position:", "Decisions:", "Blockers:", "Resume here:"):
        assert line in text

    r = hf("task", cwd=split3["api"])
    assert r.code == 0, r.err
    assert r.out == text
    r = hf("task", "b1/docs", "--json", cwd=split3["repo"])
    assert r.json["data"]["path"] == str(split3["docs"] / ".hf" / "TASK.md")


def test_handoff_guard_section_follows_the_repos_guard_settings(repo, hf):
    (repo / ".hf.toml").write_text('[guard]\nallow = ["tag", "stash"]\nrefuse = ["gc"]\n')
    assert hf("trust", cwd=repo).code == 0
    r = hf("split", "b1", "--part", "api=src/api/**", "--task", "t", cwd=repo)
    assert r.code == 0, r.err
    text = (repo.parent / "repo.hf" / "b1" / "api" / ".hf" / "TASK.md").read_text()
    guard = text.split("## What the guard blocks", 1)[1].split("## How to finish", 1)[0]
    assert "`git tag`" not in guard and "`git stash`" not in guard
    assert "`.hf.toml` allows `stash`, `tag` here." in guard
    assert "- `git gc`: refused by `[guard] refuse` in .hf.toml" in guard
    assert "- `git push`: push publishes the branch" in guard

    (repo / ".hf.toml").write_text("[guard]\nenabled = false\n")
    assert hf("trust", cwd=repo).code == 0
    assert hf("split", "b2", "--part", "api=src/api/**", cwd=repo).code == 0
    text = (repo.parent / "repo.hf" / "b2" / "api" / ".hf" / "TASK.md").read_text()
    assert "The guard is off in this repository" in text
    assert "`git push`" not in text


def test_handoff_dir_is_invisible_to_git_and_never_joined(split3, hf):
    api = split3["api"]
    assert git(api, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(api, "diff", "HEAD", "--stat") == ""
    r = hf("status", "b1", "--json", cwd=split3["repo"])
    assert [p["changed"] for p in r.json["data"]["batches"][0]["parts"]] == [0, 0, 0]

    (api / "src" / "api" / "orders.py").write_text("def orders():\n    return [1]\n")
    with (api / ".hf" / "TASK.md").open("a") as f:  # the agent keeps its state current
        f.write("- Current position: orders done\n")
    for part in ("api", "ui", "docs"):
        assert hf("done", f"b1/{part}", cwd=split3["repo"]).code == 0
    r = hf("join", "b1", "--json", cwd=split3["repo"])
    assert r.code == 0, r.err
    files = git(split3["repo"], "show", "--name-only", "--format=", "HEAD").split()
    assert files == ["src/api/orders.py"]
    assert not (split3["repo"] / ".hf").exists()
    assert git(split3["repo"], "status", "--porcelain") == ""


def test_split_refuses_a_repository_that_tracks_a_dot_hf_directory(repo, hf):
    (repo / ".hf").mkdir()
    (repo / ".hf" / "notes").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tracked .hf")
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 1
    assert "tracks .hf/notes" in r.err
    assert not (repo.parent / "repo.hf" / "b1").exists()


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_handoff_file_that_is_not_a_file_is_one_line(split3, kind):
    """The part's `.hf/TASK.md` replaced by a folder or a FIFO: `hf task` (a real
    process, which a FIFO once hung) says it cannot use it, in one line, exit 1."""
    task = split3["api"] / ".hf" / "TASK.md"
    task.unlink()
    if kind == "folder":
        task.mkdir()
    else:
        os.mkfifo(task)
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "task", "b1/api"],
                       cwd=split3["repo"], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 1, r.stderr
    what = "a folder" if kind == "folder" else "a FIFO"
    assert r.stderr.splitlines()[0] == (f"hf: error: `hf task` cannot use {task}: is {what}, "
                                        "not a regular file"), r.stderr
