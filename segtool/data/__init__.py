"""Datasets, palettes, label decoding and augmentation.

``build_dataset`` and ``SegmentationDataset`` import torch; palette, image and mask helpers do not
need it, so ``segtool.data.palettes`` / ``images`` / ``masks`` stay cheap to import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_dataset", "SegmentationDataset", "ensure_demo_dataset", "make_demo_dataset", "get_palette",
           "Palette"]


def __getattr__(name: str) -> Any:
    # Lazy so that importing segtool.data.palettes does not pull in torch.
    if name == "build_dataset":
        from segtool.data.datasets import build_dataset
        return build_dataset
    if name == "SegmentationDataset":
        from segtool.data.base import SegmentationDataset
        return SegmentationDataset
    if name in ("ensure_demo_dataset", "make_demo_dataset"):
        from segtool.data import demo
        return getattr(demo, name)
    if name in ("get_palette", "Palette"):
        from segtool.data import palettes
        return getattr(palettes, name)
    raise AttributeError(f"module 'segtool.data' has no attribute {name!r}")
