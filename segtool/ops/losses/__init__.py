"""Segmentation losses (`--loss`): ce, bce, dice, focal, lovasz, ohem and weighted sums (ce+dice, ce:1,dice:0.5).

The formulas are in ``functional``; every one skips label 255 and takes --class-weights.
``SegmentationLoss`` takes what a model returns in training mode (see segtool.ops.outputs: logits,
or main + auxiliary outputs for BiSeNetV2's boosters and torchvision's aux classifiers); the total
is ``loss(main) + aux_weight * sum(loss(aux))`` as in the BiSeNetV2 recipe.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.core.io import read_text_file
from segtool.ops.losses.functional import (
    binary_cross_entropy,
    cross_entropy,
    dice_loss,
    focal_loss,
    lovasz_softmax,
    ohem_cross_entropy,
)
from segtool.ops.outputs import split_outputs

# name -> (function, its options with defaults)
LOSSES: dict[str, tuple] = {
    "ce": (cross_entropy, {}),
    "bce": (binary_cross_entropy, {}),
    "dice": (dice_loss, {"smooth": 0.0}),
    "focal": (focal_loss, {"gamma": 2.0, "alpha": None}),
    "lovasz": (lovasz_softmax, {}),
    "ohem": (ohem_cross_entropy, {"thresh": 0.7, "min_kept": 100_000}),
}


def parse_loss_spec(spec: str) -> list[tuple[str, float]]:
    """``ce``, ``ce+dice`` or ``ce:1,dice:0.5`` -> [(name, weight), ...]."""
    terms: list[tuple[str, float]] = []
    for part in re.split(r"[+,]", str(spec).strip().lower()):
        name, colon, weight_text = (p.strip() for p in part.partition(":"))
        if name not in LOSSES:
            raise SegtoolError(f"--loss {spec!r}: unknown loss {name!r}; expected one of {', '.join(LOSSES)} "
                               "or a weighted sum such as ce+dice or ce:1,dice:0.5")
        try:
            weight = float(weight_text) if colon else 1.0
        except ValueError:
            raise SegtoolError(f"--loss {spec!r}: weight {weight_text!r} of {name} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise SegtoolError(f"--loss {spec!r}: weight of {name} must be finite and >= 0, got {weight_text}")
        if name in (n for n, _ in terms):
            raise SegtoolError(f"--loss {spec!r}: {name} appears twice")
        terms.append((name, weight))
    if not any(weight > 0 for _, weight in terms):
        raise SegtoolError(f"--loss {spec!r}: at least one weight must be positive")
    return terms


def is_binary_loss(spec: str) -> bool:
    """A loss with a bce term trains one logit per pixel (binary masks)."""
    return any(name == "bce" for name, _ in parse_loss_spec(spec))


def loss_options(spec: str, options: dict | None) -> dict[str, dict]:
    """Each term's options (``--loss-option gamma=1``) over its defaults; a key no term takes is an error."""
    terms = [name for name, _ in parse_loss_spec(spec)]
    merged = {name: dict(LOSSES[name][1]) for name in terms}
    for key, value in (options or {}).items():
        owners = [name for name in terms if key in merged[name]]
        if not owners:
            known = ", ".join(f"{k} ({n})" for n in terms for k in merged[n]) or "none"
            raise SegtoolError(f"--loss-option {key}: not an option of --loss {spec} (known: {known})")
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float))):
            raise SegtoolError(f"--loss-option {key}={value!r}: expected a number")
        for name in owners:
            merged[name][key] = value
    return merged


class SegmentationLoss(nn.Module):
    """A weighted sum of losses (``spec``, see parse_loss_spec) on the main output plus weighted
    auxiliary outputs."""

    def __init__(self, kind: str = "ce", class_weights: torch.Tensor | None = None, aux_weight: float = 0.2,
                 ignore_index: int = IGNORE_INDEX, options: dict | None = None):
        super().__init__()
        self.kind = kind
        self.terms = parse_loss_spec(kind)
        self.options = loss_options(kind, options)
        self.aux_weight = float(aux_weight)
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", class_weights, persistent=False)

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()  # losses in fp32 under autocast
        total = None
        for name, weight in self.terms:
            function, _ = LOSSES[name]
            value = function(logits, target, self.class_weights, self.ignore_index, **self.options[name])
            value = value if weight == 1.0 else weight * value
            total = value if total is None else total + value
        return total

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
        except (yaml.YAMLError, RecursionError):  # RecursionError: nested thousands deep
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
