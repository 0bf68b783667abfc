"""Exponential moving average of a model's weights (``--ema DECAY``), as timm's ModelEmaV3.

``ema = decay * ema + (1 - decay) * weights`` after every optimizer step, over parameters and float
buffers (BatchNorm statistics); integer buffers are copied. The decay warms up as TensorFlow's
ExponentialMovingAverage with num_updates does, ``min(decay, (1 + n) / (10 + n))``, so a short run's
average is not stuck near the random initial weights. The state (weights + update count) goes into
the checkpoint, so a resumed run continues the same average.
"""

from __future__ import annotations

import copy

import torch


class ModelEma:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self._cache: tuple | None = None

    def _pairs(self, model: torch.nn.Module):
        """(EMA tensors, model tensors) of float entries, and the other pairs; built once per model."""
        if self._cache is None or self._cache[0] is not model:
            ema_state = self.module.state_dict(keep_vars=True)
            model_state = model.state_dict(keep_vars=True)
            floats = [k for k in ema_state if ema_state[k].is_floating_point()]
            others = [(ema_state[k], model_state[k]) for k in ema_state if not ema_state[k].is_floating_point()]
            # The EMA tensors themselves, not ``.data``: in-place updates must bump their version, which
            # caches of derived weights check (fcn8's fused head).
            self._cache = (model, [ema_state[k] for k in floats], [model_state[k].detach() for k in floats],
                           others)
        return self._cache[1:]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        ema_floats, model_floats, others = self._pairs(model)
        # One fused call instead of a Python loop over every tensor (timm's ModelEmaV3 does the same).
        torch._foreach_lerp_(ema_floats, model_floats, 1.0 - self.current_decay())
        for ema_value, value in others:
            ema_value.copy_(value)
        self.updates += 1

    def sync_buffers(self) -> None:
        """Under DDP each rank's BatchNorm statistics drift apart between DDP's broadcasts (the EMA copy is
        not wrapped): take rank 0's before a validation, so every rank scores with the same model."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            for buffer in self.module.buffers():
                dist.broadcast(buffer, 0)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "model": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])
