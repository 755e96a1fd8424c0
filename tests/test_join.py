"""`hf join` lands: round trip, .gitattributes, main moved, the hijacked index, no-ops."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import git, new_repo, snapshot, traced_argv, write

BINARY = bytes(range(256)) * 4 + b"\0\xff\xfe"
SPACED = "src/api/new file ü.py"


def all_done(hf: Any, split3: dict[str, Path], names: tuple[str, ...] = ("api", "ui", "docs")
             ) -> None:
    for name in names:
        r = hf("done", cwd=split3[name])
        assert r.code == 0, r.err


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def apply_edits(root: Path, *, commit_part: str | None = None) -> None:
    """The same edits, in a part worktree layout or in a scratch clone (root = tree root)."""
    # api: a committed modification, an added file with spaces and unicode, a
    # rename (uncommitted), a binary file
    write(root, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    write(root, {SPACED: "x = 'ü'\n", "src/api/blob.bin": BINARY})
    (root / "src/api/users.py").rename(root / "src/api/accounts.py")
    # ui: a delete, an exec-bit change, a symlink
    (root / "src/ui/page.html").unlink()
    (root / "src/ui/app.js").chmod(0o755)
    os.symlink("app.js", root / "src/ui/current.js")
    # docs: modified README, deleted and added docs (one in a new directory)
    write(root, {"README.md": "# demo, joined\n", "docs/new/deep.md": "deep\n"})
    (root / "docs/old.md").unlink()


def test_round_trip_three_parts_committed_and_uncommitted(split3, hf, tmp_path):
    repo = split3["repo"]
    api, ui, docs = split3["api"], split3["ui"], split3["docs"]
    before = head(repo)
    # The expected tree, computed independently: the same edits in a scratch clone.
    scratch = tmp_path / "scratch"
    git(tmp_path, "clone", "-q", str(repo), str(scratch))
    apply_edits(scratch)
    git(scratch, "add", "-A")
    expected_tree = git(scratch, "write-tree").strip()

    # api: orders.py committed on its branch, the rest uncommitted
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    git(api, "commit", "-qam", "api: orders")
    write(api, {SPACED: "x = 'ü'\n", "src/api/blob.bin": BINARY})
    (api / "src/api/users.py").rename(api / "src/api/accounts.py")
    # ui: the delete committed, exec bit and symlink uncommitted (symlink staged)
    git(ui, "rm", "-q", "src/ui/page.html")
    git(ui, "commit", "-qm", "ui: drop page")
    (ui / "src/ui/app.js").chmod(0o755)
    os.symlink("app.js", ui / "src/ui/current.js")
    git(ui, "add", "src/ui/current.js")
    # docs: everything uncommitted
    write(docs, {"README.md": "# demo, joined\n", "docs/new/deep.md": "deep\n"})
    (docs / "docs/old.md").unlink()
    all_done(hf, split3)

    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    data = r.json["data"]
    assert data["commit"] == head(repo)
    assert git(repo, "status", "--porcelain") == ""
    fsck = git(repo, "fsck", "--strict", "--no-progress")
    assert "error" not in fsck and "missing" not in fsck
    # exactly one new commit, whose tree is the expected tree
    assert git(repo, "rev-list", f"{before}..HEAD").split() == [head(repo)]
    assert git(repo, "rev-parse", "HEAD^").strip() == before
    assert git(repo, "rev-parse", "HEAD^{tree}").strip() == expected_tree
    # the main tree holds the results, with modes and links
    assert (repo / SPACED).read_text() == "x = 'ü'\n"
    assert (repo / "src/api/blob.bin").read_bytes() == BINARY
    assert not (repo / "src/api/users.py").exists()
    assert os.access(repo / "src/ui/app.js", os.X_OK)
    assert os.readlink(repo / "src/ui/current.js") == "app.js"
    assert not (repo / "docs/old.md").exists()
    # trailers name the batch and each part with the commit that was joined
    message = git(repo, "log", "-1", "--format=%B")
    trailers = git(repo, "interpret-trailers", "--parse", input=message.encode())
    assert "Hf-Batch: b1" in trailers
    part_lines = [t for t in trailers.splitlines() if t.startswith("Hf-Part: ")]
    assert sorted(t.split()[1] for t in part_lines) == ["api", "docs", "ui"]
    for line in part_lines:
        _, name, commit = line.split()
        assert git(repo, "cat-file", "-t", commit).strip() == "commit"
        # the named commit holds that part's result (its branch tip + uncommitted work)
        ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", f"hf/b1/{name}", commit],
                                  cwd=repo, check=False)
        assert ancestor.returncode == 0
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert status["state"] == "joined"
    assert {p["state"] for p in status["parts"]} == {"joined"}


def test_reading_parts_never_writes_their_index_and_a_join_says_what_it_brought(split3, hf):
    """status, a dry run and the join read each part's worktree without writing
    its index (an agent's own `git add` must never find it locked or changed)."""
    import time

    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/new.py": "n = 1\n",
                "src/api/orders.py": "def orders():\n    return [1]\n"})
    later = time.time() + 5
    os.utime(api / "src/api/users.py", (later, later))  # stat-dirty, same content
    index = Path(git(api, "rev-parse", "--git-path", "index").strip())
    index = index if index.is_absolute() else api / index
    before = index.read_bytes()
    all_done(hf, split3)
    assert hf("status", "b1", cwd=repo).code == 0
    assert hf("join", "b1", "--dry-run", cwd=repo).code == 0
    assert index.read_bytes() == before
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "part api: 2 file(s) (1 added, 1 modified)" in r.out
    assert "part ui: 0 file(s)" in r.out and "git show --stat" in r.out
    assert index.read_bytes() == before


def test_join_of_a_joined_batch_is_a_noop(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    all_done(hf, split3)
    assert hf("join", "b1", cwd=repo).code == 0
    joined = snapshot(repo)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0
    assert "already joined" in r.out
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0 and r.json["data"]["noop"] is True
    assert r.json["data"]["commit"] == joined["head"].strip()
    assert snapshot(repo) == joined


def test_gitattributes_eol_and_clean_filter(repo, hf):
    write(repo, {".gitattributes": "*.bat eol=crlf\n*.up filter=upper\n",
                 "scripts/old.bat": "echo old\r\n", "scripts/old.up": "OLD\n"})
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "attributes")
    r = hf("split", "b1", "--part", "scripts=scripts/**", "--part", "rest=README.md",
           cwd=repo)
    assert r.code == 0, r.err
    part = repo.parent / "repo.hf" / "b1" / "scripts"
    # written the way an editor on either platform might
    write(part, {"scripts/run.bat": b"echo one\r\necho two\r\n",
                 "scripts/lf.bat": b"echo lf\n",
                 "scripts/old.bat": b"echo changed\r\n",
                 "scripts/new.up": b"shout this\n"})
    expected = {}
    for name in ("run.bat", "lf.bat", "old.bat", "new.up"):
        rel = f"scripts/{name}"
        expected[rel] = git(part, "hash-object", f"--path={rel}", rel).strip()
    assert hf("done", "b1/scripts", cwd=repo).code == 0
    assert hf("done", "b1/rest", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "status", "--porcelain") == ""
    for rel, oid in expected.items():
        assert git(repo, "rev-parse", f"HEAD:{rel}").strip() == oid, rel
    # the stored blobs are normalised (LF, upper case); the main tree has CRLF for .bat
    assert git(repo, "cat-file", "blob", "HEAD:scripts/run.bat") == "echo one\necho two\n"
    assert git(repo, "cat-file", "blob", "HEAD:scripts/new.up") == "SHOUT THIS\n"
    assert (repo / "scripts/lf.bat").read_bytes() == b"echo lf\r\n"
    # what `git add` in the main tree would store is what was committed
    for rel, oid in expected.items():
        assert git(repo, "hash-object", f"--path={rel}", rel).strip() == oid, rel


def test_main_moved_unrelated_commit(split3, hf):
    repo = split3["repo"]
    write(repo, {"tools/run.sh": "#!/bin/sh\necho moved\n"})
    git(repo, "commit", "-qam", "main moves on")
    moved = head(repo)
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return ['api']\n"})
    all_done(hf, split3)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "rev-parse", "HEAD^").strip() == moved
    assert (repo / "tools/run.sh").read_text() == "#!/bin/sh\necho moved\n"
    assert "['api']" in git(repo, "show", "HEAD:src/api/orders.py")
    assert git(repo, "status", "--porcelain") == ""


LINES = "".join(f"line {i}\n" for i in range(1, 11))


def _split_with_lines(repo: Path, hf: Any) -> dict[str, Path]:
    return _split_with(repo, hf, {"src/api/long.py": LINES})


def test_main_moved_owned_path_clean_three_way_merge(repo, hf):
    parts = _split_with_lines(repo, hf)
    write(repo, {"src/api/long.py": LINES.replace("line 1\n", "line 1 (main)\n")})
    git(repo, "commit", "-qam", "main edits the top")
    moved = head(repo)
    write(parts["api"], {"src/api/long.py": LINES.replace("line 10\n", "line 10 (part)\n")})
    all_done(hf, parts, ("api", "ui"))
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert r.json["data"]["merged"] == ["src/api/long.py"]
    merged = git(repo, "show", "HEAD:src/api/long.py")
    assert merged == LINES.replace("line 1\n", "line 1 (main)\n").replace(
        "line 10\n", "line 10 (part)\n")
    assert git(repo, "rev-parse", "HEAD^").strip() == moved
    assert (repo / "src/api/long.py").read_text() == merged
    assert git(repo, "status", "--porcelain") == ""


def test_main_moved_conflict_writes_nothing(repo, hf):
    parts = _split_with_lines(repo, hf)
    write(repo, {"src/api/long.py": LINES.replace("line 5\n", "line 5 (main)\n")})
    git(repo, "commit", "-qam", "main edits line 5")
    write(parts["api"], {"src/api/long.py": LINES.replace("line 5\n", "line 5 (part)\n"),
                         "src/api/fine.py": "ok\n"})
    all_done(hf, parts, ("api", "ui"))
    before = snapshot(repo)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1
    env = r.json
    assert env["ok"] is False and env["error"]["code"] == "merge_conflict"
    assert "src/api/long.py" in env["error"]["message"]
    (conflict,) = env["data"]["conflicts"]
    assert conflict["path"] == "src/api/long.py" and conflict["part"] == "api"
    assert "line 5 (main)" in conflict["hunks"] and "line 5 (part)" in conflict["hunks"]
    assert conflict["hunks"].startswith("<<<<<<< ")
    assert snapshot(repo) == before
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1 and "src/api/long.py" in r.err
    assert snapshot(repo) == before


def test_conflicts_in_two_parts_name_both_in_the_way_out(repo, hf):
    parts = _split_with(repo, hf, {"src/api/long.py": LINES, "src/ui/long.py": LINES})
    write(repo, {"src/api/long.py": LINES.replace("line 5\n", "line 5 (main)\n"),
                 "src/ui/long.py": LINES.replace("line 2\n", "line 2 (main)\n")})
    git(repo, "commit", "-qam", "main edits both")
    write(parts["api"], {"src/api/long.py": LINES.replace("line 5\n", "line 5 (api)\n")})
    write(parts["ui"], {"src/ui/long.py": LINES.replace("line 2\n", "line 2 (ui)\n")})
    all_done(hf, parts, ("api", "ui"))
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "merge_conflict"
    assert r.json["error"]["hint"].startswith(
        "bring parts api and ui onto main (`hf sync` in each worktree)"), r.json["error"]


def test_a_file_against_a_folder_of_main_is_a_conflict_and_writes_nothing(split3, hf):
    """Main moved both ways round a part's change of shape: the part made a folder a
    file where main since added files in it (docs/guides), and the part adds a
    file in a folder main since made a file (src/ui). Each is a conflict; the
    main tree, its index and its files are exactly as they were."""
    repo, api, ui = split3["repo"], split3["api"], split3["ui"]
    write(repo, {"src/api/guides/intro.md": "intro\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main: guides")
    # (re-split from here so the api part starts with the folder)
    assert hf("drop", "b1", cwd=repo).code == 0
    assert hf("gc", "b1", "--force", cwd=repo).code == 0
    assert hf("split", "b2", "--part", "api=src/api/**", "--part", "ui=src/ui/**",
              cwd=repo).code == 0
    api, ui = (repo.parent / "repo.hf" / "b2" / n for n in ("api", "ui"))
    shutil.rmtree(api / "src/api/guides")
    write(api, {"src/api/guides": "one file now\n"})
    write(ui, {"src/ui/widgets/new.js": "new\n"})
    write(repo, {"src/api/guides/more.md": "more\n"})
    git(repo, "rm", "-rq", "src/ui")
    write(repo, {"src/ui": "main made this a file\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main: more guides; src/ui is a file")
    for name in ("api", "ui"):
        assert hf("done", f"b2/{name}", cwd=repo).code == 0
    before = snapshot(repo)
    r = hf("join", "b2", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "merge_conflict", r.out
    found = {c["path"]: c["reason"] for c in r.json["data"]["conflicts"]}
    assert found == {
        # (intro.md the part deleted with the folder: only main's new file stands)
        "src/api/guides": "written as a file, where main has a folder with files: "
                          "src/api/guides/more.md",
        "src/ui/widgets/new.js": "main made src/ui a file; this path is written in that "
                                 "folder"}, found
    assert snapshot(repo) == before
    assert git(repo, "status", "--porcelain") == ""


def test_a_three_way_merge_in_a_partial_clone_reads_blobs_it_has_not_fetched(tmp_path, hf):
    """A `--filter=blob:none` clone with a sparse main tree: main pulls a change to
    a file outside its sparse set, whose blob is on the remote only. The join's
    three-way merge reads it (git fetches it) and brings both changes."""
    numbers = "".join(f"{i}\n" for i in range(1, 51))
    source = new_repo(tmp_path / "source", {"big/f3": numbers, "README": "r\n"})
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    git(bare, "config", "uploadpack.allowFilter", "true")
    git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--filter=blob:none", "--no-checkout",
                    f"file://{bare}", str(repo)], check=True)
    git(repo, "sparse-checkout", "set", "--no-cone", "README")
    git(repo, "checkout", "-q", "main")
    assert hf("split", "b1", "--part", "big=big/**", "--part", "readme=README",
              cwd=repo).code == 0
    part = tmp_path / "repo.hf" / "b1" / "big"
    write(part, {"big/f3": numbers.replace("5\n", "five (part)\n", 1)})
    write(source, {"big/f3": numbers.replace("45\n", "forty-five (main)\n")})
    git(source, "commit", "-qam", "main changes line 45")
    git(source, "push", "-q", str(bare), "main")
    git(repo, "pull", "-q", "--no-rebase")
    missing = git(repo, "rev-list", "--objects", "--missing=print", "--all")
    assert any(line.startswith("?") for line in missing.splitlines())  # (not fetched)
    for name in ("big", "readme"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    joined = git(repo, "show", "HEAD:big/f3")
    assert "five (part)\n" in joined and "forty-five (main)\n" in joined


def test_a_path_another_process_staged_stays_staged_and_uncommitted(split3, hf):
    repo = split3["repo"]
    write(repo, {"notes.txt": "someone else's work\n",
                 "tools/run.sh": "#!/bin/sh\necho staged\n"})
    git(repo, "add", "notes.txt", "tools/run.sh")
    staged = git(repo, "diff", "--cached", "--name-only")
    write(repo, {"src/ui/app.js": "// unstaged, unrelated\n"})
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    all_done(hf, split3)
    r = hf("join", "b1", cwd=repo / "docs")  # from a folder of the main tree: it writes the whole
    assert r.code == 0, r.err
    files = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert files == ["src/api/new.py"]
    assert git(repo, "diff", "--cached", "--name-only") == staged
    assert git(repo, "show", ":notes.txt") == "someone else's work\n"
    assert git(repo, "show", "HEAD:tools/run.sh") == "#!/bin/sh\necho run\n"
    assert sorted(git(repo, "status", "--porcelain").splitlines()) == [
        " M src/ui/app.js", "A  notes.txt", "M  tools/run.sh"]
    assert (repo / "src/ui/app.js").read_text() == "// unstaged, unrelated\n"
    assert (repo / "src/api/new.py").read_text() == "n = 1\n"
    assert not (split3["docs"] / "src/api/new.py").exists()


def test_partial_joins_the_done_parts_and_leaves_the_rest_running(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    write(split3["ui"], {"src/ui/new.js": "ui\n"})
    assert hf("done", cwd=split3["api"]).code == 0
    before = head(repo)
    r = hf("join", "b1", "--partial", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert [p["part"] for p in r.json["data"]["parts"]] == ["api"]
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["src/api/new.py"]
    assert git(repo, "rev-parse", "HEAD^").strip() == before
    states = {p["name"]: p["state"] for p in
              hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]}
    assert states == {"api": "joined", "ui": "running", "docs": "running"}
    assert split3["ui"].is_dir() and (split3["ui"] / "src/ui/new.js").exists()
    # the rest joins later, on top of the partial join
    assert hf("done", cwd=split3["ui"]).code == 0
    assert hf("done", cwd=split3["docs"]).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["src/ui/new.js"]
    assert hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["state"] == \
        "joined"


def test_dry_run_shows_the_files_and_writes_nothing(split3, hf):
    repo = split3["repo"]
    write(split3["api"], {"src/api/new.py": "n = 1\n"})
    all_done(hf, split3)
    before = snapshot(repo)
    r = hf("join", "b1", "--dry-run", cwd=repo)
    assert r.code == 0, r.err
    assert "src/api/new.py" in r.out and "nothing changed" in r.out
    r = hf("join", "b1", "--dry-run", "--json", cwd=repo)
    assert r.json["data"]["dry_run"] is True
    assert r.json["data"]["affected"] == ["src/api/new.py"]
    assert snapshot(repo) == before
    record = json.loads((repo / ".git/hf/batches/b1/batch.json").read_text())
    assert record["state"] == "running"


def test_part_work_survives_a_removed_results_ref(split3, hf):
    """The Hf-Part commit of uncommitted work stays reachable from refs/hf/results."""
    repo = split3["repo"]
    write(split3["docs"], {"docs/guide.md": "# guide v2\n"})
    all_done(hf, split3)
    assert hf("join", "b1", cwd=repo).code == 0
    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Hf-Part,valueonly)")
    docs_commit = next(t.split()[1] for t in trailers.splitlines() if t.startswith("docs "))
    assert git(repo, "rev-parse", "refs/hf/results/b1/docs").strip() == docs_commit
    assert git(repo, "show", f"{docs_commit}:docs/guide.md") == "# guide v2\n"
    shutil.rmtree(split3["docs"])  # gone from disk; the object is still in the repo
    assert git(repo, "cat-file", "-t", docs_commit).strip() == "commit"


def test_file_becomes_directory_and_emptied_directories_go(repo, hf):
    write(repo, {".gitignore": "*.log\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "ignore logs")
    r = hf("split", "b1", "--part", "docs=docs/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    docs, ui = (repo.parent / "repo.hf" / "b1" / n for n in ("docs", "ui"))
    (docs / "docs/old.md").unlink()
    write(docs, {"docs/old.md/index.md": "now a directory\n"})
    shutil.rmtree(ui / "src/ui")
    write(ui, {"src/ui/debug.log": "ignored, never joined\n"})
    for name in ("docs", "ui"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "docs/old.md/index.md").read_text() == "now a directory\n"
    assert not (repo / "src/ui").exists()
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD", "src/ui") == ""
    assert git(repo, "status", "--porcelain", "--ignored") == ""
    assert "fatal" not in git(repo, "fsck", "--no-progress")


def test_a_join_with_no_change_makes_no_commit(split3, hf):
    repo = split3["repo"]
    head = git(repo, "rev-parse", "HEAD")
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert r.json["data"]["commit"] is None
    assert git(repo, "rev-parse", "HEAD") == head
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert status["state"] == "joined"


def test_a_same_size_edit_in_the_index_second_is_still_joined(split3, hf):
    """Racy git: a file whose stat matches its index entry, changed in the same
    instant the index was written, must be re-read, also on the join's copy of
    the index (the copy keeps the index's mtime)."""
    repo, ui = split3["repo"], split3["ui"]
    git(repo, "config", "core.trustctime", "false")
    assert hf("doctor", "--accept", cwd=repo).code == 0  # the guard's baseline takes it
    target = ui / "src/ui/app.js"
    before = os.stat(target)
    target.write_text("console.log(2)\n")  # same size as "console.log(1)\n"
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    index = Path(git(ui, "rev-parse", "--path-format=absolute", "--git-path", "index").strip())
    os.utime(index, ns=(before.st_mtime_ns, before.st_mtime_ns))
    all_done(hf, split3, ("ui",))
    r = hf("join", "b1", "--partial", "--json", cwd=repo)
    assert r.code == 0, r.out + r.err
    assert (repo / "src/ui/app.js").read_text() == "console.log(2)\n"


def test_replaced_files_are_new_files_and_what_was_moved_aside_goes(split3, hf):
    """The join moves the files it replaces or deletes aside (a rename, cheap on any
    disk) and deletes them after it returns. Like git's checkout, a replaced
    file is a new file: another hard link to the old one keeps the old text."""
    repo, docs = split3["repo"], split3["docs"]
    elsewhere = repo.parent / "readme-link"
    os.link(repo / "README.md", elsewhere)
    write(docs, {"README.md": "# demo, joined\n"})
    (docs / "docs/old.md").unlink()
    all_done(hf, split3, ("docs",))
    r = hf("join", "b1", "--partial", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "README.md").read_text() == "# demo, joined\n"
    assert not (repo / "docs/old.md").exists()
    assert elsewhere.read_text() == "# demo\n"
    assert git(repo, "status", "--porcelain") == ""
    trash = repo / ".git/hf/trash"
    deadline = time.monotonic() + 20
    while trash.exists() and any(trash.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(trash.iterdir()), "what the join moved aside was not deleted"


def test_a_foreign_index_lock_refuses_the_join_before_anything_is_written(split3, hf):
    """git's index.lock held by someone else (a git command, or one that was killed):
    the join waits for it, then refuses with exit 75 having written nothing, and
    leaves no journal behind; `hf status` works meanwhile."""
    repo, api, docs = split3["repo"], split3["api"], split3["docs"]
    write(api, {"src/api/orders.py": "def orders():\n    return [2]\n"})
    (docs / "docs/old.md").unlink()
    all_done(hf, split3, ("api", "docs"))
    before = snapshot(repo)
    lock = repo / ".git/index.lock"
    lock.write_text("")
    started = time.monotonic()
    r = hf("join", "b1", "--partial", "--wait", "0.5", "--json", cwd=repo)
    assert time.monotonic() - started < 20
    assert r.code == 75, r.out
    assert r.json["error"]["code"] == "index_locked"
    assert str(lock) in r.json["error"]["message"] and str(lock) in r.json["error"]["hint"]
    assert not (repo / ".git/hf/journal/join.json").exists()
    status = hf("status", cwd=repo)
    assert status.code == 0 and "hf: note" not in status.err, status.err
    lock.unlink()
    assert snapshot(repo) == before
    assert git(repo, "status", "--porcelain") == ""
    assert hf("join", "b1", "--partial", cwd=repo).code == 0
    assert (repo / "src/api/orders.py").read_text().endswith("[2]\n")
    assert not (repo / "docs/old.md").exists()


def test_a_write_that_fails_half_way_puts_the_main_tree_and_index_back(repo, hf):
    """A smudge filter that fails on one file makes `checkout-index` fail after it
    wrote others: the join puts every file and the index back as they were."""
    write(repo, {".gitattributes": "*.bin filter=boom\n"})
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "attributes")
    git(repo, "config", "filter.boom.clean", "cat")
    git(repo, "config", "filter.boom.smudge", "false")
    git(repo, "config", "filter.boom.required", "true")
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf/b1/api"
    write(api, {"src/api/orders.py": "def orders():\n    return [9]\n",
                "src/api/a-new.py": "new\n", "src/api/zz.bin": "data\n"})
    (api / "src/api/users.py").unlink()
    assert hf("done", cwd=api).code == 0
    before = snapshot(repo)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1, r.err
    assert "smudge filter boom failed" in r.err and "nothing was committed" in r.err
    assert "a filter that .gitattributes names failed" in r.err  # (the hint)
    assert snapshot(repo) == before
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (repo / ".git/index.lock").exists()
    assert not (repo / ".git/hf/journal/join.json").exists()
    git(repo, "config", "filter.boom.smudge", "cat")
    assert hf("doctor", "--accept", cwd=repo).code == 0  # the config change is the user's
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/zz.bin").read_text() == "data\n"
    assert not (repo / "src/api/users.py").exists()


def test_a_dry_run_needs_no_identity_when_nothing_is_committed(split3, hf, monkeypatch):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "def orders():\n    return [3]\n"})
    git(api, "commit", "-qam", "committed by the part")
    all_done(hf, split3, ("api",))
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("EMAIL", "")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")  # like `git -c user.useConfigOnly=true`
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.useConfigOnly")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "true")
    (Path.home() / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    assert subprocess.run(["git", "var", "GIT_AUTHOR_IDENT"], cwd=repo, capture_output=True,
                          check=False).returncode != 0, "the identity should be unknown here"
    r = hf("join", "b1", "--partial", "--dry-run", cwd=repo)
    assert r.code == 0, r.err
    assert "part api: 1 file(s)" in r.out


@pytest.mark.parametrize("mark", ["--assume-unchanged", "--skip-worktree"])
def test_an_edit_behind_a_mark_git_status_heeds_is_joined(split3, hf, mark):
    """An agent (or a tool it runs) marks an owned file assume-unchanged or
    skip-worktree and edits it: `git status` there shows nothing, the join takes it."""
    repo, api = split3["repo"], split3["api"]
    git(api, "update-index", mark, "src/api/orders.py", "src/api/users.py")
    write(api, {"src/api/orders.py": "# edited behind the mark\n"})
    (api / "src/api/users.py").unlink()
    assert "src/api" not in git(api, "status", "--porcelain")
    all_done(hf, split3, ("api",))
    r = hf("join", "b1", "--partial", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "show", "HEAD:src/api/orders.py") == "# edited behind the mark\n"
    users_kept = mark == "--skip-worktree"  # (no file: a path outside a sparse checkout)
    assert bool(git(repo, "ls-files", "src/api/users.py")) == users_kept


def test_a_file_name_that_is_not_utf8_is_refused_in_one_line(split3, hf):
    repo, api = split3["repo"], split3["api"]
    (api / os.fsdecode(b"src/api/caf\xe9.py")).write_text("x = 1\n")
    all_done(hf, split3, ("api",))
    before = snapshot(repo)
    r = hf("join", "b1", "--partial", cwd=repo)
    assert r.code == 1, r.err
    assert "not UTF-8" in r.err and "hint:" in r.err and "Traceback" not in r.err
    assert r.err.startswith('hf: error: "src/api/caf\\351.py" is a file name')  # as git quotes it
    assert snapshot(repo) == before


def object_store(repo: Path) -> tuple[list[str], list[str]]:
    """The repository's loose objects and packs, by file name."""
    objects = repo / ".git/objects"
    loose = sorted(str(p.relative_to(objects)) for p in objects.glob("[0-9a-f][0-9a-f]/*"))
    return loose, sorted(p.name for p in (objects / "pack").glob("*.pack"))


def test_a_join_and_a_dry_run_each_write_their_objects_as_one_pack(split3, hf):
    """What the join makes (the parts' new blobs, trees, commits) goes to the
    repository as one pack, not a loose file per object and a pack per part:
    `git gc --auto` packs everything once there are 50 packs or 6700 loose objects."""
    repo = split3["repo"]
    many = {f"src/api/gen_{i}.py": f"n = {i}\n" for i in range(40)}  # committed, uncommitted
    write(split3["api"], many)
    git(split3["api"], "add", "-A")
    git(split3["api"], "commit", "-qm", "generated")
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [2]\n",
                          **{f"src/api/new_{i}.py": f"m = {i}\n" for i in range(20)}})
    write(split3["ui"], {"src/ui/page.html": "<h1>bye</h1>\n", "src/ui/one.js": "x\n"})
    write(split3["docs"], {"docs/guide.md": "# guide v2\n"})
    all_done(hf, split3)
    loose, packs = object_store(repo)
    r = hf("join", "b1", "--dry-run", "--json", cwd=repo)
    assert r.code == 0, r.out
    for part in r.json["data"]["parts"]:  # what the preview names exists
        git(repo, "cat-file", "-e", part["result"])
    after_dry_run = object_store(repo)
    assert after_dry_run[0] == loose and len(after_dry_run[1]) == len(packs) + 1
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert object_store(repo)[0] == loose  # no loose object
    (new_pack,) = set(object_store(repo)[1]) - set(after_dry_run[1])  # and one pack
    assert "error" not in git(repo, "fsck", "--no-progress").lower()
    # it holds the uncommitted files' blobs, the trees and the commits of the join
    listed = git(repo, "verify-pack", "-v", str(repo / ".git/objects/pack" / new_pack))
    kinds = {line.split()[1] for line in listed.splitlines() if len(line.split()) > 4}
    assert kinds == {"blob", "tree", "commit"}
    assert git(repo, "rev-parse", "HEAD:src/api/new_7.py").strip() in listed
    assert git(repo, "show", "HEAD:src/api/new_7.py") == "m = 7\n"
    assert git(repo, "status", "--porcelain") == ""


def test_dry_run_of_a_synced_part_shows_only_the_part_s_files(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/new.py": "new\n"})
    write(repo, {"README.md": "# moved on main\n", "src/api/users.py": "main's users\n"})
    git(repo, "commit", "-qam", "main moves")
    assert hf("sync", "b1/api", cwd=repo).code == 0
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    dry = hf("join", "b1", "--dry-run", cwd=repo)
    assert dry.code == 0, dry.err
    assert "part api: 1 file(s) (1 added)" in dry.out
    assert "src/api/new.py | 1 +" in dry.out
    assert "README.md" not in dry.out and "users.py" not in dry.out


def _split_with(repo: Path, hf: Any, files: dict[str, str | bytes]) -> dict[str, Path]:
    """`files` committed on main, then batch b1 split: api (src/api/**), ui (src/ui/**)."""
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "files to merge")
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b1"
    return {"repo": repo, "api": root / "api", "ui": root / "ui"}


def _both_change(hf: Any, parts: dict[str, Path], main: dict[str, str | bytes],
                 part: dict[str, str | bytes]) -> None:
    """Main commits `main`, part api writes `part`; both parts done."""
    write(parts["repo"], main)
    git(parts["repo"], "commit", "-qam", "main moves")
    write(parts["api"], part)
    all_done(hf, parts, ("api", "ui"))


def _assert_conflict(hf: Any, repo: Path, path: str, reason: str) -> None:
    """The join refuses with the conflict report naming `path` (its reason holding
    `reason`) and the `hf sync` way out, and writes nothing."""
    before = snapshot(repo)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1, r.out
    env = r.json
    assert env["error"]["code"] == "merge_conflict", env["error"]
    assert path in env["error"]["message"] and "`hf sync`" in env["error"]["hint"]
    (conflict,) = env["data"]["conflicts"]
    assert conflict["path"] == path and conflict["part"] == "api"
    assert reason in conflict["reason"] and conflict["hunks"] == ""
    assert snapshot(repo) == before


SIX = "a\nb\nc\nd\ne\nf\n"


def test_main_moved_a_binary_file_changed_on_both_sides_is_a_conflict(repo, hf):
    parts = _split_with(repo, hf, {"src/api/blob.bin": b"bin\0one\n"})
    _both_change(hf, parts, {"src/api/blob.bin": b"bin\0main\n"},
                 {"src/api/blob.bin": b"bin\0part\n"})
    _assert_conflict(hf, repo, "src/api/blob.bin", "binary file changed on both sides")


@pytest.mark.parametrize(("attributes", "reason"), [
    ("*.lock -merge\n", "binary or -merge"),
    ("*.lock binary\n", "binary or -merge"),
    ("*.lock merge=binary\n", "binary or -merge"),
    ("*.lock merge=lockfile\n", "merge driver 'lockfile' (.gitattributes) is not run by hf"),
], ids=["-merge", "binary", "merge=binary", "driver"])
def test_main_moved_a_file_the_merge_attribute_keeps_from_a_text_merge_is_a_conflict(
        repo, hf, attributes, reason):
    # the two sides change different lines: a text merge would be clean
    parts = _split_with(repo, hf, {".gitattributes": attributes, "src/api/deps.lock": SIX})
    _both_change(hf, parts, {"src/api/deps.lock": SIX.replace("a\n", "A\n")},
                 {"src/api/deps.lock": SIX.replace("f\n", "F\n")})
    _assert_conflict(hf, repo, "src/api/deps.lock", reason)


def test_the_main_tree_s_merge_attributes_decide_not_the_part_s(repo, hf):
    parts = _split_with(repo, hf, {".gitattributes": "*.lock -merge\n",
                                   "src/api/deps.lock": SIX})
    _both_change(hf, parts, {"src/api/deps.lock": SIX.replace("a\n", "A\n")},
                 {"src/api/deps.lock": SIX.replace("f\n", "F\n"),
                  "src/api/.gitattributes": "*.lock merge=union\n"})
    before = snapshot(repo)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "merge_conflict"
    (conflict,) = r.json["data"]["conflicts"]
    assert conflict["path"] == "src/api/deps.lock" and "binary or -merge" in conflict["reason"]
    assert snapshot(repo) == before


def _check_attr_runs(trace: Path) -> list[list[str]]:
    """The `git check-attr` processes a GIT_TRACE2_EVENT file records."""
    if not trace.exists():
        return []
    starts = [traced_argv(e["argv"]) for e in map(json.loads, trace.read_text().splitlines())
              if e["event"] == "start"]
    return [argv[1:] for argv in starts if "check-attr" in argv]


def test_union_merge_keeps_both_sides_lines_and_reads_attributes_once(
        repo, hf, tmp_path, monkeypatch):
    parts = _split_with(repo, hf, {".gitattributes": "*.txt merge=union\n",
                                   "src/api/one.txt": LINES, "src/api/two.txt": LINES})
    write(parts["api"], {"src/api/one.txt": LINES.replace("line 5\n", "line 5 (part)\n"),
                         "src/api/two.txt": LINES.replace("line 2\n", "line 2 (part)\n"),
                         "src/api/new.py": "new\n"})
    all_done(hf, parts, ("api", "ui"))
    write(repo, {"README.md": "# main moved\n"})
    git(repo, "commit", "-qam", "main moves elsewhere")
    trace = tmp_path / "trace.json"
    with monkeypatch.context() as m:
        m.setenv("GIT_TRACE2_EVENT", str(trace))
        assert hf("join", "b1", "--dry-run", cwd=repo).code == 0
    assert _check_attr_runs(trace) == []  # nothing to merge: no attributes read
    write(repo, {"src/api/one.txt": LINES.replace("line 5\n", "line 5 (main)\n"),
                 "src/api/two.txt": LINES.replace("line 2\n", "line 2 (main)\n")})
    git(repo, "commit", "-qam", "main edits the same lines")
    trace.unlink(missing_ok=True)
    with monkeypatch.context() as m:
        m.setenv("GIT_TRACE2_EVENT", str(trace))
        r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert _check_attr_runs(trace) == [["check-attr", "-z", "--stdin", "merge"]]
    assert r.json["data"]["merged"] == ["src/api/one.txt", "src/api/two.txt"]
    assert git(repo, "show", "HEAD:src/api/one.txt") == LINES.replace(
        "line 5\n", "line 5 (main)\nline 5 (part)\n")
    assert git(repo, "show", "HEAD:src/api/two.txt") == LINES.replace(
        "line 2\n", "line 2 (main)\nline 2 (part)\n")
    assert git(repo, "show", "HEAD:src/api/new.py") == "new\n"
    assert git(repo, "status", "--porcelain") == ""


def test_a_sparse_main_tree_keeps_its_shape_through_a_join_and_its_undo(repo, hf):
    """The person works in a sparse checkout of src/ui only; a part changes and adds
    files under src/api. As with git's own merge of that commit, they stay out of
    the main tree's files, marked skip-worktree, after the join and after its undo."""
    git(repo, "sparse-checkout", "set", "--cone", "src/ui")
    assert not (repo / "src/api").exists()
    r = hf("split", "b1", "--part", "api=src/api/**", "--task", "t", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "changed\n", "src/api/new.py": "new\n"})
    assert hf("done", cwd=api).code == 0
    for step in (["join", "b1"], ["undo", "b1"]):
        r = hf(*step, cwd=repo)
        assert r.code == 0, r.err
        assert "sparse checkout" not in r.err
        assert not (repo / "src/api").exists(), step
        flags = git(repo, "ls-files", "-t", "src/api").split("\n")
        assert all(line.startswith("S ") for line in flags if line), (step, flags)
        assert git(repo, "status", "--porcelain") == "", step
    assert git(repo, "show", "HEAD:src/api/orders.py") != "changed\n"


def _sign_with_ssh(repo: Path, tmp_path: Path) -> None:
    """commit.gpgSign with an ssh key of the test's own, and git told whom to trust."""
    key = tmp_path / "signing-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    email = git(repo, "config", "user.email").strip()
    (tmp_path / "allowed").write_text(f"{email} {(tmp_path / 'signing-key.pub').read_text()}")
    for name, value in (("commit.gpgSign", "true"), ("gpg.format", "ssh"),
                        ("user.signingkey", str(key)),
                        ("gpg.ssh.allowedSignersFile", str(tmp_path / "allowed"))):
        git(repo, "config", name, value)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_a_repository_that_signs_its_commits_gets_the_join_undo_and_commit_signed(
        repo, hf, tmp_path):
    """commit.gpgSign: the commits hf puts on the person's branches are signed as `git
    commit` signs them; where git cannot sign (its key gone), the join is refused
    whole, as `git commit` refuses, and goes once signing works again."""
    _sign_with_ssh(repo, tmp_path)
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "signed work\n"})
    assert hf("commit", "-m", "orders", "src/api/orders.py", cwd=api).code == 0
    # (a part's own commit is its agent's: not signed, whoever can reach the key)
    assert git(api, "log", "-1", "--format=%G?").strip() == "N"
    assert hf("done", cwd=api).code == 0
    key = tmp_path / "signing-key"
    key.rename(tmp_path / "away")
    before = snapshot(repo)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1
    assert r.err.startswith("hf: error: git could not sign the commit (commit.gpgSign is "
                            "on): "), r.err
    assert snapshot(repo) == before
    (tmp_path / "away").rename(key)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "log", "-1", "--format=%G? %s").strip() == "G hf: join batch b1 (api)"
    assert (repo / "src/api/orders.py").read_text() == "signed work\n"
    write(repo, {"README.md": "after the join\n"})  # (so the undo is a revert commit)
    assert hf("commit", "-m", "after", "README.md", cwd=repo).code == 0
    assert hf("undo", "b1", cwd=repo).code == 0
    assert git(repo, "log", "-3", "--format=%G? %s").splitlines() == [
        "G hf: undo batch b1 (api)", "G after", "G hf: join batch b1 (api)"]
