"""What a training run writes at each metrics row: the log line and row, and its checkpoints."""

from __future__ import annotations

from segtool.core.console import notice
from segtool.core.errors import Interrupted
from segtool.engine import checkpoint as ckpt
from segtool.engine.builders import out_channels
from segtool.engine.distributed import unwrap
from segtool.engine.evaluate import Validation
from segtool.engine.run_state import Run
from segtool.engine.train_step import state_lr


def log_epoch(run: Run, train_stats: dict, val: Validation | None) -> dict:
    scores = val.scores if val is not None else {}
    row = {"epoch": run.state.epoch + 1, "step": run.state.step, "train_loss": train_stats["train_loss"],
           "val_loss": val.loss if val is not None else None, "pixel_acc": scores.get("pixel_acc"),
           "mean_acc": scores.get("mean_acc"), "miou": scores.get("miou"), "lr": state_lr(run), "img_per_s": train_stats["img_per_s"],
           "elapsed": round(run.elapsed(), 3)}
    if run.main:
        run.log.append(row)
        notice(f"epoch {row['epoch']}/{run.config.epochs}  step {row['step']}  "
               f"loss {metric_text(row['train_loss'])}  val_loss {metric_text(row['val_loss'])}  mIoU {metric_text(row['miou'])}  "
               f"pixel_acc {metric_text(row['pixel_acc'])}  lr {row['lr']:.3g}  {metric_text(row['img_per_s'], 1)} img/s  "
               f"{row['elapsed']:.0f}s")
    return row


def metric_text(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def make_checkpoint(run: Run, metrics: dict | None = None, copies: tuple[str, ...] = ()) -> dict:
    state = run.state
    info = run.data.info
    checkpoint = ckpt.build_checkpoint(
        model_state=unwrap(run.model).state_dict(), model_name=run.config.model, num_classes=info.num_classes,
        class_names=info.class_names, palette_colors=info.colors, ignore_color=info.ignore_color,
        config=run.config.to_dict(), epoch=state.epoch, step=state.step, epoch_step=state.epoch_step,
        optimizer=run.optimizer, scheduler=run.scheduler, scaler=run.scaler,
        best={"metric": run.config.best_metric, "value": state.best_value, "epoch": state.best_epoch,
              "step": state.best_step}, metrics=metrics)
    checkpoint["ema"] = run.ema.state_dict() if run.ema is not None else None
    checkpoint["state"] = {**state.__dict__, "elapsed": run.elapsed(), "partial": dict(state.partial)}
    checkpoint["total_steps"] = run.total_steps
    checkpoint["out_channels"] = out_channels(run.config, info.num_classes)
    checkpoint["data"] = run.source.to_dict()
    checkpoint["copies"] = list(copies)  # files made from this last.pt right after it is saved
    return checkpoint


def save_checkpoints(run: Run, metrics: dict, improved: bool) -> None:
    """last.pt always; best.pt when val mIoU improved; epoch-NNN.pt every --save-every epochs."""
    if not run.main:
        return
    copies = ["best.pt"] if improved else []
    every = run.config.save_every
    if every and run.state.epoch_step == 0 and run.state.epoch % every == 0:
        copies.append(f"epoch-{run.state.epoch:03d}.pt")
    last = ckpt.save_checkpoint(make_checkpoint(run, metrics, tuple(copies)), run.run_dir / "last.pt")
    for name in copies:
        ckpt.copy_atomic(last, run.run_dir / name)


def save_and_stop(run: Run) -> None:
    """Signal received: save a resumable checkpoint of the finished steps, then exit 130/143."""
    if run.main:
        ckpt.save_checkpoint(make_checkpoint(run), run.run_dir / "last.pt")
    where = ckpt.position(run.state.epoch, run.state.epoch_step)
    raise Interrupted(f"{run.stop.name or 'stop'} received at step {run.state.step} ({where}); saved "
                      f"{run.run_dir / 'last.pt'} — continue with --resume {run.run_dir / 'last.pt'}",
                      run.stop.exit_code)
