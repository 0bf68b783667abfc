"""Speed and reproducibility switches: --amp, --channels-last, --compile, --seed, --deterministic.

AMP: bfloat16 autocast on the CPU (no scaler needed: bf16 has fp32's range), float16 autocast +
GradScaler on CUDA and Ascend NPUs, float16 autocast on MPS.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from segtool.core.console import warn


def amp_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cpu" else torch.float16


def autocast(device: torch.device, enabled: bool):
    """The autocast context for this device (a no-op when AMP is off)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device))


def cpu_bf16_is_native() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 / AMX); elsewhere it is emulated."""
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # private op: may go away
    return bool(torch.backends.mkldnn.is_available() and (probe is None or probe()))


def warn_slow_amp(device: torch.device, enabled: bool) -> None:
    """--amp on a CPU without native bf16 runs slower than fp32: say so instead of letting it crawl."""
    if enabled and device.type == "cpu" and not cpu_bf16_is_native():
        warn("--amp on this CPU: it has no native bf16 (AVX512-BF16 or AMX), so bf16 autocast is emulated "
             "and usually slower than fp32; drop --amp (amp: false in a --config file)")


def make_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A GradScaler for fp16 training on CUDA / NPU; a disabled one elsewhere."""
    use = enabled and device.type in ("cuda", "npu")
    return torch.amp.GradScaler(device.type if use else "cpu", enabled=use)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Deterministic kernels where torch has them (warn, not fail, where it has none)."""
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def channels_last(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    return model.to(memory_format=torch.channels_last) if enabled else model


def to_device(images: torch.Tensor, device: torch.device, channels_last_on: bool) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if channels_last_on else images


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """torch.compile when asked and available; a warning and the eager model when it is not."""
    if not enabled:
        return model
    if not hasattr(torch, "compile"):
        warn("--compile: this torch has no torch.compile; running eagerly")
        return model
    try:
        return torch.compile(model)
    except Exception as exc:  # noqa: BLE001 - backends fail in many ways; eager still works
        warn(f"--compile failed ({type(exc).__name__}: {exc}); running eagerly")
        return model
