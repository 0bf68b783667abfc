"""What the training and evaluation kit costs (issue 15), each figure a ratio measured in this run.

  step   segtool's train_step with every option off vs the step as it was before the kit (forward,
         CE, backward, SGD, schedule): goal within 2%.
  ema    ModelEma.update after a step vs the step itself, fcn8 on CPU: goal <= 5%.
  tta    evaluation (model_logits) with --tta flip vs without: goal <= 2.1x.

Rounds are interleaved (A, B, A, B, ...) and the median of each is kept, so a neighbour taking a
core slows both sides alike. Run it niced on a shared machine:

    nice .venv/bin/python benchmarks/train_kit.py [--rounds 15] [--crop 64] [--batch 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segtool.engine.distributed import sync_flags  # noqa: E402
from segtool.engine.ema import ModelEma  # noqa: E402
from segtool.engine.inference import TTA, model_logits  # noqa: E402
from segtool.engine.run_state import TrainState  # noqa: E402
from segtool.engine.schedules import build_scheduler  # noqa: E402
from segtool.engine.speed import autocast, to_device  # noqa: E402
from segtool.engine.train_step import current_lr, forward, train_step  # noqa: E402
from segtool.models import create_model  # noqa: E402
from segtool.ops.losses import SegmentationLoss  # noqa: E402


def setup(crop: int, batch: int, classes: int = 21):
    torch.manual_seed(0)
    model = create_model("fcn8", classes).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scheduler = build_scheduler(optimizer, "poly", 10_000, 100)
    images, masks = torch.rand(batch, 3, crop, crop), torch.randint(0, classes, (batch, crop, crop))
    run = SimpleNamespace(
        optimizer=optimizer, model=model, eager_model=None, device=torch.device("cpu"),
        loss_fn=SegmentationLoss("ce", aux_weight=0.2), scheduler=scheduler, ema=None,
        config=SimpleNamespace(channels_last=False, amp=False, clip_grad=None, accumulate=1),
        stop=SimpleNamespace(signum=None, requested=False), state=TrainState(),
        scaler=torch.amp.GradScaler("cpu", enabled=False))
    return run, images, masks


def step_before(run, images, masks) -> float:
    """engine/train.py's train_step as it was before the kit (commit 14433e5), line for line."""
    images = to_device(images, run.device, run.config.channels_last)
    masks = masks.to(run.device, non_blocking=True)
    with autocast(run.device, run.config.amp):
        output = forward(run, images)
        loss = run.loss_fn(output, masks)
    value = float(loss.detach())
    bad, stop = sync_flags(not math.isfinite(value), run.stop.signum, run.device)
    if bad:
        raise RuntimeError("loss is not finite")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.state.last_lr = current_lr(run)
    run.scheduler.step()
    return value


def timed(function) -> float:
    tic = time.perf_counter()
    function()
    return time.perf_counter() - tic


def median_pair(a, b, rounds: int) -> tuple[float, float]:
    a(), b()  # warm-up
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(timed(a))
        times_b.append(timed(b))
    return statistics.median(times_a), statistics.median(times_b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"fcn8, batch {args.batch}, crop {args.crop}, {torch.get_num_threads()} thread(s), "
          f"median of {args.rounds} interleaved rounds")

    run, images, masks = setup(args.crop, args.batch)
    before, now = median_pair(lambda: step_before(run, images, masks),
                              lambda: train_step(run, [(images, masks)]), args.rounds)
    print(f"step   before the kit {before * 1e3:8.1f} ms   now (options off) {now * 1e3:8.1f} ms   "
          f"ratio {now / before:.3f} (goal <= 1.02)")

    ema = ModelEma(run.model, 0.999)
    step, update = median_pair(lambda: step_before(run, images, masks), lambda: ema.update(run.model), args.rounds)
    print(f"ema    step {step * 1e3:8.1f} ms   ema.update {update * 1e3:8.2f} ms   "
          f"{100 * update / step:.2f}% of a step (goal <= 5%)")

    model = run.model.eval()
    with torch.no_grad():
        plain, flip = median_pair(lambda: model_logits(model, images, 32),
                                  lambda: model_logits(model, images, 32, tta=TTA(flip=True)), args.rounds)
    print(f"tta    evaluation {plain * 1e3:8.1f} ms   --tta flip {flip * 1e3:8.1f} ms   "
          f"ratio {flip / plain:.2f}x (goal <= 2.1x)")


if __name__ == "__main__":
    main()
