"""The remote parts of a batch, seen from the machine that split it (docs/remote.md):
how they look on the remote (one `git ls-remote` per remote), what the join fetches
and refuses, and the refs `hf gc` deletes there."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

from hf_fanout import timefmt
from hf_fanout.core import states
from hf_fanout.core.records import DONE, DROPPED, JOINED, Batch, Part, part_base
from hf_fanout.core.remote_refs import (
    DEFAULT_STALE_AFTER,
    claim_patterns,
    current_claim,
    heartbeat_prefix,
    hf_created,
    last_sighting,
    part_refs,
    read_timeout,
    remote_of,
)
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import HfError, JoinRefused
from hf_fanout.faults import fault_point
from hf_fanout.worktrees import remote as remotes

REMOTE = "remote"  # a remote part's liveness: seen lately on its remote
STALE = "stale"  # not seen for longer than `remote_stale_after`


@dataclass
class Seen:
    """A remote part as its remote shows it."""

    remote: str
    state: str  # remote | stale | done | unreachable
    host: str | None = None
    at: str | None = None  # the last heartbeat
    tip: str | None = None  # the branch on the remote
    done_tip: str | None = None
    error: str | None = None
    taken_by: str | None = None  # the machine whose claim is on the remote
    taken_at: str | None = None

    def describe(self, now: float) -> str:
        """`taken by HOST 5 min ago; last seen 2 min ago on HOST`, or why not."""
        if self.error:
            return f"{self.remote} unreachable: {self.error}"
        said = [f"done on {self.remote} at {self.done_tip[:12]}"] if self.done_tip else []
        taken = timefmt.parse_iso(self.taken_at)
        if taken is not None:
            said.append(f"taken by {self.taken_by} {timefmt.relative(taken, now)}")
        seen = timefmt.parse_iso(self.at)
        if seen is not None:
            said.append(f"last seen {timefmt.relative(seen, now)} on {self.host}")
        if not said:
            return f"not taken yet (no claim and no heartbeat on {self.remote})"
        return "; ".join(said)

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def stale_after(ws: Workspace) -> float:
    """Seconds without a heartbeat after which a remote part is stale
    (`remote_stale_after` in .hf.toml: seconds, or `10m`, `2h`)."""
    value = ws.settings.get("remote_stale_after", DEFAULT_STALE_AFTER)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    found = timefmt.parse_duration(value) if isinstance(value, str) else None
    if found is None or found <= 0:
        from hf_fanout.errors import BadInput

        raise BadInput(f"remote_stale_after = {value!r} in the settings is not a duration",
                       "e.g. remote_stale_after = \"10m\" in .hf.toml")
    return found


def _patterns(parts: list[Part]) -> list[str]:
    found = []
    for part in parts:
        branch, _task, done = part_refs(part.batch, part.name)
        found += [branch, done, heartbeat_prefix(part.batch, part.name) + "*",
                  *claim_patterns(part.batch, part.name)]
    return found


def by_remote(parts: list[Part]) -> dict[str, list[Part]]:
    grouped: dict[str, list[Part]] = {}
    for part in parts:
        name = remote_of(part)
        if name is not None and part.state not in (JOINED, DROPPED):
            grouped.setdefault(name, []).append(part)
    return grouped


def sightings(ws: Workspace, batch: Batch, parts: list[Part]) -> dict[str, Seen]:
    """Each live remote part as its remote shows it (one `git ls-remote` per remote;
    an unreachable remote is said so, per part)."""
    found: dict[str, Seen] = {}
    now = timefmt.now()
    limit = stale_after(ws) if by_remote(parts) else 0.0
    for name, group in by_remote(parts).items():
        try:
            refs = remotes.list_refs(ws.main.path, name, _patterns(group),
                timeout=read_timeout(ws.settings))
        except HfError as exc:
            for part in group:
                found[part.name] = Seen(name, "unreachable", error=exc.message)
            continue
        for part in group:
            branch, _task, done = part_refs(part.batch, part.name)
            sighting = last_sighting(part.batch, part.name, refs)
            seen = Seen(name, "remote", tip=refs.get(branch), done_tip=refs.get(done))
            if sighting is not None:
                seen.host, seen.at = sighting.host, timefmt.iso(sighting.at)
            claim = current_claim(part.batch, part.name, refs)
            if claim is not None:
                seen.taken_by = claim.host or "another machine"
                seen.taken_at = timefmt.iso(claim.at) if claim.at is not None else None
            # the last sign of life: a heartbeat, the take; never seen: counted from the
            # split (a part nobody took goes stale too)
            signs = [t for t in (sighting.at if sighting else None,
                                 claim.at if claim else None) if t is not None]
            last = max(signs) if signs else timefmt.parse_iso(part.created)
            if seen.done_tip is not None:
                seen.state = DONE
            elif last is None or now - last > limit:
                seen.state = STALE
            found[part.name] = seen
    return found


def bring_after_join(ws: Workspace, parts: list[Part], *, quiet: bool = True) -> list[str]:
    """Joined remote parts whose branch moved on their remote since (the agent there
    went on and pushed): the new commits fetched and the branch here moved to them,
    forward only, so that `commits_after_join` sees them as it sees a local part's
    (`hf status` shows them, `hf done` here offers them to the next join). One `git
    ls-remote` per remote; `quiet`: a remote that cannot be read is passed over
    (status), else its error is raised. Returns the parts whose branch moved."""
    grouped: dict[str, list[Part]] = {}
    for part in parts:
        name = remote_of(part)
        if name is not None and part.state == JOINED:
            grouped.setdefault(name, []).append(part)
    moved: list[str] = []
    for name, group in grouped.items():
        try:
            refs = remotes.list_refs(ws.main.path, name,
                                     [part_refs(p.batch, p.name)[0] for p in group],
                                     timeout=read_timeout(ws.settings))
            wanted = [(p, refs[part_refs(p.batch, p.name)[0]]) for p in group
                      if refs.get(part_refs(p.batch, p.name)[0]) not in
                      (None, ws.repo.ref_target(f"refs/heads/{p.branch}"))]
            moved += _forward(ws, name, wanted)
        except HfError:
            if not quiet:
                raise
    return moved


def _forward(ws: Workspace, remote: str, wanted: list[tuple[Part, str]]) -> list[str]:
    """Fetch each part's remote tip and move its branch here to it where that is a
    fast-forward (a rewritten branch is left for the join to refuse, as before)."""
    if not wanted:
        return []
    remotes.clear_dead_scratch(ws.main.path, ws.repo.common_dir)
    moved = []
    try:
        remotes.fetch_refs(ws.main.path, remote, [
            f"+refs/heads/{p.branch}:{_incoming(p)}" for p, _tip in wanted])
        for part, tip in wanted:
            ref = f"refs/heads/{part.branch}"
            old = ws.repo.ref_target(ref)
            if ws.repo.ref_target(_incoming(part)) != tip or \
                    (old is not None and not ws.repo.is_ancestor(old, tip)):
                continue
            ws.repo.update_ref(ref, tip, old or "", f"hf: fetched from {remote} (after its join)")
            moved.append(part.name)
    finally:
        for part, _tip in wanted:
            with contextlib.suppress(HfError):
                ws.repo.git(["update-ref", "-d", _incoming(part)])
    return moved


# --------------------------------------------------------------------- join


@dataclass
class Fetched:
    """What a join fetched from the remotes: each done remote part's tip, and the
    parts left out (`partial`: their remote could not be read), said for people."""

    tips: dict[str, str]
    left_out: list[str]


def fetch_for_join(ws: Workspace, batch: Batch, *, partial: bool,
                   dry_run: bool = False) -> Fetched:
    """Before a join: every remote part's branch fetched (those refs only) onto its
    branch here, and marked done when its done ref says so. Refused, nothing
    written: a branch that does not descend from the base, one that moved after
    its done, one that is gone; an unreachable remote (with `partial`, its parts
    not marked done here are left out). With `dry_run`, the tips are fetched into
    objects only (the scratch refs removed) and nothing here moves: no branch, no
    record, no audit line; the plan takes the returned tips."""
    parts = ws.store.load_parts(batch)
    skipped: list[str] = []
    wanted: list[tuple[Part, str, str | None]] = []  # part, tip, done tip
    for name, group in by_remote(parts).items():
        try:
            refs = remotes.list_refs(ws.main.path, name, _patterns(group),
                timeout=read_timeout(ws.settings))
        except HfError as exc:
            marked = [p.name for p in group if p.state == DONE]
            if partial and not marked:
                skipped.append(f"{', '.join(p.name for p in group)} ({exc.message})")
                continue
            raise JoinRefused(exc.message, "join the parts that are here with --partial "
                              "(a part marked done here needs its remote)" if not marked
                              else exc.hint, details=exc.details) from None
        for part in group:
            branch, _task, done = part_refs(part.batch, part.name)
            tip, done_tip = refs.get(branch), refs.get(done)
            if done_tip is None and part.state != DONE:
                continue  # not finished yet: like any running part
            if tip is None:
                raise JoinRefused(f"part {part.name!r}: its branch {part.branch} is gone from "
                                  f"{name}", f"push it again, or leave the part out: hf drop "
                                  f"{batch.id}/{part.name}")
            if done_tip is not None and tip != done_tip:
                raise JoinRefused(
                    f"part {part.name!r}: {part.branch} on {name} moved after it was done "
                    f"(done at {done_tip[:12]}, now {tip[:12]})",
                    f"in the main tree of the clone that works it (it has the done commit; "
                    f"the guard refuses pushes in the part's own worktree), push it back: "
                    f"`git push --force-with-lease=refs/heads/{part.branch}:{tip} {name} "
                    f"{done_tip}:refs/heads/{part.branch}`")
            wanted.append((part, tip, done_tip))
    _bring(ws, batch, wanted, dry_run)
    return Fetched({p.name: tip for p, tip, _d in wanted}, skipped)


def _incoming(part: Part) -> str:
    return remotes.scratch_ref("incoming", part.batch, part.name)


def _bring(ws: Workspace, batch: Batch, wanted: list[tuple[Part, str, str | None]],
           dry_run: bool) -> None:
    """Fetch the tips, check them, then (unless `dry_run`) move the parts' branches
    here and mark them done."""
    if not wanted:
        return
    remotes.clear_dead_scratch(ws.main.path, ws.repo.common_dir)
    try:
        for name, group in by_remote([p for p, _t, _d in wanted]).items():
            remotes.fetch_refs(ws.main.path, name, [
                f"+refs/heads/{p.branch}:{_incoming(p)}" for p in group])
        for part, tip, _done in wanted:
            got = ws.repo.ref_target(_incoming(part))
            if got != tip:
                raise JoinRefused(f"part {part.name!r}: {part.branch} moved on "
                                  f"{remote_of(part)} while it was fetched", "join again")
            base = part_base(batch, part)
            if not ws.repo.is_ancestor(base, tip):
                raise JoinRefused(
                    f"part {part.name!r}: {part.branch} on {remote_of(part)} ({tip[:12]}) does "
                    f"not descend from the batch's base {base[:12]}",
                    "its work must be commits on top of the base: rebase it there and push "
                    "it again, or leave the part out: hf drop "
                    f"{batch.id}/{part.name}")
        for part, tip, done_tip in [] if dry_run else wanted:
            ref = f"refs/heads/{part.branch}"
            old = ws.repo.ref_target(ref) or ""
            if old != tip:
                ws.repo.update_ref(ref, tip, old, f"hf join {batch.id}: fetched from "
                                   f"{remote_of(part)}")
            _record(ws, part, tip, done_tip)
    finally:
        for part, _tip, _done in wanted:
            with contextlib.suppress(HfError):
                ws.repo.git(["update-ref", "-d", _incoming(part)])


def _record(ws: Workspace, part: Part, tip: str, done_tip: str | None) -> None:
    def fetched(fresh: Part) -> None:
        fresh.extra.setdefault("remote", {}).update(
            {"tip": tip, "done_tip": done_tip, "fetched_at": timefmt.iso()})

    states.change(ws, part.batch, part.name, DONE if part.state != DONE else None,
                  action="remote-fetch", update=fetched, remote=remote_of(part), tip=tip)


def refuse_taken(batch: Batch) -> None:
    """A batch `hf take` brought here joins on the machine that split it."""
    taken = batch.extra.get("taken")
    if isinstance(taken, dict):
        raise JoinRefused(f"batch {batch.id!r} was taken from {taken.get('remote')}: it joins "
                          "on the machine that split it",
                          "finish each part here with `hf done` (it pushes the branch), then "
                          f"`hf join {batch.id}` there")


# --------------------------------------------------------------------- gc


@dataclass
class RemoteRefsRemoved:
    """What `remove_remote_refs` deleted (`REMOTE:REF`), and the part branches it left
    because they moved past what the batch's join took (`REMOTE:REF` -> their tip):
    work no join took, with the part's other refs beside it."""

    gone: list[str]
    moved: dict[str, str]


def _rescue_dropped(ws: Workspace, batch: Batch, remote: str,
                    kept: list[Part]) -> list[Part]:
    """Of `kept`, the dropped parts' branches (the batch dropped, or the part) fetched
    to their rescue refs here (one fetch); returns those still kept."""
    from hf_fanout.liveness.rescue import rescue_ref

    dropped = [p for p in kept if DROPPED in (p.state, batch.state)]
    remotes.fetch_refs(ws.main.path, remote,
                       [f"+refs/heads/{p.branch}:{rescue_ref(p)}" for p in dropped])
    for part in dropped:
        ws.store.audit("rescue", batch=part.batch, part=part.name, ref=rescue_ref(part),
                       why=f"gc --force: its branch on {remote}")
    return [p for p in kept if p not in dropped]


def remove_remote_refs(ws: Workspace, batch: Batch, *, dry_run: bool,
                       force: bool = False) -> RemoteRefsRemoved:
    """The refs hf wrote on each remote for the batch's remote parts (their branches,
    task, done and heartbeat refs; nothing else), deleted in one atomic push per
    remote; a part whose branch moved past what was joined keeps all of them, but
    with `force` a dropped one (no join will take it) has its branch fetched to its
    rescue ref here first, and goes like the others."""
    grouped: dict[str, list[Part]] = {}
    for part in ws.store.load_parts(batch):
        name = remote_of(part)
        if name is not None:
            grouped.setdefault(name, []).append(part)
    gone: list[str] = []
    moved: dict[str, str] = {}
    for name, group in grouped.items():
        patterns = [*_patterns(group), *(part_refs(p.batch, p.name)[1] for p in group)]
        refs = remotes.list_refs(ws.main.path, name, patterns, timeout=read_timeout(ws.settings))
        # a part branch that moved past what was joined holds work: it stays
        known = {f"refs/heads/{p.branch}": {str((p.extra.get("remote") or {}).get("tip")),
                                            part_base(batch, p)} for p in group}
        kept = [p for p in group if refs.get(f"refs/heads/{p.branch}") not in
                (None, *known[f"refs/heads/{p.branch}"])]
        if force and not dry_run:
            kept = _rescue_dropped(ws, batch, name, kept)
        moved.update({f"{name}:refs/heads/{p.branch}": refs[f"refs/heads/{p.branch}"]
                      for p in kept})
        mine = sorted(r for r in refs if any(hf_created(p.batch, p.name, r)
                                             for p in group if p not in kept))
        if mine and not dry_run:
            fault_point("remote-gc-listed")
            # leased on what was listed: a push landing meanwhile is not deleted
            outcome = remotes.push_refs(ws.main.path, remotes.url(ws.main.path, name),
                                        [f":{r}" for r in mine],
                                        leases=[f"{r}:{refs[r]}" for r in mine])
            if not outcome.ok:
                raise HfError(f"deleting batch {batch.id}'s refs on {name} failed: "
                              f"{remotes.git_error(outcome.stderr, 'git push failed')}",
                              f"check your access to it (`git ls-remote {name}`), then "
                              f"`hf gc {batch.id}` again")
            ws.store.audit("remote-gc", batch=batch.id, remote=name, refs=mine)
        gone += [f"{name}:{r}" for r in mine]
    return RemoteRefsRemoved(gone, moved)

