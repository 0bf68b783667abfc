"""torchrun / DistributedDataParallel support.

``torchrun --nproc-per-node N -m segtool train ...`` sets RANK, LOCAL_RANK and WORLD_SIZE; then the
process group is created with gloo on CPU, nccl on CUDA and hccl on an Ascend NPU, each rank
drives ``<device>:LOCAL_RANK``, and only rank 0 writes. A rank that fails makes the others exit:
torchrun's agent stops the whole group when one worker dies, gloo peers fail on the closed
connection, and the process-group timeout (``dist_timeout``) bounds any remaining wait.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

BACKENDS = {"cpu": "gloo", "cuda": "nccl", "npu": "hccl"}


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """Rank info from torchrun's environment variables (a single process when they are absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world)


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """Each rank of a multi-GPU/NPU node takes the accelerator numbered by its local rank."""
    if info.enabled and device.type in ("cuda", "npu"):
        device = torch.device(device.type, info.local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        else:
            torch.npu.set_device(device)  # type: ignore[attr-defined]
    return device


def init_distributed(device: torch.device, info: DistInfo, timeout_s: int = 600) -> None:
    from segtool.core.errors import SegtoolError

    if not info.enabled or dist.is_initialized():
        return
    backend = BACKENDS.get(device.type)
    if backend is None:
        raise SegtoolError(f"distributed training is not supported on {device.type} "
                           "(use cpu/gloo, cuda/nccl or npu/hccl)")
    try:
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    except RuntimeError as exc:  # DistStoreError / DistNetworkError: a rank never came
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SegtoolError(f"rank {info.rank} of {info.world_size}: the process group did not form within "
                           f"{timeout_s} s at {where} ({first.rstrip('.')}); start every rank, or raise "
                           "--dist-timeout") from None


# What gloo / NCCL / the process-group store say when a peer is gone or silent.
_LOST_PEER = ("connection reset by peer", "connection closed by peer", "broken pipe", "timed out", "timeout",
              "nccl error", "nccl communicator", "hccl", "socket", "wait timeout")


def lost_rank_error(exc: BaseException, info: DistInfo, timeout_s: int):
    """A SegtoolError naming the lost rank for a collective that failed because another rank died or
    stopped answering; None for any other error. Survivors then print one line instead of the C++ and
    Python tracebacks of DistBackendError."""
    from segtool.core.errors import SegtoolError

    if not info.enabled or not isinstance(exc, RuntimeError):  # DistBackendError is a RuntimeError
        return None
    text = str(exc).lower()
    backend_error = type(exc).__name__ in ("DistBackendError", "DistNetworkError", "DistStoreError")
    if not (backend_error or any(marker in text for marker in _LOST_PEER)):
        return None
    peer = f"rank {1 - info.rank}" if info.world_size == 2 else "another rank"
    why = (f"it sent nothing for {timeout_s} s (--dist-timeout)" if "time" in text and "out" in text
           else "its connection closed: it exited or was killed")
    return SegtoolError(f"rank {info.rank} of {info.world_size}: lost {peer}: {why}; stopping (the lost "
                        "rank's own output, or torchrun's summary, says why it failed)")


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum plain numbers over ranks (float64, so counts stay exact)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def sync_flags(bad_loss: bool, stop_signal: int | None, device: torch.device) -> tuple[bool, int | None]:
    """(any rank saw a non-finite loss, a stop signal any rank received) - the same on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return bad_loss, stop_signal
    tensor = torch.tensor([int(bad_loss), int(stop_signal or 0)], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor[0]), int(tensor[1]) or None


def wrap_model(model: torch.nn.Module, device: torch.device, info: DistInfo, sync_bn: bool) -> torch.nn.Module:
    """DDP around the model (with SyncBatchNorm when asked); the bare model when not distributed."""
    if not info.enabled:
        return model
    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type in ("cuda", "npu") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP and torch.compile wrappers."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
