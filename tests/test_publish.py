"""`hf publish` and `hf join --push` against a real bare remote; `--pr` through a
stand-in `gh` on PATH that records its argv."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import git, snapshot, write

GH = """#!/usr/bin/env python3
import json, os, sys
argv = sys.argv[1:]
if argv[argv.index("--body-file") + 1:][:1] == ["-"]:  # (gh reads the body from stdin)
    argv += ["(stdin)", sys.stdin.read()]
with open(os.environ["GH_RECORD"], "a") as f:
    f.write(json.dumps(argv) + "\\n")
print("https://github.example/acme/demo/pull/7")
"""


def bare_remote(repo: Path, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "-u", "origin", "main")
    return remote


@pytest.fixture
def published(repo: Path, hf: Any, tmp_path: Path) -> dict[str, Path]:
    """Batch b1 (api, ui, docs) split from a repository whose main tracks a bare remote
    (made before the split: the remote is part of the shared config it fingerprints)."""
    remote = bare_remote(repo, tmp_path)
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
           "--part", "docs=docs/**,README.md", "--task", "add search", cwd=repo)
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b1"
    return {"repo": repo, "remote": remote, "api": root / "api", "ui": root / "ui",
            "docs": root / "docs"}


def joined(hf: Any, split3: dict[str, Path]) -> str:
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", "--note", f"{name} ok", cwd=split3[name]).code == 0
    r = hf("join", "b1", cwd=split3["repo"])
    assert r.code == 0, r.err
    return git(split3["repo"], "rev-parse", "HEAD").strip()


def stand_in_gh(tmp_path: Path, monkeypatch: Any) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(GH)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "gh.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GH_RECORD", str(record))
    return record


def test_publish_pushes_the_join_commit_to_the_upstream(published, hf, tmp_path):
    repo = published["repo"]
    remote = published["remote"]
    commit = joined(hf, published)
    dry = hf("publish", "b1", "--dry-run", cwd=repo)
    assert dry.code == 0, dry.err
    assert git(remote, "rev-parse", "main").strip() != commit
    r = hf("publish", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert f"pushed {commit[:12]} to origin/main ({remote})" in r.out
    assert git(remote, "rev-parse", "main").strip() == commit


def test_join_push_branch_pr_opens_a_pull_request_through_gh(published, hf, tmp_path,
                                                             monkeypatch):
    repo = published["repo"]
    remote = published["remote"]
    record = stand_in_gh(tmp_path, monkeypatch)
    write(published["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", "--note", f"{name} ok", cwd=published[name]).code == 0
    r = hf("join", "b1", "--push", "--branch", "hf/b1", "--pr", "--json", cwd=repo)
    assert r.code == 0, r.out
    data = r.json["data"]
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert data["commit"] == commit
    assert git(remote, "rev-parse", "hf/b1").strip() == commit
    assert git(remote, "rev-parse", "main").strip() != commit  # main itself untouched
    assert data["published"]["pr_url"] == "https://github.example/acme/demo/pull/7"
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(calls) == 1
    argv = calls[0]
    assert argv[:2] == ["pr", "create"]
    assert argv[argv.index("--head") + 1] == "hf/b1"
    assert argv[argv.index("--base") + 1] == "main"
    assert argv[argv.index("--title") + 1] == "add search"
    assert argv[argv.index("--body-file") + 1] == "-"
    body = argv[argv.index("(stdin)") + 1]
    assert "add search" in body
    assert "**api** (joined; owns `src/api/**`): api ok" in body
    assert commit in body
    # the batch's report (`hf report`'s figures) follows, a table row per part
    report = body.split("## How it went", 1)[1]
    assert "Wall time" in report and "speedup" in report
    assert all(f"| {name} |" in report for name in ("api", "ui", "docs"))


def test_without_gh_the_forge_page_for_a_pull_request_is_printed(published, hf, tmp_path,
                                                                  monkeypatch):
    repo = published["repo"]
    remote = published["remote"]
    commit = joined(hf, published)
    # a GitHub-looking push URL for the same bare repository
    git(repo, "config", f"url.{remote}.insteadOf", "git@github.com:acme/demo.git")
    git(repo, "remote", "set-url", "origin", "git@github.com:acme/demo.git")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no gh, no glab
    r = hf("publish", "b1", "--branch", "hf/b1", "--pr", cwd=repo)
    assert r.code == 0, r.err
    assert "https://github.com/acme/demo/compare/main...hf/b1?expand=1" in r.out
    assert git(remote, "rev-parse", "hf/b1").strip() == commit


def test_a_rejected_push_is_one_line_and_changes_nothing_locally(published, hf, tmp_path):
    repo = published["repo"]
    remote = published["remote"]
    # someone else moves the remote's main
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    write(other, {"tools/run.sh": "#!/bin/sh\necho elsewhere\n"})
    git(other, "commit", "-qam", "elsewhere")
    git(other, "push", "-q", "origin", "main")
    remote_main = git(remote, "rev-parse", "main").strip()
    joined(hf, published)
    before = snapshot(repo)
    refs = git(repo, "for-each-ref")
    r = hf("publish", "b1", cwd=repo)
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert lines[0].startswith("hf: error: push to origin/main rejected"), r.err
    assert "git pull --rebase" in lines[1] and "--force-with-lease" not in lines[1]
    assert len(lines) == 2
    assert snapshot(repo) == before
    assert git(repo, "for-each-ref") == refs
    assert git(remote, "rev-parse", "main").strip() == remote_main
    # the hint's way through: main brought up to date, then pushed as the hint says
    git(repo, "pull", "-q", "--rebase")
    push = lines[1].split("push main: `", 1)[1].split("`", 1)[0]
    assert push == "git push origin main:main", lines[1]
    subprocess.run(push.split(), cwd=repo, check=True, capture_output=True)
    assert git(remote, "show", "main:src/api/orders.py") == "def orders():\n    return [1]\n"
    assert git(remote, "show", "main:tools/run.sh") == "#!/bin/sh\necho elsewhere\n"


def test_publish_again_after_the_remote_moved_on_says_it_is_there(published, hf, tmp_path):
    """Published, then someone pushed on top: `hf publish` again finds the commit on
    the remote branch and says so, exit 0, pushing nothing (it once asked for a pull
    and a publish that was refused again, without end)."""
    repo = published["repo"]
    remote = published["remote"]
    commit = joined(hf, published)
    assert hf("publish", "b1", cwd=repo).code == 0
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    write(other, {"tools/run.sh": "#!/bin/sh\necho later\n"})
    git(other, "commit", "-qam", "later")
    git(other, "push", "-q", "origin", "main")
    git(repo, "fetch", "-q")
    later = git(remote, "rev-parse", "main").strip()
    r = hf("publish", "b1", "--json", cwd=repo)
    assert r.code == 0, r.err
    assert r.json["data"]["already"] is True and r.json["data"]["commit"] == commit
    assert git(remote, "rev-parse", "main").strip() == later
    r = hf("publish", "b1", cwd=repo)
    assert r.out.startswith(f"{commit[:12]} is on origin/main already"), r.out


def test_no_remote_and_a_broken_remote_are_refused_clearly(split3, hf, tmp_path):
    repo = split3["repo"]
    joined(hf, split3)
    r = hf("publish", "b1", cwd=repo)
    assert r.code == 1
    assert "no remote to publish to" in r.err and "git remote add origin URL" in r.err
    git(repo, "remote", "add", "origin", str(tmp_path / "nowhere.git"))
    r = hf("publish", "b1", "--branch", "hf/b1", cwd=repo)
    assert r.code == 1
    first = r.err.splitlines()[0]
    assert first.startswith("hf: error: push to origin/hf/b1 failed: fatal:"), r.err
    # a push to the upstream needs one
    r = hf("publish", "b1", cwd=repo)
    assert r.code == 1 and "no upstream on origin" in r.err and "--branch" in r.err


def test_no_upstream_on_an_empty_remote_the_hint_publishes(split3, hf, tmp_path):
    repo = split3["repo"]
    joined(hf, split3)
    bare = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    r = hf("publish", "b1", cwd=repo)
    assert r.code == 1 and "no upstream on origin" in r.err
    assert "make main on origin: --branch main" in r.err, r.err
    assert hf("publish", "b1", "--branch", "main", cwd=repo).code == 0  # the hint works
    assert git(bare, "rev-parse", "main") == git(repo, "rev-parse", "HEAD")


def test_publish_refuses_a_batch_not_joined(published, hf, tmp_path):
    r = hf("publish", "b1", cwd=published["repo"])
    assert r.code == 1 and "not joined yet" in r.err and "hf join b1" in r.err


def parts_done(published: dict[str, Path], hf: Any) -> None:
    write(published["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=published[name]).code == 0


def test_join_push_takes_a_remote_and_a_branch_name(repo, hf, tmp_path):
    remote = bare_remote(repo, tmp_path)
    backup = tmp_path / "backup.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(backup))
    git(repo, "remote", "add", "backup", str(backup))
    r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    assert hf("done", cwd=api).code == 0
    r = hf("join", "b1", "--push", "--remote", "backup", "--branch", "feature/search",
           "--json", cwd=repo)
    assert r.code == 0, r.out
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert r.json["data"]["published"]["remote"] == "backup"
    assert r.json["data"]["published"]["branch"] == "feature/search"
    assert git(backup, "rev-parse", "feature/search").strip() == commit
    assert git(remote, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]


def someone_else_pushes(remote: Path, where: Path) -> str:
    git(where.parent, "clone", "-q", str(remote), str(where))
    write(where, {"tools/run.sh": f"#!/bin/sh\necho {where.name}\n"})
    git(where, "commit", "-qam", f"from {where.name}")
    git(where, "push", "-q", "origin", "main")
    return git(remote, "rev-parse", "main").strip()


def test_join_push_force_with_lease_replaces_only_what_was_fetched(published, hf, tmp_path):
    repo = published["repo"]
    remote = published["remote"]
    someone_else_pushes(remote, tmp_path / "other")
    git(repo, "fetch", "-q", "origin")  # the lease: what origin/main says now
    parts_done(published, hf)
    r = hf("join", "b1", "--push", "--force-with-lease", cwd=repo)
    assert r.code == 0, r.err
    assert git(remote, "rev-parse", "main").strip() == git(repo, "rev-parse", "HEAD").strip()
    # moved again since the last fetch: the lease refuses, with git's reason
    moved = someone_else_pushes(remote, tmp_path / "again")
    r = hf("publish", "b1", "--force-with-lease", cwd=repo)
    assert r.code == 1 and "the remote branch moved since it was last fetched" in r.err
    assert git(remote, "rev-parse", "main").strip() == moved


def test_bad_push_options_are_refused_before_anything_is_joined(published, hf):
    repo = published["repo"]
    parts_done(published, hf)
    before = snapshot(repo)
    # (a name is needed: `--pr` right after --branch is no branch name)
    r = hf("join", "b1", "--push", "--branch", "--pr", cwd=repo)
    assert r.code == 2
    assert r.err.splitlines()[0] == "hf: error: --branch '--pr' is not a valid branch name"
    assert "--branch hf-pr/b1" in r.err
    r = hf("join", "b1", "--push", "--branch", "a..b", cwd=repo)
    assert r.code == 2 and "'a..b' is not a valid branch name" in r.err
    r = hf("join", "b1", "--push", "--remote", "nope", cwd=repo)
    assert r.code == 1 and "no remote named 'nope'" in r.err
    r = hf("join", "b1", "--remote", "origin", cwd=repo)
    assert r.code == 2 and "go with --push" in r.err
    assert snapshot(repo) == before
    assert hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["state"] == \
        "running"
    assert hf("join", "b1", cwd=repo).code == 0
    r = hf("publish", "b1", "--branch", "a..b", cwd=repo)
    assert r.code == 2 and "not a valid branch name" in r.err


def test_undo_of_a_published_join_reverts_on_top_instead_of_moving_main_back(
        published, hf, tmp_path):
    """The join is on the remote: moving main back would leave the remote ahead and
    the next push rejected (or rewritten by force). The undo makes a revert commit,
    which a plain publish pushes."""
    repo, remote = published["repo"], published["remote"]
    commit = joined(hf, published)
    assert hf("publish", "b1", cwd=repo).code == 0
    r = hf("undo", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "with revert commit" in r.out
    assert git(repo, "rev-parse", "HEAD~1").strip() == commit
    assert (repo / "src/api/orders.py").read_text() != "def orders():\n    return [1]\n"
    # `hf publish` has no join to push now: it names the push of the revert
    r = hf("publish", "b1", cwd=repo)
    assert r.code == 1 and "its published join was taken back by a revert commit" in r.err
    push_cmd = r.err.split("(`", 1)[1].split("`", 1)[0]
    assert push_cmd == "git push origin main:main", r.err
    push = subprocess.run(push_cmd.split(), cwd=repo,
                          capture_output=True, text=True, check=False)
    assert push.returncode == 0, push.stderr
    assert git(remote, "rev-parse", "main").strip() == git(repo, "rev-parse", "HEAD").strip()


def test_a_failing_gh_after_the_push_says_the_branch_is_there(published, hf, tmp_path,
                                                               monkeypatch):
    repo = published["repo"]
    remote = published["remote"]
    record = stand_in_gh(tmp_path, monkeypatch)
    gh = tmp_path / "bin" / "gh"
    gh.write_text(GH.replace('print("https://github.example/acme/demo/pull/7")',
                             'print("GraphQL: not authorized", file=sys.stderr); '
                             'sys.exit(1)'))
    write(published["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=published[name]).code == 0
    r = hf("join", "b1", "--push", "--branch", "hf/b1", "--pr", cwd=repo)
    assert r.code != 0
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert git(remote, "rev-parse", "hf/b1").strip() == commit
    said = r.err.splitlines()[0]
    assert f"joined as {commit[:12]}; the branch is pushed" in said
    assert "not published" not in r.err
    assert "GraphQL: not authorized" in said
    assert len(record.read_text().splitlines()) == 1


@pytest.mark.parametrize("behaviour", ["garbage", "hang"])
def test_a_gh_that_prints_bytes_or_never_answers_is_one_line_after_the_push(
        published, hf, tmp_path, monkeypatch, behaviour):
    """gh prints bytes that are not UTF-8 and fails, or waits forever (on a prompt,
    on the network): one line saying the branch is pushed and what gh did, with
    the page to open the request by hand; never an internal error, never a hang."""
    from hf_fanout.orchestrator import publish

    repo = published["repo"]
    remote = published["remote"]
    stand_in_gh(tmp_path, monkeypatch)
    gh = tmp_path / "bin" / "gh"
    if behaviour == "garbage":
        gh.write_text("#!/bin/sh\nprintf 'bad \\377\\376 bytes\\n' >&2\nexit 1\n")
    else:
        gh.write_text("#!/bin/sh\nexec sleep 60\n")
        monkeypatch.setattr(publish, "PR_TIMEOUT", 2.0)
    write(published["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=published[name]).code == 0
    started = time.monotonic()
    r = hf("join", "b1", "--push", "--branch", "hf/b1", "--pr", cwd=repo)
    assert r.code == 1, r.err
    assert time.monotonic() - started < 30
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert git(remote, "rev-parse", "hf/b1").strip() == commit
    said = r.err.splitlines()[0]
    assert f"joined as {commit[:12]}; the branch is pushed" in said, r.err
    assert ("bad \ufffd\ufffd bytes" if behaviour == "garbage"
            else "did not answer within 2 s") in said, r.err
    assert "internal error" not in r.err


def test_a_pull_request_body_longer_than_an_argument_reaches_gh_whole(published, hf, tmp_path,
                                                                      monkeypatch):
    """Parts done with long notes make a body over what one argument may hold (128 KiB
    on Linux): gh gets it whole on its stdin, and the request opens."""
    repo = published["repo"]
    record = stand_in_gh(tmp_path, monkeypatch)
    write(published["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    notes = {name: f"{name} " + "n" * 90_000 for name in ("api", "ui", "docs")}
    for name in ("api", "ui", "docs"):
        assert hf("done", "--note", notes[name], cwd=published[name]).code == 0
    r = hf("join", "b1", "--push", "--branch", "hf/b1", "--pr", cwd=repo)
    assert r.code == 0, r.err
    argv = json.loads(record.read_text().splitlines()[0])
    body = argv[argv.index("(stdin)") + 1]
    assert len(body.encode()) > 256 * 1024
    assert all(note in body for note in notes.values())


def test_a_branch_of_its_own_goes_to_the_fork_git_push_would_use(repo, hf, tmp_path,
                                                                  monkeypatch):
    """A fork's setup: main tracks the project (origin), `remote.pushDefault` is the
    person's fork. `hf publish --branch` pushes there, as `git push` would, and the
    pull request still asks to merge into the project's main; publishing to main
    itself stays the upstream's."""
    origin = bare_remote(repo, tmp_path)
    fork = tmp_path / "fork.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(fork))
    git(repo, "remote", "add", "fork", str(fork))
    git(repo, "config", "remote.pushDefault", "fork")
    split = {"repo": repo}
    r = hf("split", "b1", "--part", "api=src/api/**", "--task", "t", cwd=repo)
    assert r.code == 0, r.err
    split["api"] = repo.parent / "repo.hf" / "b1" / "api"
    write(split["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    assert hf("done", cwd=split["api"]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    commit = git(repo, "rev-parse", "HEAD").strip()
    record = stand_in_gh(tmp_path, monkeypatch)
    r = hf("publish", "b1", "--branch", "hf-pr/b1", "--pr", cwd=repo)
    assert r.code == 0, r.err
    assert f"pushed {commit[:12]} to fork/hf-pr/b1 ({fork})" in r.out, r.out
    assert git(fork, "rev-parse", "hf-pr/b1").strip() == commit
    assert git(origin, "branch", "--list", "hf-pr/b1") == ""
    [argv] = [json.loads(line) for line in record.read_text().splitlines()]
    assert argv[argv.index("--base") + 1] == "main"
    r = hf("publish", "b1", cwd=repo)  # (no branch of its own: main's upstream)
    assert r.code == 0, r.err
    assert git(origin, "rev-parse", "main").strip() == commit
