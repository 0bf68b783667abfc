"""Running a `segtool export` ONNX file with onnxruntime alone: no model code, no checkpoint.

``OnnxRunner`` is a callable images -> logits, so ``engine.predict.Predictor`` (padding to the size
multiple, sliding windows, argmax) drives it exactly as it drives a PyTorch model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from segtool.core.errors import SegtoolError

ONNX_EXTRA = "pip install 'segtool[onnx]'"
REQUIRED = {"class_names": "class names", "palette": "palette", "normalize": "normalisation",
            "size_multiple": "size multiple"}


def _session(path: Path, threads: int | None = None):
    try:
        import onnxruntime
    except ImportError:
        raise SegtoolError(f"{path}: running ONNX models needs onnxruntime, not installed: {ONNX_EXTRA}") from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise SegtoolError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:160]})") from None


def read_metadata(session) -> dict:
    """The ``segtool.*`` metadata_props of an export, JSON-decoded (empty for a foreign model)."""
    props = session.get_modelmeta().custom_metadata_map
    out = {}
    for key, value in props.items():
        if key.startswith("segtool."):
            try:
                out[key[len("segtool."):]] = json.loads(value)
            except json.JSONDecodeError:
                out[key[len("segtool."):]] = value
    return out


class OnnxRunner:
    """images (N x 3 x H x W float tensor) -> logits tensor, through an onnxruntime session."""

    def __init__(self, session):
        self.session = session
        self.input = session.get_inputs()[0].name
        self.output = session.get_outputs()[0].name

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([self.output], {self.input: batch})[0])


def _classes_palette(classes: str):
    """``--classes 3`` or ``--classes background,cat,dog``: names with VOC colours."""
    from segtool.data.palettes import Palette, voc_colormap

    text = classes.strip()
    names = [f"class{i}" for i in range(int(text))] if text.isdigit() else [n.strip() for n in text.split(",")]
    if not names or any(not n for n in names) or len(names) > 256:
        raise SegtoolError(f"--classes {classes!r}: expected a count or comma-separated class names")
    return Palette("classes", tuple(names), voc_colormap(len(names)))


def load_onnx_model(path: str | os.PathLike, *, classes: str | None = None, threads: int | None = None):
    """(OnnxRunner, metadata, Palette) for an export; ``classes`` stands in for missing metadata."""
    from segtool.data.palettes import Palette

    path = Path(path)
    if not path.is_file():
        raise SegtoolError(f"{path}: no such ONNX file")
    session = _session(path, threads)
    meta = read_metadata(session)
    missing = [what for key, what in REQUIRED.items() if key not in meta]
    if missing and classes is None:
        kind = "not a segtool export" if meta.get("format") != "segtool-export" else "a segtool export"
        raise SegtoolError(f"{path}: {kind}; its metadata lacks {', '.join(missing)} "
                           "(pass --classes N or --classes a,b,c to run it anyway: no normalisation, any size)")
    if classes is not None:
        palette = _classes_palette(classes)
        meta = {"normalize": None, "size_multiple": 1, **meta, "class_names": list(palette.names)}
        if len(meta.get("palette") or []) != len(palette.names):
            meta["palette"] = palette.colors.tolist()
    ignore = meta.get("ignore_color")
    palette = Palette("onnx", tuple(meta["class_names"]), np.array(meta["palette"], dtype=np.uint8).reshape(-1, 3),
                      tuple(ignore) if ignore is not None else None)
    return OnnxRunner(session), meta, palette


def onnx_predictor(path: str | os.PathLike, *, classes: str | None = None, threads: int | None = None,
                   window: tuple[int, int] | None = None, stride: tuple[int, int] | None = None):
    """(Predictor, Palette) running the ONNX file on the CPU."""
    from segtool.engine.predict import Predictor

    runner, meta, palette = load_onnx_model(path, classes=classes, threads=threads)
    predictor = Predictor(runner, torch.device("cpu"), int(meta.get("size_multiple") or 1), meta.get("normalize"),
                          window=window, stride=stride, input_scale=float(meta.get("input_scale") or 1.0))
    return predictor, palette, meta
