"""A part's worktree read as `git add -A` would record it, without staging anything.

The oracle is git itself: `git add -A` + `git write-tree` on a throwaway copy
of the worktree's index. Every case builds a worktree state that a shortcut
could get wrong and checks the tree hf computes is the one git computes, and
that the part's own index is byte-identical afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import git, write

from hf_fanout.errors import HfError
from hf_fanout.worktrees.repository import Worktree


def git_add_tree(worktree: Path, tmp: Path) -> str:
    """What `git add -A` in `worktree` would record, on a copy of its index."""
    index = Path(git(worktree, "rev-parse", "--git-path", "index").strip())
    index = index if index.is_absolute() else worktree / index
    copy = tmp / "oracle-index"
    shutil.copyfile(index, copy)
    env = {**os.environ, "GIT_INDEX_FILE": str(copy)}
    subprocess.run(["git", "add", "-A"], cwd=worktree, env=env, check=True,
                   capture_output=True)
    return subprocess.run(["git", "write-tree"], cwd=worktree, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def part(repo: Path) -> Path:
    wt = repo.parent / "part"
    git(repo, "worktree", "add", "-q", "-b", "p", str(wt), "HEAD")
    return wt


def hf_tree(repo: Path, worktree: Path, exclude: tuple[str, ...] = ()) -> str:
    part = Worktree.discover(worktree)
    head = part.rev_parse("HEAD")
    assert head is not None
    return part.tree(part.repository.tree_of(head), exclude=exclude)


def make_exec_and_modes(wt: Path) -> None:
    (wt / "tools/run.sh").chmod(0o755)
    (wt / "src/ui/app.js").chmod(0o755)
    write(wt, {"src/api/orders.py": "changed\n", "new dir/ünï côdé.txt": "hello\n",
               "tools/new.sh": "#!/bin/sh\n"})
    (wt / "tools/new.sh").chmod(0o755)  # untracked and executable


def make_staged_then_reverted(wt: Path) -> None:
    write(wt, {"docs/guide.md": "staged\n"})
    git(wt, "add", "docs/guide.md")
    write(wt, {"docs/guide.md": "# guide\n"})  # back to HEAD on disk, not in the index
    write(wt, {"docs/other.md": "staged\n"})
    git(wt, "add", "docs/other.md")
    write(wt, {"docs/other.md": "and changed again\n"})  # the disk wins


def make_index_only_changes(wt: Path) -> None:
    git(wt, "rm", "-q", "--cached", "docs/old.md")  # still on disk: add -A puts it back
    write(wt, {"src/new.py": "x = 1\n"})
    git(wt, "add", "-N", "src/new.py")  # intent to add
    git(wt, "rm", "-q", "src/ui/page.html")


def make_file_to_directory(wt: Path) -> None:
    (wt / "docs/old.md").unlink()
    write(wt, {"docs/old.md/inside.md": "now a directory\n"})


def make_directory_to_symlink(wt: Path) -> None:
    shutil.rmtree(wt / "src/ui")
    (wt / "elsewhere").mkdir()
    write(wt, {"elsewhere/page.html": "<h1>hi</h1>\n", "elsewhere/app.js": "console.log(1)\n"})
    (wt / "src/ui").symlink_to("../elsewhere")


def make_odd_names(wt: Path) -> None:
    write(wt, {'quote"d.txt': "q\n", "back\\slash.txt": "b\n", "new\nline.txt": "n\n",
               '"leading.txt': "l\n", "tab\there.txt": "t\n"})


def make_symlinks(wt: Path) -> None:
    (wt / "link-to-readme").symlink_to("README.md")
    (wt / "dangling").symlink_to("nowhere/at/all")
    (wt / "docs/guide.md").unlink()
    (wt / "docs/guide.md").symlink_to("../README.md")  # a file becomes a link


def make_nested_repo(wt: Path) -> None:
    sub = wt / "vendor/lib"
    sub.mkdir(parents=True)
    git(sub, "init", "-q")
    write(sub, {"a.txt": "a\n"})
    git(sub, "add", "a.txt")
    git(sub, "commit", "-q", "-m", "nested")


def make_nested_repo_at_a_deleted_path(wt: Path) -> None:
    git(wt, "rm", "-q", "docs/old.md")  # staged as deleted, then a repository there
    sub = wt / "docs/old.md"
    sub.mkdir()
    git(sub, "init", "-q")
    write(sub, {"a.txt": "a\n"})
    git(sub, "add", "a.txt")
    git(sub, "commit", "-q", "-m", "nested")


def make_untracked_trees(wt: Path) -> None:
    write(wt, {".gitignore": "*.log\n", "gen/a/b.txt": "b\n", "gen/a/c.log": "ignored\n",
               "gen/d/e/f.txt": "f\n", "src/api/new/deep/g.py": "g\n", "only.log": "x\n"})


def make_dropped_then_ignored(wt: Path) -> None:
    git(wt, "rm", "-q", "--cached", "docs/guide.md")  # stays on disk, now ignored
    write(wt, {".gitignore": "docs/guide.md\n"})
    git(wt, "rm", "-q", "--cached", "docs/old.md")  # stays on disk, not ignored: back in


def commit_crlf_before_text_auto(root: Path) -> None:
    """docs/win.txt committed with CRLF endings, then `* text=auto` added."""
    write(root, {"docs/win.txt": b"a\r\nb\r\n"})
    git(root, "add", "docs/win.txt")
    git(root, "commit", "-qm", "crlf")
    write(root, {".gitattributes": "* text=auto\n"})
    git(root, "add", ".gitattributes")
    git(root, "commit", "-qm", "attributes")


def make_crlf_kept_by_the_index(wt: Path) -> None:
    """A file committed with CRLF endings before `* text=auto` was added: git keeps
    a path whose index blob has CRs as it is (a one-line change stays one line)."""
    commit_crlf_before_text_auto(wt)
    write(wt, {"docs/win.txt": b"a\r\nb\r\nnew\r\n", "docs/new.txt": b"x\r\ny\r\n"})


CASES: dict[str, Callable[[Path], None]] = {
    "a CRLF file the index keeps as it is": make_crlf_kept_by_the_index,
    "dropped from the index, then ignored": make_dropped_then_ignored,
    "untracked directories, ignored files inside": make_untracked_trees,
    "exec bits, unicode and spaces": make_exec_and_modes,
    "staged, then reverted on disk": make_staged_then_reverted,
    "index-only changes": make_index_only_changes,
    "a file becomes a directory": make_file_to_directory,
    "a directory becomes a symlink": make_directory_to_symlink,
    "names git would misread unquoted": make_odd_names,
    "symlinks": make_symlinks,
    "an untracked nested repository": make_nested_repo,
    "a nested repository at a path staged as deleted": make_nested_repo_at_a_deleted_path,
}


@pytest.mark.parametrize("case", list(CASES))
def test_tree_is_what_git_add_records(repo: Path, part: Path, tmp_path: Path,
                                      case: str) -> None:
    CASES[case](part)
    index = Path(git(part, "rev-parse", "--git-path", "index").strip())
    before = index.read_bytes()
    got = hf_tree(repo, part)
    assert got == git_add_tree(part, tmp_path)
    assert got != git(part, "rev-parse", "HEAD^{tree}").strip(), "the case changed nothing"
    assert index.read_bytes() == before, "the part's own index was written"


@pytest.mark.parametrize("setting", ["core.fileMode", "core.symlinks"])
def test_untrusted_modes_follow_the_index_as_git_does(repo: Path, part: Path, tmp_path: Path,
                                                     setting: str) -> None:
    git(part, "config", setting, "false")
    if setting == "core.fileMode":
        (part / "tools/run.sh").chmod(0o755)  # ignored by git with fileMode false
        write(part, {"src/api/users.py": "changed\n", "bin/tool": "#!/bin/sh\n"})
        git(part, "add", "bin/tool")
        git(part, "update-index", "--chmod=+x", "bin/tool")  # the index says executable
        write(part, {"bin/tool": "#!/bin/sh\necho changed\n", "bin/new.sh": "#!/bin/sh\n"})
        (part / "bin/new.sh").chmod(0o755)  # untracked: recorded 0644 with fileMode false
    else:
        # what a checkout without symlink support leaves: the link as a plain file
        (part / "link").symlink_to("README.md")
        git(part, "add", "link")
        git(part, "commit", "-q", "-m", "a link")
        (part / "link").unlink()
        write(part, {"link": "docs/guide.md"})
    got = hf_tree(repo, part)
    assert got == git_add_tree(part, tmp_path)
    listing = git(part, "ls-tree", "-r", got)
    if setting == "core.fileMode":
        assert "100644 blob" in next(ln for ln in listing.splitlines() if "tools/run.sh" in ln)
        assert "100755 blob" in next(ln for ln in listing.splitlines() if "bin/tool" in ln)
        assert "100644 blob" in next(ln for ln in listing.splitlines() if "bin/new.sh" in ln)
    else:
        assert "120000 blob" in next(ln for ln in listing.splitlines() if "\tlink" in ln)


def test_excluded_paths_keep_heads_state(repo: Path, part: Path) -> None:
    write(part, {".env": "SECRET=1\n", "cache/blob.bin": b"\0" * 10, "docs/guide.md": "new\n"})
    tree = hf_tree(repo, part, exclude=(".env", "cache/"))
    names = git(repo, "ls-tree", "-r", "--name-only", tree).split()
    assert ".env" not in names and "cache/blob.bin" not in names
    assert git(repo, "show", f"{tree}:docs/guide.md") == "new\n"


def test_nested_repository_without_a_commit_is_refused(repo: Path, part: Path) -> None:
    (part / "empty-sub").mkdir()
    git(part / "empty-sub", "init", "-q")
    write(part, {"empty-sub/a.txt": "a\n"})
    with pytest.raises(HfError, match="without a commit") as refused:
        hf_tree(repo, part)
    assert "`rm -rf empty-sub/.git` in the part's worktree" in (refused.value.hint or "")
    shutil.rmtree(part / "empty-sub" / ".git")  # what the hint says: its files are the part's
    tree = hf_tree(repo, part)
    assert git(repo, "show", f"{tree}:empty-sub/a.txt") == "a\n"


def test_a_split_worktree_has_an_untracked_cache_and_it_stays_right(split3: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    api = split3["api"]
    index = Path(git(api, "rev-parse", "--git-path", "index").strip())
    assert b"UNTR" in index.read_bytes(), "split did not prime the untracked cache"
    # entries added to directories the cache knows, and a new directory
    write(api, {"src/api/later.py": "x\n", "docs/late.md": "y\n", "fresh/dir/z.txt": "z\n"})
    got = hf_tree(split3["repo"], api)
    assert got == git_add_tree(api, tmp_path)
    names = git(api, "ls-tree", "-r", "--name-only", got).split()
    assert {"src/api/later.py", "docs/late.md", "fresh/dir/z.txt"} <= set(names)


def test_overlaying_parts_trees_equals_building_from_entries(repo: Path) -> None:
    """The join's final tree made from the parts' own trees is the tree built
    entry by entry, including parts meeting in one directory, deletions that
    empty a directory, a file replaced by a directory, and new directories."""
    from hf_fanout.paths import RepoPath
    from hf_fanout.worktrees.zparse import Entry

    main = Worktree.discover(repo).repository
    base = main.tree_of(main.main.head() or "")
    blob = Entry(0o100644, main.write_blob(b"new\n"))
    tool = Entry(0o100755, main.write_blob(b"#!/bin/sh\n"))
    changes: list[dict[str, Entry | None]] = [
        {"src/api/orders.py": blob, "src/api/new/deep.py": blob, "src/api/users.py": None},
        {"src/ui/page.html": None, "src/ui/app.js": None, "README.md": blob},  # src/ui emptied
        {"docs/old.md": None, "docs/old.md/inside.md": blob, "tools/run.sh": tool,
         "fresh/dir/file.txt": blob},
    ]
    parts = []
    for change in changes:
        entries = {RepoPath(p): e for p, e in change.items()}
        parts.append((main.build_tree(base, entries), list(entries)))
    everything = {RepoPath(p): e for change in changes for p, e in change.items()}
    expected = main.build_tree(base, everything)
    assert main.overlay_trees(base, parts) == expected
    # one part's deletion of a path under which another part adds: not overlaid
    a = {RepoPath("docs/old.md"): None}
    b = {RepoPath("docs/old.md/x.md"): blob}
    clash = [(main.build_tree(base, a), list(a)), (main.build_tree(base, b), list(b))]
    assert main.overlay_trees(base, clash) is None


def test_building_a_tree_replaces_a_directory_by_a_file_and_back(repo: Path) -> None:
    from hf_fanout.paths import RepoPath
    from hf_fanout.worktrees.zparse import Entry

    main = Worktree.discover(repo).repository
    base = main.tree_of(main.main.head() or "")
    blob = Entry(0o100644, main.write_blob(b"now a file\n"))
    # src/ui (a directory) becomes a file; docs/old.md (a file) becomes a directory
    # (in the order `git diff-tree` lists them: the file before the directory's entries)
    tree = main.build_tree(base, {RepoPath("src/ui"): blob, RepoPath("src/ui/app.js"): None,
                                  RepoPath("src/ui/page.html"): None,
                                  RepoPath("docs/old.md"): None,
                                  RepoPath("docs/old.md/inside.md"): blob})
    listing = git(repo, "ls-tree", "-r", tree)
    assert f"100644 blob {blob.oid}\tsrc/ui\n" in listing
    assert "src/ui/" not in listing
    assert f"100644 blob {blob.oid}\tdocs/old.md/inside.md\n" in listing


def test_many_files_go_into_one_pack_and_filtered_ones_stay_as_git_writes_them(
        repo: Path, part: Path, tmp_path: Path) -> None:
    """From 16 files up the blobs are written as one pack; a file a filter changes
    (eol, a clean filter) is written by git itself. Same tree as `git add -A`."""
    git(part, "config", "filter.upper.clean", "tr a-z A-Z")
    git(part, "config", "filter.upper.smudge", "cat")
    files: dict[str, str | bytes] = {
        ".gitattributes": "*.bat eol=crlf\n*.up filter=upper\n"}
    files.update({f"many/plain_{i}.txt": f"plain {i}\n" * (i + 1) for i in range(30)})
    files.update({f"many/win_{i}.bat": f"echo {i}\r\n" for i in range(4)})
    files.update({f"many/loud_{i}.up": f"quiet {i}\n" for i in range(4)})
    # files with the same bytes: one object each in the pack (`git verify-pack`
    # calls a pack that holds an object twice bad)
    files.update({f"many/pkg_{i}/__init__.py": "" for i in range(3)})
    files.update({f"many/copy_{i}.txt": "plain 0\n" for i in range(2)})
    files["src/api/orders.py"] = "def orders():\n    return [1, 2]\n"  # a tracked file
    write(part, files)
    loose_before = set((repo / ".git/objects").glob("??/*"))
    packs_before = set((repo / ".git/objects/pack").glob("*.pack"))
    got = hf_tree(repo, part)
    assert got == git_add_tree(part, tmp_path)
    new_loose = set((repo / ".git/objects").glob("??/*")) - loose_before
    new_packs = set((repo / ".git/objects/pack").glob("*.pack")) - packs_before
    assert len(new_packs) == 1
    plain = git(part, "rev-parse", f"{got}:many/plain_3.txt").strip()
    loud = git(part, "rev-parse", f"{got}:many/loud_1.up").strip()
    assert repo / ".git/objects" / plain[:2] / plain[2:] not in new_loose  # in the pack
    assert repo / ".git/objects" / loud[:2] / loud[2:] in new_loose  # git wrote it
    assert git(part, "cat-file", "-p", loud) == "QUIET 1\n"
    assert git(repo, "fsck", "--strict", "--no-dangling").strip() == ""
    (pack,) = new_packs
    git(repo, "verify-pack", str(pack.with_suffix(".idx")))  # fails on a duplicate


def test_a_file_git_s_untracked_cache_misses_is_still_joined(split3, hf):
    """git's untracked cache trusts a directory whose mtime (in seconds, without
    nanosecond timestamps) did not move: a file made in the same second as the
    cache's look at the directory, with the index written later, is missed by
    `git status` for good. The join must not miss it."""
    api, repo = split3["api"], split3["repo"]
    index = repo / ".git/worktrees/api/index"
    directory = api / "src/api"
    settled = directory.stat().st_mtime - 10  # (an mtime git does not call racy)
    os.utime(directory, (settled, settled))
    # (ctime is not set back: without core.trustctime=false git saw the file whenever
    # a second went by between the cache's look and the write)
    git(api, "-c", "core.untrackedCache=true", "-c", "core.trustctime=false", "status",
        "--porcelain")  # the cache is made
    seen = directory.stat()
    write(api, {"src/api/new.py": "made in the same second\n"})
    os.utime(directory, ns=(seen.st_atime_ns, seen.st_mtime_ns))  # that second's mtime
    later = index.stat().st_mtime + 5
    os.utime(index, (later, later))  # the index written after it (not racy)
    assert "new.py" not in git(api, "-c", "core.trustctime=false", "status",
                               "--porcelain")  # git itself misses it
    assert hf("done", cwd=api).code == 0
    for name in ("ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/new.py").read_text() == "made in the same second\n"


def test_a_crlf_file_the_index_keeps_joins_as_one_line_and_its_part_is_integrated(
        repo: Path, hf) -> None:
    """The file committed with CRLF before `* text=auto`: the join records the line
    the part added, as `git add` there would (before: every line rewritten to LF),
    and gc then finds the part's work in main and removes it."""
    commit_crlf_before_text_auto(repo)
    assert hf("split", "b1", "--part", "docs=docs/**", cwd=repo).code == 0
    part = repo.parent / "repo.hf" / "b1" / "docs"
    write(part, {"docs/win.txt": b"a\r\nb\r\nnew\r\n"})
    assert hf("done", cwd=part).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    shown = subprocess.run(["git", "show", "HEAD:docs/win.txt"], cwd=repo, check=True,
                           capture_output=True).stdout
    assert shown == b"a\r\nb\r\nnew\r\n"
    assert git(repo, "diff", "--numstat", "HEAD~1", "HEAD").split() == ["1", "0", "docs/win.txt"]
    gc = hf("gc", "--json", cwd=repo)
    assert gc.code == 0, gc.err
    assert [p["action"] for p in gc.json["data"]["parts"]] == ["removed"]
    assert not part.exists()


def test_a_file_core_safecrlf_refuses_is_named_with_what_to_do(repo: Path, hf) -> None:
    """core.autocrlf with core.safecrlf: a part's file of mixed line endings is
    refused by git as `git add` refuses it; the join said only to run
    `git hash-object` by hand. Now the hint names the file and the fix, and the
    main tree is left as it was."""
    git(repo, "config", "core.autocrlf", "true")
    git(repo, "config", "core.safecrlf", "true")
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    part = repo.parent / "repo.hf" / "b1" / "api"
    write(part, {"src/api/mixed.py": b"one\r\ntwo\nthree\r\n"})
    assert hf("done", cwd=part).code == 0
    head = git(repo, "rev-parse", "HEAD")
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1, r.out
    error = r.json["error"]
    assert "LF would be replaced by CRLF in src/api/mixed.py" in error["message"]
    assert error["hint"].startswith("core.safecrlf refuses a file")
    assert f"give src/api/mixed.py one kind of line ending in {part}" in error["hint"]
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    write(part, {"src/api/mixed.py": b"one\r\ntwo\r\nthree\r\n"})
    assert hf("join", "b1", cwd=repo).code == 0
    assert git(repo, "show", "HEAD:src/api/mixed.py") == "one\ntwo\nthree\n"


def test_a_submodule_folder_not_checked_out_counts_as_filled_only_with_a_file(tmp_path):
    """Empty folders in it are nothing a join could take or lose; a file is."""
    from conftest import new_repo

    from hf_fanout.worktrees.scan import filled_submodules

    lib = new_repo(tmp_path / "lib", {"core.c": "v1\n"}, "lib")
    repo = new_repo(tmp_path / "repo", {"src/a.py": "a\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib),
        "vendor/lib")
    git(repo, "commit", "-qm", "add the submodule")
    git(repo, "submodule", "deinit", "-q", "-f", "vendor/lib")
    assert filled_submodules(repo) == []
    (repo / "vendor/lib/build/deeper").mkdir(parents=True)
    assert filled_submodules(repo) == []
    (repo / "vendor/lib/build/deeper/out.o").write_text("object\n")
    assert filled_submodules(repo) == ["vendor/lib"]
