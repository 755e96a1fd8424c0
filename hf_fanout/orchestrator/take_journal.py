"""The take journal: what a `hf take` is making here, so a take that was cut off
(killed, a full disk) is taken back by the next hf command, and the next `hf take`
of the part takes it anew, instead of leaving a worktree, a branch and records no
hf command can see, take again or remove.

`<common>/hf/journal/take-<batch>--<part>.json` names the part, the remote, its
branch, its worktree, the commit the branch starts at and the claim commit the take
pushes (written before the push). It is written before the claim, and removed once
the batch record lists the part (or once everything was taken back). The take
holds `locks/take-<batch>--<part>.lock` meanwhile: a journal whose lock is free
belongs to a take that is gone.

Taking back removes the worktree, the branch (only while it is at the commit the
take started it at: a branch with commits is kept, and its worktree, and said so),
the part's records and the fetch's scratch refs. Nothing is deleted on the remote
(no hf command but `hf take` talks to it for this): the claim stays there, and the
`take-recovered` audit line names it, so `hf take` here knows the claim as its own
and takes the part again without `--steal`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import atomic, locks, processes
from hf_fanout.core.records import now
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BatchExists, HfError, LockBusy
from hf_fanout.worktrees import remote as remotes

RECOVERED = "take-recovered"
# a take that failed after claiming, whose claim could not be deleted on the remote
CLAIM_LEFT = "take-claim-left"


def journal_file(ws: Workspace, batch: str, part: str) -> Path:
    return ws.store.root / "journal" / f"take-{batch}--{part}.json"  # (no "--" in a slug)


def _lock(ws: Workspace, batch: str, part: str) -> Any:
    return locks.hold(ws.store.lock_file(f"take-{batch}--{part}"), wait=0, what="take")


@dataclass
class Making:
    """What a take is making here, as its journal names it."""

    batch: str
    part: str
    remote: str
    branch: str
    worktree: str
    tip: str  # the commit the branch starts at
    claim: str | None = None  # the claim commit, once made (before it is pushed)
    left: list[str] = field(default_factory=list)  # what taking back could not remove

    def to_dict(self) -> dict[str, Any]:
        return {"schema": 1, "batch": self.batch, "part": self.part, "remote": self.remote,
                "branch": self.branch, "worktree": self.worktree, "tip": self.tip,
                "claim": self.claim, "pid": os.getpid(), "started": now()}

    def save(self, ws: Workspace) -> None:
        """The journal as it is now (the tip fetched, the claim made)."""
        atomic.atomic_write_json(journal_file(ws, self.batch, self.part), self.to_dict())


@contextlib.contextmanager
def journaled(ws: Workspace, making: Making) -> Iterator[Making]:
    """Hold the take's lock and journal for the block. On a failure inside, what is
    still there is taken back; the journal stays only while something could not be
    (the next hf command tries again)."""
    with _lock(ws, making.batch, making.part):
        if not atomic.create_exclusive(journal_file(ws, making.batch, making.part),
                                       atomic.json_bytes(making.to_dict())):
            raise BatchExists(f"a take of {making.batch}/{making.part} that was cut off left "
                              "what it made here", "`hf doctor` says what, and settles it")
        try:
            yield making
        except BaseException:
            with contextlib.suppress(Exception):
                take_back(ws, making)
            if not making.left:
                atomic.remove_durably(journal_file(ws, making.batch, making.part))
            raise
        atomic.remove_durably(journal_file(ws, making.batch, making.part))


def take_back(ws: Workspace, making: Making) -> list[str]:
    """Remove what a take made here: its worktree and its branch (while the branch is
    at the commit it started at: one with commits is kept, and its worktree), the
    part's records, the fetch's scratch refs. Returns what is left."""
    from hf_fanout.guard import fingerprint

    repo, left = ws.repo, []
    ref = f"refs/heads/{making.branch}"
    at = repo.ref_target(ref)
    worktree = Path(making.worktree)
    if at is not None and at != making.tip:
        left.append(f"branch {making.branch} (it moved from {making.tip[:12]} to {at[:12]}: "
                    "commits on it are kept)")
        if worktree.exists():
            left.append(f"its worktree {worktree}")
    else:
        if worktree.exists():
            # (what the killed take started there: a checkout, a setup command)
            processes.wait_for_work_in([str(worktree)], 20.0)
            repo.remove_worktree(worktree)
            shutil.rmtree(worktree, ignore_errors=True)
        if worktree.exists():
            left.append(f"worktree {worktree}")
        repo.forget_missing_worktrees([worktree])
        if at is not None:
            with contextlib.suppress(HfError):
                repo.git(["update-ref", "-d", ref, at])
        if repo.ref_target(ref) is not None:
            left.append(f"branch {making.branch}")
    remotes.clear_dead_scratch(ws.main.path, repo.common_dir)  # (what its fetches held)
    store = ws.store
    with contextlib.suppress(OSError):
        store.part_file(making.batch, making.part).unlink()
    others = list((store.batch_dir(making.batch) / "parts").glob("*.json"))
    if not store.batch_file(making.batch).exists() and not others:
        fingerprint.remove(ws, making.batch)  # (a batch this take began)
        store.remove_batch(making.batch)
        if store.batch_dir(making.batch).exists():
            left.append(f"records {store.batch_dir(making.batch)}")
    making.left = left
    return left


def recover_takes(ws: Workspace) -> list[tuple[str, str, bool]]:
    """Finish or take back every take that was cut off (its journal's lock is free):
    one (line, hint, settled) per take."""
    try:
        found = sorted((ws.store.root / "journal").glob("take-*.json"))
    except OSError:
        return []
    said = []
    for path in found:
        batch, _, part = path.stem.removeprefix("take-").partition("--")
        try:
            with _lock(ws, batch, part):
                if path.exists():
                    said.append(_recover_one(ws, path))
        except LockBusy:
            continue  # that take is running now
    return said


def _recover_one(ws: Workspace, path: Path) -> tuple[str, str, bool]:
    hint = f"look at what it names, remove it by hand ({path}), then `hf doctor`"
    data = atomic.read_json(path, "take journal", hint)
    try:
        making = Making(str(data["batch"]), str(data["part"]), str(data["remote"]),
                        str(data["branch"]), str(data["worktree"]), str(data["tip"]),
                        str(data["claim"]) if data.get("claim") else None)
    except (KeyError, TypeError) as exc:
        why = (f"it has no {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args
               else "it is not a record a take writes")
        raise HfError(f"the journal of a take that was cut off, {path}, is damaged ({why})",
                      hint) from None
    spec = f"{making.batch}/{making.part}"
    again = f"hf take {making.remote} {spec}"
    if _finished(ws, making):  # the batch record lists the part last: all was made
        atomic.remove_durably(path)
        ws.store.audit(RECOVERED, batch=making.batch, part=making.part, outcome="finished")
        return f"a take of {spec} that was cut off had made everything: kept", "", True
    left = take_back(ws, making)
    fields = {"batch": making.batch, "part": making.part, "remote": making.remote,
              "claim": making.claim}
    if left:
        atomic.atomic_write_json(path, {**data, "left": left})  # (for `hf take`'s refusal)
        ws.store.audit(RECOVERED, outcome="partly-removed", left=left, **fields)
        return _left_line(spec, left), _left_hint(making), False
    atomic.remove_durably(path)
    ws.store.audit(RECOVERED, outcome="removed", **fields)
    claim = (f"; its claim on {making.remote} is this repository's: `{again}` takes the part "
             "again" if making.claim else f"; `{again}` takes it again")
    return f"a take of {spec} that was cut off was taken back here{claim}", "", True


def _left_line(spec: str, left: list[str]) -> str:
    return f"a take of {spec} that was cut off was taken back except {', '.join(left)}"


def _left_hint(making: Making) -> str:
    return (f"keep what you need of it elsewhere (git branch NAME {making.branch}), then "
            f"remove it (git worktree remove --force {making.worktree}; git branch -D "
            f"{making.branch}) and `hf take {making.remote} {making.batch}/{making.part}`")


def refuse_leftover(ws: Workspace, batch: str, part: str) -> None:
    """`hf take` of a part whose take cut off here left what could not be taken back
    (a branch with commits): refused, saying what and how to go on."""
    path = journal_file(ws, batch, part)
    try:
        data = atomic.read_json(path, "take journal")
    except HfError:
        data = None
    left = data.get("left") if isinstance(data, dict) else None
    if isinstance(left, list) and left:
        making = Making(batch, part, str(data.get("remote", "REMOTE")),
                        str(data.get("branch", f"hf/{batch}/{part}")),
                        str(data.get("worktree", "WORKTREE")), str(data.get("tip", "")))
        raise BatchExists(_left_line(f"{batch}/{part}", [str(x) for x in left]),
                          _left_hint(making))


def _finished(ws: Workspace, making: Making) -> bool:
    try:
        return making.part in ws.store.load_batch(making.batch).parts
    except HfError:
        return False


def cut_off_claim(ws: Workspace, batch: str, part: str, commit: str) -> bool:
    """Whether `commit` is the claim of a take of the part here that was cut off and
    taken back (its `take-recovered` audit line names it): this repository's own."""
    from hf_fanout.core import audit

    return any(e.action in (RECOVERED, CLAIM_LEFT) and e.batch == batch and e.part == part
               and e.data.get("claim") == commit
               for e in audit.read(ws.store.audit_file).events)


def settle_takes(ws: Workspace) -> None:
    """`settle`'s step: the takes that were cut off, each said in a notice."""
    try:
        ws.notices += [(line, hint) for line, hint, _ok in recover_takes(ws)]
    except HfError as exc:
        ws.notices.append((exc.message, exc.hint))

