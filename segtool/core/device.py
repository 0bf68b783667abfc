"""Device selection shared by every command that touches tensors.

``--device auto|cpu|cuda|cuda:N|npu|npu:N|mps``. ``auto`` picks CUDA, then an Ascend NPU (only
if ``torch_npu`` imports and reports a device), then Apple MPS, then the CPU. An explicit device
that is not available is a ``SegtoolError`` that says why and what to install.

``parse_device_spec`` is pure string work (no torch import) so option validation stays fast.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass

from segtool.core.errors import SegtoolError

DEVICE_HELP = "auto | cpu | cuda[:N] | npu[:N] | mps"
_SPEC = re.compile(r"^(auto|cpu|mps|cuda|npu)(?::(\d+))?$")
NPU_INSTALL_HINT = "pip install 'segtool[npu]' (torch-npu must match your torch version and needs Ascend CANN)"


@dataclass(frozen=True)
class DeviceSpec:
    kind: str
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device_spec(text: str) -> DeviceSpec:
    """Parse a --device string; raises ValueError with the accepted forms."""
    match = _SPEC.match(str(text).strip().lower())
    if not match:
        raise ValueError(f"unknown device {text!r}; expected {DEVICE_HELP}")
    kind, index = match.group(1), match.group(2)
    if index is not None and kind not in ("cuda", "npu"):
        raise ValueError(f"device {text!r}: only cuda and npu take an index")
    return DeviceSpec(kind, int(index) if index is not None else None)


def _import_torch_npu():
    """Import torch_npu if present. It can raise more than ImportError on machines without CANN."""
    try:
        return importlib.import_module("torch_npu"), None
    except ImportError:
        return None, "torch_npu not installed"
    except Exception as exc:  # noqa: BLE001 - a broken CANN install raises all sorts of errors
        return None, f"torch_npu failed to import ({type(exc).__name__}: {exc})"


def npu_status() -> tuple[bool, int, str]:
    """(available, device count, reason when not available)."""
    module, reason = _import_torch_npu()
    if module is None:
        return False, 0, reason or "torch_npu not installed"
    import torch

    npu = getattr(torch, "npu", None)
    try:
        if npu is None or not npu.is_available():
            return False, 0, "torch_npu imported but no NPU is available"
        return True, int(npu.device_count()), ""
    except Exception as exc:  # noqa: BLE001
        return False, 0, f"torch.npu query failed ({exc})"


def cuda_status() -> tuple[bool, int, str]:
    import torch

    if not torch.backends.cuda.is_built():
        return False, 0, "this torch build has no CUDA support"
    if not torch.cuda.is_available():
        return False, 0, "no CUDA device visible (driver missing or CUDA_VISIBLE_DEVICES empty)"
    return True, torch.cuda.device_count(), ""


def mps_status() -> tuple[bool, int, str]:
    import torch

    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_built():
        return False, 0, "this torch build has no MPS support (macOS only)"
    if not mps.is_available():
        return False, 0, "MPS not available on this machine"
    return True, 1, ""


def device_report() -> dict:
    """Availability of every device kind, with the reason when one is missing (for `segtool info`)."""
    report = {"cpu": {"available": True, "count": 1, "reason": ""}}
    for name, status in (("cuda", cuda_status), ("npu", npu_status), ("mps", mps_status)):
        ok, count, reason = status()
        report[name] = {"available": ok, "count": count, "reason": reason}
    return report


def _check_index(kind: str, index: int | None, count: int):
    if index is not None and index >= count:
        raise SegtoolError(f"device {kind}:{index} requested but only {count} {kind} device(s) exist")


def default_threads() -> int | None:
    """1 on machines with at most 2 cores, else None (torch's choice).

    There, 2 OpenMP threads run 2-4x slower as soon as another job takes a core (train demo,
    evaluate, predict, iou: benchmarks/README.md, benchmarks/threads.py); 1 thread loses at most 2x
    on an idle machine."""
    return 1 if (os.cpu_count() or 1) <= 2 else None


def resolve_device(spec: str = "auto", *, npu_transfer: bool = False, threads: int | None = None,
                   announce: bool = True):
    """Turn a --device string into a ``torch.device``; print the choice once on stderr."""
    import torch

    try:
        parsed = parse_device_spec(spec)
    except ValueError as exc:
        raise SegtoolError(str(exc)) from None
    if threads is not None:
        if threads < 1:
            raise SegtoolError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)

    kind, index = parsed.kind, parsed.index
    if kind == "auto":
        if cuda_status()[0]:
            kind = "cuda"
        elif npu_status()[0]:
            kind = "npu"
        elif mps_status()[0]:
            kind = "mps"
        else:
            kind = "cpu"
    elif kind == "cuda":
        ok, count, reason = cuda_status()
        if not ok:
            raise SegtoolError(f"--device {parsed}: CUDA is not available: {reason}; "
                               "install a CUDA build of torch or use --device cpu")
        _check_index("cuda", index, count)
    elif kind == "npu":
        ok, count, reason = npu_status()
        if not ok:
            hint = NPU_INSTALL_HINT if "not installed" in reason else "check the CANN install and npu-smi info"
            raise SegtoolError(f"--device {parsed}: Ascend NPU is not available: {reason}; {hint}")
        _check_index("npu", index, count)
    elif kind == "mps":
        ok, _, reason = mps_status()
        if not ok:
            raise SegtoolError(f"--device mps: {reason}; use --device cpu")

    if npu_transfer:
        if kind != "npu":
            raise SegtoolError("--npu-transfer needs an Ascend NPU device (torch_npu); "
                               f"the resolved device is {kind}")
        # Rewrites torch.cuda.* calls to the NPU, as the original NPU training script did.
        importlib.import_module("torch_npu.contrib.transfer_to_npu")

    device = torch.device(kind if index is None else f"{kind}:{index}")
    if announce:
        from segtool.core.console import notice, plural

        extra = f", {plural(torch.get_num_threads(), 'thread')}" if device.type == "cpu" else ""
        notice(f"device: {device}{extra}")
    return device
