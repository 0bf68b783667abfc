"""One optimizer step and one stretch of steps of the training loop (``engine/train.py`` drives them).

``train_one_epoch`` trains until a metrics row is due; ``train_step`` is the forward, loss check and
backward of each ``--accumulate`` batch, then one optimizer and schedule step.
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from segtool.core.console import warn
from segtool.core.errors import SegtoolError
from segtool.engine.distributed import all_reduce_sum, sync_flags, unwrap
from segtool.engine.evaluate import Validation
from segtool.engine.loaders import segtool_error_from_worker
from segtool.engine.run_state import Run
from segtool.engine.speed import autocast, to_device


def train_step(run: Run, batches: list) -> float:
    """Forward, loss check and backward of each of the --accumulate batches, then one optimizer and
    schedule step; returns the mean loss."""
    run.optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for i, (images, masks) in enumerate(batches):
        images = to_device(images, run.device, run.config.channels_last)
        masks = masks.to(run.device, non_blocking=True)
        # DDP: gradients are all-reduced once, on the last accumulated batch.
        no_sync = getattr(run.model, "no_sync", None) if i < len(batches) - 1 else None
        with no_sync() if no_sync is not None else contextlib.nullcontext():
            with autocast(run.device, run.config.amp):
                output = forward(run, images)
                loss = run.loss_fn(output, masks)
            value = float(loss.detach())
            # One tiny all_reduce per batch keeps ranks in lock-step on "stop" and "loss is not finite".
            bad, stop = sync_flags(not math.isfinite(value), run.stop.signum, run.device)
            if bad:
                raise not_finite(run, f"loss is {value} at step {run.state.step + 1} (epoch {run.state.epoch + 1})")
            if stop and not run.stop.requested:
                run.stop.request(stop)
            run.scaler.scale(loss / len(batches) if len(batches) > 1 else loss).backward()
        total += value
    if run.config.clip_grad:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(unwrap(run.model).parameters(), run.config.clip_grad)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.ema is not None:
        run.ema.update(unwrap(run.model))
    run.state.last_lr = current_lr(run)  # the lr this step used (logged), before the schedule moves on
    run.scheduler.step()
    return total / len(batches)


def not_finite(run: Run, what: str) -> SegtoolError:
    last = run.run_dir / "last.pt"
    kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was saved yet"
    return SegtoolError(f"{what}: training stopped; {kept} (try a lower --lr, or no --amp)")


def check_finite(run: Run, val: Validation) -> None:
    """Before anything is logged or saved: a NaN validation loss or weight stops the run, so
    last.pt and best.pt stay the last good ones."""
    weights = unwrap(run.model).state_dict().values()
    bad_weights = any(not bool(torch.isfinite(t).all()) for t in weights if t.is_floating_point())
    bad_loss = val.loss is not None and not math.isfinite(val.loss)
    bad, _ = sync_flags(bad_weights or bad_loss, None, run.device)
    if bad:
        what = "weights are not finite" if bad_weights else f"validation loss is {val.loss}"
        raise not_finite(run, f"{what} after step {run.state.step} (epoch {run.state.epoch + 1})")


def forward(run: Run, images: torch.Tensor):
    """The model's forward; a --compile that fails on first use falls back to the eager model."""
    if run.eager_model is None or run.model is run.eager_model:
        return run.model(images)
    try:
        output = run.model(images)
    except Exception as exc:  # noqa: BLE001 - torch.compile backends fail in many ways; eager still works
        warn(f"--compile failed on first use ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
             "continuing without it")
        run.model = run.eager_model
        return run.model(images)
    run.eager_model = None  # compiled fine: no more fallback checks
    return output


def row_due(run: Run) -> bool:
    """A metrics row (and maybe a validation) is due: epoch end, last step, or --val-every N steps."""
    state = run.state
    return (state.epoch_step >= run.steps_per_epoch or state.step >= run.total_steps
            or (run.val_every.unit == "step" and run.val_every.due(state.step, state.epoch, False)))


def next_batches(batches, count: int) -> list:
    """Up to ``count`` (images, masks) batches; fewer at the end of the epoch."""
    group = []
    for _ in range(count):
        try:
            images, masks, _sizes = next(batches)
        except StopIteration:
            break
        except SegtoolError as exc:
            raise segtool_error_from_worker(exc) from None
        group.append((images, masks))
    return group


def train_one_epoch(run: Run, bar, task, batches) -> dict:
    """Train until a metrics row is due (epoch end, --val-every, --max-steps) or a stop is requested."""
    state, partial = run.state, run.state.partial
    run.model.train()
    tic = time.perf_counter()
    while not (row_due(run) and state.step != state.last_row_step):
        group = next_batches(batches, run.config.accumulate)
        if not group:
            break
        value = train_step(run, group)
        state.step += 1
        state.epoch_step += 1
        partial["loss_sum"] += value * len(group)
        partial["batches"] += len(group)
        partial["images"] += sum(int(images.shape[0]) for images, _ in group)
        if run.tensorboard is not None:
            run.tensorboard.step(state.step, value, state_lr(run))
        if run.on_step is not None:
            run.on_step(run)
        seconds = partial["seconds"] + time.perf_counter() - tic
        bar.update(task, advance=1, stats=f"loss {value:.4f}  lr {state_lr(run):.3g}  "
                                          f"{partial['images'] * run.dist.world_size / max(seconds, 1e-9):.1f} img/s")
        if run.stop.requested:
            break
    partial["seconds"] += time.perf_counter() - tic
    loss_sum, batches_done, images_done = all_reduce_sum(
        [partial["loss_sum"], float(partial["batches"]), float(partial["images"])], run.device)
    return {"train_loss": loss_sum / batches_done if batches_done else None,
            "img_per_s": images_done / partial["seconds"] if partial["seconds"] > 0 else None}


def current_lr(run: Run) -> float:
    return float(run.optimizer.param_groups[0]["lr"])


def state_lr(run: Run) -> float:
    """The lr of the latest step (the optimizer already holds the next step's)."""
    return run.state.last_lr if run.state.last_lr is not None else current_lr(run)
