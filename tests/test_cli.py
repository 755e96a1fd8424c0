"""The CLI surface: status, done/blocked, the JSON envelope, exit codes, damaged records."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import git, hf_proc, snapshot, write

ENVELOPE_KEYS = ["hf", "command", "ok", "data", "error"]
ERROR_KEYS = ["code", "message", "hint"]


def parts_by_name(hf: Any, repo: Path, batch: str = "b1") -> dict[str, dict[str, Any]]:
    r = hf("status", batch, "--json", cwd=repo)
    assert r.code == 0, r.out
    (b,) = r.json["data"]["batches"]
    return {p["name"]: p for p in b["parts"]}


# --------------------------------------------------------------------- status


def test_status_counts_changed_and_outside_files(split3, hf):
    repo, api = split3["repo"], split3["api"]
    write(api, {"src/api/orders.py": "# committed\n"})
    git(api, "commit", "-qam", "committed work")
    write(api, {"src/api/new.py": "# untracked\n", "src/ui/page.html": "<p>not mine</p>\n"})
    (split3["docs"] / "docs/old.md").unlink()
    parts = parts_by_name(hf, repo)
    assert (parts["api"]["changed"], parts["api"]["outside"]) == (3, 1)
    assert parts["api"]["outside_paths"] == ["src/ui/page.html"]
    assert (parts["docs"]["changed"], parts["docs"]["outside"]) == (1, 0)
    assert (parts["ui"]["changed"], parts["ui"]["outside"]) == (0, 0)
    assert parts["api"]["branch"] == "hf/b1/api" and parts["api"]["worktree"] == str(api)
    assert {p["state"] for p in parts.values()} == {"running"}
    assert parts["api"]["last_activity"].endswith("Z")
    r = hf("status", cwd=repo)
    assert r.code == 0
    assert "batch b1 (running" in r.out
    header, *rows = [line for line in r.out.splitlines() if line.startswith(("part ", "api ",
                                                                               "ui ", "docs "))]
    assert header.split()[:4] == ["part", "state", "changed", "outside"]
    name, state, since, changed, outside = rows[0].split()[:5]
    assert (name, state, changed, outside) == ("api", "running", "3", "1")
    assert re.fullmatch(r"\d+[smhd]", since)  # running since, relative
    assert "0/3 done · 3 running" in r.out
    assert "api: outside its ownership: src/ui/page.html" in r.out


def test_status_of_all_batches_and_of_none(repo, hf):
    r = hf("status", cwd=repo)
    assert r.code == 0 and "no batches" in r.out
    data = hf("status", "--json", cwd=repo).json["data"]
    assert {k: data[k] for k in ("batches", "hidden", "queue")} == {"batches": [], "hidden": 0,
                                                               "queue": []}
    assert [u["limit"] for u in data["limits"]] == [
        "max_live_agents", "max_live_agents_per_user", "max_spawns_per_hour",
        "max_parts_per_batch"]
    for batch in ("b1", "b2"):
        assert hf("split", batch, "--part", f"{batch}-api=src/api/{batch}/**", cwd=repo).code == 0
    r = hf("status", "--json", cwd=repo)
    assert [b["id"] for b in r.json["data"]["batches"]] == ["b1", "b2"]
    r = hf("status", "b3", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "not_found"


def test_status_works_from_inside_a_part_worktree(split3, hf):
    r = hf("status", "--json", cwd=split3["ui"] / "src")
    assert r.code == 0
    assert [b["id"] for b in r.json["data"]["batches"]] == ["b1"]


# --------------------------------------------------------------------- done / blocked


def test_done_from_inside_a_worktree_is_idempotent(split3, hf):
    repo, api = split3["repo"], split3["api"]
    r = hf("done", "--json", cwd=api / "src" / "api")
    assert r.code == 0 and r.json["data"]["changed"] is True
    first = r.json["data"]["part"]
    assert first["state"] == "done" and first["done_at"]
    r = hf("done", cwd=api)
    assert r.code == 0 and "already" in r.out
    r = hf("done", "--json", cwd=api)
    assert r.json["data"]["changed"] is False
    assert r.json["data"]["part"]["done_at"] == first["done_at"]
    r = hf("done", "--note", "tests pass", "--json", cwd=api)
    assert r.json["data"]["changed"] is True and r.json["data"]["part"]["note"] == "tests pass"
    assert parts_by_name(hf, repo)["api"]["note"] == "tests pass"


def test_done_and_blocked_by_batch_slash_part(split3, hf):
    repo = split3["repo"]
    r = hf("blocked", "b1/ui", "--reason", "needs the schema", "--json", cwd=repo)
    assert r.code == 0 and r.json["data"]["changed"] is True
    r = hf("blocked", "b1/ui", "--reason", "needs the schema", "--json", cwd=repo)
    assert r.code == 0 and r.json["data"]["changed"] is False
    ui = parts_by_name(hf, repo)["ui"]
    assert ui["state"] == "blocked" and ui["reason"] == "needs the schema"
    assert "ui: blocked: needs the schema" in hf("status", cwd=repo).out
    r = hf("done", "b1/ui", cwd=repo)
    assert r.code == 0
    ui = parts_by_name(hf, repo)["ui"]
    assert ui["state"] == "done" and ui["reason"] is None


def test_done_and_blocked_refusals(split3, hf):
    repo = split3["repo"]
    r = hf("done", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "not_found"
    assert "not a part's worktree" in r.json["error"]["message"]
    assert r.json["error"]["hint"].endswith("name the part: BATCH/PART")
    # commands that take the part as an option say so in the hint
    for command in (["run", "--json", "--", "true"], ["heartbeat", "--json"]):
        r = hf(*command, cwd=repo)
        assert r.code == 1, command
        assert r.json["error"]["hint"].endswith("name the part: --part BATCH/PART"), command
    assert hf("done", "b1", cwd=repo).code == 2
    assert hf("done", "b1/nope", cwd=repo).code == 1
    assert hf("done", "b9/api", cwd=repo).code == 1
    r = hf("blocked", cwd=split3["api"])
    assert r.code == 2 and "--reason" in r.err
    r = hf("blocked", "--reason", "  ", cwd=split3["api"])
    assert r.code == 2
    before = (repo / ".git/hf/batches/b1/parts/api.json").read_bytes()
    r = hf("done", "--dry-run", cwd=split3["api"])
    assert r.code == 0 and "would mark" in r.out
    assert (repo / ".git/hf/batches/b1/parts/api.json").read_bytes() == before


def test_done_on_a_joined_part_is_refused(split3, hf):
    repo = split3["repo"]
    for name in ("api", "ui", "docs"):
        assert hf("done", cwd=split3[name]).code == 0
    assert hf("join", "b1", cwd=repo).code == 0
    r = hf("done", cwd=split3["api"])
    assert r.code == 1 and "already joined" in r.err
    assert hf("blocked", "b1/ui", "--reason", "late", cwd=repo).code == 1


# --------------------------------------------------------------------- envelope, exit codes


def test_json_envelope_on_success_and_failure(split3, hf):
    repo = split3["repo"]
    ok = hf("status", "--json", cwd=repo)
    assert list(ok.json) == ENVELOPE_KEYS
    assert ok.json["hf"] == 1 and ok.json["command"] == "status" and ok.json["ok"] is True
    assert ok.json["error"] is None and isinstance(ok.json["data"], dict)
    assert ok.out.count("\n") == 1 and ok.err == ""
    bad = hf("join", "b1", "--json", cwd=repo)  # no part done
    assert bad.code == 1
    assert list(bad.json) == ENVELOPE_KEYS
    assert bad.json["ok"] is False and bad.json["command"] == "join"
    assert list(bad.json["error"]) == ERROR_KEYS
    assert bad.json["error"]["code"] == "join_refused" and bad.json["error"]["hint"]
    assert bad.out.count("\n") == 1
    usage = hf("status", "--bogus", "--json", cwd=repo)
    assert usage.code == 2
    assert list(usage.json) == ENVELOPE_KEYS and usage.json["error"]["code"] == "usage"
    # the same envelope from a real process (what an agent in a tab sees)
    proc = hf_proc("done", "b1/api", "--json", cwd=repo)
    assert proc.returncode == 0
    import json

    env = json.loads(proc.stdout)
    assert list(env) == ENVELOPE_KEYS and env["command"] == "done" and env["ok"] is True


def test_human_errors_are_one_line_and_a_hint(split3, hf):
    r = hf("join", "b1", cwd=split3["repo"])
    assert r.code == 1 and r.out == ""
    lines = r.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("hf: error: ") and lines[1].startswith("hint: ")


def test_exit_codes(repo, hf, tmp_path, monkeypatch):
    assert hf("status", cwd=repo).code == 0
    assert hf("status", "nope", cwd=repo).code == 1
    assert hf("status", cwd=tmp_path).code == 1  # not a repository
    assert hf("split", "B!", "--part", "a=b", cwd=repo).code == 2
    assert hf("no-such-command", cwd=repo).code == 2
    assert hf(cwd=repo).code == 2
    assert hf("--version", cwd=repo).code == 0

    from hf_fanout.orchestrator import status

    def bug(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(status, "all_status", bug)
    r = hf("status", "--json", cwd=repo)
    assert r.code == 3
    assert r.json["error"]["code"] == "bug" and "RuntimeError: boom" in r.json["error"]["message"]
    crash_logs = list((Path(os.environ["XDG_STATE_HOME"]) / "hf" / "crash").glob("*.log"))
    assert len(crash_logs) == 1
    assert str(crash_logs[0]) in r.json["error"]["hint"]
    assert "RuntimeError: boom" in crash_logs[0].read_text()

    def interrupted(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(status, "all_status", interrupted)
    r = hf("status", "--json", cwd=repo)
    assert r.code == 130
    assert r.json["ok"] is False and r.json["error"]["code"] == "interrupted"


def test_not_a_repository_says_so(tmp_path, hf):
    r = hf("status", "--json", cwd=tmp_path)
    assert r.code == 1 and r.json["error"]["code"] == "not_a_repo"


# --------------------------------------------------------------------- damaged records


@pytest.mark.parametrize("record", ["batch.json", "parts/ui.json"])
def test_a_truncated_record_is_reported_and_left_untouched(split3, hf, record):
    repo = split3["repo"]
    path = repo / ".git/hf/batches/b1" / record
    damaged = path.read_bytes()[:40]
    path.write_bytes(damaged)
    before = snapshot(repo)
    for args in (("status", "b1"), ("join", "b1"), ("done", "b1/ui")):
        r = hf(*args, cwd=repo)
        assert r.code == 1, (args, r.out, r.err)
        lines = r.err.splitlines()
        assert len(lines) == 2, r.err
        assert lines[0] == f"hf: error: {path} is not valid JSON (torn or edited record)"
        assert path.read_bytes() == damaged
    r = hf("status", "b1", "--json", cwd=repo)
    assert r.json["error"]["code"] == "state_corrupt"
    # the overview still lists every batch, the damaged one marked as such
    r = hf("status", cwd=repo)
    assert r.code == 0 and f"batch b1: damaged: {path} is not valid JSON" in r.out
    r = hf("doctor", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "problems_found"
    assert any(str(path) in f["detail"] and f["level"] == "problem"
               for f in r.json["data"]["findings"])
    assert path.read_bytes() == damaged
    assert snapshot(repo) == before


def test_a_record_without_its_fields_or_a_folder_in_its_place_names_what_is_wrong(split3, hf):
    """A batch record of `{"schema": 1, "kind": "batch"}` names the fields it lacks (not
    python's words); one replaced by a folder says so (not "check the permissions")."""
    repo = split3["repo"]
    path = repo / ".git/hf/batches/b1/batch.json"
    path.write_text('{"schema": 1, "kind": "batch"}')
    r = hf("status", "b1", cwd=repo)
    assert r.code == 1
    assert r.err.splitlines()[0] == (f"hf: error: {path}: fields missing: id, base, "
                                     "target_ref, parts"), r.err
    assert "__init__" not in r.err
    path.unlink()
    path.mkdir()
    r = hf("status", "b1", cwd=repo)
    assert r.code == 1
    assert r.err.splitlines()[0] == f"hf: error: {path} is a folder, not a regular file"
    assert "permissions" not in r.err


def test_a_fifo_or_a_device_in_place_of_a_record_is_reported_not_read(split3):
    """A part record replaced by a FIFO (a plain read blocks forever) or by a link to
    /dev/zero (read without end): every command says so in one line, in real
    processes that end, and the thing is left where it is."""
    repo = split3["repo"]
    path = repo / ".git/hf/batches/b1/parts/ui.json"
    for kind in ("a FIFO", "a device or socket"):
        path.unlink()
        if kind == "a FIFO":
            os.mkfifo(path)
        else:
            path.symlink_to("/dev/zero")
        for args in (("status", "b1"), ("join", "b1"), ("done", "b1/ui")):
            r = subprocess.run([sys.executable, "-m", "hf_fanout", *args], cwd=repo,
                               capture_output=True, text=True, timeout=60, check=False)
            assert r.returncode == 1, (args, r.stderr)
            assert r.stderr.splitlines()[0] == \
                f"hf: error: {path} is {kind}, not a regular file", r.stderr
        assert path.is_symlink() or path.is_fifo()


def test_a_record_of_an_unknown_schema_is_reported(split3, hf):
    repo = split3["repo"]
    path = repo / ".git/hf/batches/b1/batch.json"
    path.write_text('{"schema": 99, "kind": "batch"}')
    r = hf("status", "b1", cwd=repo)
    assert r.code == 1 and "schema 99" in r.err
    assert path.read_text() == '{"schema": 99, "kind": "batch"}'


def test_a_damaged_batch_does_not_stop_the_agents_of_another(split3, hf):
    repo = split3["repo"]
    r = hf("split", "b2", "--part", "tools=tools/**", cwd=repo)
    assert r.code == 0, r.err
    (repo / ".git/hf/batches/b1/parts/ui.json").write_text('{"schema": 1,')
    b2_tools = repo.parent / "repo.hf" / "b2" / "tools"
    r = hf("done", "--json", cwd=b2_tools)
    assert r.code == 0, r.out
    assert r.json["data"]["part"]["state"] == "done"
    overview = hf("status", "--json", cwd=repo).json["data"]["batches"]
    assert {b["id"]: b["state"] for b in overview} == {"b1": "damaged", "b2": "running"}



@pytest.mark.parametrize("field,value", [
    ("worktree", 5), ("state", "weird"), ("name", "../../../x"), ("owns", "src/**"),
    ("worker", {"pid": "x", "started": 1.0}),
])
def test_a_part_record_with_a_wrong_field_is_reported_not_a_crash(split3, hf, field, value):
    repo = split3["repo"]
    path = repo / ".git/hf/batches/b1/parts/ui.json"
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    damaged = path.read_bytes()
    for args in (("status", "b1", "--json"), ("join", "b1", "--json")):
        r = hf(*args, cwd=repo)
        assert r.code == 1, (args, r.out)
        assert r.json["error"]["code"] == "state_corrupt", (args, r.out)
        assert str(path) in r.json["error"]["message"]
    # the sweep visits every repository: it reports the damage, goes on, and fails
    r = hf("sweep", "--json", cwd=repo)
    assert r.code == 1 and r.json["error"]["code"] == "state_corrupt"
    assert any(str(path) in e for e in r.json["data"]["repos"][0]["errors"])
    assert path.read_bytes() == damaged


# ---------------------------------------------------------------- start-up cost


def _modules_after(args: list[str], cwd: Path, columns: str = "100") -> tuple[str, set[str]]:
    """Run hf's main(args) in a fresh interpreter: what it printed, which top-level
    modules it loaded."""
    import subprocess
    import sys

    code = ("import sys; from hf_fanout.cli import main; rc = main(sys.argv[1:]); "
            "sys.stdout.flush(); "
            "print('MODULES', *sorted({m.split('.')[0] for m in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": columns}, check=False)
    out, _, modules = proc.stdout.rpartition("MODULES ")
    return out, set(modules.split())


def test_root_help_prints_without_loading_typer_and_matches_the_live_help(repo):
    from hf_fanout.cli.roothelp import TEXT, render

    assert render() == TEXT, "run `python -m hf_fanout.cli.roothelp` to refresh the text"
    out, modules = _modules_after(["--help"], repo)
    assert out == TEXT and "split" in out and "join" in out
    assert not {"typer", "pygit2", "psutil", "rich"} & modules
    narrow, modules = _modules_after(["--help"], repo, columns="60")
    assert "typer" in modules and narrow.startswith("Usage: hf")  # rendered live, to fit


def test_commands_do_not_load_pydantic_for_their_options(split3):
    # (`--repo=.` is not plain: typer parses it, see cli/light.py)
    out, modules = _modules_after(["status", "--json", "--repo=."], split3["repo"])
    assert json.loads(out)["ok"] is True
    assert "pydantic" not in modules and "typer" in modules
    # options with bounds too (typer checks those through pydantic; hf itself)
    for args in (["join", "b1", "--dry-run", "--wait", "1", "--json"],
                 ["next", "--dry-run", "--max", "2", "--timeout", "0", "--json"]):
        out, modules = _modules_after(args, split3["repo"])
        assert json.loads(out)["command"] == args[0]
        assert "pydantic" not in modules, args


def test_option_values_are_converted_and_bad_ones_refused(split3, hf):
    r = hf("join", "b1", "--wait", "soon", cwd=split3["repo"])
    assert r.code == 2 and "'soon' is not a valid number" in r.err
    r = hf("next", "--watch", "--dry-run", "--max", "0", cwd=split3["repo"])
    assert r.code == 2 and "--max" in r.err  # its bound still holds
    assert "greater than or equal to 1" in r.err
    # a bound of 0 is a bound (it once compared equal to "no bound", False)
    for args in (["join", "b1", "--wait", "-1"], ["next", "--watch", "--timeout", "-0.5"],
                 ["commit", "-m", "x", "README.md", "--wait", "-2"]):
        r = hf(*args, cwd=split3["repo"])
        assert r.code == 2, args
        assert "greater than or equal to 0" in r.err, r.err
    r = hf("join", "b1", "--wait", "0.5", "--dry-run", "--json", cwd=split3["repo"])
    assert r.json["command"] == "join" and r.code in (0, 1)


def test_each_command_is_built_alone_with_the_same_help_and_typos_still_get_a_hint(repo, hf):
    """hf builds click's object for the invoked command only: every command's
    help must be what the whole app renders for it, and a typo still sees
    every command (hf's suggestion, whatever typer adds)."""
    from typer.main import get_command

    from hf_fanout.cli import app

    whole = get_command(app.build())
    ctx = whole.make_context("hf", ["--help"], resilient_parsing=True)
    names = whole.list_commands(ctx)  # type: ignore[attr-defined]
    assert {"split", "join", "status", "guard", "next"} <= set(names)
    for name in names:
        sub = whole.get_command(ctx, name)  # type: ignore[attr-defined]
        with sub.make_context(name, [], parent=ctx, resilient_parsing=True) as sub_ctx:
            expected = sub.get_help(sub_ctx)
        r = hf(name, "--help", cwd=repo)
        assert r.code == 0 and r.out.rstrip("\n") == expected.rstrip("\n"), name
    assert sorted(app.names()) == sorted(names)
    r = hf("jion", "b1", cwd=repo)
    assert r.code == 2 and "No such command 'jion'" in r.err
    assert "hint: did you mean `hf join`?" in r.err


def test_the_program_exits_fast_with_its_output_and_code_and_profilers_still_write(
        split3, tmp_path):
    """`hf` leaves without Python's teardown (os._exit after flushing): a piped
    output is whole, the exit code is main()'s, and under cProfile (which
    writes at shutdown) the normal exit runs."""
    import subprocess
    import sys

    from conftest import hf_proc

    repo = split3["repo"]
    r = hf_proc("status", "b1", "--json", cwd=repo)
    assert r.returncode == 0 and json.loads(r.stdout)["data"]["batches"][0]["id"] == "b1"
    r = hf_proc("join", "nosuch", cwd=repo)
    assert r.returncode == 1 and "nosuch" in r.stderr
    r = hf_proc("status", "--wait-what", cwd=repo)
    assert r.returncode == 2
    prof = tmp_path / "status.prof"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "hf_fanout",
                           "status", "b1"], cwd=repo, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and "b1" in proc.stdout
    assert prof.stat().st_size > 0


def test_the_fast_exit_still_runs_atexit_handlers(repo):
    """A coverage tool or a sitecustomize registers atexit handlers: they run."""
    import subprocess
    import sys

    code = ("import atexit, sys; atexit.register(lambda: print('handler ran', flush=True)); "
            "sys.argv = ['hf', 'status', '--json']; from hf_fanout.cli import entry; entry()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("handler ran")
    assert json.loads(proc.stdout.rstrip().removesuffix("handler ran"))["ok"] is True


def test_a_full_disk_is_one_line_and_a_record_is_never_half_written(small_disk, hf):
    from conftest import small_repo

    repo = small_repo(small_disk)
    assert hf("split", "b1", "--part", "api=src/api/**", cwd=repo).code == 0
    record = repo / ".git/hf/batches/b1/parts/api.json"
    before = record.read_bytes()
    small_disk.fill()
    r = hf("done", "b1/api", "--note", "x" * 20_000, "--json", cwd=repo)
    assert r.code == 1, r.out
    assert r.json["error"]["code"] == "no_space"
    assert "nothing is half-written" in r.json["error"]["message"]
    assert record.read_bytes() == before
    assert [p.name for p in record.parent.iterdir()] == ["api.json"]  # no temp file left
    small_disk.free()
    r = hf("done", "b1/api", cwd=repo)
    assert r.code == 0, r.err
    assert json.loads(record.read_text())["state"] == "done"


def test_a_record_after_a_torn_audit_line_starts_a_line_of_its_own(split3, hf):
    repo = split3["repo"]
    audit = repo / ".git/hf/audit.log"
    torn = '{"action": "done", "batch": "b1", "pa'
    with open(audit, "a") as handle:
        handle.write(torn)  # a writer killed half way through its line
    assert hf("done", cwd=split3["api"]).code == 0
    lines = audit.read_text().splitlines()
    assert lines[-2] == torn  # kept as it was, never glued to
    record = json.loads(lines[-1])
    assert record["action"] == "done" and record["part"] == "api"


def test_a_git_older_than_2_36_is_refused_in_one_line(repo, tmp_path):
    """git 2.36 brought `git hook run`, which the part hooks need: an older git on
    PATH is named, before anything runs."""
    import shutil
    import subprocess

    real = shutil.which("git")
    bin_dir = tmp_path / "old-git"
    bin_dir.mkdir()
    stand_in = bin_dir / "git"
    stand_in.write_text('#!/bin/sh\ncase " $* " in *" --version "*) echo "git version 2.30.2"; '
                        f'exit 0;; esac\nexec {real} "$@"\n')
    stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run([sys.executable, "-m", "hf_fanout", "status"], cwd=repo, env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == ("hf: error: hf needs git 2.36 or newer; `git` is "
                                        "2.30.2")
    assert not (repo / ".git/hf").exists()


def test_progress_lines_from_many_threads_never_run_together(monkeypatch):
    """The split reports each worktree from the thread that primed it: every line
    goes out whole, in one write, so two never share a line on the terminal."""
    import threading

    from hf_fanout.cli import output

    class Terminal:
        def __init__(self) -> None:
            self.writes: list[str] = []
            self.lock = threading.Lock()

        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            with self.lock:
                self.writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(output.CURRENT, "json", False)
    threads = [threading.Thread(target=output.progress, args=(f"{i}/8 worktrees: p{i}",))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(terminal.writes) == sorted(f"  {i}/8 worktrees: p{i}\n" for i in range(8))


def test_a_command_run_from_a_folder_the_join_removed_says_so_in_one_line(split3, hf):
    """`hf join` run from src/api removes that folder (the part deleted its files):
    the next command in the same shell gets one line naming a folder still there,
    and with an absolute `--repo` it runs."""
    repo, api = split3["repo"], split3["api"]
    git(api, "rm", "-rq", "src/api")
    git(api, "commit", "-qm", "no api")
    for name in ("api", "ui", "docs"):
        assert hf("done", f"b1/{name}", cwd=repo).code == 0
    hf_cmd = f"{shlex.quote(sys.executable)} -m hf_fanout"
    shell = subprocess.run(
        ["sh", "-c", f"cd src/api && {hf_cmd} join b1 >/dev/null && {hf_cmd} undo b1; "
                     f"echo rc=$?; {hf_cmd} undo b1 --repo {shlex.quote(str(repo))}"],
        cwd=repo, capture_output=True, text=True, check=False, timeout=120)
    assert shell.stderr.splitlines()[:2] == [
        "hf: error: the current directory no longer exists (something removed it after "
        "the shell went there)",
        f"hint: `cd {repo / 'src'}` (or another folder of the repository), then run hf "
        "again; or name the repository with `--repo PATH`"], shell.stderr
    assert "rc=2" in shell.stdout
    assert "took back the join" in shell.stdout
    assert (repo / "src/api").is_dir() and git(repo, "status", "--porcelain") == ""


def test_a_removed_directory_with_a_pwd_that_still_exists_gets_the_plain_hint(repo, tmp_path):
    """$PWD names the removed folder only when a shell set it: one that exists (hf
    started by a program that keeps the old value) is not trusted for the hint."""
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (f"import os, runpy, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
              "sys.argv = ['hf', 'status']; runpy.run_module('hf_fanout', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env={**os.environ, "PWD": str(repo)}, check=False, timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "hf: error: the current directory no longer exists (something removed it after the "
        "shell went there)",
        "hint: cd to the repository, then run hf again; or name the repository with "
        "`--repo PATH`"]


def test_help_is_printed_from_a_removed_directory(tmp_path):
    """Help reads no repository: a command's `--help` (and `-h`) prints it, exit 0,
    from a folder that was removed; the command itself is refused."""
    gone = tmp_path / "gone"
    script = (f"import os, runpy, sys; os.mkdir({str(gone)!r}); os.chdir({str(gone)!r}); "
              f"os.rmdir({str(gone)!r}); sys.argv = ['hf', *sys.argv[1:]]; "
              "runpy.run_module('hf_fanout', run_name='__main__')")
    for args in (["join", "--help"], ["split", "-h"]):
        r = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "60"}, check=False,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"Usage: hf {args[0]} [OPTIONS]"), r.stdout
    r = subprocess.run([sys.executable, "-c", script, "join", "b1"], capture_output=True,
                       text=True, check=False, timeout=60)
    assert r.returncode == 2 and "no longer exists" in r.stderr


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """hf run with its stdout on a pseudo-terminal (rich's tables): exit code, output."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "hf_fanout", *args], cwd=cwd,
                            stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # (EIO: the other end closed)
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_text_an_agent_wrote_reaches_no_terminal_raw(split3, hf):
    """A blocked reason, a done note and a handoff that erase the line and print
    something else (ESC [2K, CR), or hold what rich would read as markup: `hf
    blocked`, `hf status` (plain and on a terminal), `hf log` and `hf queue` show
    them escaped, and a `[/x]` neither breaks the table nor styles anything."""
    repo = split3["repo"]
    spoof = "stuck\x1b[2K\rall fine [/x] [bold]loud"
    shown = "stuck\\033[2K\\rall fine [/x] [bold]loud"
    r = hf("blocked", "b1/ui", "--reason", spoof, cwd=repo)
    assert r.code == 0 and r.out.strip() == f"b1/ui is blocked: {shown}", r.out
    assert hf("done", "b1/api", "--note", "ok\x07\x1b[31mred", cwd=repo).code == 0
    assert hf("handoff", "--task", "t", "--next", "\x1b[2Knext [/y]", cwd=repo).code == 0
    status = hf("status", "b1", cwd=repo)
    assert f"  ui: blocked: {shown}" in status.out.splitlines(), status.out
    log = hf("log", "b1", cwd=repo).out
    # (the log puts each value on one line: the CR is a space there)
    assert "note=ok\\007\\033[31mred" in log, log
    assert "reason=stuck\\033[2K all fine [/x] [bold]loud" in log, log
    queue = hf("queue", cwd=repo).out
    assert "\\033[2Knext [/y]" in queue, queue
    for out in (status.out, log, queue):
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    for args in (["status", "b1"], ["queue"]):
        code, out = _on_a_terminal(args, repo)
        assert code == 0, out
        assert "\x1b[2K" not in out and "\x07" not in out
    code, out = _on_a_terminal(["queue"], repo)
    assert "\\033[2Knext [/y]" in out, out
