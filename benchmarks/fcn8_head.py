"""fcn8: fused 8x head vs the layer-by-layer head, whole model, measured in one run.

Usage: python benchmarks/fcn8_head.py [--batch 8] [--size 224] [--classes 21] [--threads 2]
                                      [--fused-steps 3] [--layered-steps 1]
Goals (2-core CPU, 224x224, batch 8, 21 classes): training step (forward + backward + SGD step)
>= 4x faster fused; eval forward >= 6x faster; lower peak memory.

Each (form, mode) runs in its own subprocess so that peak memory (ru_maxrss) belongs to it alone.
Memory is reported as the peak resident size minus the resident size after building the model,
optimizer and batch (the extra memory the steps need), next to the raw peak. The layer-by-layer
form is slow (about a minute per training step at batch 8 here), so by default it is timed on one
step without warm-up; the fused form gets one warm-up step and the median of --fused-steps. In eval,
the fused form composes its kernel on the first call and reuses it after; both figures are printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _worker(form: str, mode: str, args: argparse.Namespace) -> dict:
    import torch
    import torch.nn.functional as F

    from segtool.models import create_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("fcn8", args.classes, fused=(form == "fused"))
    x = torch.rand(args.batch, 3, args.size, args.size)
    y = torch.randint(0, args.classes, (args.batch, args.size, args.size))
    optim = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=5e-4)
    steps = args.fused_steps if form == "fused" else args.layered_steps
    warmup = 1 if form == "fused" else 0

    def train_step() -> None:
        loss = F.cross_entropy(model(x), y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()

    def eval_step() -> None:
        with torch.no_grad():
            model(x)

    step = train_step if mode == "train" else eval_step
    model.train(mode == "train")
    base = _rss_mib()
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"times": times, "warmup": warmup, "base_mib": base, "peak_mib": peak}


def _run(form: str, mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", form, mode, "--batch", str(args.batch), "--size", str(args.size),
           "--classes", str(args.classes), "--threads", str(args.threads),
           "--fused-steps", str(args.fused_steps), "--layered-steps", str(args.layered_steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fused-steps", type=int, default=3)
    parser.add_argument("--layered-steps", type=int, default=1)
    parser.add_argument("--worker", nargs=2, metavar=("FORM", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(*args.worker, args)))
        return

    print(f"fcn8 {args.size}x{args.size}, batch {args.batch}, {args.classes} classes, {args.threads} threads")
    goals = {"train": 4.0, "eval": 6.0}
    for mode in ("train", "eval"):
        fused, layered = _run("fused", mode, args), _run("layered", mode, args)
        t_fused = statistics.median(fused["times"][fused["warmup"]:])
        t_layered = statistics.median(layered["times"][layered["warmup"]:])
        what = "training step (fwd + bwd + SGD)" if mode == "train" else "eval forward (no_grad)"
        print(f"\n{what}")
        print(f"  layer-by-layer  {t_layered:8.2f} s/step  (median of {len(layered['times']) - layered['warmup']},"
              f" {'no warm-up' if not layered['warmup'] else 'after warm-up'})")
        print(f"  fused           {t_fused:8.2f} s/step  (median of {len(fused['times']) - fused['warmup']}"
              f" after 1 warm-up; first call {fused['times'][0]:.2f} s)")
        print(f"  speed-up        {t_layered / t_fused:8.1f}x      (goal >= {goals[mode]:.0f}x)")
        extra_f, extra_l = fused["peak_mib"] - fused["base_mib"], layered["peak_mib"] - layered["base_mib"]
        print(f"  peak RSS        layer-by-layer {layered['peak_mib']:7.0f} MiB (+{extra_l:.0f} for the step), "
              f"fused {fused['peak_mib']:7.0f} MiB (+{extra_f:.0f})  -> {extra_l / max(extra_f, 1):.1f}x less "
              "extra memory (goal: lower)")


if __name__ == "__main__":
    main()
