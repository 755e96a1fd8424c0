"""Guard overhead: git commands direct vs through hf's wrapper, outside and inside
a part, and a commit inside a part with hf's hooks vs the real git without any
hooks. Not part of the test suite; run it by hand:

    PYTHONPATH=. python3 tests/bench/bench_guard.py [ROUNDS]

Prints the median wall-clock time per call of each and the milliseconds the
guard adds (targets: <= 5 ms per allowed command, <= 20 ms per commit), and a
refused command (python's policy) for scale.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hf_fanout.guard.env import bin_dir  # noqa: E402


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)


def median_ms(argv: list[str], cwd: Path, env: dict[str, str], rounds: int) -> float:
    run(argv, cwd, env)  # warm the caches
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run(argv, cwd, env)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    real = shutil.which("git")
    assert real is not None
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GIT_CONFIG_NOSYSTEM": "1",
               "HOME": tmp, "XDG_CONFIG_HOME": f"{tmp}/.config",
               "XDG_STATE_HOME": f"{tmp}/.state"}
        for argv in (["init", "-q", "-b", "main"], ["config", "user.name", "bench"],
                     ["config", "user.email", "bench@example.invalid"]):
            run([real, *argv], repo, env)
        for i in range(200):
            path = repo / "src" / ("api" if i % 2 else "ui") / f"f{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"x = {i}\n")
        run([real, "add", "-A"], repo, env)
        run([real, "commit", "-qm", "init"], repo, env)
        run([sys.executable, "-m", "hf_fanout", "split", "b1", "--part", "api=src/api/**",
             "--part", "ui=src/ui/**"], repo, env)
        part = Path(tmp) / "repo.hf" / "b1" / "api"
        wrapped = {**env, "PATH": f"{bin_dir()}{os.pathsep}{env['PATH']}",
                   "HF_PYTHON": sys.executable}
        version = subprocess.run([real, "--version"], capture_output=True, text=True,
                                 check=True).stdout.split()[-1]
        print(f"git {version}, {rounds} rounds, "
              f"median ms per call, {os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.2f}")
        print(f"{'command':<19}{'where':<9}{'direct':>9}{'wrapped':>9}{'added':>9}")
        run(["git", "stash", "list"], part, wrapped)  # the first guarded command
        time.sleep(2.5)  # writes the part's fast file; past its margin it is used
        for where, cwd in (("outside", repo), ("inside", part)):
            for argv in (["--version"], ["status"], ["log", "-1"], ["diff", "HEAD"],
                         ["rev-parse", "HEAD"]):
                direct = median_ms([real, *argv], cwd, env, rounds)
                through = median_ms(["git", *argv], cwd, wrapped, rounds)
                print(f"{'git ' + ' '.join(argv):<19}{where:<9}{direct:>9.1f}{through:>9.1f}"
                      f"{through - direct:>+9.1f}")
        commit = ["commit", "-q", "--allow-empty", "-m", "bench"]
        direct = median_ms([real, "-c", "core.hooksPath=/dev/null", *commit], part, env, rounds)
        through = median_ms(["git", *commit], part, wrapped, rounds)
        print(f"{'git commit':<19}{'inside':<9}{direct:>9.1f}{through:>9.1f}"
              f"{through - direct:>+9.1f}   (direct: no hooks at all; wrapped: hf's hooks)")
        refused = median_refused(["git", "push"], part, wrapped, rounds)
        print(f"{'git push':<19}{'inside':<9}{'':>9}{refused:>9.1f}   (refused: python)")
    return 0


def median_refused(argv: list[str], cwd: Path, env: dict[str, str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
