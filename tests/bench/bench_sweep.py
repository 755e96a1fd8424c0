"""Benchmark: one sweep over 50 batches x 8 parts in one repository (target <= 1 s).

Most parts are records only (an empty directory stands in for the worktree);
the first batch has real worktrees and 8 live workers (real processes), so the
psutil work (identity checks, the working-directory scan) is real. The psutil
share is shown separately.

    PYTHONPATH=. python3 tests/bench/bench_sweep.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCHES = 50
PARTS = 8


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def build(root: Path) -> tuple[Path, list[subprocess.Popen[bytes]]]:
    from hf_fanout import processes
    from hf_fanout.core.records import BLOCKED, DONE, Batch, Part, branch_name
    from hf_fanout.core.workspace import Workspace
    from hf_fanout.liveness import heartbeat

    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(200):
        (repo / f"src{i % 10}").mkdir(exist_ok=True)
        (repo / f"src{i % 10}" / f"f{i}.py").write_text(f"x = {i}\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "base")
    ws = Workspace.open(repo)
    base = ws.main.head()
    assert base
    workers: list[subprocess.Popen[bytes]] = []
    for b in range(BATCHES):
        bid = f"batch-{b:02d}"
        names = [f"part-{p}" for p in range(PARTS)]
        ws.store.batch_dir(bid).mkdir(parents=True)
        for p, name in enumerate(names):
            wt = root / "wt" / bid / name
            if b == 0:
                wt.parent.mkdir(parents=True, exist_ok=True)
                ws.main.add_worktree(wt, branch_name(bid, name), base)
            else:
                wt.mkdir(parents=True)
            part = Part(batch=bid, name=name, index=p, branch=branch_name(bid, name),
                        worktree=str(wt), owns=[f"src{p}/**"])
            if b == 0:
                proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                        cwd=wt, env={**os.environ, "HF_BATCH": bid,
                                                     "HF_PART": name})
                workers.append(proc)
                ident = processes.identity_of(proc.pid)
                assert ident
                part.worker = {**ident.to_dict(), "pgid": proc.pid, "command": "sleep",
                               "since": part.created}
                heartbeat.beat(ws.store, bid, name, active=time.time(), by="bench")
            elif p % 4 == 1:
                part.state = DONE
            elif p % 4 == 2:
                part.state, part.reason = BLOCKED, "waiting"
            ws.store.save_part(part)
        ws.store.save_batch(Batch(id=bid, base=base, target_ref="refs/heads/main",
                                  parts=names))
    return repo, workers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from hf_fanout.orchestrator import sweep

    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp:
        os.environ["XDG_STATE_HOME"] = str(Path(tmp) / "state")
        t = time.perf_counter()
        repo, workers = build(Path(tmp))
        print(f"setup: {BATCHES} batches x {PARTS} parts, 8 live workers "
              f"({time.perf_counter() - t:.1f} s)")
        try:
            totals, psutils = [], []
            for _ in range(args.runs):
                report = sweep.sweep([repo], dry_run=False)
                rr = report.repos[0]
                assert len(rr.parts) == BATCHES * PARTS, len(rr.parts)
                assert not rr.actions, rr.actions
                totals.append(report.seconds)
                psutils.append(report.psutil_seconds)
            states: dict[str, int] = {}
            for p in rr.parts:
                states[p.state] = states.get(p.state, 0) + 1
            print(f"parts by state: {states}")
            print(f"sweep: median {statistics.median(totals):.3f} s, "
                  f"min {min(totals):.3f} s, max {max(totals):.3f} s over {args.runs} runs")
            print(f"  of which psutil: median {statistics.median(psutils):.3f} s "
                  "(identity checks of 8 workers + one working-directory scan of "
                  f"{len(__import__('psutil').pids())} processes)")
            verdict = "OK" if statistics.median(totals) <= 1.0 else "OVER TARGET"
            print(f"target <= 1 s: {verdict}")
        finally:
            for w in workers:
                w.kill()
                w.wait()


if __name__ == "__main__":
    main()
