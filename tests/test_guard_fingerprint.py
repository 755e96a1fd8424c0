"""Layer 5: what every worktree shares is fingerprinted at split and checked at join."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import git, hf_proc, snapshot, write

from hf_fanout.core.workspace import Workspace
from hf_fanout.guard import fingerprint

REAL_GIT = shutil.which("git")


def real(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REAL_GIT, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def all_done(split3: dict[str, Path], hf) -> None:
    write(split3["api"], {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0


def planted_hook(path: Path, proof: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho planted >> {proof}\n")
    path.chmod(0o755)


def test_a_planted_hook_and_hooks_path_stop_the_join_and_never_run(split3, hf, tmp_path):
    repo, api = split3["repo"], split3["api"]
    proof = tmp_path / "planted-hook-ran"
    evil = tmp_path / "evil-hooks"
    # From inside a part, through the real git (bypassing the wrapper):
    planted_hook(repo / ".git/hooks/reference-transaction", proof)
    planted_hook(repo / ".git/hooks/post-checkout", proof)
    for name in ("reference-transaction", "pre-commit", "post-commit", "post-checkout"):
        planted_hook(evil / name, proof)
    assert real(api, "config", "core.hooksPath", str(evil)).returncode == 0
    all_done(split3, hf)
    before = snapshot(repo)

    proc = hf_proc("join", "b1", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    assert "TamperDetected" not in proc.stderr  # one clear line, not a traceback
    line = proc.stderr.splitlines()[0]
    assert line.startswith("hf: error: batch b1: 3 shared thing(s) changed since the split")
    assert f"config changed: +core.hookspath={evil}" in line
    assert "hooks/reference-transaction added" in line
    assert "hooks/post-checkout added" in line
    assert "hf doctor --accept" in proc.stderr
    assert snapshot(repo) == before
    assert not proof.exists()

    r = hf("join", "b1", "--json", cwd=repo)
    assert r.json["error"]["code"] == "tamper_detected"
    assert {f["what"] for f in r.json["data"]["findings"]} == {
        "config", "hooks/reference-transaction", "hooks/post-checkout"}
    assert not proof.exists()

    # A person looks, removes what was planted: the join goes through.
    git(repo, "config", "--unset", "core.hooksPath")
    (repo / ".git/hooks/reference-transaction").unlink()
    (repo / ".git/hooks/post-checkout").unlink()
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert not proof.exists()


def test_doctor_reports_tamper_and_accept_rebaselines(split3, hf):
    repo = split3["repo"]
    write(repo, {".git/info/exclude": "*.secret\n"})
    all_done(split3, hf)
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1  # a problem to look at
    assert r.json["error"]["hint"] == "look at the change; then `hf doctor --accept`"
    assert any(f["what"] == "tamper" and "info/exclude changed" in f["detail"]
               and f["level"] == "problem" for f in r.json["data"]["findings"])
    assert hf("join", "b1", cwd=repo).code == 1
    r = hf("doctor", "--accept", "--dry-run", cwd=repo)
    assert hf("join", "b1", "--dry-run", cwd=repo).code == 1  # dry run accepted nothing
    r = hf("doctor", "--accept", cwd=repo)
    assert r.code == 0 and "tamper-accepted: b1: info/exclude changed" in r.out
    assert hf("join", "b1", cwd=repo).code == 0
    assert '"guard-accept"' in (repo / ".git/hf/audit.log").read_text()


def test_gits_own_repack_writing_info_refs_is_not_tamper(split3, hf):
    """`git gc --auto` after a big commit in a part repacks, and the repack runs
    update-server-info: `info/refs` appears, written by git, not by a part."""
    repo = split3["repo"]
    git(split3["api"], "repack", "-q", "-a", "-d")  # (what gc --auto runs)
    assert (repo / ".git/info/refs").exists()
    all_done(split3, hf)
    r = hf("doctor", "--json", cwd=repo)
    assert not any(f["what"] == "tamper" for f in r.json["data"]["findings"]), r.out
    assert hf("join", "b1", cwd=repo).code == 0


def test_the_persons_ordinary_config_writes_are_not_tamper_but_what_runs_is(repo, hf,
                                                                            tmp_path):
    """`git remote add`, `git push -u`, `git submodule init` and git-lfs's first run
    write where branches track and remotes are into the shared config: the join goes
    on. A setting that makes git run something, and the URL of a remote the split
    saw changed to another, still stop it, named."""
    git(repo, "remote", "add", "up", "https://example.org/up.git")
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    api = tmp_path / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    assert hf("done", cwd=api).code == 0
    bare = tmp_path / "pub.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "pub", str(bare))
    git(repo, "push", "-q", "-u", "pub", "main")
    git(repo, "config", "submodule.lib.url", "https://example.org/lib.git")
    git(repo, "config", "submodule.lib.active", "true")
    git(repo, "config", "lfs.repositoryformatversion", "0")
    r = hf("join", "b1", "--dry-run", "--json", cwd=repo)
    assert r.code == 0, r.out
    for setting, shown in ((("core.fsmonitor", "./watch.sh"), "+core.fsmonitor=./watch.sh"),
                           (("remote.up.url", "https://elsewhere.example/x.git"),
                            "+remote.up.url=https://elsewhere.example/x.git"),
                           (("remote.new.url", "ext::sh -c touch% /tmp/x"),
                            "+remote.new.url=ext::sh -c touch% /tmp/x")):
        before = (repo / ".git/config").read_bytes()
        git(repo, "config", *setting)
        r = hf("join", "b1", "--dry-run", "--json", cwd=repo)
        assert r.code == 1 and r.json["error"]["code"] == "tamper_detected", (setting, r.out)
        assert shown in r.json["error"]["message"], r.json["error"]["message"]
        (repo / ".git/config").write_bytes(before)
    assert hf("join", "b1", cwd=repo).code == 0


def test_main_moved_in_the_main_tree_by_hf_commit_or_plain_git_is_not_tamper(split3, hf):
    repo = split3["repo"]
    all_done(split3, hf)
    write(repo, {"tools/run.sh": "#!/bin/sh\necho lead\n"})
    r = hf("commit", "-m", "lead fix", "tools/run.sh", cwd=repo)
    assert r.code == 0, r.err
    assert hf("join", "b1", "--dry-run", cwd=repo).code == 0

    write(repo, {"tools/other.sh": "x\n"})
    git(repo, "add", "tools/other.sh")
    git(repo, "commit", "-qm", "plain commit in main")
    # the person's own commit in the main tree (logged in its HEAD reflog) is no tamper
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert "plain commit in main" in git(repo, "log", "--format=%s", "-3")


def test_main_moved_from_a_part_with_hooks_disabled_is_caught(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "sneaky\n"})
    git(api, "commit", "-qam", "sneaky")
    tip = git(api, "rev-parse", "HEAD").strip()
    proc = real(api, "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/main", tip)
    assert proc.returncode == 0  # layers 1-2 can be bypassed by a determined process ...
    all_done(split3, hf)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1  # ... layer 5 makes it visible
    assert "refs/heads/main moved" in r.err


def test_a_part_branch_deleted_or_rewritten_and_the_sweep_function(split3, hf):
    repo = split3["repo"]
    ws = Workspace.open(repo)
    batch = ws.store.load_batch("b1")
    assert fingerprint.check(ws, batch) == []
    orphan = git(repo, "commit-tree", "-m", "unrelated",
                 git(repo, "rev-parse", "HEAD^{tree}").strip()).strip()
    real(split3["ui"], "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/hf/b1/ui",
         orphan)
    findings = fingerprint.check(ws, batch)
    assert [(f.what, f.change) for f in findings] == [("refs/heads/hf/b1/ui", "rewritten")]
    assert "no longer descends from the base" in findings[0].line()


def test_the_sweep_reports_tampering_and_audits_it(split3, hf):
    repo = split3["repo"]
    hook = repo / ".git" / "hooks" / "post-merge"
    hook.write_text("#!/bin/sh\necho planted\n")
    hook.chmod(0o755)
    r = hf("sweep", "--repo", str(repo), "--json", cwd=repo)
    assert r.code == 0, r.out
    tamper = r.json["data"]["repos"][0]["tamper"]
    assert tamper and tamper[0]["batch"] == "b1" and "post-merge" in tamper[0]["finding"]
    assert '"sweep-tamper"' in (repo / ".git/hf/audit.log").read_text()
    human = hf("sweep", "--repo", str(repo), "--dry-run", cwd=repo)
    assert "tamper b1:" in human.out and "post-merge" in human.out


def test_a_hook_whose_mode_alone_changed_stops_the_join_until_accepted(repo, hf):
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "pre-commit").chmod(0o755)  # the repository's own check, on
    (hooks / "post-checkout").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "post-checkout").chmod(0o644)  # a hook file git does not run
    r = hf("split", "b1", "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / "b1" / "api"
    write(api, {"src/api/orders.py": "def orders():\n    return [1]\n"})
    for name in ("api", "ui"):
        assert hf("done", cwd=repo.parent / "repo.hf" / "b1" / name).code == 0
    contents = {name: (hooks / name).read_bytes() for name in ("pre-commit", "post-checkout")}
    # From a part: the repository's check turned off, another hook turned on.
    (hooks / "pre-commit").chmod(0o644)
    (hooks / "post-checkout").chmod(0o755)
    assert {name: (hooks / name).read_bytes() for name in contents} == contents
    head = git(repo, "rev-parse", "HEAD")

    r = hf("join", "b1", cwd=repo)
    assert r.code == 1
    line = r.err.splitlines()[0]
    assert line.startswith("hf: error: batch b1: 2 shared thing(s) changed since the split")
    assert "hooks/pre-commit changed: mode 0o755 -> 0o644" in line
    assert "hooks/post-checkout changed: mode 0o644 -> 0o755" in line
    assert git(repo, "rev-parse", "HEAD") == head
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.json["error"]["code"] == "tamper_detected"
    assert sorted((f["what"], f["change"]) for f in r.json["data"]["findings"]) == [
        ("hooks/post-checkout", "changed"), ("hooks/pre-commit", "changed")]

    r = hf("doctor", "--accept", cwd=repo)
    assert r.code == 0, r.err
    assert "tamper-accepted: b1: hooks/pre-commit changed: mode 0o755 -> 0o644" in r.out
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert git(repo, "rev-parse", "HEAD^") == head
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [1]\n"


def test_a_move_that_only_says_it_is_hfs_is_reported(split3, hf):
    """The reflog message is anyone's to write: a move of main with the message
    `hf join b1` that hf's audit log does not hold is tamper; hf's own joins and
    commits (in the log) are not."""
    repo = split3["repo"]
    all_done(split3, hf)
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    forged = git(repo, "commit-tree", tree, "-p", head, "-m", "forged").strip()
    # from a part, hooks off: logged in main's reflog only, with hf's words
    git(split3["api"], "-c", "core.hooksPath=/dev/null", "update-ref", "-m", "hf join b1",
        "refs/heads/main", forged, head)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "tamper_detected"
    assert "refs/heads/main" in r.json["error"]["message"]
    git(split3["api"], "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/main",
        head, forged)
    assert hf("doctor", "--accept", cwd=repo).code == 0  # a person looked
    write(repo, {"tools/run.sh": "#!/bin/sh\necho lead\n"})
    assert hf("commit", "-m", "lead fix", "tools/run.sh", cwd=repo).code == 0
    assert hf("join", "b1", "--dry-run", cwd=repo).code == 0, "hf's own commit is no tamper"


def test_a_rewritten_part_branch_accepted_after_a_look_is_not_reported_again(split3, hf):
    """`hf doctor --accept` takes the rewritten tip as the baseline: the join goes
    through with the part's files as they are; a further rewrite is reported."""
    repo, ui = split3["repo"], split3["ui"]
    orphan = git(repo, "commit-tree", "-m", "unrelated",
                 git(repo, "rev-parse", "HEAD^{tree}").strip()).strip()
    real(ui, "-c", "core.hooksPath=/dev/null", "reset", "-q", "--hard", orphan)
    write(ui, {"src/ui/page.html": "<h1>after the reset</h1>\n"})
    all_done(split3, hf)
    assert "rewritten" in hf("join", "b1", cwd=repo).err
    accepted = hf("doctor", "--accept", cwd=repo)
    assert "tamper-accepted: b1: refs/heads/hf/b1/ui rewritten" in accepted.out
    again = hf("doctor", cwd=repo)
    assert "rewritten" not in again.out, again.out
    ws = Workspace.open(repo)
    assert fingerprint.check(ws, ws.store.load_batch("b1")) == []
    other = git(repo, "commit-tree", "-m", "another", orphan + "^{tree}").strip()
    real(ui, "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/hf/b1/ui", other)
    findings = fingerprint.check(ws, ws.store.load_batch("b1"))
    assert [(f.what, f.change) for f in findings] == [("refs/heads/hf/b1/ui", "rewritten")]
    real(ui, "-c", "core.hooksPath=/dev/null", "update-ref", "refs/heads/hf/b1/ui", orphan)
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/ui/page.html").read_text() == "<h1>after the reset</h1>\n"


def test_a_lost_worktree_left_out_of_the_join_is_not_tamper(split3, hf):
    """A part whose worktree was lost, dropped (or blocked and left out with
    --partial): git no longer reaches its config.worktree, and the join of the
    others is not refused for it."""
    repo = split3["repo"]
    all_done(split3, hf)
    shutil.rmtree(split3["ui"])
    assert hf("drop", "b1/ui", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 0, r.err
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return [1]\n"


def test_a_removed_config_worktree_is_reported_whatever_its_record_s_gitdir_says(split3, hf):
    """Whether a worktree is gone is judged from the part's folder: pointing the
    record's own `gitdir` elsewhere does not hide a deleted config.worktree (the
    guard's hooks path) from the join."""
    repo = split3["repo"]
    all_done(split3, hf)
    record = repo / ".git/worktrees/api"
    (record / "gitdir").write_text("/nonexistent/.git\n")
    (record / "config.worktree").unlink()
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1 and "worktrees/api/config.worktree removed" in r.err, r.err


def test_a_replace_ref_made_after_the_split_stops_the_join_until_accepted(split3, hf):
    """`refs/replace/<commit>` makes every git command show another commit in place
    of main's (a README the person never wrote in `git show`): a process in a
    part without the sandbox can make one in the shared refs. The join refuses and
    names it; once the person looked, `hf doctor --accept` takes it."""
    repo, api = split3["repo"], split3["api"]
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    fake = git(repo, "commit-tree", tree, "-m", "a forged history").strip()
    # (`git replace` in the part is refused by its hooks; a file written is not)
    refused = subprocess.run(["git", "replace", head, fake], cwd=api, capture_output=True,
                             check=False, text=True)
    assert refused.returncode != 0 and "refused" in refused.stderr
    (repo / ".git/refs/replace").mkdir(exist_ok=True)
    (repo / ".git/refs/replace" / head).write_text(fake + "\n")
    assert "forged" in git(repo, "log", "-1", "--format=%s")  # what the person sees
    all_done(split3, hf)
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "tamper_detected"
    assert f"refs/replace/{head} added" in r.json["error"]["message"]
    assert hf("doctor", "--accept", cwd=repo).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
