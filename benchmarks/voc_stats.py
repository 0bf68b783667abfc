"""`voc-stats` scaling: 2 worker processes against 1, on a synthetic VOC tree.

Goal (issue 3): 2 workers at least 1.7x faster than 1 on 2 cores. The script writes a VOC-layout
tree of N 500x375 JPEG images with palette masks (VOC's typical size; N defaults to 1464, the size of
VOC 2012's train split) into a temp dir, then times ``dataset_stats`` with 1 and 2 workers,
alternating, best of R runs each (the best run is the least disturbed one on a shared machine).
Both with and without --mean-std; then the whole command (`python -m segtool voc-stats`, a new
process each run) the same way, whose fixed start-up (~0.4 s of imports and listing) does not shrink
with workers. Run it on an otherwise idle machine: a second worker can only
help when a second core is free.

    .venv/bin/python benchmarks/voc_stats.py [--images 1464] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segtool.data.demo import render_sample  # noqa: E402
from segtool.data.masks import write_label_png  # noqa: E402
from segtool.data.palettes import get_palette  # noqa: E402
from segtool.data.stats import dataset_stats  # noqa: E402


def make_tree(root: Path, count: int) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    palette = get_palette("voc")
    templates = [render_sample(0, i, 500, 8) for i in range(8)]  # reuse a few renders: generation stays quick
    names = []
    for i in range(count):
        image, labels = templates[i % len(templates)]
        shift = (i * 37) % 100
        arr = np.roll(np.asarray(image), shift, axis=1)[:375]
        name = f"2012_{i:06d}"
        Image.fromarray(arr).save(voc / "JPEGImages" / f"{name}.jpg", quality=90)
        write_label_png(np.roll(labels, shift, axis=1)[:375], voc / "SegmentationClass" / f"{name}.png", palette)
        names.append(name)
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(names) + "\n")
    return voc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1464)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        voc = make_tree(Path(tmp), args.images)
        print(f"synthetic VOC tree: {args.images} images 500x375 ({time.perf_counter() - start:.1f} s to write); "
              f"{os.cpu_count()} CPUs; best of {args.runs} runs\n")
        for mean_std in (False, True):
            best = {1: float("inf"), 2: float("inf")}
            reports = {}
            for _ in range(args.runs):
                for workers in (1, 2):
                    start = time.perf_counter()
                    reports[workers] = dataset_stats("voc", voc, "train", crop=(320, 480), mean_std=mean_std,
                                                     workers=workers)
                    best[workers] = min(best[workers], time.perf_counter() - start)
            assert reports[1] == reports[2], "1 and 2 workers disagree"
            label = "voc-stats --mean-std" if mean_std else "voc-stats"
            print(f"{label:22s} 1 worker {best[1]:6.2f} s   2 workers {best[2]:6.2f} s   "
                  f"speed-up {best[1] / best[2]:4.2f}x (goal >= 1.7x)   "
                  f"{best[1] / args.images * 1000:.2f} ms/image with 1 worker")
            command = [sys.executable, "-m", "segtool", "voc-stats", str(voc), "--crop", "320x480", "--json", "-q"]
            command += ["--mean-std"] if mean_std else []
            whole = {workers: best_of(args.runs, command + ["--workers", str(workers)]) for workers in (1, 2)}
            print(f"{'  whole command':22s} 1 worker {whole[1]:6.2f} s   2 workers {whole[2]:6.2f} s   "
                  f"speed-up {whole[1] / whole[2]:4.2f}x (includes Python start-up and imports)")


def best_of(runs: int, command: list[str]) -> float:
    """Best wall time of ``runs`` runs of the command (a new process each time)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    main()
