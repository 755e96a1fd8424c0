"""Remotes: which there are, a branch's upstream, a remote's URL, pushing a
commit to a remote branch (git's own rules: no force unless with a lease), and
the refs of parts worked elsewhere: listed (`git ls-remote`), fetched, pushed
and deleted as one atomic push. Never a prompt for a password: credentials are
git's business, and a failure is git's own line."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess

from hf_fanout import processes
from hf_fanout.errors import HfError
from hf_fanout.worktrees.process import GitTimedOut, run, text

# Refs a fetch writes into for a moment live under one namespace per process
# (`refs/hf/scratch/<pid>-<start ns>/KIND/...`): two commands never share one (one's
# clean-up deleted the other's), and what a killed one leaves (its refs, a `.lock`
# file git held while it was killed) stands in no other's way; `clear_dead_scratch`
# removes it.
SCRATCH_ROOT = "refs/hf/scratch"
_SCRATCH_TOKENS: dict[int, str] = {}


def scratch_ref(kind: str, *names: str) -> str:
    """This process's scratch ref for `kind` (incoming, incoming-task, ...) and `names`."""
    import time

    pid = os.getpid()
    token = _SCRATCH_TOKENS.setdefault(pid, f"{pid}-{time.time_ns()}")
    return "/".join([SCRATCH_ROOT, token, kind, *names])


def clear_dead_scratch(workdir: Path, common_dir: Path) -> None:
    """The scratch refs of processes that are gone (killed half way through a fetch),
    loose or packed, and git's lock files with them."""
    import shutil

    root = common_dir / SCRATCH_ROOT
    with contextlib.suppress(OSError):
        listed = run(["for-each-ref", "--format=%(refname)", f"{SCRATCH_ROOT}/"], workdir,
                     check=False).stdout.decode("utf-8", "surrogateescape").split()
        loose = [entry.name for entry in os.scandir(root) if entry.is_dir()] \
            if root.is_dir() else []
        refs: dict[str, list[str]] = {name: [] for name in loose}
        for ref in listed:
            refs.setdefault(ref.removeprefix(SCRATCH_ROOT + "/").partition("/")[0],
                            []).append(ref)
        for name, held in refs.items():
            pid = name.partition("-")[0]
            if not pid.isdigit() or processes.identity_of(int(pid)) is not None:
                continue
            shutil.rmtree(root / name, ignore_errors=True)  # (its loose refs and locks)
            if held:
                run(["update-ref", "--stdin"], workdir, check=False,
                    stdin="".join(f"delete {ref}\n" for ref in held).encode())


@dataclass(frozen=True)
class Upstream:
    remote: str
    branch: str  # on the remote, without refs/heads/


@dataclass(frozen=True)
class PushOutcome:
    ok: bool
    stderr: str
    rejected: bool  # refused by the remote's rules (non-fast-forward, stale lease), not
    # by its hooks


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


def push_remote(workdir: Path, branch: str) -> str | None:
    """Where `git push` sends `branch` when it names no remote, if configured apart
    from the upstream: `branch.<name>.pushRemote`, else `remote.pushDefault` (a
    fork's usual setup: fetch from the project, push to one's own fork)."""
    for key in (f"branch.{branch}.pushRemote", "remote.pushDefault"):
        found = run(["config", "--get", key], workdir, check=False)
        name = found.stdout.decode("utf-8", "surrogateescape").strip()
        if found.returncode == 0 and name and name != ".":
            return name
    return None


def valid_branch(workdir: Path, name: str) -> bool:
    """Whether git takes `name` as a branch name (`git check-ref-format`)."""
    return run(["check-ref-format", f"refs/heads/{name}"], workdir, check=False).returncode == 0


def url(workdir: Path, remote: str) -> str:
    """Where a push goes (insteadOf rules applied); a relative path made absolute, so
    it means the same from another directory, and in a prompt for another machine."""
    found = text(["remote", "get-url", "--push", remote], workdir)
    local = "://" not in found and ":" not in found.split("/", 1)[0]  # not scp-like
    if local and found and not Path(found).is_absolute():
        return os.path.normpath(workdir / found)  # (normpath: `..` dropped, as git reads it)
    return found


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


class RemoteFailed(HfError):
    """A remote could not be read or written: git's own line, and what to check."""

    code = "remote_failed"


_QUIET = {"GIT_TERMINAL_PROMPT": "0"}


def git_error(stderr: str, fallback: str) -> str:
    """git's one line that says why: the remote's own (`remote:`, a hook's words),
    else a ref it rejected (`! REF [rejected] (why)`, what `--porcelain` prints),
    else its fatal: or error: line, else its first. An atomic push's `error: atomic
    push failed for ref R. status: N` says only that the push as a whole failed."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()
             and "atomic push failed for ref" not in line]
    said = next((line for line in lines if line.startswith("remote:")), None)
    rejected = next((line for line in lines if "[rejected]" in line
                     or "[remote rejected]" in line), None)
    if said is None and rejected is not None:
        return " ".join(rejected.lstrip("!").split())
    return said or next((line for line in lines if line.startswith(("fatal:", "error:"))),
                        lines[0] if lines else fallback)


def _failed(what: str, remote: str, proc: CompletedProcess[bytes],
            hint: str | None = None) -> RemoteFailed:
    stderr = proc.stderr.decode("utf-8", "replace")
    return RemoteFailed(f"{what} {remote} failed: {git_error(stderr, f'exit {proc.returncode}')}",
                        hint or f"check the remote's URL and your access to it (`git remote "
                        f"get-url {remote}`, `git ls-remote {remote}`)",
                        details={"stderr": stderr})


def list_refs(workdir: Path, remote: str, patterns: Sequence[str], *,
              timeout: float) -> dict[str, str]:
    """The refs of `remote` matching `patterns` (`git ls-remote` patterns: a trailing
    part of the name, `*` allowed), name -> commit: one network round trip, given up
    after `timeout` seconds (a host that does not answer never hangs hf)."""
    try:
        proc = run(["ls-remote", "--refs", remote, *patterns], workdir, check=False,
                   env=_QUIET, timeout=timeout)
    except GitTimedOut:
        raise RemoteFailed(f"reading {remote} failed: no answer within {timeout:g} s",
                           f"check that it is reachable (`git ls-remote {remote}`); "
                           "`remote_timeout` in .hf.toml sets how long hf waits") from None
    if proc.returncode != 0:
        raise _failed("reading", remote, proc)
    found = {}
    for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        oid, _, name = line.partition("\t")
        if name:
            found[name] = oid
    return found


def fetch_refs(workdir: Path, remote: str, refspecs: Sequence[str]) -> None:
    """Fetch exactly `refspecs` (`+SRC:DST`, no tags, no FETCH_HEAD, and no
    remote-tracking ref moved: `--refmap=` leaves the remote's fetch refspecs out)."""
    if not refspecs:
        return
    proc = run(["fetch", "--no-tags", "--no-write-fetch-head", "--refmap=", "--quiet", remote,
                *refspecs],
               workdir, check=False, env=_QUIET)
    if proc.returncode != 0:
        raise _failed("fetching from", remote, proc)


def push_refs(workdir: Path, remote: str, updates: Sequence[str],
              leases: Sequence[str] = (), *, timeout: float | None = None) -> PushOutcome:
    """One atomic push of `updates` (`COMMIT:REF` to write, `:REF` to delete; no
    force): all of them land, or none. `leases` (`REF:EXPECTED`, an empty EXPECTED
    for "not there"): those refs are written only if the remote has them as expected
    (`--force-with-lease`), whatever the update. `timeout`: given up after that many
    seconds (for a push that may be lost, a heartbeat's), git and ssh killed."""
    try:
        proc = run(["push", "--porcelain", "--atomic",
                    *(f"--force-with-lease={lease}" for lease in leases), remote, *updates],
                   workdir, check=False, env=_QUIET, timeout=timeout)
    except GitTimedOut:
        return PushOutcome(False, f"no answer within {timeout:g} s", False)
    report = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    return PushOutcome(proc.returncode == 0, (stderr + report).strip(), _rejected(report))


def _rejected(report: str) -> bool:
    """A `--porcelain` report refusing a ref by the remote's rules (`[rejected]`:
    non-fast-forward, stale lease), not by its hooks or access (`[remote rejected]`)."""
    return any(line.startswith("!") and "\t[rejected]" in line for line in report.splitlines())


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
    return PushOutcome(proc.returncode == 0, (stderr + report).strip(), _rejected(report))


def clone(source: str, dest: Path) -> None:
    """`git clone SOURCE DEST` (its remote is `origin`)."""
    proc = run(["clone", "--quiet", source, str(dest)], dest.parent,
               check=False, env=_QUIET)
    if proc.returncode != 0:
        raise _failed("cloning", source, proc,
                      f"check the URL and your access to it (`git ls-remote {source}`)")


def find_remote(workdir: Path, given: str) -> str | None:
    """The name of this repository's remote `given` names (its name, or its URL)."""
    known = remotes(workdir)
    if given in known:
        return given
    for name in known:
        if given in (configured_url(workdir, name), url(workdir, name)):
            return name
    return None


def read_file(workdir: Path, commit: str, path: str) -> bytes:
    """A file of a commit's tree (`git cat-file blob COMMIT:PATH`)."""
    return run(["cat-file", "blob", f"{commit}:{path}"], workdir).stdout
