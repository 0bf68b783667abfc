"""Segmentation losses: cross entropy (ignore 255), BCE-with-logits for binary masks, class weights.

``SegmentationLoss`` takes what a model returns in training mode (see segtool.ops.outputs: logits,
or main + auxiliary outputs for BiSeNetV2's boosters and torchvision's aux classifiers); the total is ``loss(main) + aux_weight * sum(loss(aux))`` as in the BiSeNetV2 recipe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.core.io import read_text_file
from segtool.ops.outputs import split_outputs

LOSSES = ("ce", "bce")


def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                         ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """BCE-with-logits for N x 1 x H x W logits and 0/1 targets; ignored pixels do not count.

    ``weight`` (2 values) weighs background / foreground pixels, like CE class weights do.
    """
    if logits.shape[1] != 1:
        raise SegtoolError(f"--loss bce needs a model with 1 output channel, got {logits.shape[1]}")
    logits = logits[:, 0]
    valid = target != ignore_index
    target_f = torch.where(valid, target, torch.zeros_like(target)).to(logits.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target_f, reduction="none")
    pixel_weight = valid.to(logits.dtype)
    if weight is not None:
        pixel_weight = pixel_weight * weight.to(logits.dtype)[target_f.long()]
    # Same normalisation as weighted CE with reduction="mean": divide by the summed weights.
    return (per_pixel * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)


class SegmentationLoss(nn.Module):
    """CE or BCE on the main output plus weighted auxiliary outputs."""

    def __init__(self, kind: str = "ce", class_weights: torch.Tensor | None = None, aux_weight: float = 0.2,
                 ignore_index: int = IGNORE_INDEX):
        super().__init__()
        if kind not in LOSSES:
            raise SegtoolError(f"unknown loss {kind!r}; expected one of {', '.join(LOSSES)}")
        self.kind = kind
        self.aux_weight = float(aux_weight)
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", class_weights, persistent=False)

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # losses in fp32 under autocast
        if self.kind == "bce":
            return binary_cross_entropy(logits, target, self.class_weights, self.ignore_index)
        return F.cross_entropy(logits, target, weight=self.class_weights, ignore_index=self.ignore_index)

    def forward(self, output, target: torch.Tensor) -> torch.Tensor:
        main, aux = split_outputs(output)
        loss = self.single(main, target)
        for extra in aux:
            loss = loss + self.aux_weight * self.single(extra, target)
        return loss


def load_class_weights(path: str | Path, num_classes: int) -> np.ndarray:
    """Weights from a file: numbers separated by commas, spaces or newlines, or a YAML/JSON list."""
    path = Path(path)
    text = read_text_file(path, "class-weights file")
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError:
            raise SegtoolError(f"{path}: not valid YAML/JSON") from None
        if isinstance(values, dict):
            values = list(values.values())
    else:
        lines = [line.split("#", 1)[0] for line in text.splitlines()]
        values = " ".join(lines).replace(",", " ").split()
    try:
        weights = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise SegtoolError(f"{path}: class weights must be numbers") from None
    if weights.shape != (num_classes,):
        raise SegtoolError(f"{path}: {weights.size} class weights for {num_classes} classes")
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise SegtoolError(f"{path}: class weights must be finite and non-negative")
    return weights
