"""The sandbox around `hf run`: each attack class run the way an agent would (a
real process in the part, the real git binary, hooks off), refused inside the
sandbox with nothing outside the part changed; and the normal work of an agent
(edits, git, a real pytest run, hf done) still works there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git, hf_proc, snapshot
from liveness_support import agent_script, alive, part_record

from hf_fanout.guard import sandbox

FOUND = sandbox.availability()
needs_sandbox = pytest.mark.skipif(not FOUND.usable, reason=f"no sandbox: {FOUND.reason}")
REAL_GIT = shutil.which("git") or "git"


def _state(repo: Path) -> dict[str, object]:
    """What a user would see change outside the part: the main tree, its index
    and HEAD, every ref, the shared config files and hf's records (but the
    attacking part's own, which its worker changes)."""
    common = repo / ".git"
    records = {str(p.relative_to(common)): p.read_bytes()
               for p in sorted((common / "hf" / "batches").rglob("*.json"))
               if "heartbeats" not in p.parts and p.name != "api.json"}
    shared = {name: (common / name).read_bytes() if (common / name).exists() else None
              for name in ("config", "config.worktree", "packed-refs")}
    return {"main": snapshot(repo), "records": records, "shared": shared,
            "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)")}


ATTACKS = r'''
import os, subprocess, sys, json
REPO, UI, GIT, OUT = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
COMMON = os.path.join(REPO, ".git")
NOHOOKS = ["-c", "core.hooksPath=/dev/null"]
results = {}

def attempt(name, action):
    try:
        action()
        results[name] = "done"
    except subprocess.CalledProcessError as exc:
        results[name] = "failed: " + (exc.stderr or b"").decode(errors="replace")[-300:]
    except OSError as exc:
        results[name] = "failed: " + str(exc)

def git(*args, env=None, cwd=None):
    subprocess.run([GIT, *NOHOOKS, *args], check=True, capture_output=True, cwd=cwd,
                   env={**os.environ, **(env or {})})

def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)

head = subprocess.run([GIT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
# the real git reaches the main tree
attempt("main tree file", lambda: write(os.path.join(REPO, "README.md"), "owned\n", "a"))
attempt("git -C main commit", lambda: git("-C", REPO, "commit", "--allow-empty", "-m", "x"))
attempt("GIT_DIR commit", lambda: git("commit", "--allow-empty", "-m", "x",
                                      env={"GIT_DIR": COMMON, "GIT_WORK_TREE": REPO}))
attempt("update-ref main as hf join", lambda: git("-C", REPO, "update-ref", "-m",
                                                  "hf join b1", "refs/heads/main", head))
attempt("GIT_INDEX_FILE main index", lambda: git(
    "rm", "--cached", "-q", "README.md", env={"GIT_INDEX_FILE": os.path.join(COMMON, "index")}))
attempt("forged reflog line", lambda: write(
    os.path.join(COMMON, "logs", "refs", "heads", "main"), "0 1 x <x> 0 +0000\thf join\n", "a"))
# another part's work
attempt("other part's file", lambda: write(os.path.join(UI, "src", "ui", "app.js"), "x\n"))
tree = subprocess.run([GIT, "rev-parse", "HEAD^{tree}"], capture_output=True,
                      text=True).stdout.strip()
forged = subprocess.run([GIT, "commit-tree", tree, "-p", head, "-m", "forged"],
                        capture_output=True, text=True).stdout.strip()
attempt("other part's branch", lambda: git("update-ref", "refs/heads/hf/b1/ui", forged))
attempt("remove other worktree", lambda: git("worktree", "remove", "--force", UI))
# code planted for the user's next git command
attempt("fsmonitor in main config.worktree", lambda: write(
    os.path.join(COMMON, "config.worktree"), "[core]\n\tfsmonitor = touch /tmp/pwned\n"))
attempt("fsmonitor in common config", lambda: git(
    "config", "--file", os.path.join(COMMON, "config"), "core.fsmonitor", "touch /tmp/x"))
attempt("hook", lambda: write(os.path.join(COMMON, "hooks", "post-checkout"), "#!/bin/sh\n"))
attempt("user gitconfig", lambda: write(os.path.expanduser("~/.gitconfig"),
                                        "[core]\n\tfsmonitor = x\n", "a"))
attempt("main .hf.toml", lambda: write(os.path.join(REPO, ".hf.toml"), 'setup = ["x"]\n'))
# code the person's own programs run: python's user site (every python start, hf's
# included) and a program on PATH in the home, found before /usr/bin
def plant_pth():
    import site
    os.makedirs(site.getusersitepackages(), exist_ok=True)
    write(os.path.join(site.getusersitepackages(), "zz.pth"), "import os\n")
attempt("user site .pth", plant_pth)
attempt("git on PATH in home", lambda: write(os.path.expanduser("~/bin/git"), "#!/bin/sh\n"))
# what the person's ~/.gitconfig pulls in: an included file, its global hooks folder
attempt("included gitconfig", lambda: write(os.path.expanduser("~/.gitconfig.local"),
                                            "[core]\n\tfsmonitor = x\n", "a"))
def plant_global_hook():
    os.makedirs(os.path.expanduser("~/.githooks"), exist_ok=True)
    write(os.path.expanduser("~/.githooks/pre-commit"), "#!/bin/sh\n")
attempt("global hook", plant_global_hook)
attempt("delete baseline", lambda: os.unlink(os.path.join(COMMON, "hf", "guard", "b1.json")))
# hf's own state
def widen():
    path = os.path.join(COMMON, "hf", "batches", "b1", "parts", "api.json")
    record = json.load(open(path))
    record["owns"] = ["**"]
    write(path, json.dumps(record))
attempt("widen ownership", widen)
gitdir = subprocess.run([GIT, "rev-parse", "--absolute-git-dir"], capture_output=True,
                        text=True).stdout.strip()
attempt("delete marker", lambda: os.unlink(os.path.join(gitdir, "hf-part.json")))
attempt("unset config.worktree", lambda: write(os.path.join(gitdir, "config.worktree"), ""))
# code the guard's wrapper runs outside the sandbox (the fast file it sources, found
# through the worktree's .git)
attempt("plant fast file", lambda: write(os.path.join(gitdir, "hf-fast.sh"),
                                         "touch /tmp/pwned\n"))
attempt("redirect .git", lambda: write(".git", "gitdir: /tmp\n"))
attempt("trust list", lambda: write(os.path.join(
    os.environ["XDG_STATE_HOME"], "hf", "trusted.json"), "{}"))
# recovery data
def expire_and_prune():
    git("reflog", "expire", "--all", "--expire=now", cwd=REPO)
attempt("reflog expire main", expire_and_prune)
attempt("gc prune", lambda: git("gc", "--prune=now", "-q"))
def delete_objects():
    # the repository's own objects (the part's new ones are its own to delete)
    shared = os.path.join(COMMON, "hf", "shared-objects")
    found = [os.path.join(d, n) for d, _dirs, names in os.walk(shared) for n in names]
    deleted, last = 0, OSError("no object found to delete")
    for path in found:
        try:
            os.unlink(path)
            deleted += 1
        except OSError as exc:
            last = exc
    if not deleted:
        raise last
attempt("delete an object", delete_objects)
json.dump(results, open(OUT, "w"), indent=1)
'''


@needs_sandbox
def test_every_attack_class_fails_inside_the_sandbox_and_nothing_outside_changes(
        split3, tmp_path):
    repo, api, ui = split3["repo"], split3["api"], split3["ui"]
    script = tmp_path / "attacks.py"
    script.write_text(ATTACKS)
    out = tmp_path / "results.json"
    before = _state(repo)
    home_bin = Path.home() / "bin"
    home_bin.mkdir()
    git(repo, "config", "--global", "include.path", "~/.gitconfig.local")
    git(repo, "config", "--global", "core.hooksPath", str(Path.home() / ".githooks"))
    env = {**os.environ, "PATH": f"{home_bin}{os.pathsep}{os.environ['PATH']}"}
    r = hf_proc("run", "--", sys.executable, str(script), str(repo), str(ui), REAL_GIT,
                str(out), cwd=api, env=env)
    assert r.returncode == 0, r.stderr
    assert "no sandbox" not in r.stderr
    results = json.loads(out.read_text())
    assert len(results) == 28
    succeeded = [name for name, how in results.items() if how == "done"]
    assert succeeded == [], results
    assert all("Read-only file system" in how or "Device or resource busy" in how
               or "Permission denied" in how for how in results.values()), results
    assert _state(repo) == before
    assert (ui / "src" / "ui" / "app.js").exists()
    record = part_record(repo, "b1", "api")
    assert record["worker"]["sandbox"] == "bubblewrap" and record["owns"] == ["src/api/**"]
    fsck = subprocess.run([REAL_GIT, "fsck", "--strict"], cwd=repo, capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


def test_without_the_sandbox_hf_run_says_so_and_the_join_reports_what_reached_out(
        split3, hf, tmp_path):
    repo, api, ui = split3["repo"], split3["api"], split3["ui"]
    script = tmp_path / "attacks.py"
    script.write_text(ATTACKS)
    out = tmp_path / "results.json"
    r = hf_proc("run", "--no-sandbox", "--", sys.executable, str(script), str(repo), str(ui),
                REAL_GIT, str(out), cwd=api)
    assert "no sandbox for b1/api: switched off" in r.stderr
    results = json.loads(out.read_text())
    assert results["fsmonitor in common config"] == "done", "nothing stops it unsandboxed"
    assert results["widen ownership"] == "done"
    for part in ("api", "ui", "docs"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    head = git(repo, "rev-parse", "HEAD")
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code != 0 and git(repo, "rev-parse", "HEAD") == head, "nothing joined"
    assert "missing worktree: ui" in r.json["error"]["message"]
    r = hf("doctor", "--json", cwd=repo)
    assert r.code != 0
    found = " | ".join(f["detail"] for f in r.json["data"]["findings"])
    for seen in ("config changed", "config.worktree changed", "hooks/post-checkout added",
                 "b1/api ownership changed", ".hf.toml added"):
        assert seen in found, (seen, found)


def _project(api: Path) -> None:
    (api / "src" / "api" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (api / "src" / "api" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")


@needs_sandbox
def test_normal_work_runs_inside_the_sandbox_and_joins(split3, hf, tmp_path):
    repo, api = split3["repo"], split3["api"]
    _project(api)
    script = agent_script(tmp_path, "worker", f"""
        import subprocess
        def run(*args, **kw):
            return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)
        tests = run({sys.executable!r}, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "src/api", cwd=os.getcwd(), env={{**os.environ, "PYTHONPATH": "src/api"}})
        open({str(tmp_path / "pytest.txt")!r}, "w").write(tests.stdout)
        git = {REAL_GIT!r}
        run(git, "add", "src/api")
        run(git, "commit", "-q", "-m", "calc with its test")
        for args in (["log", "--oneline"], ["diff", "HEAD~1", "--stat"], ["status"],
                     ["stash", "list"]):
            run(git, *args)
        open("src/api/orders.py", "a").write("# more\\n")
        made = subprocess.run([{sys.executable!r}, "-m", "hf_fanout", "commit", "-m", "orders",
                               "src/api/orders.py"], capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        run({sys.executable!r}, "-m", "hf_fanout", "heartbeat")
        # Claude Code's hooks inside the sandbox: the state is recorded, a write
        # outside ownership is refused back to the agent
        run({sys.executable!r}, "-m", "hf_fanout", "agent-event", "stop", input="{{}}")
        refused = subprocess.run([{sys.executable!r}, "-m", "hf_fanout", "agent-event",
                                  "pre-tool-use"], capture_output=True, text=True,
                                 input=json.dumps({{"tool_name": "Write", "tool_input":
                                                   {{"file_path": "src/ui/app.js"}}}}))
        open({str(tmp_path / "refused.txt")!r}, "w").write(
            f"{{refused.returncode}} {{refused.stderr}}")
        run({sys.executable!r}, "-m", "hf_fanout", "done", "--note", "calc added")
    """)
    r = hf_proc("run", "--", sys.executable, str(script), cwd=api)
    assert r.returncode == 0, r.stderr
    assert "1 passed" in (tmp_path / "pytest.txt").read_text()
    code, reason = (tmp_path / "refused.txt").read_text().split(" ", 1)
    assert code == "2" and "ui" in reason, reason
    agent_state = json.loads((repo / ".git/hf/batches/b1/agent/api/state.json").read_text())
    assert agent_state["event"] == "pre-tool-use" and agent_state["state"] == "working"
    record = part_record(repo, "b1", "api")
    assert record["state"] == "done" and record["worker"]["sandbox"] == "bubblewrap"
    assert git(repo, "log", "--format=%s", "hf/b1/api").splitlines()[:2] == \
        ["orders", "calc with its test"]
    for other in ("ui", "docs"):
        assert hf("done", cwd=split3[other]).code == 0
    tip = git(repo, "rev-parse", "hf/b1/api").strip()
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert (repo / "src" / "api" / "calc.py").read_text().startswith("def add")
    assert "# more" in (repo / "src" / "api" / "orders.py").read_text()
    fsck = subprocess.run([REAL_GIT, "fsck", "--strict"], cwd=repo, capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr
    # gc moves the part's private objects home: history stays readable afterwards
    assert hf("gc", "b1", cwd=repo).code == 0, "gc"
    assert not (repo / ".git" / "hf" / "objects" / "b1").exists()
    assert git(repo, "log", "--format=%s", "-1", tip).strip() == "orders"
    fsck = subprocess.run([REAL_GIT, "fsck", "--strict"], cwd=repo, capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


@needs_sandbox
def test_a_request_hf_did_not_write_is_rejected_and_audited(split3, tmp_path):
    repo, api = split3["repo"], split3["api"]
    script = agent_script(tmp_path, "forger", """
        inbox = os.path.join(os.environ["HF_REPO"], "hf", "inbox", "b1", "api")
        open(os.path.join(inbox, "0-1.json"), "w").write(json.dumps(
            {"action": "widen", "owns": ["**"]}))
        open(os.path.join(inbox, "0-2.json"), "w").write("not json")
    """)
    r = hf_proc("run", "--", sys.executable, str(script), cwd=api)
    assert r.returncode == 0, r.stderr
    record = part_record(repo, "b1", "api")
    assert record["owns"] == ["src/api/**"] and record["state"] == "running"
    audit = [json.loads(line) for line in (repo / ".git" / "hf" / "audit.log").read_text()
             .splitlines()]
    rejected = [a for a in audit if a["action"] == "inbox-rejected"]
    assert [a["why"] for a in rejected] == ["unknown request 'widen'", "not a request hf writes"]
    assert not list((repo / ".git" / "hf" / "inbox" / "b1" / "api").iterdir())


@needs_sandbox
def test_a_handoff_from_the_sandbox_is_queued_by_hf_outside(split3, hf, tmp_path):
    """The queue is read-only in the sandbox: `hf handoff` there asks, the part's
    `hf run` writes the entry (from the part, checked like the command's own)."""
    repo, api = split3["repo"], split3["api"]
    said = tmp_path / "said.txt"
    script = agent_script(tmp_path, "handing", f"""
        import subprocess
        def hf(*args):
            return subprocess.run([sys.executable, "-m", "hf_fanout", *args],
                                  capture_output=True, text=True)
        good = hf("handoff", "--task", "calc", "--next", "add division", "--tests",
                  "3 passed", "--files", "src/api/calc.py")
        bad = hf("handoff", "--task", "calc", "--next", "x", "--status", "sideways")
        long = hf("handoff", "--task", "calc", "--next", "y" * 20000)
        open({str(said)!r}, "w").write(json.dumps([[r.returncode, r.stdout, r.stderr]
                                                   for r in (good, bad, long)]))
        inbox = os.path.join(os.environ["HF_REPO"], "hf", "inbox", "b1", "api")
        open(os.path.join(inbox, "0-1.json"), "w").write(json.dumps(
            {{"action": "handoff", "task": "forged", "text": "z", "status": "nowhere"}}))
    """)
    r = hf_proc("run", "--", sys.executable, str(script), cwd=api)
    assert r.returncode == 0, r.stderr
    good, bad, long = json.loads(said.read_text())
    assert good[0] == 0 and "queued by hf outside the sandbox" in good[1], good
    assert bad[0] == 2 and "sideways" in bad[2], bad
    assert long[0] == 2 and "too long to pass out of the sandbox" in long[2], long
    listed = hf("queue", "--json", cwd=repo).json["data"]["entries"]
    assert [(e["task"], e["next"]) for e in listed] == [("calc", "add division")]
    header = Path(listed[0]["path"]).read_text()
    assert "tests: 3 passed" in header and "files: src/api/calc.py" in header
    assert f"from: {api} (b1/api, sandbox)" in header
    audit = [json.loads(line) for line in (repo / ".git" / "hf" / "audit.log").read_text()
             .splitlines()]
    assert [a["why"] for a in audit if a["action"] == "inbox-rejected"] == \
        ["bad --status 'nowhere'"]


@needs_sandbox
def test_a_fifo_or_a_link_in_the_inbox_is_rejected_without_waiting_on_it(split3, hf,
                                                                          tmp_path):
    """An agent makes a FIFO (a read of it would wait for a writer forever) and a
    link to a file outside among its requests: its `hf run` ends with the agent,
    both are rejected and audited, and the join after does not hang on them."""
    repo, api = split3["repo"], split3["api"]
    script = agent_script(tmp_path, "plumber", """
        inbox = os.path.join(os.environ["HF_REPO"], "hf", "inbox", "b1", "api")
        os.mkfifo(os.path.join(inbox, "0-1.json"))
        os.symlink("/etc/hostname", os.path.join(inbox, "0-2.json"))
    """)
    r = hf_proc("run", "--", sys.executable, str(script), cwd=api, timeout=60)
    assert r.returncode == 0, r.stderr
    audit = [json.loads(line) for line in (repo / ".git" / "hf" / "audit.log").read_text()
             .splitlines()]
    assert [a["why"] for a in audit if a["action"] == "inbox-rejected"] == [
        "not a request hf writes", "not a request hf writes"]
    inbox_dir = repo / ".git" / "hf" / "inbox" / "b1" / "api"
    assert not list(inbox_dir.iterdir())
    os.mkfifo(inbox_dir / "0-3.json")  # (one left for the join to meet)
    for part in ("api", "ui", "docs"):
        assert hf("done", f"b1/{part}", cwd=repo).code == 0
    r = hf_proc("join", "b1", cwd=repo, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not list(inbox_dir.iterdir())


@needs_sandbox
def test_a_forged_object_in_a_parts_private_store_is_refused_and_never_moved_home(
        split3, hf, tmp_path):
    """The agent writes, in its private object store, an object named as main's
    README.md blob with other content (git reads objects without hashing them
    again). The join refuses, naming the file; gc does not move it into the
    repository's store: README.md's blob stays main's own, and fsck is clean."""
    repo, api = split3["repo"], split3["api"]
    readme = git(repo, "rev-parse", "HEAD:README.md").strip()
    script = agent_script(tmp_path, "forger", f"""
        import zlib
        objects = os.path.join(os.environ["HF_REPO"], "objects", {readme[:2]!r})
        os.makedirs(objects, exist_ok=True)
        with open(os.path.join(objects, {readme[2:]!r}), "wb") as f:
            f.write(zlib.compress(b"blob 5\\0EVIL\\n"))
        pack = os.path.join(os.environ["HF_REPO"], "objects", "pack", "pack-" + "0" * 40)
        for suffix in (".pack", ".idx"):  # a pack whose index is not of it
            with open(pack + suffix, "wb") as f:
                f.write(b"PACK" if suffix == ".pack" else b"\\377tOc" + bytes(1100))
    """)
    r = hf_proc("run", "--", sys.executable, str(script), cwd=api)
    assert r.returncode == 0, r.stderr
    forged = repo / ".git" / "hf" / "objects" / "b1" / "api" / readme[:2] / readme[2:]
    assert forged.is_file()
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", cwd=repo)
    assert r.code == 1
    assert r.err.startswith("hf: error: part 'api': its private object store holds objects "
                            f"that are not what their names say: {forged}, "), r.err
    assert f"pack-{'0' * 40}.idx" in r.err
    r = hf("doctor", "--json", cwd=repo)
    found = [f for f in r.json["data"]["findings"] if f["what"] == "b1/api"]
    assert [f["level"] for f in found] == ["problem"], found
    assert "3 file(s) whose objects are not what their names say" in found[0]["detail"]
    assert hf("drop", "b1", cwd=repo).code == 0
    assert hf("gc", "b1", "--force", cwd=repo).code == 0
    assert not (repo / ".git" / "hf" / "objects" / "b1").exists()
    assert git(repo, "cat-file", "-p", readme) == (repo / "README.md").read_text()
    fsck = subprocess.run([REAL_GIT, "fsck", "--strict"], cwd=repo, capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


def test_a_done_left_in_the_inbox_is_applied_by_the_join(split3, hf):
    """A sandboxed `hf done` whose `hf run` died before applying it: the join (and
    the sweep) apply it through the state machine before they look."""
    from hf_fanout.core import inbox

    repo = split3["repo"]
    for part in ("api", "ui", "docs"):
        inbox.post(repo / ".git", "b1", part, "done", note="finished")
    assert part_record(repo, "b1", "api")["state"] == "running"
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert part_record(repo, "b1", "api")["state"] == "joined"
    assert not list((repo / ".git" / "hf" / "inbox" / "b1" / "api").iterdir())


PLANT_NESTED_GITDIR = r'''
set -e
evil=$1
mkdir -p "$evil"
cp "$(git rev-parse --absolute-git-dir)/hf-part.json" "$evil/"
printf 'echo planted > %s/ran\n' "$evil" > "$evil/hf-fast.sh"
printf 'gitdir: %s\n' "$evil" > src/api/.git
'''


@needs_sandbox
def test_a_git_dir_an_agent_points_a_nested_git_file_at_runs_nothing_outside(split3, tmp_path):
    """The agent writes `src/api/.git` naming a git dir of its own in /tmp, with a copy
    of the part's marker and a fast file of its own: the guard's wrapper, run later
    by a person in that directory outside the sandbox, sourced that file."""
    import os

    api = split3["api"]
    evil = tmp_path / "evil-gitdir"
    script = tmp_path / "plant.sh"
    script.write_text(PLANT_NESTED_GITDIR)
    r = hf_proc("run", "--", "sh", str(script), str(evil), cwd=api)
    assert r.returncode == 0, r.stderr
    assert (api / "src/api/.git").is_file() and (evil / "hf-fast.sh").is_file()
    guard_env = hf_proc("guard", "env", cwd=api).stdout
    person = subprocess.run(["sh", "-c", guard_env + "\ngit --version; git status\n"],
                            cwd=api / "src/api", capture_output=True, text=True,
                            env=os.environ.copy(), check=False)
    assert "git version" in person.stdout, person.stderr
    assert not (evil / "ran").exists()  # the agent's code never ran out here


@needs_sandbox
def test_an_agent_that_kills_the_sandbox_process_is_ended_with_it(split3, hf, tmp_path):
    """bubblewrap's own process killed from inside (or by anyone): what still runs in
    the sandbox, the agent and what it started in a session of its own, is ended by
    `hf run`, so the part never has an agent at work its record says exited."""
    repo, api = split3["repo"], split3["api"]
    pids = tmp_path / "pids"
    script = agent_script(tmp_path, "hostile", f"""
        import subprocess
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                  start_new_session=True)
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{helper.pid}} {{os.getppid()}}")
        time.sleep(0.3)
        os.kill(os.getppid(), signal.SIGKILL)  # the sandbox's process, bubblewrap
        while True:
            open("src/api/still.txt", "a").write("x")
            time.sleep(0.1)
    """)
    started = time.monotonic()
    r = hf_proc("run", "--", sys.executable, str(script), cwd=api, timeout=60)
    assert time.monotonic() - started < 30
    agent, helper, parent = (int(x) for x in pids.read_text().split())
    assert not alive(agent) and not alive(helper)
    assert "still in it" in r.stderr and "ended them" in r.stderr, r.stderr
    record = part_record(repo, "b1", "api")
    assert record["exit"]["signal"] == signal.SIGKILL and record["exit"]["left_in_sandbox"] == 2
    assert parent == record["worker"]["pid"]
    # nothing writes in the part any more, and a new worker may start
    size = (api / "src/api/still.txt").stat().st_size
    time.sleep(0.4)
    assert (api / "src/api/still.txt").stat().st_size == size
    again = hf_proc("run", "--", sys.executable, "-c", "pass", cwd=api)
    assert again.returncode == 0, again.stderr


@needs_sandbox
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_persons_tmux_server_cannot_be_asked_to_run_a_command_from_inside(
        split3, tmp_path, monkeypatch):
    """tmux runs what a client asks (`tmux run-shell CMD`) as the person, outside the
    sandbox; its socket folder is hidden inside, so the agent cannot reach it."""
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    monkeypatch.setenv("TMUX_TMPDIR", str(sockets))
    monkeypatch.delenv("TMUX", raising=False)
    subprocess.run(["tmux", "new-session", "-d", "-s", "person"], check=True)
    try:
        outside, inside = tmp_path / "outside", tmp_path / "inside"
        subprocess.run(["tmux", "run-shell", f"touch {outside}"], check=True)
        assert outside.exists()  # (the server runs what it is asked)
        r = hf_proc("run", "--", "sh", "-c", f"tmux run-shell 'touch {inside}'; exit 0",
                    cwd=split3["api"])
        assert r.returncode == 0, r.stderr
        time.sleep(0.5)
        assert not inside.exists()
    finally:
        subprocess.run(["tmux", "kill-server"], check=False)


@needs_sandbox
def test_an_agent_starts_when_another_parts_branch_went_while_its_sandbox_was_made(split3):
    """A gc (or a drop) beside `hf run` deletes another part's branch after the sandbox
    listed the ref files it keeps read-only: the agent starts all the same, and the
    other parts' branches that are still there stay read-only inside."""
    from hf_fanout.core.workspace import Workspace

    repo = split3["repo"]
    ws = Workspace.open(repo)
    made = sandbox.prepare(ws, ws.store.load_part("b1", "api"), FOUND.path)
    git(repo, "update-ref", "-d", "refs/heads/hf/b1/ui")  # (gone before the agent starts)
    docs_ref = repo / ".git" / "refs" / "heads" / "hf" / "b1" / "docs"
    before = docs_ref.read_bytes()
    r = subprocess.run([*made.prefix, "sh", "-c", f"echo x > {docs_ref}; echo started"],
                       cwd=split3["api"], env={**os.environ, **made.env},
                       capture_output=True, text=True, check=False)
    assert r.stdout.strip() == "started", r.stderr
    assert "Read-only file system" in r.stderr
    assert docs_ref.read_bytes() == before


@needs_sandbox
def test_hf_run_says_the_sandbox_keeps_git_lfs_store_read_only(split3):
    """In a repository that uses git-lfs (its store `.git/lfs` is there), the agent's
    `git add` of an LFS file fails in the sandbox (git-lfs writes that store): hf run
    says so, with the ways on; without git-lfs it says nothing of it."""
    api = split3["api"]
    r = hf_proc("run", "--", "sh", "-c", "exit 0", cwd=api)
    assert r.returncode == 0 and "git-lfs" not in r.stderr, r.stderr
    (split3["repo"] / ".git" / "lfs" / "objects").mkdir(parents=True)
    r = hf_proc("run", "--", "sh", "-c", "exit 0", cwd=api)
    assert r.returncode == 0, r.stderr
    assert ("hf run: this repository uses git-lfs, whose store the sandbox of b1/api keeps "
            "read-only: the agent's `git add` of an LFS file fails there") in r.stderr
    assert "run this part with --no-sandbox" in r.stderr
