#!/usr/bin/env python3
"""Start-up of the commands run most often, against python itself and plain git.

Not a test (pytest does not collect it): run it by hand.

    python3 tests/bench/bench_startup.py               # 15 rounds
    python3 tests/bench/bench_startup.py --rounds 31 --modules

Each row is one command run as a real process (`python -m hf_fanout ...` from
this checkout, bytecode cached as an installed package has it), the rows
interleaved round by round; the figure is the median CPU time (user + system,
from the process's own rusage) and wall time. A fresh repository is made in a
temporary directory: `hf status` there with no batch, `hf done` and `hf
heartbeat` inside a part of a one-part batch. `--modules` lists the modules
each command imports (`-X importtime`): hf's own, and what else it loads.
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

CHECKOUT = Path(__file__).resolve().parents[2]
# seconds of CPU for --version, status (nothing live), done, heartbeat: 60 ms where
# python itself is 11 ms, so at most 49 ms above `python -c pass` of the same run
# (python here also runs what site-packages' .pth files load)
TARGET_ABOVE_PYTHON = 0.049


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("GIT_", "HF_")) and k != "PYTHONDONTWRITEBYTECODE"}
    e["PYTHONPATH"] = str(CHECKOUT)
    return e


def run(args: list[str], cwd: Path, environ: dict[str, str]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, exit code) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=environ, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, wall, proc.returncode


def modules(args: list[str], cwd: Path, environ: dict[str, str]) -> list[str]:
    proc = subprocess.run([args[0], "-X", "importtime", *args[1:]], cwd=cwd, env=environ,
                          capture_output=True, text=True, check=False)
    return [line.split("|")[-1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
            and not line.rstrip().endswith("package")]


def setup(root: Path, environ: dict[str, str]) -> tuple[Path, Path, Path]:
    """A repository with no batch, and one with a batch of one part (its worktree)."""
    def git(cwd: Path, *a: str) -> None:
        subprocess.run(["git", *a], cwd=cwd, env=environ, check=True, capture_output=True)

    repos = []
    for name in ("empty", "one"):
        repo = root / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for i in range(50):
            (repo / f"f{i}.txt").write_text(f"{i}\n")
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "base")
        repos.append(repo)
    subprocess.run([sys.executable, "-m", "hf_fanout", "split", "b1", "--part", "p1=f1*"],
                   cwd=repos[1], env=environ, check=True)
    return repos[0], repos[1], root / "one.hf" / "b1" / "p1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--modules", action="store_true", help="list what each imports")
    options = parser.parse_args()
    environ = env()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="hf-bench-startup-") as tmp:
        root = Path(tmp)
        environ["HOME"] = str(root / "home")
        (root / "home").mkdir()
        environ["GIT_CONFIG_NOSYSTEM"] = "1"
        empty, one, part = setup(root, environ)
        hf = [py, "-m", "hf_fanout"]
        rows: list[tuple[str, list[str], Path, bool]] = [
            ("python -c pass", [py, "-c", "pass"], empty, False),
            ("git status", ["git", "status", "--porcelain"], empty, False),
            ("hf --version", [*hf, "--version"], empty, True),
            ("hf --help", [*hf, "--help"], empty, False),
            ("hf status (no batch)", [*hf, "status"], empty, True),
            ("hf status (1 part)", [*hf, "status"], one, False),
            ("hf done", [*hf, "done"], part, True),
            ("hf heartbeat", [*hf, "heartbeat"], part, True),
            ("hf sweep --dry-run", [*hf, "sweep", "--dry-run", "--repo", str(one)], one, False),
        ]
        for _label, args, cwd, _t in rows:  # bytecode written, caches warm
            run(args, cwd, environ)
        cpu: dict[str, list[float]] = {label: [] for label, *_ in rows}
        wall: dict[str, list[float]] = {label: [] for label, *_ in rows}
        for _ in range(options.rounds):
            for label, args, cwd, _t in rows:
                c, w, code = run(args, cwd, environ)
                if code != 0:
                    raise SystemExit(f"{label} failed ({code})")
                cpu[label].append(c)
                wall[label].append(w)
        load = os.getloadavg()[0]
        base = statistics.median(cpu["python -c pass"])
        print(f"start-up, median of {options.rounds} interleaved rounds, load {load:.1f}")
        print(f"{'command':24} {'cpu s':>7} {'wall s':>7} {'- python':>9} {'modules':>8}"
              f"  {'target':>8}  result")
        for label, args, cwd, targeted in rows:
            c, w = statistics.median(cpu[label]), statistics.median(wall[label])
            count = len(modules(args, cwd, environ)) if args[0] == py else 0
            verdict = ("pass" if c - base <= TARGET_ABOVE_PYTHON else "FAIL") if targeted \
                else "-"
            target = f"+{TARGET_ABOVE_PYTHON:.3f}" if targeted else "-"
            print(f"{label:24} {c:7.3f} {w:7.3f} {c - base:9.3f} {count or '-':>8}"
                  f"  {target:>8}  {verdict}")
        if options.modules:
            for label, args, cwd, _t in rows:
                if args[0] != py or args[1] == "-c":
                    continue
                found = modules(args, cwd, environ)
                own = sorted(m for m in found if m.startswith("hf_fanout"))
                other = sorted({m.split(".")[0] for m in found if not m.startswith("hf_fanout")})
                print(f"\n{label}: {len(found)} modules, {len(own)} of hf's:")
                print("  hf: " + " ".join(own))
                print("  other packages: " + " ".join(other))


if __name__ == "__main__":
    main()
