"""Estimate the memory a style transfer needs, and refuse sizes that cannot fit.

The big cost is autograd keeping every VGG activation of the optimised image for the backward
pass: about 2.7 KB per pixel up to conv5_1, so 2048x2048 needs ~11 GB before anything else.
The estimate walks the actual (truncated) layer stack rather than a table.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from segtool.core.errors import SegtoolError

__all__ = ["available_bytes", "check_memory", "estimate_bytes", "format_bytes"]

_FLOAT = 4
_INDEX = 8  # max-pool keeps int64 argmax indices for the backward pass
_RUNTIME_OVERHEAD = 200 * 2**20  # torch's own allocations beyond the tensors counted here


def _activation_elements(features: nn.Sequential, height: int, width: int) -> tuple[int, int, int]:
    """(float elements kept for backward, pool index elements, largest single activation)."""
    channels, kept, indices, largest = 3, 0, 0, 0
    for module in features:
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        elif isinstance(module, nn.MaxPool2d):
            height, width = height // 2, width // 2
            indices += channels * height * width
        size = channels * height * width
        kept += size
        largest = max(largest, size)
    return kept, indices, largest


def estimate_bytes(features: nn.Sequential, size: tuple[int, int], *, optimizer: str = "adam",
                   lbfgs_history: int = 100, style_sizes: tuple[tuple[int, int], ...] = ()) -> int:
    """Peak bytes for optimising an image of ``size`` (H, W) through ``features``."""
    height, width = size
    kept, indices, largest = _activation_elements(features, height, width)
    image = 3 * height * width
    # Backward holds the incoming and outgoing gradient of the largest layer at once. The 1.25:
    # measured peak RSS grew 1.16x faster with pixels than these tensors (allocator slack, conv
    # workspaces), 64x96 -> 300x450 on the CPU.
    activations = int(1.25 * ((kept + 2 * largest) * _FLOAT + indices * _INDEX))
    weights = sum(p.numel() for p in features.parameters()) * _FLOAT
    if optimizer == "lbfgs":
        state = (2 * lbfgs_history + 6) * image * _FLOAT  # s/y history + direction, grads, params
    else:
        state = 5 * image * _FLOAT  # param, grad, two moments, scratch
    # Style images pass through once without autograd: two live activations at a time.
    style_pass = max((2 * _activation_elements(features, h, w)[2] * _FLOAT for h, w in style_sizes),
                     default=0)
    return activations + weights + state + max(0, style_pass - activations) + _RUNTIME_OVERHEAD


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device``: MemAvailable on CPU, the allocator's view on accelerators."""
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None
    backend = getattr(torch, device.type, None)
    mem_get_info = getattr(backend, "mem_get_info", None)
    if mem_get_info is None:
        return None
    try:
        free, _total = mem_get_info(device)
        return int(free)
    except Exception:  # noqa: BLE001 - some backends (mps) lack it or raise; then no check
        return None


def format_bytes(count: float) -> str:
    if count <= 0:
        return "0 B"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = min(int(math.log(count, 1024)), len(units) - 1)
    return f"{count / 1024 ** power:.1f} {units[power]}"


def check_memory(estimate: int, device: torch.device, size: tuple[int, int], *,
                 optimizer: str = "adam") -> int | None:
    """Raise a SegtoolError when ``estimate`` exceeds the free memory of ``device``."""
    free = available_bytes(device)
    if free is not None and estimate > free:
        lighter = " or --optimizer adam (L-BFGS keeps its history in memory)" if optimizer == "lbfgs" else ""
        raise SegtoolError(
            f"--size {size[0]}x{size[1]}: needs about {format_bytes(estimate)} but only "
            f"{format_bytes(free)} is free on {device}; use a smaller --size{lighter} "
            "(--scales 256,512 lets the small stages do most of the work)")
    return free
