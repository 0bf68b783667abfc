"""Learning-rate schedules, all stepped once per iteration (optimizer step).

- ``onecycle``: torch's OneCycleLR (fcn8 recipe: max_lr 0.1, div 25, final div 1e4, pct 0.3). As in
  the original script it also cycles SGD's momentum (0.95 -> 0.85 -> 0.95) unless
  ``cycle_momentum: false``.
- ``poly``: lr * (1 - t/T) ** power (power 0.9), the DeepLab / torchvision reference schedule.
- ``step``: lr * gamma ** (epoch // step_epochs), i.e. StepLR counted in iterations.
- ``linear``: linear decay from lr to ``end_lr`` over the first ``fraction`` of training, then constant
  (bisenetv2 recipe: 0.1 -> 0.05 over 75 %).
- ``none``: constant lr.

``--warmup-steps N`` / ``--warmup-ratio R`` put a warm-up in front of any of them (``Warmup``): for
the first N steps the schedule's lr is multiplied by a factor rising from 0.001 to 1, linearly or
exponentially (mmsegmentation's warmup; the schedule itself runs from step 0 as without warm-up).

Every scheduler is a stock ``torch.optim.lr_scheduler`` object, so ``state_dict()`` holds plain
values and checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, StepLR

from segtool.core.errors import SegtoolError

SCHEDULES = ("onecycle", "poly", "step", "linear", "none")
WARMUPS = ("linear", "exp")
WARMUP_START = 1e-3  # the factor at step 0 (Detectron2's warmup_factor)

# Defaults for each schedule's options; a recipe or --config may override any of them.
SCHEDULE_DEFAULTS: dict[str, dict] = {
    "onecycle": {"max_lr": None, "div_factor": 25.0, "final_div_factor": 1e4, "pct_start": 0.3,
                 "cycle_momentum": True, "base_momentum": 0.85, "max_momentum": 0.95},
    "poly": {"power": 0.9},
    "step": {"step_epochs": 30, "gamma": 0.1},
    "linear": {"end_lr": None, "fraction": 0.75},
    "none": {},
}


class _Poly:
    """A callable object, not a lambda: LambdaLR.state_dict then stores its plain attributes."""

    def __init__(self, total: int, power: float):
        self.total, self.power = max(1, total), power

    def __call__(self, step: int) -> float:
        return max(0.0, 1.0 - min(step, self.total) / self.total) ** self.power


class _LinearTo:
    def __init__(self, total: int, end_factor: float, fraction: float):
        self.span = max(1, int(round(total * fraction)))
        self.end_factor = end_factor

    def __call__(self, step: int) -> float:
        t = min(step, self.span) / self.span
        return 1.0 + (self.end_factor - 1.0) * t


def _constant(step: int) -> float:
    return 1.0


def schedule_options(name: str, options: dict | None) -> dict:
    """The schedule's full option dict: defaults overlaid with ``options``; unknown keys are errors."""
    if name not in SCHEDULES:
        raise SegtoolError(f"unknown schedule {name!r}; expected one of {', '.join(SCHEDULES)}")
    merged = dict(SCHEDULE_DEFAULTS[name])
    for key, value in (options or {}).items():
        if key not in merged:
            known = ", ".join(merged) or "none"
            raise SegtoolError(f"schedule {name}: unknown option {key!r} (known: {known})")
        merged[key] = value
    return merged


def build_scheduler(optimizer: Optimizer, name: str, total_steps: int, steps_per_epoch: int,
                    options: dict | None = None) -> LRScheduler:
    """A per-iteration scheduler over ``total_steps`` optimizer steps."""
    opts = schedule_options(name, options)
    total_steps = max(1, int(total_steps))
    base_lr = optimizer.param_groups[0]["lr"]
    if name == "onecycle":
        max_lr = opts["max_lr"] if opts["max_lr"] is not None else base_lr
        # Keep --head-lr-mult: each group's peak is max_lr scaled like its base lr.
        peaks = [max_lr * group["lr"] / base_lr for group in optimizer.param_groups]
        return OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps,
                          div_factor=float(opts["div_factor"]), final_div_factor=float(opts["final_div_factor"]),
                          pct_start=float(opts["pct_start"]), cycle_momentum=bool(opts["cycle_momentum"]),
                          base_momentum=float(opts["base_momentum"]), max_momentum=float(opts["max_momentum"]))
    if name == "poly":
        return LambdaLR(optimizer, _Poly(total_steps, float(opts["power"])))
    if name == "step":
        return StepLR(optimizer, step_size=max(1, int(opts["step_epochs"]) * steps_per_epoch),
                      gamma=float(opts["gamma"]))
    if name == "linear":
        end_lr = opts["end_lr"] if opts["end_lr"] is not None else base_lr
        return LambdaLR(optimizer, _LinearTo(total_steps, float(end_lr) / base_lr, float(opts["fraction"])))
    return LambdaLR(optimizer, _constant)


class Warmup:
    """A schedule with a warm-up factor on its lr for the first ``steps`` optimizer steps.

    The wrapped scheduler keeps its own (un-warmed) lr between steps: it is put back into the
    optimizer before each inner step, since chainable schedulers (StepLR) read the current lr.
    """

    def __init__(self, scheduler: LRScheduler, steps: int, mode: str = "linear"):
        if mode not in WARMUPS:
            raise SegtoolError(f"warmup {mode!r}: expected one of {', '.join(WARMUPS)}")
        self.scheduler, self.steps, self.mode = scheduler, int(steps), mode
        self.optimizer = scheduler.optimizer
        self.last_step = 0
        self._plain = [group["lr"] for group in self.optimizer.param_groups]
        self._apply()

    @property
    def total_steps(self):
        return getattr(self.scheduler, "total_steps", None)

    def factor(self, step: int) -> float:
        if step >= self.steps:
            return 1.0
        t = step / self.steps
        return WARMUP_START + (1 - WARMUP_START) * t if self.mode == "linear" else WARMUP_START ** (1 - t)

    def _apply(self) -> None:
        factor = self.factor(self.last_step)
        for group, lr in zip(self.optimizer.param_groups, self._plain, strict=True):
            group["lr"] = lr * factor

    def step(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self._plain, strict=True):
            group["lr"] = lr
        self.scheduler.step()
        self._plain = [group["lr"] for group in self.optimizer.param_groups]
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"warmup_steps": self.steps, "mode": self.mode, "last_step": self.last_step,
                "plain_lrs": list(self._plain), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.last_step, self._plain = int(state["last_step"]), list(state["plain_lrs"])
        self._apply()


def warmup_steps(total_steps: int, steps: int = 0, ratio: float = 0.0) -> int:
    """--warmup-steps, else --warmup-ratio of the run's optimizer steps."""
    return int(steps) if steps else int(round(float(ratio) * total_steps))


def with_warmup(scheduler: LRScheduler, steps: int, mode: str = "linear"):
    """``scheduler`` itself when ``steps`` is 0 (nothing changes for runs without warm-up)."""
    return Warmup(scheduler, steps, mode) if steps > 0 else scheduler
