"""Region-guided style transfer: each region of a label mask gets its own style, or keeps the content.

The style loss of a region compares masked Gram matrices (the region mask resized to each VGG
layer multiplies the activations), as in Gatys et al. 2017, "Controlling Perceptual Factors in
Neural Style Transfer". Regions that keep the content are not optimised at all: the loss sees
``keep * content + (1 - keep) * image``, so they stay the content exactly (up to the feathered
border) while the styled regions around them still see them through VGG's receptive fields.

    from segtool.style import StyleConfig, plan_regions, read_mask, stylize_regions
    plan, _ = plan_regions(read_mask("labels.png", get_palette("voc")), get_palette("voc"),
                           [("person", "none"), ("background", "starry.jpg")])
    stylize_regions("photo.jpg", plan, StyleConfig(steps=300)).image.save("out.png")
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from segtool.core.errors import SegtoolError
from segtool.style.config import StyleConfig
from segtool.style.images import Size
from segtool.style.losses import gram
from segtool.style.optimize import Objective
from segtool.style.regions import RegionPlan, region_masks
from segtool.style.transfer import ImageLike, StyleResult, objective_weights, transfer
from segtool.style.vgg import VGGFeatures

__all__ = ["GuidedObjective", "layer_masks", "masked_gram", "stylize_regions"]


def masked_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the activations weighted by ``mask`` (H x W, same size as ``features``).

    Normalised by the mask's weight so a full mask gives exactly ``losses.gram``; a region's
    target does not depend on its area.
    """
    channels = features.shape[1]
    matrix = (features * mask).reshape(channels, -1)
    return matrix @ matrix.T / (channels * mask.square().sum().clamp_min(1e-8))


def layer_masks(masks: torch.Tensor, activations: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``(R, H, W)`` image-size masks -> ``{layer: (R, h, w)}`` at each layer's size (area averages,
    as VGG's pooling shrinks the image)."""
    return {name: F.adaptive_avg_pool2d(masks.unsqueeze(0), act.shape[-2:]).squeeze(0)
            for name, act in activations.items()}


class GuidedObjective(Objective):
    """``Objective`` with one style loss per region, each against its own masked Gram targets.

    ``region_grams[r][layer]`` is region r's target and ``masks[layer][r]`` its mask at that
    layer's size; ``keep`` is the ``(1, 1, H, W)`` weight of content kept (None: all styled).
    Each region's loss is weighted by its share of the image, so one region covering everything
    gives plain stylize's loss.
    """

    def __init__(self, extractor: VGGFeatures, content: torch.Tensor, content_targets: Mapping[str, torch.Tensor],
                 region_grams: list[dict[str, torch.Tensor]], masks: Mapping[str, torch.Tensor],
                 shares: list[float], keep: torch.Tensor | None, **weights: float):
        super().__init__(extractor, content_targets, {}, **weights)
        self.content = content
        self.region_grams = region_grams
        self.masks = dict(masks)
        self.shares = shares
        self.keep = keep

    def compose(self, image: torch.Tensor) -> torch.Tensor:
        if self.keep is None:
            return image
        return self.keep * self.content + (1 - self.keep) * image

    def style_term(self, activations: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = next(iter(activations.values())).new_zeros(())
        for region, (targets, share) in enumerate(zip(self.region_grams, self.shares, strict=True)):
            if share == 0.0:
                continue  # the region vanished at this stage's size
            for name, target in targets.items():
                own = masked_gram(activations[name], self.masks[name][region])
                total = total + share * torch.mean((own - target) ** 2)
        return total


def stylize_regions(content: ImageLike, plan: RegionPlan, config: StyleConfig | None = None, *,
                    feather: float = 0.0, device: torch.device | str = "cpu", **options) -> StyleResult:
    """Stylize each region of ``plan`` with its own style; ``none`` regions keep the content.

    ``feather`` is the sigma (output pixels) of the soft region borders. ``options`` are
    ``stylize``'s keyword arguments (extractor, weights, random_weights, on_step, snapshots).
    """
    config = config or StyleConfig()
    if config.style_blend is not None:
        raise SegtoolError("--style-blend mixes positional style images; with --mask each region has one style")
    config.validate(1)
    if feather < 0:
        raise SegtoolError(f"--feather must not be negative, got {feather}")
    styles = plan.styles
    styled = [r for r in plan.regions if r.style is not None]
    kept = tuple(c for r in plan.regions if r.style is None for c in r.classes)

    def build(extractor: VGGFeatures, content_t: torch.Tensor, style_ts: list[torch.Tensor], size: Size,
              final: Size) -> Objective:
        # --feather is in output pixels; coarser --scales stages blur proportionally less.
        groups = [r.classes for r in styled] + ([kept] if kept else [])
        masks = region_masks(plan.labels, groups, size, feather=feather * max(size) / max(final),
                             device=content_t.device)
        keep = masks[len(styled):].sum(0).view(1, 1, *size) if kept else None
        with torch.no_grad():
            activations = extractor(content_t)
            content_targets = {n: a for n, a in activations.items() if n in config.content_layers}
            per_layer = layer_masks(masks[:len(styled)], {n: activations[n] for n in config.style_layers})
            grams = [_style_targets(extractor, style_ts[styles.index(r.style)], r.classes, plan.style_labels,
                                    config.style_layers, r.name) for r in styled]
        shares = [float(share) for share in masks[:len(styled)].mean(dim=(1, 2))]
        return GuidedObjective(extractor, content_t, content_targets, grams, per_layer, shares, keep,
                               **objective_weights(config))

    return transfer(content, styles, config, build, device=device, **options)


def _style_targets(extractor: VGGFeatures, style: torch.Tensor, classes: tuple[int, ...],
                   style_labels: np.ndarray | None, layers: tuple[str, ...], name: str) -> dict[str, torch.Tensor]:
    """The Gram targets of one region: the whole style image, or its pixels of the same classes."""
    activations = {n: a for n, a in extractor(style).items() if n in layers}
    if style_labels is None:
        return {n: gram(a) for n, a in activations.items()}
    masks = region_masks(style_labels, [classes], tuple(style.shape[-2:]), device=style.device)
    if float(masks.sum()) == 0:
        raise SegtoolError(f"--style-mask: no pixel of {name} in the style mask; that region has no style to take")
    per_layer = layer_masks(masks, activations)
    return {n: masked_gram(a, per_layer[n][0]) for n, a in activations.items()}

