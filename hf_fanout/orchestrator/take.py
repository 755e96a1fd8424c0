"""`hf take REMOTE BATCH/PART`: work a remote part on this machine (docs/remote.md).

Steps: the repository (this one, whose remote REMOTE names; outside one, a clone
of REMOTE); the part's refs on the remote (its task must be there, its done not);
its task and branch fetched; the batch and part records here, marked taken; the
worktree on the part branch at its fetched tip, guarded as a split's; the handoff
file; with `open_tab`, a tab. Anything made is taken back on a failure, and a take
cut off (killed) is taken back by the next hf command (its journal:
take_journal.py); the claim it left is then known here as this repository's own.

Then, in that worktree, `hf done` (`push_done`) pushes the part branch and the done
ref, and `hf heartbeat` / `hf run` (`beat_remote`) the heartbeat ref.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_fanout import locks, processes, timefmt
from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import (
    DROPPED,
    Batch,
    Part,
    branch_name,
    check_slug,
    collected,
    copied_paths,
)
from hf_fanout.core.remote_refs import (
    HEARTBEAT_EVERY,
    PART_FILE,
    Claim,
    claim_patterns,
    claim_ref,
    claimed_ref,
    current_claim,
    done_ref,
    heartbeat_prefix,
    heartbeat_ref,
    host_slug,
    parse_part_data,
    part_refs,
    read_timeout,
    taken_from,
    task_ref,
)
from hf_fanout.core.workspace import Workspace, worktree_root
from hf_fanout.errors import BadInput, BatchExists, HfError, NotARepo, NotFound
from hf_fanout.orchestrator import take_journal
from hf_fanout.tabs.launchers import Opened
from hf_fanout.worktrees import remote as remotes


@dataclass
class Taken:
    batch: Batch
    part: Part
    remote: str
    tip: str
    cloned: str | None = None  # the clone made for it, if any
    tabs: list[Opened] = field(default_factory=list)
    dry_run: bool = False
    already: bool = False  # taken here before: nothing new was made
    stolen: dict[str, Any] | None = None  # the claim `--steal` took over
    notices: list[str] = field(default_factory=list)  # what opening the repository settled
    chosen: Any = None  # the launcher its tab opens with (`--open`), chosen before the take

    def to_data(self) -> dict[str, Any]:
        return {"batch": self.batch.id, "part": self.part.to_dict(), "remote": self.remote,
                "tip": self.tip, "cloned": self.cloned, "dry_run": self.dry_run,
                "already": self.already, "stolen": self.stolen,
                "notices": self.notices,
                "claim": (self.part.extra.get("taken") or {}).get("claim"),
                "tabs": [t.to_data() for t in self.tabs]}


class PartClaimed(HfError):
    """The part is held by another machine's `hf take` (its claim ref on the remote)."""

    code = "part_claimed"


# seconds a take waits for another take of the same batch in this clone
TAKE_WAIT = 120.0


def take(given: str, spec: str, *, here: Path, into: Path | None = None,
         root: Path | None = None, launcher: str | None = None, open_tab: bool = False,
         dry_run: bool = False, steal: bool = False,
         on_wait: Callable[[str], None] | None = None) -> Taken:
    """Make the remote part `spec` (BATCH/PART) of `given` (a remote's name or URL)
    a part worked on this machine, claimed there for this machine (refused while
    another holds it, unless `steal`). Taken here already: nothing new is made.
    Takes of one batch into one clone go one at a time (they share its record,
    and the main worktree's config): a second waits, `on_wait` told once."""
    from hf_fanout.orchestrator.boundary import refuse_inside_part
    from hf_fanout.orchestrator.workspace_open import open_workspace

    batch_id, name = _parse_spec(spec)
    if not dry_run:
        refuse_inside_part(f"hf take {given} {spec}")
    ws_path, remote, cloned = _repository(given, here, into, dry_run)
    ws = open_workspace(ws_path)  # (a take of the part cut off here: taken back first)
    held = contextlib.nullcontext() if dry_run else locks.hold(
        ws.store.lock_file(f"take-{batch_id}"), wait=TAKE_WAIT, what=f"take (batch {batch_id})",
        on_wait=on_wait, retry="then run the same hf take again")
    with held:
        taken = _take_locked(ws, remote, cloned, batch_id, name, spec, root, dry_run, steal,
                             launcher, open_tab)
    if taken.chosen is not None and not dry_run:
        from hf_fanout.tabs.opening import open_tabs

        taken.tabs = open_tabs(ws, taken.batch, [taken.part], taken.chosen, supervise=True)
    return taken


def _take_locked(ws: Workspace, remote: str, cloned: str | None, batch_id: str, name: str,
                 spec: str, root: Path | None, dry_run: bool, steal: bool,
                 launcher: str | None, open_tab: bool) -> Taken:
    """The take, under the batch's take lock: the claim, the part made here."""
    chosen = None
    take_journal.refuse_leftover(ws, batch_id, name)
    if open_tab:
        from hf_fanout.tabs.launchers import choose as choose_launcher

        chosen = choose_launcher(ws.settings, launcher)  # an unavailable one fails first
    branch_ref, task, done = part_refs(batch_id, name)
    found = remotes.list_refs(ws.main.path, remote, [branch_ref, task, done,
                                                     *claim_patterns(batch_id, name)],
                                                         timeout=read_timeout(ws.settings))
    if task not in found or branch_ref not in found:
        raise NotFound(f"{remote} has no remote part {spec} (no {task} and {branch_ref})",
                       f"see the parts there: git ls-remote {remote} 'refs/hf/task/*'")
    if done in found:
        raise HfError(f"part {spec} is done on {remote} already (at {found[done][:12]})",
                      "it joins on the machine that split it: `hf join "
                      f"{batch_id}` there")
    held = current_claim(batch_id, name, found)
    taken = _part_here(ws, remote, batch_id, name, root, found, cloned, dry_run)
    taken.chosen = chosen
    taken.notices = [message for message, _hint in ws.notices]
    if not (taken.already and held is not None and held.commit == _claim_of(taken.part)):
        mine = held is not None and held.host == host_slug(host_name(ws))
        # (the claim of a take here that was cut off: this repository's own)
        own = mine and not taken.already and held is not None and \
            take_journal.cut_off_claim(ws, batch_id, name, held.commit)
        if held is not None and not steal and not own:
            raise _claimed(remote, spec, held, mine=mine)
        taken.stolen = _holder(held) if held is not None and not own else None
        if dry_run:
            return taken
        if taken.already:
            _take_claim(ws, taken, held)
        else:
            making = take_journal.Making(batch_id, name, remote, taken.part.branch,
                                         taken.part.worktree, taken.tip)
            with take_journal.journaled(ws, making):
                _take_claim(ws, taken, held, making)
                _make_claimed(ws, taken, making)
    return taken


def _part_here(ws: Workspace, remote: str, batch_id: str, name: str, root: Path | None,
               found: dict[str, str], cloned: str | None, dry_run: bool) -> Taken:
    """The part as an earlier `hf take` of `remote` made it here (`already`), else its
    records to make, from its task on the remote."""
    branch_ref, task, _done = part_refs(batch_id, name)
    if ws.store.batch_file(batch_id).exists():  # (a record: not just its directory)
        batch = ws.store.load_batch(batch_id)
        if collected(batch) and not dry_run:  # (gc removed it all: its id is free again)
            from hf_fanout.orchestrator.forget import forget_batch

            forget_batch(ws, batch, "id used again")
        elif name in batch.parts and (batch.extra.get("taken") or {}).get("remote") == remote:
            part = ws.store.load_part(batch_id, name)
            _refuse_stale(batch, part, found[task])
            return Taken(batch, part, remote, ws.repo.ref_target(f"refs/heads/{part.branch}")
                         or "", cloned, dry_run=dry_run, already=True)
    batch, part = _records(ws, remote, batch_id, name, root, task, found)
    return Taken(batch, part, remote, found[branch_ref], cloned, dry_run=dry_run)


def _refuse_stale(batch: Batch, part: Part, task_now: str) -> None:
    """The part taken here before is not the one the remote offers now: it was
    dropped here, or the batch id was used again for a new batch there (its task
    ref is another commit than the one taken). Taking it as "already here" gave
    the old worktree, or one gc had removed."""
    spec = f"{batch.id}/{part.name}"
    if DROPPED in (batch.state, part.state):
        raise BatchExists(f"part {spec} was taken here before and dropped",
                          f"collect it first (`hf gc {batch.id}`), then take it again")
    taken_task = (part.extra.get("taken") or {}).get("task")
    if isinstance(taken_task, str) and taken_task != task_now:
        raise BatchExists(f"part {spec} here is an earlier part of that name: its task on the "
                          "remote is another one now (the batch id was used again)",
                          f"end the old one here (`hf drop {batch.id}`, then `hf gc "
                          f"{batch.id}`; --force once nothing there is wanted), then take "
                          "it again")


def _claim_of(part: Part) -> str | None:
    found = (part.extra.get("taken") or {}).get("claim")
    return found if isinstance(found, str) else None


def _holder(claim: Claim) -> dict[str, Any]:
    return {"host": claim.host, "since": timefmt.iso(claim.at) if claim.at else None,
            "commit": claim.commit}


def _claimed(remote: str, spec: str, claim: Claim, *, mine: bool = False) -> PartClaimed:
    since = (f" since {timefmt.iso(claim.at)} ({timefmt.relative(claim.at, timefmt.now())})"
             if claim.at is not None else "")
    if mine:  # this machine's name, not this repository's claim
        return PartClaimed(
            f"part {spec} is taken on {remote} by {claim.host} (the name of this machine)"
            f"{since}, not by this repository",
            f"work it in the clone here that took it (`hf take` again there does nothing "
            f"new); if none has it (a take cut off before it kept a record), take it back "
            f"here: hf take {remote} {spec} --steal", details={"holder": _holder(claim)})
    return PartClaimed(
        f"part {spec} is taken on {remote} by {claim.host or 'another machine'}{since}",
        f"work it on that machine (`hf take` again there does nothing new), or take it over "
        f"deliberately: hf take {remote} {spec} --steal (audited; that machine's `hf done` "
        "is refused then)", details={"holder": _holder(claim)})


def host_name(ws: Workspace) -> str:
    """This machine's name in claims and heartbeats: `host` of the settings (the
    user's config: it names one machine), else the host name."""
    return (ws.settings.text("host", '"laptop"') or processes.host()).strip()


def _take_claim(ws: Workspace, taken: Taken, held: Claim | None,
                making: take_journal.Making | None = None) -> None:
    """The claim pushed: a new commit at the claim ref, only if that ref is still what
    was read (absent, or the claim `--steal` takes over), and its name ref, in one
    atomic push. Another machine's take in between refuses this one. The claim is
    in the take's journal (`making`) before it is pushed."""
    batch_id, name = taken.batch.id, taken.part.name
    host, now = host_name(ws), timefmt.now()
    empty = ws.repo.git(["mktree"], stdin=b"").decode().strip()
    # (a nonce: two takes by one host name in one second make two claims, not one commit)
    commit = ws.repo.git(["commit-tree", empty, "-m", f"hf: part {batch_id}/{name} taken by "
                          f"{host} at {timefmt.iso(now)}", "-m",
                          f"claim {os.urandom(8).hex()}"]).decode().strip()
    if making is not None:
        making.claim = commit
        making.save(ws)
    ref, named = claim_ref(batch_id, name), claimed_ref(batch_id, name, host, now)
    old_names: list[str] = []
    found: dict[str, str] = {}
    if held is not None:
        old_names = sorted(remotes.list_refs(ws.main.path, taken.remote,
                                             claim_patterns(batch_id, name),
                                                 timeout=read_timeout(ws.settings)))
    # a name ref of the same name (the same host in the same second) is replaced, under
    # a lease, not deleted: one push cannot do both to one ref
    outcome = remotes.push_refs(
        ws.main.path, remotes.url(ws.main.path, taken.remote),
        [f"{commit}:{ref}", f"{commit}:{named}",
         *(f":{r}" for r in old_names if r not in (ref, named))],
        leases=[f"{ref}:{held.commit if held is not None else ''}",
                *([f"{named}:{held.commit}"] if held is not None and named in old_names
                  else [])])
    if not outcome.ok:  # another take in between: the lease refuses it
        with contextlib.suppress(HfError):
            found = remotes.list_refs(ws.main.path, taken.remote, claim_patterns(batch_id, name),
                timeout=read_timeout(ws.settings))
        now_held = current_claim(batch_id, name, found) if found else None
        if now_held is not None and now_held != held:
            raise _claimed(taken.remote, f"{batch_id}/{name}", now_held)
        raise HfError(f"claiming {batch_id}/{name} on {taken.remote} failed: "
                      f"{remotes.git_error(outcome.stderr, 'git push failed')}",
                      f"check your access to it (`git ls-remote {taken.remote}`), then "
                      "`hf take` again")
    record = {"claim": commit, "claimed_at": timefmt.iso(now), "host": host}
    taken.part.extra.setdefault("taken", {}).update(record)
    if taken.already:
        with ws.store.state_lock():
            fresh = ws.store.load_part(batch_id, name)
            fresh.extra.setdefault("taken", {}).update(record)
            ws.store.save_part(fresh)
        taken.part = fresh
        ws.store.audit("take", batch=batch_id, part=name, remote=taken.remote,
                       tip=taken.tip, claim=commit, host=host, again=True,
                       stole=taken.stolen)


def _release_claim(ws: Workspace, taken: Taken, failure: BaseException) -> None:
    """A take that failed after its claim: the claim deleted again (if still its own).
    When the remote cannot be reached to delete it, the claim stays there: the audit
    log names it (`take-claim-left`), so the next take here knows it for its own,
    and the failure says so."""
    commit = _claim_of(taken.part)
    if commit is None:
        return
    batch_id, name = taken.batch.id, taken.part.name
    try:
        found = remotes.list_refs(ws.main.path, taken.remote, claim_patterns(batch_id, name),
            timeout=read_timeout(ws.settings))
        mine = [r for r, oid in found.items() if oid == commit]
        released = not mine or remotes.push_refs(
            ws.main.path, remotes.url(ws.main.path, taken.remote), [f":{r}" for r in mine],
            leases=[f"{claim_ref(batch_id, name)}:{commit}"],
            timeout=read_timeout(ws.settings)).ok
    except HfError:
        released = False
    if released:
        return
    ws.store.audit(take_journal.CLAIM_LEFT, batch=batch_id, part=name, remote=taken.remote,
                   claim=commit)
    if isinstance(failure, HfError):
        failure.hint = (f"{failure.hint}; its claim is left on {taken.remote} (it could not "
                        f"be deleted): `hf take {taken.remote} {batch_id}/{name}` here takes "
                        "the part again once the remote answers")


def _make_claimed(ws: Workspace, taken: Taken, making: take_journal.Making) -> None:
    """The part made here once it is claimed; the claim released if that fails."""
    try:
        taken.tip = _fetch(ws, taken.remote, taken.batch.id, taken.part.name)
        if taken.tip != making.tip:  # (the journal names the commit the branch starts at)
            making.tip = taken.tip
            making.save(ws)
        failed = _make(ws, taken.batch, taken.part, taken.tip)
    except OSError as exc:
        failure = BadInput(f"cannot make the part's worktree {taken.part.worktree}: "
                           f"{exc.strerror or exc}",
                           "name a directory you can write with --worktree-root DIR")
        _release_claim(ws, taken, failure)
        raise failure from None
    except BaseException as exc:
        _release_claim(ws, taken, exc)
        raise
    if failed is not None:
        from hf_fanout.orchestrator.split import post_checkout_warning

        taken.notices.append(post_checkout_warning(taken.part, taken.tip, failed))
    ws.store.audit("take", batch=taken.batch.id, part=taken.part.name, remote=taken.remote,
                   tip=taken.tip, claim=_claim_of(taken.part),
                   host=(taken.part.extra.get("taken") or {}).get("host"), stole=taken.stolen)


def _parse_spec(spec: str) -> tuple[str, str]:
    batch, sep, name = spec.partition("/")
    if not sep:
        raise BadInput(f"bad part {spec!r}", "name a part as BATCH/PART, e.g. b1/api")
    return check_slug("batch", batch), check_slug("part", name)


def _repository(given: str, here: Path, into: Path | None,
                dry_run: bool) -> tuple[Path, str, str | None]:
    """(the repository to work in, the name of its remote, the clone made if any)."""
    from hf_fanout.worktrees.repository import Worktree

    if into is None:
        try:
            found = Worktree.discover(here)
        except NotARepo:
            found = None
        if found is not None:
            main = found.repository.workdir
            name = remotes.find_remote(main, given)
            if name is None:
                raise BadInput(f"this repository has no remote {given!r}",
                               "name one of `git remote`, add it (git remote add NAME URL), "
                               "or run `hf take` outside a repository to clone it")
            return main, name, None
    dest = into if into is not None else here / _clone_name(given)
    if dest.exists() and any(dest.iterdir()):
        clone = (dest / ".git").is_dir()
        raise BadInput(f"{dest} exists and is not empty" + (
            " (a clone already: an earlier take cut off after its clone, say)" if clone
            else ""),
            (f"take the part in it: `cd {shlex.quote(str(dest))}` and `hf take origin "
             "BATCH/PART` there; or " if clone else "")
            + "name another directory for the clone: --into DIR")
    if dry_run:
        raise BadInput(f"--dry-run would have to clone {given} into {dest} first",
                       "clone it yourself, then `hf take --dry-run` inside the clone")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remotes.clone(given, dest)
    return dest, "origin", str(dest)


def _clone_name(given: str) -> str:
    tail = given.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail.removesuffix(".git") or "repo"


def _records(ws: Workspace, remote: str, batch_id: str, name: str, root: Path | None,
             task: str, found: dict[str, str]) -> tuple[Batch, Part]:
    """The batch (new, or the one an earlier take of the same remote made) and the part,
    from the task's part.json (fetched into this repository's objects)."""
    scratch = remotes.scratch_ref("incoming-task", batch_id, name)  # (removed once read)
    remotes.clear_dead_scratch(ws.main.path, ws.repo.common_dir)
    try:
        remotes.fetch_refs(ws.main.path, remote, [f"+{task}:{scratch}"])
        raw = remotes.read_file(ws.main.path, found[task], PART_FILE)
    finally:
        ws.repo.git(["update-ref", "-d", scratch])
    data = parse_part_data(raw, f"{remote} {task}")
    if (data.batch, data.part) != (batch_id, name):
        raise BadInput(f"{remote} {task} describes {data.batch}/{data.part}",
                       "the task ref was not written by hf: split the part again")
    taken = {"remote": remote, "url": remotes.url(ws.main.path, remote), "task": found[task]}
    if ws.store.batch_file(batch_id).exists():
        batch = ws.store.load_batch(batch_id)
        if batch.extra.get("taken", {}).get("remote") != remote or batch.base != data.base:
            raise BatchExists(f"batch {batch_id!r} exists here already, not taken from {remote}",
                              "take it in another clone of the repository (--into DIR)")
        if name in batch.parts:  # (taken here: handled before)
            raise BatchExists(f"part {batch_id}/{name} exists here already",
                              f"work there: hf cd {batch_id}/{name}")
        batch.parts.append(name)
    else:
        batch = Batch(id=batch_id, base=data.base, target_ref=ws.main.head_ref(),
                      parts=[name], task=data.batch_task,
                      worktree_root=str(worktree_root(ws, batch_id, root)),
                      extra={"taken": taken})
    where = Path(batch.worktree_root) / name
    if where.exists():
        raise BatchExists(f"{where} already exists", "remove it, or pass --worktree-root")
    if ws.repo.ref_exists(f"refs/heads/{branch_name(batch_id, name)}"):
        raise BatchExists(f"branch {branch_name(batch_id, name)} exists here already",
                          f"delete it (git branch -D {branch_name(batch_id, name)}) first")
    part = Part(batch=batch_id, name=name, index=len(batch.parts) - 1,
                branch=branch_name(batch_id, name), worktree=str(where), owns=data.owns,
                task=data.task, estimate_minutes=data.estimate_minutes, sparse=data.sparse,
                context=data.context, extra={"taken": dict(taken)})
    return batch, part


def _fetch(ws: Workspace, remote: str, batch_id: str, name: str) -> str:
    """The part branch's tip on the remote, fetched (into a ref of hf's, removed once
    the branch exists here)."""
    incoming = remotes.scratch_ref("incoming", batch_id, name)
    remotes.fetch_refs(ws.main.path, remote,
                       [f"+refs/heads/{branch_name(batch_id, name)}:{incoming}"])
    tip = ws.repo.ref_target(incoming)
    if tip is None:
        raise HfError(f"fetching {branch_name(batch_id, name)} from {remote} brought nothing",
                      f"look at it: git ls-remote {remote} {branch_name(batch_id, name)}")
    return tip


def _make(ws: Workspace, batch: Batch, part: Part, tip: str) -> str | None:
    """The worktree, guarded and prepared as a split's part, the records, the handoff
    file; on any failure, what was made is removed again."""
    from hf_fanout.guard import fingerprint, mainhook
    from hf_fanout.orchestrator.split import prepare_part, register_repo

    incoming = remotes.scratch_ref("incoming", batch.id, part.name)
    worktree = Path(part.worktree)
    new_batch = not ws.store.batch_file(batch.id).exists()
    try:
        worktree.parent.mkdir(parents=True, exist_ok=True)
        if part.sparse:
            ws.repo.enable_worktree_config()
        ws.repo.add_worktree(worktree, part.branch, tip)
        failed = ws.repo.worktree(worktree).populate(
            sparse=part.checkout_globs() if part.sparse else None)
        ws.store.batch_dir(batch.id).mkdir(parents=True, exist_ok=True)
        prepare_part(ws, batch, part)
        mainhook.install(ws.repo)
        fingerprint.save(ws, batch, ws.store.load_parts(batch))
        write_handoff(ws, batch, part)
        ws.store.save_batch(batch)  # last: the part is in its batch once all is made
    except BaseException:
        ws.repo.remove_worktree(worktree)
        shutil.rmtree(worktree, ignore_errors=True)
        ws.repo.delete_branch(part.branch)
        with contextlib.suppress(OSError):
            ws.store.part_file(batch.id, part.name).unlink()
        if new_batch:
            with contextlib.suppress(HfError, OSError):
                ws.store.remove_batch(batch.id)
        raise
    finally:
        ws.repo.git(["update-ref", "-d", incoming])
    register_repo(ws)
    return failed


def write_handoff(ws: Workspace, batch: Batch, part: Part) -> None:
    """The part's TASK.md, as a split writes it, and what is different for a taken part."""
    from hf_fanout import atomic
    from hf_fanout.guard.wrapper import Rules
    from hf_fanout.tabs import handoff

    base_paths = [str(p) for p in ws.repo.ls_tree(batch.base)]
    text = handoff.render(batch, part, [], base_paths, ws.main.path,
                          Rules.from_settings(ws.settings.get("guard")))
    remote = taken_from(part)
    text += f"""
## This part was taken from `{remote}`

The batch was split on another machine; it joins there. `hf done` here pushes
`{part.branch}` to `{remote}` and records it done (git refuses your own `git push`
here; push nothing else). Commit your work first: only the branch travels.
"""
    handoff.private_dir(Path(part.worktree))
    atomic.atomic_write(handoff.task_file(Path(part.worktree)), text.encode("utf-8"))


# --------------------------------------------------------------------- done, heartbeat


def push_done(ws: Workspace, part: Part) -> dict[str, Any]:
    """`hf done` of a taken part: the branch tip and the done ref pushed in one atomic
    push (no force: a remote branch with commits this one has not refuses it).
    Refused, nothing pushed: uncommitted changes to owned files (only the branch
    travels), a branch that does not descend from the base."""
    remote = taken_from(part)
    assert remote is not None
    batch = ws.store.load_batch(part.batch)
    tip = ws.repo.ref_target(f"refs/heads/{part.branch}")
    if tip is None:
        raise HfError(f"part {part.batch}/{part.name}: its branch {part.branch} is gone",
                      f"restore it in its worktree (git switch -c {part.branch})")
    left: list[str] = []
    worktree = Path(part.worktree)
    if worktree.is_dir():
        changed = ws.worktree(worktree).status_paths(exclude=copied_paths(part))
        owns = Ownership.parse(part.owns)
        mine = sorted(p for p in changed if owns.owns(p))
        if mine:
            raise HfError(f"uncommitted changes to files the part owns: {', '.join(mine[:10])}"
                          " (`hf done` pushes the branch only)",
                          "commit them in the part's worktree (git add ... && git commit), "
                          "then `hf done` again")
        left = sorted(p for p in changed if not owns.owns(p))
    if not ws.repo.is_ancestor(batch.base, tip):
        raise HfError(f"{part.branch} does not descend from the batch's base "
                      f"{batch.base[:12]}: the join would refuse it",
                      "put the part's commits back on top of the base, then `hf done` again")
    # to the URL, not the remote's name: no remote-tracking ref moves here
    target = remotes.url(ws.main.path, remote)
    claim = _claim_of(part)  # still this machine's: pushed unchanged, under a lease
    outcome = remotes.push_refs(ws.main.path, target, [
        f"{tip}:refs/heads/{part.branch}", f"{tip}:{done_ref(part.batch, part.name)}",
        *([f"{claim}:{claim_ref(part.batch, part.name)}"] if claim else [])],
        leases=[f"{claim_ref(part.batch, part.name)}:{claim}"] if claim else [])
    if not outcome.ok and claim:  # (a stale lease fails the push before anything is sent)
        _refuse_lost_claim(ws, part, remote, claim)
    if not outcome.ok:
        why = remotes.git_error(outcome.stderr, "git push failed")
        raise HfError(f"pushing {part.branch} to {remote} failed: {why}",
                      f"the remote branch has commits this one has not: look at them (git "
                      f"fetch {remote}, git log {remote}/{part.branch})" if outcome.rejected
                      else f"check the remote's URL and your access to it (`git ls-remote "
                      f"{remote}`)")
    ws.store.audit("remote-done", batch=part.batch, part=part.name, remote=remote, tip=tip)
    return {"remote": remote, "tip": tip, "left_behind": left}


def _refuse_lost_claim(ws: Workspace, part: Part, remote: str, claim: str) -> None:
    """`hf done` of a part whose claim is no longer this machine's (another took it
    over with `hf take --steal`, or the claim ref went): refused."""
    task = task_ref(part.batch, part.name)
    try:
        found = remotes.list_refs(ws.main.path, remote,
                                  [*claim_patterns(part.batch, part.name), task],
                                  timeout=read_timeout(ws.settings))
    except HfError:
        return  # unreadable: the push's own error is said
    held = current_claim(part.batch, part.name, found)
    if held is None and task not in found:  # (dropped and collected where it was split)
        raise PartClaimed(f"part {part.batch}/{part.name}: its batch is gone from {remote} "
                          "(dropped or collected on the machine that split it): nothing was "
                          "pushed", f"your commits are on {part.branch} here: push them to a "
                          f"branch of their own (`git push {remote} {part.branch}:refs/heads/"
                          f"NAME`) and hand them over, then `hf drop {part.batch}` here")
    if held is None:
        raise PartClaimed(f"part {part.batch}/{part.name}: its claim is gone from {remote}: "
                          "nothing was pushed",
                          f"claim it again here (hf take {remote} {part.batch}/{part.name}), "
                          "then `hf done` again")
    if held.commit != claim:
        since = f" since {timefmt.iso(held.at)}" if held.at is not None else ""
        raise PartClaimed(
            f"part {part.batch}/{part.name} was taken over on {remote} by "
            f"{held.host or 'another machine'}{since}: nothing was pushed",
            f"hand your commits to that machine (they are on {part.branch} here), or "
            f"take the part back: hf take {remote} {part.batch}/{part.name} --steal")


def beat_remote(ws: Workspace, part: Part) -> dict[str, Any] | None:
    """The heartbeat ref of a taken part, at most once every HEARTBEAT_EVERY seconds
    (`timefmt.now`: HF_CLOCK sets it): the new one pushed and the older ones deleted in
    one atomic push. None when it was not yet time. A remote that cannot be reached
    costs the local heartbeat nothing: the failure is returned."""
    remote = taken_from(part)
    if remote is None:
        return None
    part = ws.store.load_part(part.batch, part.name)  # (a long `hf run` holds an old one)
    now = timefmt.now()
    last = timefmt.parse_iso((part.extra.get("taken") or {}).get("beat_at"))
    if last is not None and 0 <= now - last < HEARTBEAT_EVERY:
        return None
    host = host_name(ws)
    ref = heartbeat_ref(part.batch, part.name, host, now)
    batch = ws.store.load_batch(part.batch)
    try:
        old = remotes.list_refs(ws.main.path, remote, [heartbeat_prefix(part.batch, part.name)
                                                        + "*"], timeout=read_timeout(ws.settings))
        # only while the claim is still this machine's (as `hf done`): after a
        # `--steal` the beat fails, and the new holder's heartbeats stay
        claim = _claim_of(part)
        held = claim_ref(part.batch, part.name)
        outcome = remotes.push_refs(ws.main.path, remotes.url(ws.main.path, remote),
                                    [f"{batch.base}:{ref}",
                                     *(f":{name}" for name in sorted(old) if name != ref),
                                     *([f"{claim}:{held}"] if claim else [])],
                                    leases=[f"{held}:{claim}"] if claim else [],
                                    timeout=read_timeout(ws.settings))
    except HfError as exc:
        return {"ok": False, "error": exc.message}
    if not outcome.ok:
        return {"ok": False, "error": remotes.git_error(outcome.stderr, "git push failed")}
    with ws.store.state_lock():
        fresh = ws.store.load_part(part.batch, part.name)
        fresh.extra.setdefault("taken", {})["beat_at"] = timefmt.iso(now)
        ws.store.save_part(fresh)
    return {"ok": True, "ref": ref, "host": host, "at": timefmt.iso(now)}
