"""`segtool export`: a checkpoint as ONNX, a torch.export ExportedProgram (.pt2) or TorchScript.

One ``torch.export`` trace with batch, height and width left to torch (``Dim.AUTO``) serves both the
.pt2 file and ONNX (``torch.onnx.export`` of that ExportedProgram: the dynamo exporter, which needs
onnxscript). A side torch fixes to a constant is refused with the source line that fixed it and the
advice to export ``--static HxW``. Before anything is written the exported model is run against the
eager one on random inputs at two sizes (onnxruntime for ONNX) and the largest difference reported.
The file carries what ``predict`` needs without the checkpoint: class names, palette, normalisation,
size multiple (ONNX ``metadata_props``; a ``segtool.json`` extra file in .pt2 / TorchScript).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from segtool import __version__
from segtool.core.errors import SegtoolError
from segtool.deploy.graph import ExportableModel
from segtool.deploy.source import ModelSource

EXPORT_FORMAT = "segtool-export"
FORMATS = {".onnx": "onnx", ".pt2": "exported-program", ".pt": "torchscript", ".ts": "torchscript"}
EXTRA_FILE = "segtool.json"
ONNX_EXTRA = "pip install 'segtool[onnx]' (onnx, onnxscript, onnxruntime)"


@dataclass
class ExportReport:
    path: Path
    format: str
    exporter: str
    dynamic: dict
    checks: list[dict] = field(default_factory=list)  # {"shape": [...], "max_abs_diff": float}
    opset: int | None = None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "exporter": self.exporter, "dynamic": self.dynamic,
                "opset": self.opset, "checks": self.checks}


def format_for(path: str | os.PathLike, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS.values():
            raise SegtoolError(f"--format {fmt!r}: expected one of onnx, exported-program, torchscript")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SegtoolError(f"{path}: cannot tell the format from {suffix or 'no suffix'!r} "
                           "(use .onnx, .pt2 or .pt, or give --format)")
    return FORMATS[suffix]


def export_metadata(source: ModelSource) -> dict:
    """Plain-typed description of the exported model (what `predict` reads back)."""
    from segtool.models import size_multiple

    ckpt = source.checkpoint or {}
    config = ckpt.get("config") or {}
    return {"format": EXPORT_FORMAT, "segtool_version": __version__, "model": source.name,
            "num_classes": int(ckpt.get("num_classes", source.out_channels)), "out_channels": source.out_channels,
            "class_names": list(ckpt.get("class_names") or []), "palette": list(ckpt.get("palette") or []),
            "ignore_color": ckpt.get("ignore_color"), "normalize": config.get("normalize"), "crop": config.get("crop"),
            "input_scale": float(config.get("input_scale") or 1.0),  # predict resizes by it, as for the checkpoint
            "size_multiple": size_multiple(source.name), "input": "images: N x 3 x H x W float32, RGB / 255, "
            "then normalised", "output": "logits: N x C x H x W"}


def require_onnx() -> None:
    import importlib.util

    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise SegtoolError(f"ONNX export needs {', '.join(missing)}, not installed: {ONNX_EXTRA}")


def check_sizes(source: ModelSource, static: tuple[int, int] | None) -> tuple[tuple, list[tuple]]:
    """The example input shape to trace at and the two shapes to verify at."""
    from segtool.engine.inference import round_up
    from segtool.models import size_multiple

    multiple = size_multiple(source.name)
    if static is not None:
        if static[0] % multiple or static[1] % multiple:
            h, w = round_up(static[0], multiple), round_up(static[1], multiple)
            raise SegtoolError(f"model {source.name}: --static {static[0]}x{static[1]} is not a multiple of "
                               f"{multiple} (use e.g. --static {h}x{w})")
        return (2, 3, *static), [(1, 3, *static), (2, 3, *static)]
    b = round_up(32, multiple)
    return (2, 3, 2 * b, 3 * b), [(1, 3, 3 * b, 2 * b), (2, 3, 2 * b, 4 * b)]


def export_checkpoint(source: ModelSource, output: str | os.PathLike, *, fmt: str | None = None,
                      static: tuple[int, int] | None = None, force: bool = False, seed: int = 0) -> ExportReport:
    """Export, verify, then write ``output`` atomically (nothing is written if any step fails)."""
    from segtool.core.io import atomic_open, check_output

    if source.checkpoint is None:
        raise SegtoolError(f"{source.name}: export needs a checkpoint (from `segtool train`), not a model name")
    fmt = format_for(output, fmt)
    check_output(output, force)
    if fmt == "onnx":
        require_onnx()
    model = ExportableModel(source.build("cpu"), source.name).eval()
    example, sizes = check_sizes(source, static)
    generator = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(shape, generator=generator) for shape in sizes]
    meta = export_metadata(source)
    if fmt == "torchscript":
        payload, report = _torchscript(model, example, meta, static)
    else:
        from segtool.deploy.trace import trace_program

        program, dynamic = trace_program(model, torch.randn(example, generator=generator), static, source.name)
        meta["dynamic"] = dynamic
        if fmt == "onnx":
            payload, report = _onnx(program, meta, dynamic)
        else:
            payload, report = _pt2(program, meta, dynamic)
    report.checks = verify(model, report, payload, inputs)
    with atomic_open(output, "wb", force=force) as handle:
        handle.write(payload)
    report.path = Path(output)
    return report


def _pt2(program, meta: dict, dynamic: dict) -> tuple[bytes, ExportReport]:
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={EXTRA_FILE: json.dumps(meta)})
    return buffer.getvalue(), ExportReport(Path(), "exported-program", "torch.export", dynamic)


def _onnx(program, meta: dict, dynamic: dict) -> tuple[bytes, ExportReport]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(program, input_names=["images"], output_names=["logits"], dynamo=True,
                                         verbose=False)
    proto = onnx_program.model_proto
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    meta["opset"] = opset
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"segtool.{key}", json.dumps(value)
    exporter = "torch.onnx.export(dynamo=True) of the torch.export program"
    return proto.SerializeToString(), ExportReport(Path(), "onnx", exporter, dynamic, opset=opset)


def _torchscript(model, example: tuple, meta: dict, static) -> tuple[bytes, ExportReport]:
    import warnings

    dynamic = {"batch": True, "height": static is None, "width": static is None}
    meta["dynamic"] = dynamic
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; it is the fallback
            traced = torch.jit.trace(model, torch.randn(example), check_trace=False)
            torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(meta)})
    except Exception as exc:  # noqa: BLE001 - tracing fails in many ways; its first line names the cause
        first = str(exc).strip().splitlines()[0][:160]
        raise SegtoolError(f"model {meta['model']}: TorchScript cannot trace it ({first}); "
                           "use --format onnx or exported-program") from None
    return buffer.getvalue(), ExportReport(Path(), "torchscript", "torch.jit.trace", dynamic)


def load_exported(report: ExportReport, payload: bytes):
    """A callable images -> logits (numpy in, numpy out) for the exported bytes."""
    if report.format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(payload, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])
    if report.format == "exported-program":
        return torch.export.load(io.BytesIO(payload)).module()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(io.BytesIO(payload))


def verify(model, report: ExportReport, payload: bytes, inputs: list[torch.Tensor]) -> list[dict]:
    """Exported vs eager on each input; a difference beyond float rounding is an error."""
    run = load_exported(report, payload)
    checks = []
    for images in inputs:
        with torch.no_grad():
            expected = model(images)
            try:
                got = run(images)
            except Exception as exc:  # noqa: BLE001 - each runtime fails its own way on a shape it cannot take
                shape = "x".join(map(str, images.shape))
                raise SegtoolError(f"the {report.format} export fails on input {shape} "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                                   "try --static HxW") from None
        diff = float((got.float() - expected).abs().max()) if got.shape == expected.shape else float("inf")
        checks.append({"shape": list(images.shape), "max_abs_diff": diff})
        if not diff <= 1e-4 + 1e-3 * float(expected.abs().max()):
            raise SegtoolError(f"the {report.format} export differs from the model on input "
                               f"{'x'.join(map(str, images.shape))} (max abs difference {diff:.3g}"
                               f"{'' if got.shape == expected.shape else f', shape {tuple(got.shape)}'}); "
                               "nothing written; try --static HxW or another --format")
    return checks
