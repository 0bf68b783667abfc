"""The model behind `segtool predict`: a training checkpoint (PyTorch) or an exported .onnx (onnxruntime)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from segtool.core.errors import SegtoolError


def is_onnx(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def load_predictor(path: str | os.PathLike, device: torch.device, *, amp: bool = False, sliding: bool = False,
                   window: tuple[int, int] | None = None, stride: tuple[int, int] | None = None, tta=None,
                   classes: str | None = None):
    """(Predictor, Palette, description dict) for a checkpoint or an ONNX export."""
    from segtool.engine.checkpoint import load_checkpoint, palette_from_checkpoint, window_for_checkpoint
    from segtool.engine.predict import Predictor

    if is_onnx(path):
        from segtool.deploy.onnx_model import onnx_predictor

        if device.type != "cpu":
            raise SegtoolError(f"{path}: ONNX models run on the CPU with onnxruntime; use --device cpu")
        if tta is not None or amp:
            raise SegtoolError(f"{path}: --tta and --amp work with checkpoints, not ONNX models")
        predictor, palette, meta = onnx_predictor(path, classes=classes, threads=torch.get_num_threads())
        predictor.window, predictor.stride = window_for_checkpoint({"config": {"crop": meta.get("crop")}},
                                                                   sliding, window, stride)
        return predictor, palette, {"model": meta.get("model"), "runtime": "onnxruntime"}
    if classes is not None:
        raise SegtoolError("--classes is for ONNX models without segtool metadata; a checkpoint names its classes")
    ckpt = load_checkpoint(path)
    win, step = window_for_checkpoint(ckpt, sliding, window, stride)
    options = {"tta": tta} if tta is not None else {}
    predictor = Predictor.from_checkpoint(ckpt, device, amp=amp, window=win, stride=step, **options)
    return predictor, palette_from_checkpoint(ckpt), {"model": ckpt["model_name"], "runtime": "pytorch"}
