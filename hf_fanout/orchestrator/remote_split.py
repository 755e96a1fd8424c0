"""The remote parts of a split (docs/remote.md): their records and local branch on
this machine (no worktree, no tab), and on the remote their branch at the base and
their task ref, pushed as one atomic push per remote; and the self-contained prompt
(`hf task --prompt`) that the task ref also holds."""

from __future__ import annotations

from collections.abc import Callable

from hf_fanout.core.ownership import Ownership
from hf_fanout.core.records import Batch, Part
from hf_fanout.core.remote_refs import (
    PART_FILE,
    TASK_FILE,
    claim_patterns,
    part_data,
    part_refs,
    read_timeout,
    remote_of,
    task_ref,
)
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, BatchExists, HfError
from hf_fanout.paths import shown_path
from hf_fanout.worktrees import remote as remotes


def check_remotes(ws: Workspace, parts: list[Part]) -> None:
    """Every remote the plan names is one this repository has (before anything is made)."""
    wanted = sorted({r for r in (remote_of(p) for p in parts) if r})
    if not wanted:
        return
    known = remotes.remotes(ws.main.path)
    for name in wanted:
        if name not in known:
            raise BadInput(f"no remote named {name!r} (there are: {', '.join(known) or 'none'})",
                           "add it first (git remote add NAME URL), or name one of those")
    for name in wanted:  # the remote may hold an earlier batch of this id: never reused
        mine = [p for p in parts if remote_of(p) == name]
        taken = sorted(remotes.list_refs(ws.main.path, name, [
            ref for p in mine for ref in (*part_refs(p.batch, p.name),
                                          *claim_patterns(p.batch, p.name))],
                                              timeout=read_timeout(ws.settings)))
        if taken:
            raise BatchExists(f"{name} has {', '.join(taken[:4])} already",
                              "pick another batch id, or delete them there first "
                              f"(git push {name} --delete REF)")


def make_local(ws: Workspace, batch: Batch, part: Part) -> None:
    """A remote part on this machine: its branch at the base (the join brings the
    fetched tip onto it) and its record; no worktree."""
    ws.repo.git(["update-ref", "-m", f"hf split {batch.id}: remote part",
                 f"refs/heads/{part.branch}", batch.base, ""])
    ws.store.save_part(part)


def publish_tasks(ws: Workspace, batch: Batch, parts: list[Part],
                  before_push: Callable[[dict[str, dict[str, str]]], None]) -> None:
    """Per remote: the parts' branches at the base and their task refs, in one atomic
    push (none land if one cannot: a branch of that name on the remote refuses it).
    `before_push` is told every ref and commit first (the split's journal)."""
    by_remote: dict[str, list[str]] = {}
    for part in parts:
        name = remote_of(part)
        if name is None:
            continue
        task = task_commit(ws, batch, part, parts)
        by_remote.setdefault(name, []).extend([
            f"{batch.base}:refs/heads/{part.branch}", f"{task}:{task_ref(batch.id, part.name)}"])
    if by_remote:
        before_push({name: {u.split(":", 1)[1]: u.split(":", 1)[0] for u in updates}
                     for name, updates in by_remote.items()})
    pushed: list[str] = []
    for name, updates in by_remote.items():
        # to the URL, not the remote's name: no remote-tracking ref is made here
        outcome = remotes.push_refs(ws.main.path, remotes.url(ws.main.path, name), updates)
        if not outcome.ok:
            for earlier in pushed:  # what landed on the remotes before: taken back too
                remotes.push_refs(ws.main.path, remotes.url(ws.main.path, earlier),
                                  [f":{u.split(':', 1)[1]}" for u in by_remote[earlier]])
            why = remotes.git_error(outcome.stderr, "git push failed")
            hint = (f"a branch hf/{batch.id}/... is on {name} already: pick another batch id, "
                    "or delete it there" if outcome.rejected else
                    f"check the remote's URL and your access to it (`git ls-remote {name}`)")
            raise HfError(f"pushing the remote parts to {name} failed: {why}", hint)
        pushed.append(name)
    if by_remote:
        ws.store.audit("remote-publish", batch=batch.id,
                       parts=[p.name for p in parts if remote_of(p)],
                       remotes=sorted(by_remote))


def task_commit(ws: Workspace, batch: Batch, part: Part, parts: list[Part]) -> str:
    """A commit without parent whose tree is TASK.md (the prompt) and part.json."""
    repo = ws.repo
    text = prompt(ws, batch, part, parts).encode("utf-8")
    blobs = {name: repo.git(["hash-object", "-w", "--stdin"], stdin=data).decode().strip()
             for name, data in ((TASK_FILE, text),
                                (PART_FILE, part_data(part, batch.id, batch.base, batch.task)))}
    listing = "".join(f"100644 blob {oid}\t{name}\n" for name, oid in sorted(blobs.items()))
    tree = repo.git(["mktree"], stdin=listing.encode()).decode().strip()
    return repo.git(["commit-tree", tree, "-m",
                     f"hf: task of part {part.name} of batch {batch.id}"]).decode().strip()


def prompt(ws: Workspace, batch: Batch, part: Part, parts: list[Part]) -> str:
    """What a hosted agent (or anyone without hf) needs to work the part: the task,
    the files it owns (each as `handoff.shown_path` writes it: a name git would
    quote, quoted), and the one branch it may push."""
    base_paths = [str(p) for p in ws.repo.ls_tree(batch.base)]
    owned = Ownership.parse(part.owns).owned(base_paths)
    where = remote_of(part)
    url = _url(ws, where) if where else ""
    others = "".join(f"  - {o.name}: `{'`, `'.join(o.owns)}`\n" for o in parts if o is not part)
    listed = "".join(f"- `{shown_path(p)}`\n" for p in owned[:200]) + (
        f"- ... and {len(owned) - 200} more\n" if len(owned) > 200 else "")
    return f"""# Task for part `{part.name}` of batch `{batch.id}`

This is one part of a task split into parts that are worked in parallel and joined
back by `hf join`, which takes only the files each part owns.

Repository: {url or "(this repository)"}
Start from commit `{batch.base}`: branch `{part.branch}` points at it.

## The shared task

{batch.task.strip() or "(no shared task text was given)"}

## Your part

{part.task.strip() or "(no part-specific task: do your share of the shared task, within "
                      "the files you own)"}

## Files you own

Globs:
{"".join(f"- `{g}`{chr(10)}" for g in part.owns)}
Of these, the base tree has {len(owned)} file(s):
{listed or "- none yet: you may only create new files matching the globs" + chr(10)}
You may create, change, delete and rename files matching your globs, and nothing else.

## Rules

- Push your work to branch `{part.branch}` and touch nothing else: no other branch,
  no tag, no other ref.
- Change only files matching your globs. If any other path differs from the base,
  the join refuses the whole part.
- Keep the branch's history on top of `{batch.base[:12]}`: a branch that does not
  descend from it is refused, and so is one rewritten after it was marked done.
{"- The other parts own:" + chr(10) + others if others else ""}
## How to finish

- With hf on your machine: `hf take {where or "REMOTE"} {batch.id}/{part.name}`, work
  in the worktree it makes, then `hf done` there pushes the branch and records done.
- Without hf: commit, `git push {where or "origin"} HEAD:{part.branch}`, and say that
  you are finished; the person who split the task marks it done.
"""


def task_text(ws: Workspace, part: Part, *, as_prompt: bool) -> tuple[str | None, str]:
    """`hf task`: (the handoff file's path, its text); with `as_prompt`, or for a remote
    part (whose worktree is elsewhere), (None, the self-contained prompt)."""
    if not as_prompt and remote_of(part) is None:
        from hf_fanout.tabs.handoff import read_task

        path, text = read_task(part)
        return str(path), text
    batch = ws.store.load_batch(part.batch)
    parts = ws.store.load_parts(batch)
    mine = next((p for p in parts if p.name == part.name), part)
    return None, prompt(ws, batch, mine, parts)


def _url(ws: Workspace, name: str) -> str:
    try:
        return remotes.url(ws.main.path, name)
    except HfError:
        return name


def worked_here(parts: list[Part]) -> list[Part]:
    """The parts with a worktree on this machine."""
    return [p for p in parts if remote_of(p) is None]

