"""Forgetting a collected batch (`hf gc` after `forget_after_days`, or `hf split` of its
id): its record (heartbeats and agent states with it), its fingerprint, and the refs
it left under its name.

A rescue ref (`refs/hf/rescue/<batch>/<part>`) or a sync's saved work
(`refs/hf/sync/<batch>/<part>/...`) whose work is all in main goes; one that holds
work main has not is never deleted: it moves to `<batch>@<when it ended>`, out of
the name a new batch of the same id will use (its rescue would write over it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from hf_fanout import timefmt
from hf_fanout.core.records import Batch, ended_at
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import GitFailed
from hf_fanout.guard import fingerprint
from hf_fanout.orchestrator.safety import target_of, unintegrated_work

LEFT_BY_BATCH = ("rescue", "sync")  # refs/hf/<kind>/<batch>/...


@dataclass
class Forgotten:
    batch: str
    refs_removed: list[str] = field(default_factory=list)  # their work is in main
    refs_kept: dict[str, str] = field(default_factory=dict)  # old name -> where it went


def forget_batch(ws: Workspace, batch: Batch, why: str) -> Forgotten:
    done = Forgotten(batch.id)
    target = target_of(ws, batch)
    ended = timefmt.parse_iso(ended_at(batch)) or timefmt.now()
    aside = f"{batch.id}@{timefmt.compact(ended)}"
    for kind in LEFT_BY_BATCH:
        for ref, commit in _refs_under(ws, f"refs/hf/{kind}/{batch.id}/", batch.parts):
            base = ws.repo.merge_base(commit, target)
            if base is not None and not unintegrated_work(ws, None, commit, base, target):
                ws.repo.git(["update-ref", "-d", ref, commit])
                done.refs_removed.append(ref)
                continue
            moved = ref.replace(f"refs/hf/{kind}/{batch.id}/", f"refs/hf/{kind}/{aside}/", 1)
            with contextlib.suppress(GitFailed):  # (taken: it stays where it is)
                ws.repo.git(["update-ref", "--create-reflog", "-m",
                             f"hf: batch {batch.id} forgotten", "--stdin"], stdin=(
                    f"create {moved} {commit}\ndelete {ref} {commit}\n").encode())
                done.refs_kept[ref] = moved
    ws.store.remove_batch(batch.id)
    fingerprint.remove(ws, batch.id)
    ws.store.audit("forget", batch=batch.id, why=why, ended=ended_at(batch),
                   refs_removed=done.refs_removed, refs_kept=done.refs_kept)
    return done


def _refs_under(ws: Workspace, prefix: str, parts: list[str]) -> list[tuple[str, str]]:
    """(ref, commit) of the refs under `prefix` + one of `parts` (a batch named `queue`
    leaves the rescue refs of queue entries, `refs/hf/rescue/queue/<entry>`, alone)."""
    listing = ws.repo.git(["for-each-ref", "--format=%(refname) %(objectname)", prefix])
    found = [line.partition(" ") for line in listing.decode().splitlines() if line]
    return [(ref, oid) for ref, _, oid in found
            if ref.removeprefix(prefix).split("/")[0] in parts]
