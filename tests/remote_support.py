"""Two machines and a remote for the remote-part tests: a real bare repository, and
two clones with their own HOME and XDG dirs (so their own hf state and registry),
each running hf as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import PROJECT_ROOT, git, make_repo

from hf_fanout.guard.env import bin_dir


@dataclass
class Machine:
    name: str
    home: Path
    repo: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "PYTHONPATH": str(PROJECT_ROOT),
        })
        return env

    def hf(self, *args: str, cwd: Path | None = None, extra: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hf_fanout", *args], cwd=cwd or self.repo,
                              env={**self.env, **(extra or {})}, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def hf_json(self, *args: str, cwd: Path | None = None,
                extra: dict[str, str] | None = None) -> Any:
        proc = self.hf(*args, "--json", cwd=cwd, extra=extra)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return json.loads(proc.stdout)["data"]

    def git(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd or self.repo, env=self.env,
                              capture_output=True, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout.decode()

    def guarded_env(self) -> dict[str, str]:
        """What a tab's agent has: the guard's git wrapper first on PATH."""
        env = self.env
        env["PATH"] = f"{bin_dir()}{os.pathsep}{env['PATH']}"
        env["HF_PYTHON"] = sys.executable
        return env

    def worktree(self, batch: str, part: str) -> Path:
        return self.repo.parent / f"{self.repo.name}.hf" / batch / part


def make_machine(tmp: Path, name: str) -> Path:
    home = tmp / f"home-{name}"
    home.mkdir()
    (home / ".gitconfig").write_text(
        f"[init]\n\tdefaultBranch = main\n[user]\n\tname = {name}\n"
        f"\temail = {name}@example.invalid\n")
    return home


def two_machines(tmp: Path) -> tuple[Path, Machine, Machine]:
    """The remote (a bare repository with main), machine A (the repository, which
    splits and joins) and machine B (a clone of the remote)."""
    remote = tmp / "remote.git"
    git(tmp, "init", "-q", "--bare", str(remote))
    (tmp / "a").mkdir()
    a = Machine("a", make_machine(tmp, "a"), make_repo(tmp / "a" / "repo"))
    a.git("remote", "add", "origin", str(remote))
    a.git("push", "-q", "origin", "main")
    b_home = make_machine(tmp, "b")
    (tmp / "b").mkdir()
    b = Machine("b", b_home, tmp / "b" / "repo")
    subprocess.run(["git", "clone", "-q", str(remote), str(b.repo)], env=b.env, check=True,
                   capture_output=True)
    return remote, a, b


def remote_refs(remote: Path) -> dict[str, str]:
    """`git ls-remote` of the remote: ref -> commit."""
    out = git(remote.parent, "ls-remote", "--refs", str(remote))
    return {name: oid for oid, name in (line.split("\t") for line in out.splitlines())}


def fsck_clean(machine: Machine) -> None:
    proc = subprocess.run(["git", "fsck", "--no-dangling"], cwd=machine.repo, env=machine.env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def another_machine(tmp: Path, remote: Path, name: str) -> Machine:
    """One more machine: a clone of the remote with its own HOME, named `name` by its
    `host` setting (the machines of a test share one host name)."""
    machine = Machine(name, make_machine(tmp, name), tmp / name / "repo")
    (tmp / name).mkdir()
    subprocess.run(["git", "clone", "-q", str(remote), str(machine.repo)], env=machine.env,
                   check=True, capture_output=True)
    name_host(machine, name)
    return machine


def name_host(machine: Machine, host: str) -> None:
    """`host = HOST` in the machine's user config."""
    config = machine.home / ".config" / "hf"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'host = "{host}"\n')
