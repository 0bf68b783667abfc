"""Shared helpers for the train / evaluate / predict / DDP tests (the tiny_demo fixture is in conftest).

Everything is tiny so the whole group stays within seconds: demo images of 32x32 px with two
object classes (3 classes with background), fcn8 trained at a 32x32 crop.
"""

from __future__ import annotations

from pathlib import Path

TINY_DEMO = {"train": 8, "val": 4, "size": 32, "classes": 2, "seed": 0}
# fcn8 with every channel width scaled down: the same layers, a fraction of the cost.
TINY_MODEL = {"width_mult": 0.125}


def make_tiny_demo(root: Path) -> Path:
    """A tiny demo set (VOC layout) at ``root``, unless one is already there."""
    from segtool.data.demo import make_demo_dataset

    if not (root / "demo.json").is_file():
        make_demo_dataset(root, **{k: v for k, v in TINY_DEMO.items()})
    return root


def train_args(data: Path, out: Path, *extra) -> list[str]:
    """`segtool train fcn8` arguments for a tiny, quick CPU run."""
    return ["train", "fcn8", "--data", str(data), "--format", "demo", "--crop", "32", "--batch-size", "4",
            "--val-batch-size", "4", "--epochs", "1", "--workers", "0", "--device", "cpu", "--out", str(out),
            "--model-option", f"width_mult={TINY_MODEL['width_mult']}", *map(str, extra)]


def random_checkpoint(path: Path, num_classes: int = 3, *, model_name: str = "fcn8", seed: int = 0,
                      loss: str = "ce", data: dict | None = None) -> Path:
    """A checkpoint of an untrained (randomly initialised) model, without running a training loop."""
    import torch

    from segtool.data.demo import demo_palette
    from segtool.engine.checkpoint import build_checkpoint, save_checkpoint
    from segtool.engine.config import TrainConfig
    from segtool.models import create_model

    torch.manual_seed(seed)
    channels = 1 if loss == "bce" else num_classes
    model = create_model(model_name, channels, **TINY_MODEL)
    palette = demo_palette(num_classes - 1)
    config = TrainConfig(model=model_name, crop=[32, 32], loss=loss, model_options=dict(TINY_MODEL)).to_dict()
    checkpoint = build_checkpoint(model_state=model.state_dict(), model_name=model_name, num_classes=num_classes,
                                  class_names=palette.names, palette_colors=palette.colors,
                                  ignore_color=palette.ignore_color, config=config, epoch=1, step=1)
    checkpoint["out_channels"] = channels
    checkpoint["data"] = data or {"format": "demo", "root": None, "demo": None}
    save_checkpoint(checkpoint, path)
    return path
