"""The guard's stable entry (guard/env.py): open parts stay guarded when hf is
reinstalled elsewhere, and refuse rather than run unguarded when hf is gone;
`hf doctor` finds a broken guard and `--fix` repairs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import git, write
from test_guard_wrapper import wrapped_env

from hf_fanout.guard.env import ENTRY, bin_dir

ROOT = Path(__file__).resolve().parents[1]


def _move_installation() -> None:
    """What a reinstall elsewhere leaves: an entry naming a python and a package
    that are gone."""
    entry = bin_dir() / ENTRY
    text = entry.read_text().replace(sys.executable, "/gone/bin/python3")
    text = text.replace(str(ROOT / "hf_fanout"), "/gone/hf_fanout")
    entry.write_text(text)


def _git(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False)


def _stand_in_hf(tmp_path: Path) -> str:
    """An `hf` console script on PATH, as pip writes one, of the new installation."""
    directory = tmp_path / "newbin"
    directory.mkdir()
    script = directory / "hf"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom hf_fanout.cli import entry\n"
                      "sys.exit(entry())\n")
    script.chmod(0o755)
    return str(directory)


def test_a_reinstall_elsewhere_keeps_open_parts_guarded(split3, tmp_path):
    api = split3["api"]
    env = wrapped_env()  # (hf brings the entry up to date whenever it hands it out)
    env.update(PATH=f"{bin_dir()}{os.pathsep}{_stand_in_hf(tmp_path)}{os.pathsep}"
                    f"{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    entry = bin_dir() / ENTRY
    _move_installation()
    proc = _git(api, env, "push")
    assert proc.returncode == 99 and "push publishes the branch" in proc.stderr.decode()
    assert _git(api, env, "stash", "list").returncode == 0
    # the hooks go through the same entry: an unowned commit is still refused
    write(api, {"src/ui/app.js": "// ui's\n"})
    git(api, "add", "-A")
    proc = _git(api, env, "commit", "-qm", "reach")
    assert proc.returncode != 0 and "outside its ownership" in proc.stderr.decode()
    assert "/gone/" in entry.read_text(), "the moved entry was what ran"


def test_with_hf_gone_git_in_a_part_refuses_rather_than_runs_unguarded(split3, tmp_path):
    api = split3["api"]
    env = wrapped_env()
    guard_bin = bin_dir()
    real_git = shutil.which("git", path=os.environ["PATH"].replace(str(guard_bin), ""))
    only_git = tmp_path / "only-git"  # (no hf, and no python that could run one)
    only_git.mkdir()
    (only_git / "git").symlink_to(real_git or "/usr/bin/git")
    env["PATH"] = f"{guard_bin}{os.pathsep}{only_git}"
    _move_installation()
    proc = _git(api, env, "stash", "list")
    assert proc.returncode == 99, proc.stderr
    message = proc.stderr.decode()
    assert "hf guard: hf is no longer at" in message and "hf doctor --fix" in message


def test_an_hf_on_path_that_is_a_shell_launcher_still_guards(split3, tmp_path):
    """pyenv's, asdf's and nix's `hf` are shell scripts (`#!/usr/bin/env bash`): the
    entry ran their shell with python code, and every hook and slow-path git
    failed; it now finds the python that runs hf."""
    api = split3["api"]
    env = wrapped_env()
    launcher_dir = tmp_path / "shims"
    launcher_dir.mkdir()
    launcher = launcher_dir / "hf"
    launcher.write_text(f'#!/usr/bin/env bash\nexec {sys.executable} -m hf_fanout "$@"\n')
    launcher.chmod(0o755)
    python_dir = tmp_path / "python"  # the python such a launcher stands for
    python_dir.mkdir()
    (python_dir / "python3").symlink_to(sys.executable)
    env.update(PATH=f"{bin_dir()}{os.pathsep}{launcher_dir}{os.pathsep}{python_dir}"
                    f"{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    _move_installation()
    proc = _git(api, env, "push")
    assert proc.returncode == 99 and "push publishes the branch" in proc.stderr.decode()
    write(api, {"src/api/orders.py": "def orders():\n    return [9]\n"})
    git(api, "add", "-A")
    assert _git(api, env, "commit", "-qm", "owned").returncode == 0


def test_doctor_finds_a_broken_guard_and_fix_repairs_it(split3, hf):
    repo, api = split3["repo"], split3["api"]
    hook = repo / ".git" / "hf" / "hooks" / "pre-commit"
    hook.unlink()
    git(api, "config", "--worktree", "--unset", "core.hooksPath")
    r = hf("doctor", "--json", cwd=repo)
    assert r.code != 0
    broken = [f for f in r.json["data"]["findings"] if f["what"] == "guard"]
    assert {f["detail"].split(":")[0] for f in broken} == {"b1/api", "b1/ui", "b1/docs"}
    assert any("core.hooksPath" in f["detail"] for f in broken if "b1/api" in f["detail"])
    assert all(f["hint"] == "`hf doctor --fix` reinstalls the part's guard" for f in broken)
    r = hf("doctor", "--fix", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert hook.is_file()
    assert git(api, "config", "--worktree", "--get", "core.hooksPath").strip() == \
        str(repo / ".git" / "hf" / "hooks")
    write(api, {"src/ui/app.js": "// ui's\n"})
    git(api, "add", "-A")
    proc = subprocess.run(["git", "commit", "-qm", "reach"], cwd=api, capture_output=True,
                          check=False)
    assert proc.returncode != 0 and "outside its ownership" in proc.stderr.decode()
    assert hf("doctor", "--json", cwd=repo).code == 0, "whole again, and no tamper left"
