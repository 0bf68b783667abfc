"""What `profile` and `export` work on: a model name, or a checkpoint that names its model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from segtool.core.errors import SegtoolError


@dataclass
class ModelSource:
    """A model to build: registry name, output channels, create_model options, weights if any."""

    name: str
    out_channels: int
    options: dict = field(default_factory=dict)
    checkpoint: dict | None = None
    path: Path | None = None

    @property
    def label(self) -> str:
        return str(self.path) if self.path is not None else self.name

    def build(self, device: torch.device | str = "cpu", **options) -> torch.nn.Module:
        """The model in eval mode on ``device``; a checkpoint's weights loaded when there is one."""
        from segtool.engine.checkpoint import model_from_checkpoint
        from segtool.models import create_model

        if self.checkpoint is not None:
            ckpt = dict(self.checkpoint)
            config = dict(ckpt.get("config") or {})
            config["model_options"] = {**self.options, **options}
            ckpt["config"] = config
            return model_from_checkpoint(ckpt, torch.device(device))
        model = create_model(self.name, self.out_channels, pretrained=False, **{**self.options, **options})
        return model.to(device).eval()

    def file_bytes(self) -> int | None:
        return self.path.stat().st_size if self.path is not None else None


def resolve_source(target: str | os.PathLike, num_classes: int = 21, options: dict | None = None) -> ModelSource:
    """``target`` is a checkpoint file (or run folder) when it exists on disk, else a model name."""
    from segtool.engine.checkpoint import load_checkpoint
    from segtool.models import get_model_info

    path = Path(target)
    if path.exists():
        ckpt = load_checkpoint(path)
        missing = [key for key in ("model_name", "num_classes", "model") if key not in ckpt]
        if missing:
            raise SegtoolError(f"{path}: checkpoint has no model metadata ({', '.join(missing)} missing)")
        get_model_info(ckpt["model_name"])  # a model this segtool does not know fails here, by name
        config = ckpt.get("config") or {}
        channels = int(ckpt.get("out_channels") or ckpt["num_classes"])
        merged = {**dict(config.get("model_options") or {}), **(options or {})}
        return ModelSource(ckpt["model_name"], channels, merged, ckpt, Path(ckpt.get("path", path)))
    if path.suffix in (".pt", ".pth", ".ckpt") or os.sep in str(target):
        raise SegtoolError(f"{path}: checkpoint not found")
    get_model_info(str(target))  # unknown names: one error line listing the valid ones
    return ModelSource(str(target), int(num_classes), dict(options or {}))
