"""Measured costs on a device: latency (median, p90), images/s and peak memory, eval and training.

Each measurement runs ``warmup`` untimed calls, then ``runs`` timed ones, each ended by a device
synchronise (CUDA / NPU queue work asynchronously; without it the clock stops before the work does).
Peak memory: the device allocator's peak above what was allocated before (CUDA / NPU), or on the
CPU the growth of the process's peak resident set (VmHWM, reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segtool.engine.speed import autocast, to_device


@dataclass(frozen=True)
class Speed:
    """How the model runs: the same switches as `segtool train`."""

    amp: bool = False
    channels_last: bool = False
    compile: bool = False


def synchronize(device: torch.device) -> None:
    backend = getattr(torch, device.type, None)
    if device.type != "cpu" and hasattr(backend, "synchronize"):
        backend.synchronize(device)


class PeakMemory:
    """Peak bytes allocated while the block runs, above the level at its start; None when unknown."""

    def __init__(self, device: torch.device):
        self.device = device
        self.backend = getattr(torch, device.type, None) if device.type in ("cuda", "npu") else None
        self.peak: int | None = None

    def __enter__(self) -> PeakMemory:
        synchronize(self.device)
        if self.backend is not None:
            self.backend.reset_peak_memory_stats(self.device)
            self._start = self.backend.memory_allocated(self.device)
        else:
            self._start = _rss_bytes("VmRSS") if _reset_rss_peak() else None
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        if self.backend is not None:
            self.peak = self.backend.max_memory_allocated(self.device) - self._start
        elif self._start is not None:
            self.peak = max(0, (_rss_bytes("VmHWM") or 0) - self._start)


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM := current RSS
        return _rss_bytes("VmHWM") is not None
    except OSError:
        return False


def _rss_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def time_calls(fn: Callable[[], object], device: torch.device, runs: int, warmup: int) -> list[float]:
    """Seconds per call of ``fn`` over ``runs`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def summarize(times: list[float], batch: int) -> dict:
    median = float(np.median(times))
    return {"batch": batch, "runs": len(times), "median_ms": median * 1e3,
            "p90_ms": float(np.percentile(times, 90)) * 1e3, "images_per_s": batch / median}


def measure_eval(model: torch.nn.Module, device: torch.device, size: tuple[int, int], batch: int, speed: Speed,
                 runs: int, warmup: int) -> dict:
    """Inference latency and images/s for one batch size, with the peak memory of the timed calls."""
    images = to_device(torch.randn(batch, 3, *size), device, speed.channels_last)

    def call():
        with torch.inference_mode(), autocast(device, speed.amp):
            return model(images)

    with PeakMemory(device) as memory:
        times = time_calls(call, device, runs, warmup)
    return {**summarize(times, batch), "peak_bytes": memory.peak}


def measure_train_step(model: torch.nn.Module, device: torch.device, size: tuple[int, int], batch: int,
                       speed: Speed, runs: int, warmup: int, out_channels: int) -> dict:
    """Forward, loss, backward and an SGD step (the weights change: use a copy of the model)."""
    from segtool.engine.speed import make_scaler
    from segtool.ops.losses import SegmentationLoss

    model.train()
    images = to_device(torch.randn(batch, 3, *size), device, speed.channels_last)
    target = torch.randint(0, max(2, out_channels), (batch, *size), device=device)
    loss_fn = SegmentationLoss("bce" if out_channels == 1 else "ce").to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    scaler = make_scaler(device, speed.amp)

    def step():
        with autocast(device, speed.amp):
            loss = loss_fn(model(images), target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    with PeakMemory(device) as memory:
        times = time_calls(step, device, runs, warmup)
    model.eval()
    return {**summarize(times, batch), "peak_bytes": memory.peak}
