"""Start-up cost of `segtool --help` next to `python -c "import torch"`, measured in one run.

Usage: python benchmarks/startup.py [--runs 7]
Goal: median `segtool --help` <= 0.4 s on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    bare = _median_seconds([py, "-c", "pass"], args.runs)
    help_root = _median_seconds([py, "-m", "segtool", "--help"], args.runs)
    help_train = _median_seconds([py, "-m", "segtool", "info", "--help"], args.runs)
    torch_import = _median_seconds([py, "-c", "import torch"], args.runs)
    print(f"python -c pass            {bare:6.3f} s")
    print(f"segtool --help            {help_root:6.3f} s   (goal <= 0.400 s)")
    print(f"segtool info --help       {help_train:6.3f} s")
    print(f"python -c 'import torch'  {torch_import:6.3f} s")
    print(f"ratio import torch / segtool --help: {torch_import / help_root:.1f}x")


if __name__ == "__main__":
    main()
