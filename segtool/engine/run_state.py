"""The state of one training run: ``Run`` (everything built for it), ``TrainState`` (its counters, all
of them in the checkpoint) and ``TrainResult``. The loop modules (train, train_step, train_records)
share these types.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from segtool.data.sources import DataSource
from segtool.engine.builders import Data
from segtool.engine.config import TrainConfig
from segtool.engine.config_layers import ResolvedConfig
from segtool.engine.distributed import DistInfo
from segtool.engine.run_control import parse_val_every
from segtool.engine.run_dir import MetricsLog
from segtool.engine.signals import StopRequest


@dataclass
class TrainState:
    """Progress counters; all of it goes into the checkpoint."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps
    epoch_step: int = 0  # steps done inside the unfinished epoch
    elapsed: float = 0.0  # training wall time before this process started (resume)
    best_value: float | None = None  # of --best-metric
    best_epoch: int | None = None
    best_step: int | None = None
    bad_validations: int = 0  # in a row, for --early-stop
    last_row_step: int = 0  # step of the latest metrics row (a resumed run owes the row of its step)
    stop_reason: str | None = None
    last_lr: float | None = None  # the lr of the latest step (logged)
    # Sums since the latest metrics row, so a run resumed mid-epoch logs the same loss.
    partial: dict = field(default_factory=lambda: {"loss_sum": 0.0, "batches": 0, "images": 0, "seconds": 0.0})


@dataclass
class TrainResult:
    run_dir: Path
    state: TrainState
    last: dict
    model: torch.nn.Module


@dataclass
class Run:
    """Everything built for one run (passed to the helpers instead of a dozen arguments)."""

    config: TrainConfig
    resolved: ResolvedConfig
    source: DataSource
    device: torch.device
    dist: DistInfo
    run_dir: Path
    data: Data
    model: torch.nn.Module  # possibly DDP / compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: torch.nn.Module
    multiple: int
    total_steps: int
    stop: StopRequest
    log: MetricsLog | None
    state: TrainState = field(default_factory=TrainState)
    started: float = field(default_factory=time.perf_counter)
    on_step: Callable | None = None
    eager_model: torch.nn.Module | None = None  # set while a --compile'd model is untested
    steps_per_epoch: int = 1  # optimizer steps (--accumulate batches each)
    ema: object | None = None  # engine.ema.ModelEma
    tensorboard: object | None = None  # engine.tensorboard_log.TensorBoardLog

    @property
    def main(self) -> bool:
        return self.dist.is_main

    @property
    def val_every(self):
        return parse_val_every(self.config.val_every)

    def elapsed(self) -> float:
        return self.state.elapsed + time.perf_counter() - self.started
