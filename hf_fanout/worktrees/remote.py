"""Remotes: which there are, a branch's upstream, a remote's URL, and pushing a
commit to a remote branch (git's own rules: no force unless with a lease)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hf_fanout.worktrees.process import run, text


@dataclass(frozen=True)
class Upstream:
    remote: str
    branch: str  # on the remote, without refs/heads/


@dataclass(frozen=True)
class PushOutcome:
    ok: bool
    stderr: str
    rejected: bool  # refused by the remote's rules (non-fast-forward, stale lease)


def remotes(workdir: Path) -> list[str]:
    listing = text(["remote"], workdir)
    return [line for line in listing.splitlines() if line]


def upstream(workdir: Path, branch: str) -> Upstream | None:
    """`branch`'s upstream (branch.<name>.remote / .merge), if it has one on a remote."""
    remote = run(["config", "--get", f"branch.{branch}.remote"], workdir, check=False)
    merge = run(["config", "--get", f"branch.{branch}.merge"], workdir, check=False)
    name = remote.stdout.decode("utf-8", "surrogateescape").strip()
    ref = merge.stdout.decode("utf-8", "surrogateescape").strip()
    if remote.returncode != 0 or merge.returncode != 0 or not name or name == ".":
        return None
    return Upstream(name, ref.removeprefix("refs/heads/"))


def valid_branch(workdir: Path, name: str) -> bool:
    """Whether git takes `name` as a branch name (`git check-ref-format`)."""
    return run(["check-ref-format", f"refs/heads/{name}"], workdir, check=False).returncode == 0


def url(workdir: Path, remote: str) -> str:
    """Where a push goes (insteadOf rules applied)."""
    return text(["remote", "get-url", "--push", remote], workdir)


def configured_url(workdir: Path, remote: str) -> str:
    """The URL as the config writes it (pushurl, else url), before insteadOf rules."""
    for key in ("pushurl", "url"):
        proc = run(["config", "--get", f"remote.{remote}.{key}"], workdir, check=False)
        if proc.returncode == 0:
            return proc.stdout.decode("utf-8", "surrogateescape").strip()
    return ""


def remote_tip(workdir: Path, remote: str, branch: str) -> str | None:
    """What the remote-tracking ref of `remote`/`branch` says (no network)."""
    proc = run(["rev-parse", "--verify", "--quiet", f"refs/remotes/{remote}/{branch}"],
               workdir, check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def push(workdir: Path, remote: str, commit: str, branch: str, *,
         force_with_lease: bool = False, dry_run: bool = False) -> PushOutcome:
    """Push `commit` to `refs/heads/<branch>` of `remote`; never a prompt for a password
    (an auth failure is git's one line, not a hang)."""
    args = ["push", "--porcelain"]
    if force_with_lease:
        args.append("--force-with-lease")
    if dry_run:
        args.append("--dry-run")
    args += [remote, f"{commit}:refs/heads/{branch}"]
    proc = run(args, workdir, check=False, env={"GIT_TERMINAL_PROMPT": "0"})
    report = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    rejected = any(line.startswith("!") for line in report.splitlines())
    return PushOutcome(proc.returncode == 0, (stderr + report).strip(), rejected)
