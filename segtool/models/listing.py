"""What ``segtool models`` shows: one plain dict per model, and a rich table of them."""

from __future__ import annotations

import torch

from segtool.core import paths
from segtool.core.weights import cached_file
from segtool.models import create_model, get_model_info, list_models
from segtool.models.torchvision_models import PREFIX, published_param_count

__all__ = ["count_parameters", "describe_model", "describe_models", "render_models_table"]


def count_parameters(name: str, num_classes: int = 21) -> int:
    """Parameters of ``name`` for ``num_classes``, counted on the meta device (no memory used).

    For torchvision builders at 21 classes, torchvision's published count is used: it describes
    exactly this model (VOC labels, auxiliary head) and saves building six large networks.
    """
    if name.startswith(PREFIX) and num_classes == 21:
        published = published_param_count(name)
        if published:
            return published
    with torch.device("meta"):
        model = create_model(name, num_classes)
    return sum(p.numel() for p in model.parameters())


def describe_model(name: str) -> dict:
    info = get_model_info(name)
    row = info.to_dict()
    row["params_21_classes"] = count_parameters(name, 21)
    cached = cached_file(info.backbone_file) if info.backbone_file else None
    row["backbone_cached"] = bool(cached and cached.is_file())
    row["backbone_path"] = str(cached) if cached else None
    return row


def describe_models(names: list[str] | None = None) -> list[dict]:
    return [describe_model(name) for name in (names or list_models(include_torchvision=True))]


def render_models_table(rows: list[dict]) -> None:
    from rich.table import Table

    from segtool.core.console import console

    table = Table(title="segtool models (parameters for 21 classes)", title_justify="left")
    for column in ("name", "params", "H, W", "normalise", "backbone weights", "crop", "recipe"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row["backbone_file"]:
            state = "cached" if row["backbone_cached"] else "not cached"
            weights = f"{row['backbone']}: {state}"
        else:
            weights = "none"
        recipe = row["recipe"]
        summary = (f"{recipe['optimizer']} {recipe['lr']:g} {recipe['schedule']}, "
                   f"b{recipe['batch_size']}, {recipe['epochs']} ep")
        size = f"x{row['size_multiple']}" if row["size_multiple"] > 1 else "any"
        crop = "x".join(str(v) for v in row["default_crop"])
        table.add_row(row["name"], f"{row['params_21_classes'] / 1e6:.1f}M", size,
                      row["normalization"] or "none", weights, crop, summary)
    console.print(table)
    console.print(f"torch weight cache: {paths.torch_checkpoint_dir()}", markup=False, highlight=False)
