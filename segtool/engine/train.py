"""The training loop: ``train(config, source, device, run_dir)``.

Read top-down: a ``Run`` holds everything built for the run; ``train`` (1) sets up the runtime,
(2) builds data, model, optimizer, schedule and loss, (3) restores a checkpoint when resuming,
(4) loops over epochs (``train_one_epoch`` -> ``run_validation`` -> ``log_epoch`` ->
``save_checkpoints``) and (5) returns a summary. Only rank 0 writes files or prints. One step and one
stretch of steps live in ``train_step.py``; the log rows and checkpoints in ``train_records.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from segtool.core.console import is_quiet, notice, plural, progress, warn
from segtool.core.errors import SegtoolError
from segtool.data.sources import DataSource
from segtool.engine import checkpoint as ckpt
from segtool.engine.builders import build_data, build_loss, build_model, build_optimizer
from segtool.engine.config import TrainConfig
from segtool.engine.config_layers import ResolvedConfig, to_yaml
from segtool.engine.distributed import (
    DistInfo,
    cleanup_distributed,
    env_dist_info,
    init_distributed,
    lost_rank_error,
    rank_device,
    unwrap,
    wrap_model,
)
from segtool.engine.estimate import RunEstimate
from segtool.engine.evaluate import run_validation
from segtool.engine.run_control import check_class_metric, record_validation
from segtool.engine.run_dir import MetricsLog, create_run_dir, discard_failed_run, record_run
from segtool.engine.run_state import Run, TrainResult, TrainState
from segtool.engine.schedules import build_scheduler, warmup_steps, with_warmup
from segtool.engine.signals import StopRequest
from segtool.engine.speed import (
    channels_last,
    make_scaler,
    maybe_compile,
    seed_everything,
    set_deterministic,
    warn_slow_amp,
)
from segtool.engine.train_records import log_epoch, metric_text, save_and_stop, save_checkpoints
from segtool.engine.train_step import check_finite, train_one_epoch

# -- (1) runtime ----------------------------------------------------------------------------------

def setup_runtime(config: TrainConfig, device: torch.device) -> tuple[torch.device, DistInfo]:
    dist = env_dist_info()
    device = rank_device(device, dist)
    init_distributed(device, dist, config.dist_timeout)
    seed_everything(config.seed)
    set_deterministic(config.deterministic)
    if config.sync_bn and dist.enabled and device.type == "cpu":
        raise SegtoolError("--sync-bn needs CUDA or NPU devices (SyncBatchNorm has no CPU kernel)")
    if config.sync_bn and not dist.enabled:
        warn("--sync-bn only matters under torchrun with several processes; ignored")
    return device, dist


def finished(run: Run) -> bool:
    state = run.state
    return state.epoch >= run.config.epochs or state.step >= run.total_steps or state.stop_reason is not None


def total_optimizer_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    total = config.epochs * steps_per_epoch
    return min(total, config.max_steps) if config.max_steps else total


# -- (3) resume -----------------------------------------------------------------------------------

def restore(run: Run, checkpoint: dict) -> None:
    """Load model, optimizer, schedule, scaler, counters and RNG; skip the batches already done."""
    ckpt.check_compatible(checkpoint, run.config.model, run.data.info.num_classes)
    unwrap(run.model).load_state_dict(checkpoint["model"])
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    if checkpoint.get("scheduler") is not None:
        if checkpoint.get("total_steps") == run.total_steps:
            run.scheduler.load_state_dict(checkpoint["scheduler"])
        else:  # the run was extended (--epochs / --max-steps): same schedule kind, new length
            warn(f"resuming with {run.total_steps} total steps instead of {checkpoint.get('total_steps')}: "
                 "the learning-rate schedule is recomputed for the new length")
            fast_forward(run.scheduler, checkpoint["step"])
    if checkpoint.get("scaler") is not None and run.scaler.is_enabled():
        run.scaler.load_state_dict(checkpoint["scaler"])
    saved = dict(checkpoint["state"])
    saved.setdefault("best_value", saved.pop("best_miou", None))  # checkpoints before --best-metric
    run.state = TrainState(**{**saved, "stop_reason": None})
    if run.ema is not None and checkpoint.get("ema") is not None:
        run.ema.load_state_dict(checkpoint["ema"])
    ckpt.restore_rng_state(checkpoint["rng"])
    if run.state.epoch_step:
        done = min(run.state.epoch_step * run.config.accumulate, len(run.data.train))
        run.data.sampler.skip_next(done * run.config.batch_size)
    if run.log is not None:
        run.log.truncate_after(run.state.epoch + 1, run.state.step)  # rows of the unfinished epoch count
        ckpt.restore_interrupted_copies(checkpoint, run.run_dir)


def fast_forward(scheduler, steps: int) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(min(steps, getattr(scheduler, "total_steps", steps))):
            scheduler.step()


# -- (4) the loop -------------------------------------------------------------------------------------

def train(resolved: ResolvedConfig, source: DataSource, device: torch.device, run_dir: Path, *,
          resume: dict | None = None, stop: StopRequest | None = None,
          on_step: Callable | None = None, force: bool = False) -> TrainResult:
    """Train ``resolved.config`` on ``source``, writing into ``run_dir``.

    ``run_dir`` is created only once data, model and loss are built; a new run that fails before its
    first checkpoint removes it again. ``force``: start over in an existing run dir.
    """
    from segtool.models import size_multiple

    config = resolved.config
    # (1) runtime: ranks, device, seeds, determinism
    device, dist = setup_runtime(config, device)
    try:
        # (2) data, model, optimizer, schedule, loss
        source = source.materialise()
        multiple = size_multiple(config.model)
        data = build_data(config, source, dist, device, multiple, demo_preset=resolved.demo)
        model = build_model(config, data.info.num_classes)
        model = channels_last(model.to(device), config.channels_last)
        optimizer = build_optimizer(model, config)
        check_class_metric(config.best_metric, data.info.class_names)
        steps_per_epoch = math.ceil(len(data.train) / config.accumulate)
        if steps_per_epoch == 0:
            raise SegtoolError(f"{source.root}: fewer training samples than one batch ({config.batch_size})")
        total = total_optimizer_steps(config, steps_per_epoch)
        scheduler = with_warmup(build_scheduler(optimizer, config.schedule, total, steps_per_epoch,
                                                config.schedule_options),
                                warmup_steps(total, config.warmup_steps, config.warmup_ratio), config.warmup)
        loss_fn = build_loss(config, data, device)
        if dist.is_main:
            warn_slow_amp(device, config.amp)
        created = False
        if dist.is_main:
            created = create_run_dir(run_dir, force=force, resuming=resume is not None)
            if resume is None:
                record_run(config.model, run_dir)
        run = Run(config=config, resolved=resolved, source=source, device=device, dist=dist, run_dir=run_dir,
                  data=data, model=model, optimizer=optimizer, scheduler=scheduler,
                  scaler=make_scaler(device, config.amp), loss_fn=loss_fn,
                  multiple=multiple, total_steps=total, stop=stop or StopRequest(),
                  log=MetricsLog(run_dir) if dist.is_main else None, on_step=RunEstimate(on_step),
                  steps_per_epoch=steps_per_epoch)
        if config.ema:
            from segtool.engine.ema import ModelEma

            run.ema = ModelEma(model, config.ema)
        if config.tensorboard and dist.is_main:
            from segtool.engine.tensorboard_log import TensorBoardLog

            run.tensorboard = TensorBoardLog(run_dir / "tensorboard", data.info)
        try:
            # (3) resume before wrapping: DDP broadcasts rank 0's weights when it is built
            if resume is not None:
                restore(run, resume)
            run.eager_model = wrap_model(model, device, dist, config.sync_bn)
            run.model = maybe_compile(run.eager_model, config.compile)
            if dist.is_main:
                (run_dir / "config.yaml").write_text(to_yaml(resolved, header=f"segtool train {config.model}"),
                                                     encoding="utf-8")
            # (4) epochs
            last = out_of_memory_as_error(loop, run)
        except BaseException:
            if dist.is_main and resume is None:
                discard_failed_run(run_dir, created)
            raise
    except RuntimeError as exc:
        lost = lost_rank_error(exc, dist, config.dist_timeout)
        if lost is None:
            raise
        raise lost from None
    finally:
        cleanup_distributed()
    # (5) summary
    if dist.is_main:
        summarize(run, last)
    return TrainResult(run_dir, run.state, last, unwrap(run.model))


def out_of_memory_as_error(function, run: Run):
    """An allocation failure (a crop or batch too large for the memory) as one error line."""
    try:
        return function(run)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        text = str(exc)
        if not (isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in text
                or "out of memory" in text.lower()):
            raise
        config = run.config
        raise SegtoolError(f"out of memory on {run.device.type} at step {run.state.step + 1} (batch "
                           f"{config.batch_size}, crop {config.crop[0]}x{config.crop[1]}); try a smaller "
                           "--batch-size or --crop") from None


def loop(run: Run) -> dict:
    config, state = run.config, run.state
    last: dict = {}
    show = run.main and not is_quiet()
    if run.main and finished(run):
        notice(f"nothing to train: the run already did {plural(state.epoch, 'epoch')} / {plural(state.step, 'step')}; "
            "raise --epochs or --max-steps to continue it")
    from rich.progress import TextColumn

    with progress(TextColumn("{task.fields[stats]}"), transient=True, show=show) as bar:
        while not finished(run):
            run.data.sampler.set_epoch(state.epoch)
            task = bar.add_task(f"epoch {state.epoch + 1}/{config.epochs}", total=run.steps_per_epoch,
                                completed=state.epoch_step, stats="")
            batches = iter(run.data.train)
            while True:  # one pass per metrics row: --val-every N steps can put several in an epoch
                train_stats = train_one_epoch(run, bar, task, batches)
                if run.stop.requested:
                    save_and_stop(run)
                last = end_of_row(run, train_stats)
                if state.epoch_step == 0 or finished(run):
                    run.data.sampler.skip_next(0)  # a resume's pending row may not have iterated at all
                    break
    if state.stop_reason is None:
        state.stop_reason = (f"reached --max-steps {config.max_steps}" if config.max_steps and
                             state.step >= config.max_steps else f"reached --epochs {config.epochs}")
    return last


def end_of_row(run: Run, train_stats: dict) -> dict:
    """Validate when due (on the EMA weights with --ema), log a row, track the best, save."""
    config, state = run.config, run.state
    epoch_done = state.epoch_step >= run.steps_per_epoch
    last_step = state.step >= run.total_steps or (epoch_done and state.epoch + 1 >= config.epochs)
    val = None
    if run.val_every.due(state.step, state.epoch + 1, epoch_done) or (last_step and run.val_every.count):
        if run.ema is not None:
            run.ema.sync_buffers()
        model = run.ema.module if run.ema is not None else run.model
        val = run_validation(model, run.data.val, num_classes=run.data.info.num_classes,
                             device=run.device, multiple=run.multiple, amp=config.amp,
                             channels_last=config.channels_last, loss_fn=run.loss_fn,
                             class_names=run.data.info.class_names, input_scale=config.input_scale)
        check_finite(run, val)
    last = log_epoch(run, train_stats, val)
    state.last_row_step, state.partial = state.step, TrainState().partial
    if epoch_done:
        state.epoch += 1
        state.epoch_step = 0
    improved = val is not None and record_validation(state, config, val, last["epoch"])
    if run.tensorboard is not None:
        run.tensorboard.row(last, val, run)
    save_checkpoints(run, last, improved)
    if state.stop_reason is not None and run.main:
        notice(f"stopped: {state.stop_reason}")
    return last


def summarize(run: Run, last: dict) -> None:
    state = run.state
    if not last and run.log is not None and run.log.rows:
        last = run.log.rows[-1]  # nothing trained in this process: report the run's last epoch
    best = (f"best val {run.config.best_metric} {state.best_value:.4f} (epoch {state.best_epoch}, step "
            f"{state.best_step})" if state.best_value is not None else f"no val {run.config.best_metric}")
    minutes, seconds = divmod(run.elapsed(), 60)
    steps = f"{state.step} step{'s' if state.step != 1 else ''}"
    notice(f"done: {steps} ({ckpt.position(state.epoch, state.epoch_step)}) in {int(minutes)}m{seconds:04.1f}s; "
           f"{best}; "
           f"last: mIoU {metric_text(last.get('miou'))}, pixel acc {metric_text(last.get('pixel_acc'))}; "
           f"stopped: {state.stop_reason}")
    notice(f"run dir: {run.run_dir} (config.yaml, metrics.jsonl, metrics.csv, last.pt, best.pt)")
