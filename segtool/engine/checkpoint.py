"""Training checkpoints: tensors and plain types only, written atomically, loaded with weights_only.

A checkpoint is one dict (see ``build_checkpoint``): the model's state_dict, optimizer, scheduler
and AMP-scaler states, progress counters (``epoch`` = completed epochs, ``step`` = optimizer steps,
``epoch_step`` = steps already done inside an unfinished epoch), the RNG states as tensors, the
config as a plain dict, and what a later ``evaluate`` / ``predict`` needs to read it on its own:
model name, class count, class names and palette colours, segtool version.

Saving goes to a temp file in the same folder, then ``os.replace``: a kill during a save leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch

from segtool import __version__
from segtool.core.errors import SegtoolError
from segtool.core.io import atomic_open

FORMAT = "segtool-checkpoint"
FORMAT_VERSION = 1


# -- RNG states as tensors (so weights_only=True can load them) ------------------------------------

def capture_rng_state() -> dict:
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss_next": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"].tolist()),
                     python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- building, saving, loading ---------------------------------------------------------------------

def build_checkpoint(*, model_state: dict, model_name: str, num_classes: int, class_names, palette_colors,
                     config: dict, epoch: int, step: int, epoch_step: int = 0, optimizer=None, scheduler=None,
                     scaler=None, best: dict | None = None, metrics: dict | None = None,
                     ignore_color=None) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "segtool_version": __version__,
        "model_name": model_name,
        "num_classes": int(num_classes),
        "class_names": [str(n) for n in class_names],
        "palette": [[int(v) for v in color] for color in palette_colors],
        "ignore_color": [int(v) for v in ignore_color] if ignore_color is not None else None,
        "config": config,
        "model": model_state,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "epoch": int(epoch),
        "step": int(step),
        "epoch_step": int(epoch_step),
        "best": dict(best or {}),
        "metrics": dict(metrics or {}),
        "rng": capture_rng_state(),
    }


def save_checkpoint(checkpoint: dict, path: str | os.PathLike) -> Path:
    """torch.save into a temp file beside ``path``, fsync, then os.replace (a kill never loses the old one)."""
    path = Path(path)
    with atomic_open(path, "wb", force=True) as handle:
        torch.save(checkpoint, handle)
    return path


# best.pt serves evaluate / predict / export / compare-runs: it keeps the weights (and EMA weights)
# and what reads them, not the optimizer, scheduler, scaler and RNG states that only resuming needs
# (an fcn8 run wrote 2 x 243 MB; best.pt is now ~half). Resume from last.pt or epoch-NNN.pt.
WEIGHTS_ONLY_COPIES = ("best.pt",)
RESUME_ONLY_KEYS = ("optimizer", "scheduler", "scaler", "rng")


def weights_only(checkpoint: dict) -> dict:
    """``checkpoint`` without the states only resuming needs, marked ``resumable: False``."""
    kept = {k: v for k, v in checkpoint.items() if k not in RESUME_ONLY_KEYS and k != "path"}
    return {**kept, "resumable": False}


def check_resumable(checkpoint: dict) -> None:
    """A weights-only checkpoint (best.pt) cannot continue a run: say which file can."""
    if checkpoint.get("resumable", True) is False:
        where = Path(checkpoint.get("path", "best.pt"))
        raise SegtoolError(f"{where}: holds the weights only (no optimizer, schedule or RNG state), so a run "
                           f"cannot resume from it; resume from {where.with_name('last.pt')} or an epoch-NNN.pt "
                           "(best.pt is for evaluate, predict and export)")


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy the checkpoint ``src`` to ``dst`` through a temp file beside it, so ``dst`` is the old
    file or the new one, never half; a ``WEIGHTS_ONLY_COPIES`` name gets the weights-only form."""
    if Path(dst).name in WEIGHTS_ONLY_COPIES:
        checkpoint = torch.load(src, map_location="cpu", weights_only=True)
        save_checkpoint(weights_only(checkpoint), dst)
        return
    with open(src, "rb") as source, atomic_open(dst, "wb", force=True) as handle:
        shutil.copyfileobj(source, handle, 1 << 20)


def restore_interrupted_copies(checkpoint: dict, run_dir: Path) -> list[Path]:
    """Resuming: re-make the copies of last.pt (best.pt, epoch-NNN.pt) that a kill stopped halfway.

    A checkpoint lists the copies due right after it was saved; one missing or older than last.pt
    was interrupted (the previous best.pt stays until the new copy replaces it).
    """
    last = run_dir / "last.pt"
    if not last.is_file() or Path(checkpoint.get("path", "")).resolve() != last.resolve():
        return []
    made = []
    for name in checkpoint.get("copies") or ():
        target = run_dir / Path(str(name)).name
        if not target.is_file() or target.stat().st_mtime_ns < last.stat().st_mtime_ns:
            copy_atomic(last, target)
            made.append(target)
    return made


def position(epoch: int, epoch_step: int) -> str:
    """Where a run stands, worded the same when it stops, resumes and finishes: ``epoch 2, 4 steps
    in`` (an unfinished epoch) or ``end of epoch 1`` (``epoch`` = completed epochs)."""
    if epoch_step:
        return f"epoch {epoch + 1}, {epoch_step} step{'s' if epoch_step != 1 else ''} in"
    return f"end of epoch {epoch}" if epoch else "start"


def _load_failure(exc: Exception) -> str:
    """A short, whole reason for a checkpoint torch.load refused."""
    text = " ".join(str(exc).split())
    if "Weights only load failed" in text and "This file can still be loaded" in text:
        return "it holds Python objects, not only tensors (not loaded, for safety)"
    if "Weights only load failed" in text:
        return "not a torch checkpoint"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if ("central directory" in text or "zip archive" in text
            or isinstance(exc, (EOFError, zipfile.BadZipFile, OSError))):  # OSError: a seek past the end
        return "the file is truncated or not a torch checkpoint"
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= 120 else first[:117].rsplit(" ", 1)[0] + " ..."


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load with ``weights_only=True``; a missing, truncated or foreign file is a SegtoolError."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "last.pt"
        if not candidate.is_file():
            raise SegtoolError(f"{path}: is a directory without last.pt; give the checkpoint file")
        path = candidate
    if not path.is_file():
        raise SegtoolError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        raise SegtoolError(f"{path}: cannot read checkpoint: {_load_failure(exc)}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise SegtoolError(f"{path}: not a segtool training checkpoint (no '{FORMAT}' marker)")
    if int(checkpoint.get("format_version", 0)) > FORMAT_VERSION:
        raise SegtoolError(f"{path}: checkpoint format {checkpoint['format_version']} is newer than this "
                           f"segtool ({__version__}) can read")
    checkpoint["path"] = str(path)
    return checkpoint


def check_compatible(checkpoint: dict, model_name: str, num_classes: int) -> None:
    """Refuse a checkpoint of another model or class count, naming both sides."""
    source = checkpoint.get("path", "checkpoint")
    if checkpoint["model_name"] != model_name:
        raise SegtoolError(f"{source}: checkpoint is for model {checkpoint['model_name']!r}, "
                           f"but this run uses {model_name!r}")
    if int(checkpoint["num_classes"]) != int(num_classes):
        raise SegtoolError(f"{source}: checkpoint has {checkpoint['num_classes']} classes, "
                           f"but this run has {num_classes}")


# -- using a checkpoint outside training ----------------------------------------------------------

def palette_from_checkpoint(checkpoint: dict):
    """The class names and colours stored in a checkpoint, as a Palette."""
    from segtool.data.palettes import Palette

    ignore = checkpoint.get("ignore_color")
    return Palette("checkpoint", tuple(checkpoint["class_names"]),
                   np.array(checkpoint["palette"], dtype=np.uint8).reshape(-1, 3),
                   tuple(ignore) if ignore is not None else None)


def model_from_checkpoint(checkpoint: dict, device: torch.device) -> torch.nn.Module:
    """Rebuild the checkpoint's model (no pretrained download) and load its weights, in eval mode."""
    from segtool.models import create_model

    config = checkpoint.get("config", {})
    channels = int(checkpoint.get("out_channels") or checkpoint["num_classes"])
    model = create_model(checkpoint["model_name"], channels, pretrained=False,
                         **dict(config.get("model_options") or {}))
    try:
        # --ema runs: evaluate and predict use the averaged weights (those validation scored).
        model.load_state_dict((checkpoint.get("ema") or {}).get("model") or checkpoint["model"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SegtoolError(f"{checkpoint.get('path', 'checkpoint')}: weights do not fit model "
                           f"{checkpoint['model_name']} with {channels} outputs ({first})") from None
    return model.to(device).eval()


def source_for_checkpoint(checkpoint: dict, data: str | None = None, fmt: str | None = None):
    """The data to score a checkpoint on: ``data`` / ``fmt`` when given, else the set it was trained on."""
    from segtool.data.sources import DataSource, find_data_source

    if data is None and fmt is None:
        return DataSource.from_dict(checkpoint["data"])
    return find_data_source(data, fmt or "auto", (checkpoint.get("data") or {}).get("demo") or {})


def window_for_checkpoint(checkpoint: dict, sliding: bool, window: tuple[int, int] | None = None,
                          stride: tuple[int, int] | None = None):
    """Sliding-window (window, stride): default window the training crop, stride 2/3 of it; (None, None) if off."""
    if not sliding:
        return None, None
    window = window or tuple(checkpoint["config"].get("crop") or (512, 512))
    stride = stride or (max(1, window[0] * 2 // 3), max(1, window[1] * 2 // 3))
    return window, stride
