"""A ready environment in each new worktree: copied files, setup commands, ports."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git


def part_record(repo: Path, batch: str, part: str) -> dict:
    return json.loads((repo / ".git" / "hf" / "batches" / batch / "parts" / f"{part}.json")
                      .read_text())


def split(hf, repo: Path, *parts: str):
    args = []
    for p in parts:
        args += ["--part", p]
    return hf("split", "b1", *args, "--task", "t", "--json", cwd=repo)


def test_env_file_and_a_directory_are_copied_into_each_worktree(repo, hf):
    (repo / ".gitignore").write_text(".env\nnode_modules/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")
    (repo / ".env").write_text("API_KEY=secret\n")
    modules = repo / "node_modules" / "left-pad"
    modules.mkdir(parents=True)
    (modules / "index.js").write_text("module.exports = 1\n")
    (modules / "link").symlink_to("index.js")
    (repo / ".hf.toml").write_text('copy = [".env", "node_modules/", "missing.txt"]\n')

    r = split(hf, repo, "api=src/api/**", "ui=src/ui/**")
    assert r.code == 0, r.err
    for name in ("api", "ui"):
        wt = repo.parent / "repo.hf" / "b1" / name
        assert (wt / ".env").read_text() == "API_KEY=secret\n"
        assert (wt / "node_modules" / "left-pad" / "index.js").read_text() == \
            "module.exports = 1\n"
        assert (wt / "node_modules" / "left-pad" / "link").is_symlink()
        # a real copy (reflink where the filesystem can), not a link to the main tree
        assert not (wt / "node_modules").is_symlink()
        (wt / "node_modules" / "left-pad" / "index.js").write_text("changed\n")
        assert (modules / "index.js").read_text() == "module.exports = 1\n"
        env = part_record(repo, "b1", name)["extra"]["environment"]
        hows = {c["path"]: c["how"] for c in env["copied"]}
        assert hows[".env"] in ("reflink", "copy")
        assert hows["node_modules"] in ("reflink", "copy")
        assert env["warnings"] == ["copy: missing.txt does not exist in the main tree; "
                                   "not copied"]
        assert git(wt, "status", "--porcelain") == ""  # ignored: not a change of the part


def test_copy_fallback_symlink_and_a_warning_for_an_unignored_copy(repo, hf):
    (repo / "cache").mkdir()
    (repo / "cache" / "data.bin").write_bytes(b"\0" * 10)
    (repo / ".hf.toml").write_text('copy = ["cache"]\ncopy_fallback = "symlink"\n')
    r = split(hf, repo, "api=src/api/**")
    assert r.code == 0, r.err
    wt = repo.parent / "repo.hf" / "b1" / "api"
    env = part_record(repo, "b1", "api")["extra"]["environment"]
    how = env["copied"][0]["how"]
    assert how in ("reflink", "symlink")  # symlink only where reflink is not supported
    if how == "symlink":
        assert (wt / "cache").resolve() == (repo / "cache").resolve()
    assert (wt / "cache" / "data.bin").read_bytes() == b"\0" * 10
    assert any("cache is not ignored by git" in w for w in env["warnings"])
    r = hf("split", "b2", "--part", "api=src/api/**", cwd=repo)
    assert "warning: api: copy: cache is not ignored by git" in r.out


def test_failing_setup_blocks_that_part_with_the_log_tail(repo, hf):
    (repo / ".hf.toml").write_text(
        'setup = ["echo preparing $HF_PART", '
        '"if [ $HF_PART = ui ]; then echo npm ERR! missing peer; exit 7; fi", '
        '"echo after > .hf/after.txt"]\n')
    assert hf("trust", cwd=repo).code == 0
    r = split(hf, repo, "api=src/api/**", "ui=src/ui/**")
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b1"
    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"]
    states = {p["name"]: (p["state"], p["reason"]) for p in status}
    assert states["api"] == ("running", None)
    state, reason = states["ui"]
    assert state == "blocked"
    log = root / "ui" / ".hf" / "setup.log"
    assert reason.startswith(f"setup `if [ $HF_PART = ui ]; then echo npm ERR! missing peer; "
                             f"exit 7; fi` failed (exit 7), log {log}:")
    assert "preparing ui" in reason and "npm ERR! missing peer" in reason
    # the commands after the failing one did not run there; they did for api
    assert not (root / "ui" / ".hf" / "after.txt").exists()
    assert (root / "api" / ".hf" / "after.txt").read_text() == "after\n"
    assert "npm ERR! missing peer" in log.read_text()
    # the handoff file says so, and the tab is not opened by `hf open b1`
    assert "This part is **blocked**" in (root / "ui" / ".hf" / "TASK.md").read_text()
    r = hf("open", "b1", "--launcher", "print", "--json", cwd=repo)
    actions = {t["tab"]: t["action"] for t in r.json["data"]["tabs"]}
    assert actions == {"api": "printed", "ui": "skipped"}


def test_ports_differ_per_part_and_follow_port_base(repo, hf):
    (repo / ".hf.toml").write_text(
        'port_base = 5200\nsetup = ["echo $HF_PORT > .hf/port"]\n')
    assert hf("trust", cwd=repo).code == 0
    r = split(hf, repo, "api=src/api/**", "ui=src/ui/**", "docs=docs/**")
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / "b1"
    ports = [(root / n / ".hf" / "port").read_text().strip() for n in ("api", "ui", "docs")]
    assert ports == ["5200", "5201", "5202"]
    assert [part_record(repo, "b1", n)["extra"]["environment"]["port"]
            for n in ("api", "ui", "docs")] == [5200, 5201, 5202]
    assert "port: `5201`" in (root / "ui" / ".hf" / "TASK.md").read_text()


def test_unignored_copies_never_travel_to_the_join_or_count_as_outside(repo, hf):
    (repo / ".env").write_text("API_KEY=secret\n")
    (repo / "cache").mkdir()
    (repo / "cache" / "data.bin").write_bytes(b"\1" * 10)
    (repo / ".hf.toml").write_text('copy = [".env", "cache"]\n')
    r = split(hf, repo, "api=src/api/**", "ui=src/ui/**")
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / "b1" / "api"
    ui = repo.parent / "repo.hf" / "b1" / "ui"
    assert "?? .env" in git(api, "status", "--porcelain")  # not ignored: git sees it
    (api / "src/api/orders.py").write_text("def orders():\n    return [1]\n")
    (api / ".env").write_text("API_KEY=changed in the part\n")
    git(ui, "add", ".env")  # even staged by the agent, it stays out
    (ui / "src/ui/app.js").write_text("console.log(2)\n")

    status = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    for part in status["parts"]:
        assert (part["outside"], part["changed"]) == (0, 1), part
    for name in ("api", "ui"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    r = hf("join", "b1", "--json", cwd=repo)
    assert r.code == 0, r.out + r.err
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == ["src/api/orders.py", "src/ui/app.js"]
    assert (repo / ".env").read_text() == "API_KEY=secret\n"
    assert git(repo, "status", "--porcelain").split() == ["??", ".env", "??", ".hf.toml",
                                                          "??", "cache/"]


def test_copy_refuses_what_leads_outside_the_repository(repo, hf, tmp_path):
    """A copied entry, or a link inside a copied directory, that resolves outside
    the main tree (a secret elsewhere) is refused before anything is made."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("s3cret\n")
    (repo / "conf").symlink_to(secret)
    (repo / "cache").mkdir()
    (repo / "cache" / "inner").symlink_to(secret / "key")
    for entry in ("conf/key", "cache"):
        (repo / ".hf.toml").write_text(f'copy = ["{entry}"]\n')
        r = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
        assert r.code == 2, r.err
        assert "leads outside the repository" in r.err and str(secret) in r.err
        assert not (repo.parent / "repo.hf/b1").exists()
        assert git(repo, "branch", "--list", "hf/*") == ""
