"""Box operations against their baselines, measured in one run.

Usage: python benchmarks/boxes.py [--full] [--repeats 5] [--best-n N] [--skip-cli]
       python benchmarks/boxes.py --dataset [--groups 10000] [--per-group 100]   (issue 18, minutes)
       python benchmarks/boxes.py --readers 1000000   (issue 18: reader memory per box)

Goals (issue 6):
- 4,000 x 4,000 IoU matrix: at most 1.1x the time of torchvision.ops.box_iou (float32, CPU).
- best match per box for 100,000 x 100,000 boxes: peak memory under 2 GB (the float32 matrix alone
  is 40 GB). Default N is 20,000 to keep the run short; --full runs 100,000 (minutes on 2 cores).
- multibox_prior for 561x728, sizes (0.75, 0.5, 0.25), ratios (1, 2, 0.5): no slower than d2l's
  straightforward vectorised formulation, identical output.
- (issue 18, --dataset) 1M x 1M boxes in 10k groups, `segtool iou A.csv B.csv --best --group image`
  end to end (parsing included): under 30 s and under 1 GB peak RSS; 100k x 100k ungrouped
  detection-like boxes: the spatial index at least 10x faster than the full matrix.
Peak memory is the child process's peak RSS, torch import included: VmHWM from /proc/self/status
where there is one (getrusage's ru_maxrss can carry the forking parent's peak over exec on Linux),
else resource.getrusage. The peak right after importing torch and building the inputs is printed
next to it. Other jobs on the machine make times noisy (not memory): compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision.ops as tvops

from segtool.ops.boxes import multibox_prior, pairwise_iou

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.test_boxes_anchors import d2l_multibox_prior  # noqa: E402 - the book's formulation, the baseline

SIZES, RATIOS = (0.75, 0.5, 0.25), (1, 2, 0.5)


def random_boxes(n: int, seed: int, extent: float = 10000.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * extent
    wh = torch.rand(n, 2, generator=g) * extent / 50 + 1
    return torch.cat((xy, xy + wh), dim=1)


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_iou_matrix(repeats: int) -> None:
    a, b = random_boxes(4000, 1), random_boxes(4000, 2)
    same = torch.equal(pairwise_iou(a, b), tvops.box_iou(a, b))
    ours = median_seconds(lambda: pairwise_iou(a, b), repeats)
    base = median_seconds(lambda: tvops.box_iou(a, b), repeats)
    print(f"IoU 4000x4000 float32: segtool {ours:.3f} s, torchvision.ops.box_iou {base:.3f} s, "
          f"ratio {ours / base:.2f}x (goal <= 1.10x); identical values: {same}")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_CHILD = """
import json, sys, time, torch
sys.path.insert(0, {root!r})
from benchmarks.boxes import peak_rss_mb, random_boxes
n, mode = {n}, {mode!r}
a, b = random_boxes(n, 1), random_boxes(n, 2)
base = peak_rss_mb()
start = time.perf_counter()
if mode == "segtool":
    from segtool.ops.boxes import best_match
    values, index = best_match(a, b)
else:
    import torchvision.ops as tvops
    values, index = tvops.box_iou(a, b).max(dim=1)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "base_mb": base, "peak_mb": peak_rss_mb(),
                   "checksum": float(values.double().sum())}}))
"""


def run_child(n: int, mode: str) -> dict:
    root = str(Path(__file__).resolve().parent.parent)
    code = _CHILD.format(root=root, n=n, mode=mode)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_best_match(n: int, baseline_n: int) -> None:
    ours = run_child(n, "segtool")
    print(f"best match {n}x{n} float32: segtool {ours['seconds']:.1f} s, peak RSS {ours['peak_mb']:.0f} MB "
          f"(after import + inputs {ours['base_mb']:.0f} MB; goal < 2048 MB at 100000x100000); "
          f"full float32 matrix would be {n * n * 4 / 2**30:.1f} GiB")
    tv = run_child(baseline_n, "torchvision")
    small = run_child(baseline_n, "segtool")
    print(f"  baseline at {baseline_n}x{baseline_n}: torchvision box_iou(a, b).max(1) peak RSS {tv['peak_mb']:.0f} MB "
          f"in {tv['seconds']:.2f} s; segtool best_match {small['peak_mb']:.0f} MB in {small['seconds']:.2f} s "
          f"(same sums: {abs(tv['checksum'] - small['checksum']) < 1e-3 * baseline_n})")


def bench_multibox_prior(repeats: int) -> None:
    data = torch.zeros(1, 3, 561, 728)
    same = torch.equal(multibox_prior(561, 728, SIZES, RATIOS), d2l_multibox_prior(data, SIZES, RATIOS))
    ours = median_seconds(lambda: multibox_prior(561, 728, SIZES, RATIOS), repeats)
    base = median_seconds(lambda: d2l_multibox_prior(data, SIZES, RATIOS), repeats)
    print(f"multibox_prior 561x728 (2,042,040 anchors): segtool {ours:.3f} s, d2l formulation {base:.3f} s, "
          f"ratio {ours / base:.2f}x (goal <= 1.00x); identical output: {same}")


def segtool_in_child(argv: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``segtool ARGV`` in a fresh process: (its output, wall seconds, its peak RSS in MB). The child
    imports nothing beyond what the command does, so the peak is the command's own."""
    code = ("import runpy, sys\n"
            "sys.argv = ['segtool', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('segtool', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "sys.stderr.write(str(int(peak.split()[1]) / 1024))\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, check=True)
    return proc, time.perf_counter() - start, float(proc.stderr.decode().split()[-1])


def bench_anchors_all_cli() -> None:
    proc, seconds, peak = segtool_in_child(["anchors", "--size", "561x728", "--all", "--quiet"])
    rows = proc.stdout.count(b"\n") - 1
    print(f"segtool anchors --size 561x728 --all: {rows:,} rows ({len(proc.stdout) / 2**20:.0f} MiB of CSV) "
          f"in {seconds:.1f} s, peak RSS {peak:.0f} MB")


def detection_like(n: int, seed: int, extent: float, groups: int = 1):
    """Ground truth and predictions: log-uniform sides 8..256 px, predictions jittered (and 20% strays)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    side = np.exp(rng.uniform(np.log(8), np.log(256), (n, 2)))
    xy = rng.uniform(0, extent, (n, 2))
    truth = np.concatenate((xy, xy + side), 1).round(1)
    shift = rng.normal(0, 0.1, (n, 4)) * np.concatenate((side, side), 1)
    pred = truth + shift
    stray = rng.random(n) < 0.2
    pred[stray] = truth[rng.permutation(n)[: int(stray.sum())]] + rng.uniform(-50, 50, (int(stray.sum()), 1))
    pred = np.concatenate((np.minimum(pred[:, :2], pred[:, 2:]), np.maximum(pred[:, :2], pred[:, 2:])), 1).round(1)
    image = np.sort(rng.integers(0, groups, n))
    return truth, pred, image


def _write_csv(path: Path, boxes, image, shuffle_seed: int | None = None) -> None:
    import numpy as np

    order = np.arange(len(boxes)) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(len(boxes))
    with open(path, "w") as out:
        out.write("image,x1,y1,x2,y2\n")
        np.savetxt(out, np.column_stack((image[order], boxes[order])), fmt=["img%06d"] + ["%.1f"] * 4, delimiter=",")


def bench_grouped(groups: int, per_group: int, tmp: Path) -> None:
    import numpy as np

    from segtool.ops.boxes.groups import Grouping, GroupSummary, _per_group, grouped_matches

    n = groups * per_group
    truth, pred, image = detection_like(n, 3, 640.0, groups)
    a_csv, b_csv = tmp / "truth.csv", tmp / "pred.csv"
    _write_csv(a_csv, truth, image)
    _write_csv(b_csv, pred, image, shuffle_seed=4)  # predictions unsorted: groups not contiguous
    proc, seconds, peak = segtool_in_child(["iou", str(a_csv), str(b_csv), "--best", "--group", "image", "--csv", "-q"])
    rows = proc.stdout.count(b"\n") - 1
    print(f"segtool iou A B --best --group image, {n:,} x {n:,} boxes in {groups:,} groups "
          f"({a_csv.stat().st_size / 2**20:.0f} + {b_csv.stat().st_size / 2**20:.0f} MiB CSV, B unsorted): "
          f"{rows:,} rows in {seconds:.1f} s, peak RSS {peak:.0f} MB (goal < 30 s, < 1024 MB)")
    grouping = Grouping(image, image, list(range(groups)), np.arange(n), GroupSummary(groups, 0, 0, 0))
    start = time.perf_counter()
    ours = [np.concatenate(p) for p in zip(*grouped_matches(truth, pred, grouping, best=True, min_iou=None), strict=True)]
    t_index = time.perf_counter() - start
    start = time.perf_counter()
    full = [np.concatenate(p) for p in zip(*_per_group(truth, pred, grouping, "iou", True, None), strict=True)]
    t_full = time.perf_counter() - start
    start = time.perf_counter()
    bounds = np.searchsorted(image, np.arange(groups + 1))
    ta, tb = torch.from_numpy(truth), torch.from_numpy(pred)
    for g0, g1 in zip(bounds[:-1], bounds[1:], strict=True):
        if g1 > g0:
            tvops.box_iou(ta[g0:g1], tb[g0:g1]).max(dim=1)
    t_tv = time.perf_counter() - start
    same = all(np.array_equal(x, y) for x, y in zip(ours, full, strict=True))
    print(f"  in the library (arrays in memory): index {t_index:.1f} s; full matrix per group (segtool best_match) "
          f"{t_full:.1f} s; torchvision box_iou(a, b).max(1) per group {t_tv:.1f} s; identical to full: {same}")


def bench_ungrouped(n: int, sample: int) -> None:
    import numpy as np

    from segtool.ops.boxes import best_match
    from segtool.ops.boxes.index import best_match_indexed

    truth, pred, _ = detection_like(n, 5, 20000.0)
    start = time.perf_counter()
    values, indices = best_match_indexed(truth, pred)
    t_index = time.perf_counter() - start
    start = time.perf_counter()
    full_v, full_i = best_match(torch.from_numpy(truth[:sample]), torch.from_numpy(pred))
    t_full = (time.perf_counter() - start) * n / sample
    same = np.array_equal(values[:sample], full_v.numpy()) and np.array_equal(indices[:sample], full_i.numpy())
    # What a 1D sort-and-sweep on x would have to check: every pair overlapping in x.
    order = np.sort(pred[:, 0])
    widest = float((pred[:, 2] - pred[:, 0]).max())
    sweep = int((np.searchsorted(order, truth[:, 2]) - np.searchsorted(order, truth[:, 0] - widest)).sum())
    print(f"best match {n:,} x {n:,} ungrouped, detection-like boxes in 20000x20000 px: spatial index {t_index:.2f} s, "
          f"full matrix (float64, blocked; timed on {sample:,} rows, scaled) {t_full:.0f} s, "
          f"{t_full / t_index:.0f}x (goal >= 10x); identical on the timed rows: {same}; "
          f"a sort-and-sweep on x would check {sweep:,} pairs")


def bench_reader_memory(n: int, tmp: Path) -> None:
    """Peak RSS growth of read_box_table over the baseline after imports, per box, for each input form."""
    import numpy as np

    boxes = np.random.default_rng(6).uniform(0, 1000, (n, 4)).round(2)
    boxes[:, 2:] += boxes[:, :2]
    image = np.arange(n) // 100
    forms = {"CSV": tmp / "b.csv", "JSON lines": tmp / "b.jsonl", "JSON": tmp / "b.json"}
    _write_csv(forms["CSV"], boxes, image)
    rows = [f'{{"image": "img{g:06d}", "box": [{x1}, {y1}, {x2}, {y2}]}}' for g, (x1, y1, x2, y2)
            in zip(image.tolist(), boxes.tolist(), strict=True)]
    forms["JSON lines"].write_text("\n".join(rows) + "\n")
    forms["JSON"].write_text("[\n" + ",\n".join(rows) + "\n]\n")
    del rows
    root = str(Path(__file__).resolve().parent.parent)
    for name, path in forms.items():
        code = ("import sys, time\n"
                f"sys.path.insert(0, {root!r})\n"
                "from segtool.ops.boxes.read_table import read_box_table\n"
                "def status(key):\n"
                "    return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1]) * 1024\n"
                "base = status('VmRSS')\n"
                "start = time.perf_counter()\n"
                f"table = read_box_table({str(path)!r}, group='image')\n"
                "print(len(table), time.perf_counter() - start, status('VmHWM') - base, base)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True).stdout.split()
        count, seconds, growth, base = int(out[0]), float(out[1]), int(out[2]), int(out[3])
        print(f"read_box_table --group, {count:,} boxes, {name} ({path.stat().st_size / 2**20:.0f} MiB): "
              f"{seconds:.1f} s, peak RSS {growth / count:.0f} bytes per box above the baseline "
              f"({base / 2**20:.0f} MB after imports; goal <= 100)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="best match at 100,000 x 100,000 (slow)")
    parser.add_argument("--best-n", type=int, default=20000, help="best-match size without --full")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-cli", action="store_true", help="skip timing `anchors --all`")
    parser.add_argument("--dataset", action="store_true", help="only the dataset-scale runs of issue 18")
    parser.add_argument("--groups", type=int, default=10000)
    parser.add_argument("--per-group", type=int, default=100)
    parser.add_argument("--ungrouped", type=int, default=100000)
    parser.add_argument("--readers", type=int, default=0, metavar="N",
                        help="only the reader memory per box (CSV, JSON lines, JSON) at N boxes")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.readers:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            bench_reader_memory(args.readers, Path(tmp))
        return
    if args.dataset:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            bench_grouped(args.groups, args.per_group, Path(tmp))
        bench_ungrouped(args.ungrouped, sample=max(1, args.ungrouped // 10))
        return
    bench_iou_matrix(args.repeats)
    bench_multibox_prior(args.repeats)
    bench_best_match(100000 if args.full else args.best_n, baseline_n=5000)
    if not args.skip_cli:
        bench_anchors_all_cli()


if __name__ == "__main__":
    main()
