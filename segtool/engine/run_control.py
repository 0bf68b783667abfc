"""When a run validates, which score picks best.pt, and when it stops early.

``--val-every``: ``N`` optimizer steps, ``Ne`` epochs (default ``1e``), ``0`` never. A run also
validates after its last step. ``--best-metric`` miou | mdice | pixel_acc | loss (lower is better)
| iou:<class name>. ``--early-stop P`` stops after P validations in a row that did not beat the
best by more than ``--min-delta``. The counters live in TrainState, hence in every checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from segtool.core.errors import SegtoolError

BEST_METRICS = ("miou", "mdice", "pixel_acc", "loss", "iou:<class name>")
_SCORE_KEYS = {"miou": "miou", "mdice": "mean_dice", "pixel_acc": "pixel_acc"}


@dataclass(frozen=True)
class ValEvery:
    count: int  # 0 = never
    unit: str  # "step" or "epoch"

    def due(self, step: int, epoch: int, epoch_done: bool) -> bool:
        if self.count == 0:
            return False
        if self.unit == "epoch":
            return epoch_done and epoch % self.count == 0
        return step > 0 and step % self.count == 0


def parse_val_every(text) -> ValEvery:
    """``500`` (steps), ``2e`` / ``2epochs`` (epochs), ``0`` / ``never``."""
    value = str(text).strip().lower()
    if value in ("0", "never", "none"):
        return ValEvery(0, "step")
    match = re.fullmatch(r"(\d+)\s*(s|steps?|e|ep|epochs?)?", value)
    if not match or int(match.group(1)) == 0:
        raise SegtoolError(f"--val-every {text!r}: expected N (optimizer steps), Ne (epochs, e.g. 2e) or 0 (never)")
    unit = "epoch" if (match.group(2) or "s").startswith("e") else "step"
    return ValEvery(int(match.group(1)), unit)


def check_best_metric(name: str) -> None:
    if name in _SCORE_KEYS or name == "loss":
        return
    if name.startswith("iou:") and name[4:].strip():
        return
    raise SegtoolError(f"--best-metric {name!r}: expected one of {', '.join(BEST_METRICS)}")


def check_class_metric(name: str, class_names) -> None:
    """``iou:<class>`` must name one of the dataset's classes (known once the data is open)."""
    if name.startswith("iou:") and name[4:] not in class_names:
        raise SegtoolError(f"--best-metric {name}: no class {name[4:]!r} in the dataset "
                           f"(classes: {', '.join(class_names)})")


def metric_value(name: str, scores: dict, loss: float | None) -> float | None:
    if name == "loss":
        return loss
    if name.startswith("iou:"):
        return next((row["iou"] for row in scores["per_class"] if row["name"] == name[4:]), None)
    return scores[_SCORE_KEYS[name]]


def is_better(value: float | None, best: float | None, name: str, min_delta: float = 0.0) -> bool:
    """``value`` beats ``best`` by more than ``min_delta`` (lower is better for loss)."""
    if value is None:
        return False
    if best is None:
        return True
    return best - value > min_delta if name == "loss" else value - best > min_delta


def check_run_options(config) -> None:
    """The kit's options on a TrainConfig (called from engine.config.validate)."""
    from segtool.engine.schedules import WARMUPS
    from segtool.ops.losses import loss_options

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise SegtoolError(message)

    loss_options(config.loss, config.loss_options)
    need(config.accumulate >= 1, f"--accumulate must be at least 1, got {config.accumulate}")
    need(config.ema is None or 0 < config.ema < 1, f"--ema DECAY must be in (0, 1), got {config.ema}")
    need(config.clip_grad is None or config.clip_grad > 0, f"--clip-grad must be positive, got {config.clip_grad}")
    need(config.warmup_steps >= 0, "--warmup-steps must be >= 0")
    need(0 <= config.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got {config.warmup_ratio}")
    need(not (config.warmup_steps and config.warmup_ratio), "give --warmup-steps or --warmup-ratio, not both")
    need(config.warmup in WARMUPS, f"--warmup {config.warmup!r}: expected one of {', '.join(WARMUPS)}")
    check_best_metric(config.best_metric)
    need(config.early_stop >= 0, "--early-stop PATIENCE must be >= 0")
    need(config.min_delta >= 0, "--min-delta must be >= 0")
    if config.early_stop and parse_val_every(config.val_every).count == 0:
        raise SegtoolError("--early-stop needs validation, but --val-every is 0 (never)")
    if config.tensorboard:
        from segtool.engine.tensorboard_log import check_installed

        check_installed()


def record_validation(state, config, val, epoch: int) -> bool:
    """Update the best score and the early-stop counter of ``state`` (a TrainState); True when improved."""
    value = metric_value(config.best_metric, val.scores, val.loss)
    if is_better(value, state.best_value, config.best_metric, config.min_delta):
        state.best_value, state.best_epoch, state.best_step = value, epoch, state.step
        state.bad_validations = 0
        return True
    state.bad_validations += 1
    if config.early_stop and state.bad_validations >= config.early_stop:
        best = "none yet" if state.best_value is None else f"{state.best_value:.4f} at step {state.best_step}"
        state.stop_reason = (f"early stop: {config.best_metric} did not improve by more than {config.min_delta:g} "
                             f"in {state.bad_validations} validations (best {best})")
    return False
