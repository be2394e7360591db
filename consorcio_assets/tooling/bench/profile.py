"""Profile one bench task with py-spy and print its top frames: `python -m consorcio_assets.tooling.bench.profile
[--simulacoes N | --home DIR] TASK [worker arguments...]`, e.g. `extract` or `glue --stages transformed,aurora`.

It runs the same worker the benchmark runs (`worker.py`), on the bench home's current data (run `consorcio bench`
at that scale first), sampling every thread of it and of its subprocesses, and ranks functions by the samples
in which they are running (self) and on the stack (inclusive).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from consorcio_assets.tooling.bench.runner import BenchConfig, prepare

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
#: the process and thread entries `--subprocesses --threads` put at the root of each stack
PSEUDO = re.compile(r"^(process \d+:|thread \()")


def _function(frame: str) -> str:
    """`name (path/to/module.py:123)` → `name (module.py)`: one entry per function, not per line."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m['function']} ({Path(m['file']).name})"


def top_frames(raw: str, limit: int = 15) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, top by self, top by inclusive) from py-spy's raw (collapsed stacks) output."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";") if f and not PSEUDO.match(f)]
        total += n
        if frames:
            own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    return total, own.most_common(limit), inclusive.most_common(limit)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m consorcio_assets.tooling.bench.profile", description=__doc__.splitlines()[0]
    )
    p.add_argument("--simulacoes", type=int, default=1_000_000)
    p.add_argument("--home", type=Path)
    p.add_argument("--rate", type=int, default=50, help="samples per second")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--native", action="store_true", help="include C/C++ frames (pyarrow, DuckDB, libpq)")
    p.add_argument(
        "--module",
        default="consorcio_assets.tooling.bench.worker",
        help="the task's module (default the bench worker; consorcio_assets.tooling.bench.row_diff for `ours`)",
    )
    p.add_argument("task", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    env = prepare(BenchConfig(simulacoes=args.simulacoes, home=args.home))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        cmd = [
            py_spy,
            "record",
            "--format",
            "raw",
            "--subprocesses",
            "--threads",
            "-r",
            str(args.rate),
            "-o",
            str(out),
            *(["--native"] if args.native else []),
            "--",
            sys.executable,
            "-m",
            args.module,
            *args.task,
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "", flush=True)
        if done.returncode != 0 or not out.exists():
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        total, own, inclusive = top_frames(out.read_text(), args.top)
    print(f"\n{total} samples of `{' '.join(args.task)}`\n\ntop by self:")
    for name, n in own:
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("\ntop by inclusive:")
    for name, n in inclusive:
        print(f"  {100 * n / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
