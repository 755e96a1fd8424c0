"""Old state goes away: `hf status` shows running batches (the rest under `--all`),
`hf gc` forgets collected batches after `forget_after_days`, leaves no empty folder,
and a collected batch's id can be used again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import git, write


def split_and_join(hf: Any, repo, batch: str) -> None:
    r = hf("split", batch, "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    api = repo.parent / "repo.hf" / batch / "api"
    write(api, {"src/api/orders.py": f"def orders():\n    return ['{batch}']\n"})
    for part in ("api", "ui"):
        assert hf("done", f"{batch}/{part}", cwd=repo).code == 0
    assert hf("join", batch, cwd=repo).code == 0


def names(hf: Any, repo, *args: str) -> list[str]:
    r = hf("status", *args, "--json", cwd=repo)
    assert r.code == 0, r.err
    return [b["id"] for b in r.json["data"]["batches"]]


def test_status_lists_live_batches_and_gc_forgets_old_ones(repo, hf, monkeypatch):
    monkeypatch.setenv("HF_CLOCK", "2026-03-01T10:00:00Z")
    split_and_join(hf, repo, "old")
    r = hf("split", "live", "--part", "docs=docs/**", cwd=repo)
    assert r.code == 0, r.err
    assert names(hf, repo) == ["live"]
    assert hf("status", "--json", cwd=repo).json["data"]["hidden"] == 1
    assert "1 finished batch(es) not shown (`hf status --all`)" in hf("status", cwd=repo).out
    assert names(hf, repo, "--all") == ["live", "old"]
    assert names(hf, repo, "old") == ["old"]  # a named batch is always shown

    gc = hf("gc", cwd=repo)
    assert gc.code == 0, gc.err
    assert not (repo.parent / "repo.hf" / "old").exists()
    assert "(joined, collected" in hf("status", "--all", cwd=repo).out
    # the next gc has nothing to say about it, and forgets it only once it is old
    again = hf("gc", "--json", cwd=repo).json["data"]
    assert again["parts"] == [] and again["forgotten"] == []
    monkeypatch.setenv("HF_CLOCK", "2026-03-14T10:00:00Z")  # 13 days later: kept
    assert hf("gc", "--json", cwd=repo).json["data"]["forgotten"] == []
    monkeypatch.setenv("HF_CLOCK", "2026-03-16T10:00:01Z")  # 15 days later
    again = hf("gc", "--json", cwd=repo).json["data"]
    assert again["forgotten"] == ["old"]
    assert names(hf, repo, "--all") == ["live"]
    assert names(hf, repo) == ["live"]


def test_forget_after_days_is_a_setting(repo, hf, monkeypatch):
    monkeypatch.setenv("HF_CLOCK", "2026-03-01T10:00:00Z")
    write(repo, {".hf.toml": "forget_after_days = 1\n"})
    split_and_join(hf, repo, "b1")
    assert hf("gc", cwd=repo).code == 0
    monkeypatch.setenv("HF_CLOCK", "2026-03-02T10:00:01Z")
    assert hf("gc", "--json", cwd=repo).json["data"]["forgotten"] == ["b1"]


def test_a_collected_batch_id_is_used_again_and_no_folder_is_left(repo, hf):
    split_and_join(hf, repo, "b1")
    again = hf("split", "b1", "--part", "api=src/api/**", cwd=repo)
    assert again.code != 0 and "already exists" in again.err  # not collected yet
    assert hf("gc", cwd=repo).code == 0
    # the batch folder and the folder of batches beside the repository are gone
    assert not (repo.parent / "repo.hf").exists()
    split_and_join(hf, repo, "b1")
    assert (repo / "src/api/orders.py").read_text() == "def orders():\n    return ['b1']\n"
    data = hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]
    assert data["state"] == "joined" and not data["collected"]


def empty_folders(root: Path) -> set[str]:
    return {str(d.relative_to(root)) for d in root.rglob("*")
            if d.is_dir() and not any(d.iterdir())}


def test_gc_leaves_no_empty_folder_behind(repo, hf, monkeypatch):
    monkeypatch.setenv("HF_CLOCK", "2026-03-01T10:00:00Z")
    before = empty_folders(repo / ".git")
    split_and_join(hf, repo, "b1")
    assert hf("split", "b2", "--part", "docs=docs/**", cwd=repo).code == 0
    assert hf("drop", "b2", cwd=repo).code == 0
    hf("handoff", "--task", "t", "--next", "n", cwd=repo)
    assert hf("next", "--isolated", "--launcher", "print", cwd=repo).code == 0
    assert sorted(p.name for p in (repo.parent / "repo.hf").iterdir()) == ["b1", "b2", "queue"]

    assert hf("gc", cwd=repo).code == 0
    # nothing beside the repository: no worktree, no batch folder, no `queue/`, no repo.hf/
    assert [p.name for p in repo.parent.iterdir()] == ["repo"]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    monkeypatch.setenv("HF_CLOCK", "2026-03-16T10:00:01Z")
    assert hf("gc", "--json", cwd=repo).json["data"]["forgotten"] == ["b1", "b2"]
    # in the git dir, only hf's own standing folders may be empty, none of a batch
    left = empty_folders(repo / ".git") - before
    assert left <= {"hf/journal", "hf/trash", "hf/scratch", "hf/batches", "hf/guard"}, left
    named = [p for p in (repo / ".git").rglob("*") if p.name in ("b1", "b2", "api", "ui", "docs")]
    assert named == []


def leave_a_rescue(hf: Any, repo: Path, batch: str) -> Path:
    """Batch `batch`: api joined, ui dropped with work not in main, `hf gc --force`
    saving it to ui's rescue ref; ui's worktree (gone by then)."""
    r = hf("split", batch, "--part", "api=src/api/**", "--part", "ui=src/ui/**", cwd=repo)
    assert r.code == 0, r.err
    root = repo.parent / "repo.hf" / batch
    write(root / "api", {"src/api/orders.py": "def orders():\n    return [1]\n"})
    write(root / "ui", {"src/ui/app.js": "console.log('not joined')\n"})
    assert hf("heartbeat", "--part", f"{batch}/api", cwd=repo).code == 0
    assert (repo / ".git/hf/batches" / batch / "heartbeats" / "api").is_file()
    assert hf("done", f"{batch}/api", cwd=repo).code == 0
    assert hf("join", batch, "--partial", cwd=repo).code == 0
    assert hf("drop", f"{batch}/ui", cwd=repo).code == 0
    r = hf("gc", batch, "--force", "--json", cwd=repo)
    assert r.code == 0, r.out
    assert {p["part"]: p["rescue"] for p in r.json["data"]["parts"]} == {
        "api": None, "ui": f"refs/hf/rescue/{batch}/ui"}
    assert not (repo / ".git/hf/batches" / batch / "heartbeats" / "api").exists()
    return root / "ui"


def test_a_forgotten_batch_leaves_no_ref_under_its_name_and_loses_no_work(repo, hf,
                                                                         monkeypatch):
    monkeypatch.setenv("HF_CLOCK", "2026-03-01T10:00:00Z")
    leave_a_rescue(hf, repo, "b1")
    # a rescue whose work main has (main's own tip): nothing to keep
    git(repo, "update-ref", "refs/hf/rescue/b1/api", "HEAD")
    monkeypatch.setenv("HF_CLOCK", "2026-03-16T10:00:01Z")
    r = hf("gc", "--json", cwd=repo)
    assert r.code == 0, r.out
    data = r.json["data"]
    assert data["forgotten"] == ["b1"]
    assert "refs/hf/rescue/b1/api" in data["refs_removed"]
    assert data["refs_kept"] == {"refs/hf/rescue/b1/ui": "refs/hf/rescue/b1@20260301T100000Z/ui"}
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/hf/").split() == [
        "refs/hf/rescue/b1@20260301T100000Z/ui"]
    assert git(repo, "show", "refs/hf/rescue/b1@20260301T100000Z/ui:src/ui/app.js") == \
        "console.log('not joined')\n"
    assert not (repo / ".git/hf/batches/b1").exists()
    assert not (repo / ".git/hf/guard/b1.json").exists()
    from hf_fanout.config import user_state_dir

    assert not list((user_state_dir() / "baselines").glob("*/b1.json"))  # the copy too
    log = [json.loads(line) for line in (repo / ".git/hf/audit.log").read_text().splitlines()]
    forget = next(e for e in log if e["action"] == "forget")
    assert forget["refs_kept"] == data["refs_kept"]


def test_a_reused_id_starts_with_nothing_of_the_old_batch(repo, hf, monkeypatch):
    monkeypatch.setenv("HF_CLOCK", "2026-03-01T10:00:00Z")
    leave_a_rescue(hf, repo, "b1")
    r = hf("split", "b1", "--part", "ui=src/ui/**", cwd=repo)  # collected: the id is free
    assert r.code == 0, r.err
    assert hf("status", "b1", "--json", cwd=repo).json["data"]["batches"][0]["parts"][0][
        "name"] == "ui"
    assert not (repo / ".git/hf/batches/b1/parts/api.json").exists()
    # the old rescue moved out of the way: the new ui's rescue cannot write over it
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/hf/rescue/").split() == [
        "refs/hf/rescue/b1@20260301T100000Z/ui"]
    new_ui = repo.parent / "repo.hf" / "b1" / "ui"
    write(new_ui, {"src/ui/app.js": "console.log('second')\n"})
    assert hf("drop", "b1", cwd=repo).code == 0
    assert hf("gc", "b1", "--force", cwd=repo).code == 0
    assert git(repo, "show", "refs/hf/rescue/b1/ui:src/ui/app.js") == "console.log('second')\n"
    assert git(repo, "show", "refs/hf/rescue/b1@20260301T100000Z/ui:src/ui/app.js") == \
        "console.log('not joined')\n"
