"""Default CPU thread count of evaluate, predict and the box commands: 1 vs 2 threads (issue 14).

Usage: nice .venv/bin/python benchmarks/threads.py [--repeats 3] [--checkpoint best.pt]

Each case runs `segtool ... --threads N` as a fresh process (start-up included, as a user sees it),
alternating 1 and 2 threads, and prints the median wall time and the ratio 2-thread / 1-thread.
Small inputs: the demo set's 60 val images (64 px) and 500 x 500 boxes; large: the demo set made at
256 px, one 1024 x 1024 photo for predict and 4000 x 4000 boxes. The checkpoint is an untrained
tiny fcn8 (the tests'; random weights time the same as trained ones) unless --checkpoint is given.
Other jobs on the machine change the answer: that is the point (2 threads lose badly when another
process holds a core); say how busy the machine was (load average is printed).
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

ROOT = Path(__file__).resolve().parent.parent
SEGTOOL = [sys.executable, "-m", "segtool"]


def _run(args: list[str], threads: int) -> float:
    start = time.perf_counter()
    subprocess.run([*SEGTOOL, *args, "--threads", str(threads), "--quiet"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _boxes(path: Path, n: int, seed: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (n, 2))
    wh = rng.uniform(5, 100, (n, 2))
    np.savetxt(path, np.hstack([xy, xy + wh]), delimiter=",", fmt="%.2f")
    return path


def _prepare(work: Path, checkpoint: str | None) -> dict[str, list[str]]:
    import numpy as np
    from PIL import Image

    from segtool.data.demo import make_demo_dataset

    small, large = work / "demo64", work / "demo256"
    make_demo_dataset(small)
    make_demo_dataset(large, train=1, val=20, size=256)
    if checkpoint is None:
        sys.path.insert(0, str(ROOT))
        from tests._train_helpers import random_checkpoint

        checkpoint = str(random_checkpoint(work / "fcn8.pt", 5))  # the tests' tiny fcn8
    photo = work / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), np.uint8)).save(photo)
    a_small, b_small = _boxes(work / "a500.csv", 500, 1), _boxes(work / "b500.csv", 500, 2)
    a_large, b_large = _boxes(work / "a4000.csv", 4000, 3), _boxes(work / "b4000.csv", 4000, 4)
    return {
        "evaluate small (60 x 64 px)": ["evaluate", checkpoint, "--data", str(small), "--format", "demo"],
        "evaluate large (20 x 256 px)": ["evaluate", checkpoint, "--data", str(large), "--format", "demo"],
        "predict small (64 px)": ["predict", checkpoint, str(small / "JPEGImages" / "demo_00000.jpg"),
                                  "-o", str(work / "p_small.png"), "--force"],
        "predict large (1024 px)": ["predict", checkpoint, str(photo), "-o", str(work / "p_large.png"), "--force"],
        "iou small (500 x 500)": ["iou", str(a_small), str(b_small), "--best"],
        "iou large (4000 x 4000 matrix)": ["iou", str(a_large), str(b_large)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", help="a segtool checkpoint (default: an untrained tiny fcn8)")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        cases = _prepare(Path(tmp), args.checkpoint)
        for name, command in cases.items():
            times: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.repeats):
                for threads in (1, 2):  # interleaved, so a burst of other load hits both
                    times[threads].append(_run(command, threads))
            one, two = statistics.median(times[1]), statistics.median(times[2])
            print(f"{name:32s} 1 thread {one:6.2f} s   2 threads {two:6.2f} s   2/1 {two / one:4.2f}x"
                  f"   load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
