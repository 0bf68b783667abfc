"""Style transfer on the CPU: time per step (Adam, L-BFGS), peak memory, and L-BFGS vs Adam.

Usage: python benchmarks/stylize.py [--size 300x450] [--adam-steps 500] [--threads N] [--seed 0]
                                   [--lbfgs-smoothing 0.05[,EPS...]]

1. Adam, the d2l recipe (lr 0.3, StepLR 50/0.8, content 1 / style 1e4 / TV 10), ``--adam-steps``
   steps: time per step, the final total loss, peak RSS.
2. L-BFGS (history 100, strong-Wolfe line search, TV smoothed with each ``--lbfgs-smoothing``
   epsilon; default: segtool's) from the same start until its total loss — the exact d2l loss,
   as Adam's — is at or below Adam's final loss, capped at Adam's wall time: time per iteration
   and per loss evaluation, time to reach Adam's loss, peak RSS.
Goal (issue 7): L-BFGS reaches the final total loss of 500 Adam steps in <= 0.5 x Adam's time.

Each run is a fresh subprocess so its peak RSS (ru_maxrss) is its own. ImageNet VGG-19 weights
cannot be downloaded here, so VGG-19 is randomly initialised with a fixed seed: the timings are
those of the real network, the losses and the convergence race are those of a random one.
Content/style are two VOC photos from ../shared/fixtures when present, else synthetic images.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "voc2012-mini" / "JPEGImages"


class _Reached(Exception):
    pass


def _images():
    from PIL import Image

    content, style = FIXTURES / "2011_000003.jpg", FIXTURES / "2011_000025.jpg"
    if content.is_file() and style.is_file():
        return Image.open(content).convert("RGB"), Image.open(style).convert("RGB"), "VOC 2011_000003 / 2011_000025"
    import numpy as np

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:450] / 450
    smooth = np.stack([np.sin(6 * xx), np.cos(5 * yy), xx * yy], -1) * 0.4 + 0.5
    noisy = rng.random((256, 256, 3))
    return (Image.fromarray((smooth * 255).astype("uint8")), Image.fromarray((noisy * 255).astype("uint8")),
            "synthetic (fixtures absent)")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(args) -> dict:
    """One optimisation in this process; returns its figures."""
    import torch

    from segtool.style import StyleConfig, load_vgg19, stylize

    if args.threads:
        torch.set_num_threads(args.threads)
    content, style, source = _images()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    torch.manual_seed(args.seed)
    config = StyleConfig(size=size, steps=args.steps, optimizer=args.worker, seed=args.seed,
                         tv_weight=args.tv_weight, style_weight=args.style_weight, tv_smoothing=args.tv_smoothing)
    extractor = load_vgg19(config.layers, random_weights=True)
    # Warm up outside the timed loop: first-call kernel set-up, and torch.optim's lazy imports.
    warm = StyleConfig(size=size, steps=1, optimizer=args.worker, seed=args.seed)
    stylize(content, [style], warm, extractor=extractor)
    rss_before = _peak_rss_mib()

    trace: list[tuple[int, float, float, int]] = []  # (step, seconds, total loss at step start, evals)
    cpu: list[float] = []  # CPU seconds (all threads) at each step: steadier than wall time on a shared machine

    cpu_start = time.process_time()

    def on_step(report) -> None:
        trace.append((report.step, report.seconds, report.losses["total"], report.evaluations))
        cpu.append(time.process_time() - cpu_start)
        if args.target is not None and report.losses["total"] <= args.target:
            raise _Reached
        if args.budget is not None and report.seconds > args.budget:
            raise _Reached

    started = time.perf_counter()
    final_loss = None
    try:
        result = stylize(content, [style], config, extractor=extractor, on_step=on_step)
        seconds, final_loss = result.stages[0]["seconds"], result.losses["total"]
        memory_estimate = result.memory_estimate
    except _Reached:
        seconds = trace[-1][1]
        memory_estimate = None
    steps, _, _, evaluations = trace[-1]
    return {
        "optimizer": args.worker, "size": list(size), "threads": torch.get_num_threads(), "images": source,
        "steps": steps, "evaluations": evaluations, "seconds": seconds,
        "per_step_s": seconds / steps, "per_eval_s": seconds / evaluations,
        "cpu_s": cpu[-1], "per_step_cpu_s": cpu[-1] / steps,
        "final_loss": final_loss, "trace": trace[:: max(1, len(trace) // 50)] + [trace[-1]],
        "reached": args.target is not None and trace[-1][2] <= args.target,
        "wall_s": time.perf_counter() - started, "rss_before_mib": rss_before, "peak_rss_mib": _peak_rss_mib(),
        "memory_estimate_mib": memory_estimate / 2**20 if memory_estimate else None,
    }


def _spawn(args, optimizer: str, steps: int, target: float | None = None, budget: float | None = None,
           smoothing: float | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", optimizer, "--steps", str(steps), "--size", args.size,
           "--seed", str(args.seed), "--tv-weight", repr(args.tv_weight), "--style-weight", repr(args.style_weight)]
    if smoothing is not None:
        cmd += ["--tv-smoothing", repr(smoothing)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if target is not None:
        cmd += ["--target", repr(target)]
    if budget is not None:
        cmd += ["--budget", repr(budget)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="300x450", help="HxW (default 300x450, the d2l size)")
    parser.add_argument("--adam-steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tv-weight", type=float, default=10.0, help="d2l: 10")
    parser.add_argument("--style-weight", type=float, default=1e4, help="d2l: 1e4")
    parser.add_argument("--lbfgs-smoothing", default=None,
                        help="comma-separated TV smoothing epsilons to race L-BFGS with (default: segtool's)")
    parser.add_argument("--tv-smoothing", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["adam", "lbfgs"], help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.worker:
        print(json.dumps(worker(args)))
        return

    print(f"stylize benchmark: {args.size}, style weight {args.style_weight:g}, TV weight {args.tv_weight:g}, "
          f"RANDOM VGG-19 weights (seed {args.seed}; ImageNet weights not downloadable here)", flush=True)
    adam = _spawn(args, "adam", args.adam_steps)
    print(f"images: {adam['images']}; torch threads: {adam['threads']}")
    print(f"Adam   {adam['steps']} steps: {adam['seconds']:.1f} s, {adam['per_step_s']:.3f} s/step "
          f"({adam['per_step_cpu_s']:.3f} CPU-s/step), "
          f"final total loss {adam['final_loss']:.5g}, peak RSS {adam['peak_rss_mib']:.0f} MiB "
          f"({adam['rss_before_mib']:.0f} MiB after a 1-step warm-up; segtool's estimate "
          f"{adam['memory_estimate_mib']:.0f} MiB)", flush=True)
    smoothings = [float(v) for v in args.lbfgs_smoothing.split(",")] if args.lbfgs_smoothing else [None]
    for smoothing in smoothings:
        _race(args, adam, smoothing)


def _race(args, adam: dict, smoothing: float | None) -> None:
    """Run L-BFGS until it reaches Adam's final loss (or Adam's time) and print the verdict."""
    from segtool.style.config import DEFAULT_TV_SMOOTHING

    lbfgs = _spawn(args, "lbfgs", 100 * args.adam_steps, target=adam["final_loss"], budget=adam["seconds"],
                   smoothing=smoothing)
    eps = DEFAULT_TV_SMOOTHING["lbfgs"] if smoothing is None else smoothing
    print(f"L-BFGS, TV smoothing {eps:g}: {lbfgs['steps']} iterations, {lbfgs['evaluations']} evaluations: "
          f"{lbfgs['seconds']:.1f} s, {lbfgs['per_step_s']:.3f} s/iteration, {lbfgs['per_eval_s']:.3f} s/evaluation "
          f"({lbfgs['per_step_cpu_s']:.3f} CPU-s/iteration), "
          f"peak RSS {lbfgs['peak_rss_mib']:.0f} MiB ({lbfgs['rss_before_mib']:.0f} MiB after a 1-step warm-up)")
    ratio = lbfgs["seconds"] / adam["seconds"]
    cpu_ratio = lbfgs["cpu_s"] / adam["cpu_s"]
    eval_ratio = lbfgs["evaluations"] / adam["evaluations"]
    verdict = "met" if lbfgs["reached"] and ratio <= 0.5 else "NOT met"
    reached = "reached" if lbfgs["reached"] else "did NOT reach"
    print(f"  {reached} Adam's final loss {adam['final_loss']:.5g} after {lbfgs['seconds']:.1f} s "
          f"(loss {lbfgs['trace'][-1][2]:.5g}) = {ratio:.2f} x Adam's time, {cpu_ratio:.2f} x its CPU time, "
          f"{eval_ratio:.2f} x its evaluations (goal <= 0.50 x time): {verdict}")
    print("  loss vs time (s): adam " + ", ".join(f"{t:.0f}:{loss:.3g}" for _, t, loss, _ in adam["trace"][::10]))
    print("                   lbfgs " + ", ".join(f"{t:.0f}:{loss:.3g}" for _, t, loss, _ in lbfgs["trace"][::5]),
          flush=True)

if __name__ == "__main__":
    main()
