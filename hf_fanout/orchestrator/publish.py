"""`hf publish BATCH` (and `hf join --push`): the joined commit pushed to a remote
branch, and with `--pr` a pull request opened for it.

Steps: the batch's joined commit; the remote and branch (the target branch's
upstream, or the one `--branch NAME` names); git's push (no force unless
`--force-with-lease`); then `gh pr create` or `glab mr create` when installed,
else the forge's URL for making one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from hf_fanout.core.records import Batch
from hf_fanout.core.workspace import Workspace
from hf_fanout.errors import BadInput, HfError, NotFound
from hf_fanout.worktrees import remote as remotes


class PushFailed(HfError):
    code = "push_failed"


class RequestFailed(HfError):
    """The branch is pushed; the tool that opens the pull request failed."""


@dataclass(frozen=True)
class PublishOptions:
    remote: str | None = None
    branch: str | None = None  # a branch of its own (`own_branch`) instead of the upstream
    force_with_lease: bool = False
    pr: bool = False


@dataclass
class Published:
    batch: str
    commit: str
    remote: str
    url: str  # the remote's URL
    branch: str
    web: str | None  # the branch on the forge's web pages, when hf knows the forge
    pr_tool: str | None = None  # gh or glab, when one opened the request
    pr_url: str | None = None  # what the tool printed, or the forge's page for one
    pr_title: str = ""
    dry_run: bool = False
    already: bool = False  # the remote branch has the commit already: nothing was pushed

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def publish(ws: Workspace, batch_id: str, options: PublishOptions, *,
            dry_run: bool = False) -> Published:
    batch = ws.store.load_batch(batch_id)
    if not batch.joined_commit:
        from hf_fanout.core.remote_refs import taken_from

        elsewhere = next((taken_from(p) for p in ws.store.load_parts(batch) if taken_from(p)),
                         None)
        reverted = _reverted_after_publish(ws, batch_id)
        raise NotFound(f"batch {batch_id} is not joined yet ({batch.state})",
                       f"its parts were taken here from {elsewhere}: it is joined and "
                       "published on the machine that split it" if elsewhere else
                       f"its published join was taken back by a revert commit on main: push "
                       f"main to publish that (`git push {reverted[0]} "
                       f"{batch.target_ref.removeprefix('refs/heads/')}:{reverted[1]}`), or "
                       f"join it again (`hf join {batch_id} --push`)" if reverted else
                       f"join it first: `hf join {batch_id}` (or `hf join {batch_id} --push`)")
    commit = batch.joined_commit
    remote, branch, base = destination(ws, batch, options)
    where = remotes.url(ws.main.path, remote)
    # the forge (for its pages) from the URL git pushes to, else the one configured
    forge_url = where if _forge(where) else remotes.configured_url(ws.main.path, remote)
    outcome = remotes.push(ws.main.path, remote, commit, branch,
                           force_with_lease=options.force_with_lease, dry_run=dry_run)
    already = False
    if not outcome.ok:
        already = outcome.rejected and _has_it(ws, remote, branch, commit)
        if not already:
            raise _push_error(outcome, remote, branch, batch_id,
                              batch.target_ref.removeprefix("refs/heads/"))
    result = Published(batch.id, commit, remote, where, branch, _forge_page(forge_url, branch),
                       dry_run=dry_run, already=already)
    if not dry_run and not already:
        ws.store.audit("publish", batch=batch.id, remote=remote, branch=branch, commit=commit)
    if options.pr:
        title, body = pr_text(ws, batch)
        result.pr_title = title
        if not dry_run:
            result.pr_tool, result.pr_url = _open_pr(ws, forge_url, branch, base, title, body)
    return result


def _reverted_after_publish(ws: Workspace, batch_id: str) -> tuple[str, str] | None:
    """(remote, branch) of the batch's last publish, when `hf undo` took that join
    back with a revert commit since (the remote still has the join)."""
    from hf_fanout.core import audit

    published: tuple[str, str] | None = None
    for event in audit.read(ws.store.audit_file).events:
        if event.batch != batch_id:
            continue
        if event.action == "publish":
            published = (str(event.data.get("remote")), str(event.data.get("branch")))
        elif event.action == "join":
            published = None  # (a join published later is that one's)
        elif event.action == "undo" and published is not None:
            return published if event.data.get("how") == "revert" else None
    return None


def own_branch(batch_id: str) -> str:
    """hf's usual name for a branch of the batch's own to publish to: out of `hf/`,
    where `hf/<batch>/<part>`, the branches of parts worked through a remote, would
    keep git from making `hf/<batch>` there."""
    return f"hf-pr/{batch_id}"


def destination(ws: Workspace, batch: Batch, options: PublishOptions
                ) -> tuple[str, str, str | None]:
    """(remote, branch to push to, the branch a pull request goes into); refused
    (one line) when there is none. `hf join --push` asks before it joins."""
    if options.branch is not None:
        _check_branch(ws, batch.id, options.branch)
        _refuse_part_branch_folder(ws, batch, options.branch)
    main = ws.main.path
    local = batch.target_ref.removeprefix("refs/heads/")
    upstream = remotes.upstream(main, local)
    known = remotes.remotes(main)
    if not known:
        raise PushFailed("this repository has no remote to publish to",
                         "add one: git remote add origin URL")
    # a branch of its own goes where `git push` would send it (a fork's pushRemote)
    pushed_to = remotes.push_remote(main, local) if options.branch is not None else None
    remote = options.remote or pushed_to or (upstream.remote if upstream else None) \
        or ("origin" if "origin" in known else known[0] if len(known) == 1 else None)
    if remote is None:
        raise PushFailed(f"{local} has no upstream and there are several remotes "
                         f"({', '.join(known)})", "name one: --remote NAME")
    if remote not in known:
        raise PushFailed(f"no remote named {remote!r} (there are: {', '.join(known)})",
                         "name one of them with --remote")
    # (pushed to the fork: the request still goes into the upstream's branch)
    into = upstream.branch if upstream and remote in (upstream.remote, pushed_to) else local
    if options.branch is not None:
        if options.pr and options.branch == into:
            raise PushFailed(f"--pr would ask to merge {into} into itself", "publish to a "
                             f"branch of its own: --branch {own_branch(batch.id)} --pr")
        return remote, options.branch, into
    if upstream is None or upstream.remote != remote:
        raise PushFailed(f"{local} has no upstream on {remote}",
                         f"push to a branch of its own: --branch {own_branch(batch.id)}, or make "
                         f"{local} on {remote}: --branch {local}")
    if options.pr:
        raise PushFailed(f"--pr would ask to merge {upstream.branch} into itself",
                         f"publish to a branch of its own: --branch {own_branch(batch.id)} --pr")
    return remote, upstream.branch, None


def _refuse_part_branch_folder(ws: Workspace, batch: Batch, name: str) -> None:
    """`hf/<batch>` (or a folder above it) while parts of the batch are worked through
    a remote: their branches `hf/<batch>/<part>` are there, and git cannot make a
    branch where a folder of branches is (checked before anything is joined)."""
    from hf_fanout.core.remote_refs import remote_of

    folder = f"hf/{batch.id}"
    if name != folder and not folder.startswith(name + "/"):
        return
    remote = [p.name for p in ws.store.load_parts(batch) if remote_of(p)]
    if remote:
        raise BadInput(f"--branch {name}: the branches of parts worked through a remote "
                       f"({folder}/{remote[0]}) are there, and git cannot make {name} "
                       "beside them",
                       f"name another: --branch {own_branch(batch.id)}")


def _check_branch(ws: Workspace, batch_id: str, name: str) -> None:
    """Refuse a `--branch` that git would not take as a branch name (before anything
    is joined or pushed)."""
    if name.startswith("-") or not remotes.valid_branch(ws.main.path, name):
        raise BadInput(f"--branch {name!r} is not a valid branch name",
                       f"--branch takes the name to push to, e.g. --branch {own_branch(batch_id)}")


def _has_it(ws: Workspace, remote: str, branch: str, commit: str) -> bool:
    """Whether the remote branch, as the remote has it now (one `git ls-remote`),
    already holds `commit` (published before, and someone pushed on top)."""
    from hf_fanout.core.remote_refs import read_timeout

    try:
        found = remotes.list_refs(ws.main.path, remote, [f"refs/heads/{branch}"],
                                  timeout=read_timeout(ws.settings))
    except HfError:
        return False
    tip = found.get(f"refs/heads/{branch}")
    return tip is not None and ws.repo.has_object(tip) and ws.repo.is_ancestor(commit, tip)


def _push_error(outcome: remotes.PushOutcome, remote: str, branch: str,
                batch_id: str, local: str) -> PushFailed:
    text = outcome.stderr
    if outcome.rejected:
        reason = _rejection(text)
        if "stale info" in reason:
            return PushFailed(f"push to {remote}/{branch} refused: the remote branch moved "
                              f"since it was last fetched ({reason})",
                              "fetch and look at it first: `git fetch` then `git log "
                              f"{remote}/{branch}`")
        # (not `--force-with-lease`: it would take the remote's commits off the branch,
        # and not `hf publish` again after the pull: it pushes the join as it was made)
        return PushFailed(f"push to {remote}/{branch} rejected: the remote branch has commits "
                          f"this one has not ({reason})",
                          "bring main up to date with them (`git pull --rebase` in the main "
                          "tree, which rebases the join onto them), then push main: `git push "
                          f"{remote} {local}:{branch}`")
    lines = [line for line in text.splitlines() if line.strip()]
    why = next((line for line in lines if line.startswith(("fatal:", "error:", "remote:"))),
               lines[0] if lines else "git push failed")
    return PushFailed(f"push to {remote}/{branch} failed: {why.strip()}",
                      "check the remote's URL and your access to it "
                      f"(`git remote get-url {remote}`, `git push` by hand)")


def _rejection(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("!"):
            found = line.split("\t")[-1].strip()
            return found or "rejected"
    return "rejected"


# --------------------------------------------------------------------- the forge

# seconds `gh pr create` (or glab's) may take: it asks the forge once, in seconds
PR_TIMEOUT = 120.0
_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.+?)(?:\.git)?/?$")
_URL = re.compile(r"^(?:https?|ssh|git)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+?)(?:\.git)?/?$")


def _forge(url: str) -> tuple[str, str, str] | None:
    """(kind, host, owner/name) for a GitHub or GitLab URL; None for another remote."""
    found = _URL.match(url) or (None if "://" in url else _SCP.match(url))
    if not found:
        return None
    host, path = found.group(1), found.group(2)
    if "github" in host:
        return "github", host, path
    if "gitlab" in host:
        return "gitlab", host, path
    return None


def _forge_page(url: str, branch: str) -> str | None:
    forge = _forge(url)
    if forge is None:
        return None
    kind, host, path = forge
    return (f"https://{host}/{path}/tree/{branch}" if kind == "github"
            else f"https://{host}/{path}/-/tree/{branch}")


def _new_pr_page(url: str, branch: str, base: str | None) -> str | None:
    forge = _forge(url)
    if forge is None:
        return None
    kind, host, path = forge
    if kind == "github":
        return f"https://{host}/{path}/compare/{base + '...' if base else ''}{branch}?expand=1"
    target = f"&merge_request[target_branch]={base}" if base else ""
    return (f"https://{host}/{path}/-/merge_requests/new?"
            f"merge_request[source_branch]={branch}{target}")


def pr_text(ws: Workspace, batch: Batch) -> tuple[str, str]:
    """The pull request's title and body: the batch's task, its parts, and its report
    (`hf report`'s figures, in Markdown)."""
    from hf_fanout.orchestrator.report import markdown

    task = batch.task.strip()
    first = task.splitlines()[0] if task else ""
    title = first[:72] if first else f"hf batch {batch.id}"
    lines = [task or f"Joined batch `{batch.id}`.", "", f"Parts of batch `{batch.id}`:", ""]
    for part in ws.store.load_parts(batch):
        owns = ", ".join(f"`{g}`" for g in part.owns)
        note = f": {part.note}" if part.note else ""
        lines.append(f"- **{part.name}** ({part.state}; owns {owns}){note}")
    lines += ["", f"Joined as {batch.joined_commit} by hf.", "", "## How it went", "",
              markdown(ws, batch.id)]
    return title, "\n".join(lines)


# what one argument may hold (Linux: 128 KiB), with room for the rest of the line
_ARG_MAX = 100 * 1024


def _fitting(body: str) -> str:
    """`body`, cut to what one argument may hold, saying so at its end."""
    data = body.encode("utf-8")
    if len(data) <= _ARG_MAX:
        return body
    cut = data[:_ARG_MAX].decode("utf-8", "ignore")
    return cut + "\n\n(cut here: the rest did not fit; `hf report` prints it whole)"


def _open_pr(ws: Workspace, url: str, branch: str, base: str | None, title: str,
             body: str) -> tuple[str | None, str | None]:
    """(the tool that opened it, its URL), or (None, the forge's page for one)."""
    kind = (_forge(url) or ("",))[0]
    tools = ["glab", "gh"] if kind == "gitlab" else ["gh", "glab"]
    for tool in tools:
        path = shutil.which(tool)
        if path is None:
            continue
        # (gh reads the body from its stdin: a body of long notes does not fit in one
        # argument, 128 KiB on Linux; glab takes it as an argument only, cut to fit)
        if tool == "gh":
            argv = [path, "pr", "create", "--head", branch, "--title", title,
                    "--body-file", "-"]
            argv += ["--base", base] if base else []
        else:
            argv = [path, "mr", "create", "--source-branch", branch, "--title", title,
                    "--description", _fitting(body), "--yes"]
            argv += ["--target-branch", base] if base else []
        page = _new_pr_page(url, branch, base) or f"`{tool}` in the main tree"
        try:
            # (its output as text whatever its bytes; never a prompt: stdin is the body)
            proc = subprocess.run(argv, cwd=ws.main.path, capture_output=True, text=True,
                                  errors="replace", input=body if tool == "gh" else "",
                                  env=dict(os.environ), check=False, timeout=PR_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RequestFailed(f"the branch is pushed, but `{tool}` did not answer within "
                                f"{PR_TIMEOUT:g} s, and was stopped",
                                f"open the request by hand: {page}") from None
        except OSError as exc:
            raise RequestFailed(f"the branch is pushed, but `{tool}` could not be started: "
                                f"{exc.strerror or exc}", f"open the request by hand: {page}"
                                ) from None
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout).strip()
            why = said.splitlines()
            # (one there already: gh names its address on the next line)
            there = [w for w in said.split() if w.startswith("http")]
            raise RequestFailed(f"the branch is pushed, but `{tool}` could not open the "
                                f"request: {why[0] if why else f'exit {proc.returncode}'}"
                                + (f" ({there[-1]})" if there else ""),
                                f"open it by hand: {page}")
        shown = [w for w in proc.stdout.split() if w.startswith("http")]
        return tool, shown[-1] if shown else proc.stdout.strip() or None
    return None, _new_pr_page(url, branch, base)
