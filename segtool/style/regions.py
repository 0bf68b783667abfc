"""Spatial control of a style transfer: which style each region of a label mask gets.

``--style person=none --style background=starry.jpg`` names mask classes (palette names or
indices) and what they get; classes not named get ``--style-default``. Classes that share a style
form one region, so they share one Gram matrix, as if they were one object (Gatys et al. 2017,
"Controlling Perceptual Factors in Neural Style Transfer"); with a style-image mask each class is
its own region and takes its statistics from the same class in the style image.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.core.io import is_stdio
from segtool.data.masks import labels_of_image, read_label_mask
from segtool.data.palettes import Palette

__all__ = ["KEEP", "Region", "RegionPlan", "fit_labels", "load_region_plan", "parse_assignment", "plan_regions",
           "read_mask", "region_masks", "resize_labels"]

KEEP = "none"  # the style value that keeps the content in a region


@dataclass(frozen=True)
class Region:
    name: str                    # "person", "background+sky", or an index such as "3"
    classes: tuple[int, ...]
    style: Path | None           # None: keep the content here


@dataclass
class RegionPlan:
    """The content's label map and its regions; ``style_labels`` is the optional style-image mask."""

    labels: np.ndarray           # H x W uint8 at the content image's size
    regions: list[Region]
    style_labels: np.ndarray | None = None

    @property
    def styles(self) -> list[Path]:
        """The distinct style files, in first-use order."""
        return list(dict.fromkeys(r.style for r in self.regions if r.style is not None))

    def to_dict(self) -> list[dict]:
        return [{"name": r.name, "classes": list(r.classes), "style": str(r.style) if r.style else KEEP,
                 "pixels": int(np.isin(self.labels, r.classes).sum())} for r in self.regions]


def parse_assignment(text: str) -> tuple[str, str]:
    """``"person=none"`` -> ("person", "none"); raises ValueError naming the expected form."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"{text!r}: expected CLASS=STYLE (a class name or index, then an image path or "
                         f"{KEEP}), e.g. person={KEEP}")
    return key.strip(), value.strip()


def read_mask(source: str | os.PathLike, palette: Palette, *, stdin: IO[bytes] | None = None,
              what: str = "--mask") -> np.ndarray:
    """H x W uint8 labels of a mask file or of a PNG on stdin (``-``), through segtool's mask reading."""
    if not is_stdio(source):
        return read_label_mask(source, palette).labels
    data = (stdin or sys.stdin.buffer).read()
    if not data:
        raise SegtoolError(f"{what} -: nothing on stdin (pipe a mask PNG, e.g. from segtool predict ... -o -)")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise SegtoolError(f"{what} -: stdin does not hold a readable mask image ({type(exc).__name__})") from None
    return labels_of_image(image, palette, source="<stdin>").labels


def fit_labels(labels: np.ndarray, size_hw: tuple[int, int], *, strict: bool, what: str = "--mask") -> bool:
    """Check a label map against the image it guides; returns whether it must be resized (nearest).

    With ``strict`` a size mismatch is a SegtoolError instead.
    """
    if labels.shape == tuple(size_hw):
        return False
    if strict:
        raise SegtoolError(f"{what}: mask is {labels.shape[0]}x{labels.shape[1]} but the image is "
                           f"{size_hw[0]}x{size_hw[1]} (--strict refuses to resize)")
    return True


def _class_index(key: str, palette: Palette) -> int:
    if key.isdigit():
        if int(key) > 255:
            raise SegtoolError(f"--style {key}=...: class indices are 0..255")
        return int(key)
    wanted = _normal(key)
    for index, name in enumerate(palette.names):
        if _normal(name) == wanted:
            return index
    raise SegtoolError(f"--style {key}=...: no class {key!r} in the {palette.name} palette; valid: "
                       f"{', '.join(palette.names)} (or an index; --palette picks another palette)")


def _normal(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())  # "potted plant" == "potted_plant"


def _style_value(value: str) -> Path | None:
    return None if value.lower() == KEEP else Path(value)


def plan_regions(labels: np.ndarray, palette: Palette, assignments: list[tuple[str, str]],
                 default: str = KEEP, *, style_labels: np.ndarray | None = None) -> tuple[RegionPlan, list[str]]:
    """Group the mask's classes by the style they get; returns the plan and warnings to show.

    A class named twice is an error; a named class absent from the mask is a warning (its style is
    unused). At least one region must get a style.
    """
    assigned: dict[int, Path | None] = {}
    for key, value in assignments:
        index = _class_index(key, palette)
        if index in assigned:
            raise SegtoolError(f"--style {key}=...: class {_name(index, palette)!r} is given a style twice")
        assigned[index] = _style_value(value)
    present = [int(v) for v in np.unique(labels)]
    warnings = [f"--style {_name(i, palette)}: class not in the mask; its style is unused"
                for i in assigned if i not in present]
    groups: dict[tuple, list[int]] = {}
    for index in present:
        style = assigned.get(index, _style_value(default))
        key = (style, index) if style_labels is not None and style is not None else (style,)
        groups.setdefault(key, []).append(index)
    regions = [Region("+".join(_name(i, palette) for i in classes), tuple(classes), key[0])
               for key, classes in groups.items()]
    if all(region.style is None for region in regions):
        raise SegtoolError(f"every region of the mask is {KEEP}; give a style with --style CLASS=STYLE "
                           "or --style-default STYLE")
    if style_labels is not None:
        in_style = set(np.unique(style_labels).tolist())
        for region in regions:
            if region.style is not None and not in_style.intersection(region.classes):
                raise SegtoolError(f"--style-mask: no pixel of {region.name} in the style mask; that region "
                                   "has no style to take")
    return RegionPlan(labels, regions, style_labels), warnings


def load_region_plan(mask: str | os.PathLike, palette: Palette, assignments: list[tuple[str, str]],
                     default: str, content_hw: tuple[int, int], *, style_mask: str | os.PathLike | None = None,
                     strict: bool = False, stdin: IO[bytes] | None = None) -> tuple[RegionPlan, list[str]]:
    """Everything ``stylize --mask`` reads before any heavy work: the mask (a file or ``-``), the
    style-image mask, every style file; returns the plan and the warnings to show.

    A mask whose size differs from its image is resized (nearest, with a warning) unless ``strict``.
    """
    from segtool.style.images import load_rgb

    warnings = []
    labels = read_mask(mask, palette, stdin=stdin)
    if fit_labels(labels, content_hw, strict=strict):
        warnings.append(f"--mask: {labels.shape[0]}x{labels.shape[1]} differs from the content image "
                        f"{content_hw[0]}x{content_hw[1]}; resized (nearest)")
        labels = resize_labels(labels, content_hw)
    style_labels = None if style_mask is None else read_mask(style_mask, palette, stdin=stdin, what="--style-mask")
    plan, notes = plan_regions(labels, palette, assignments, default, style_labels=style_labels)
    for path in plan.styles:
        style = load_rgb(path)
        if style_labels is not None and fit_labels(style_labels, (style.height, style.width), strict=strict,
                                                   what="--style-mask"):
            warnings.append(f"--style-mask: {style_labels.shape[0]}x{style_labels.shape[1]} differs from "
                            f"{path} {style.height}x{style.width}; resized (nearest)")
    return plan, warnings + notes


def _name(index: int, palette: Palette) -> str:
    return palette.names[index] if index < palette.num_classes else str(index)


def resize_labels(labels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize: labels are classes, never blended."""
    if labels.shape == tuple(size_hw):
        return labels
    image = Image.fromarray(labels).resize((size_hw[1], size_hw[0]), Image.Resampling.NEAREST)
    return np.asarray(image)


def region_masks(labels: np.ndarray, groups: list[tuple[int, ...]], size_hw: tuple[int, int], *,
                 feather: float = 0.0, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(R, H, W)`` float masks of the class groups at ``size_hw``; they sum to 1 at every pixel
    the groups cover.

    ``feather`` > 0 blurs each mask with a Gaussian of that sigma (pixels of ``size_hw``) and
    renormalises, so borders blend instead of showing a seam.
    """
    labels = resize_labels(labels, size_hw)
    masks = torch.from_numpy(np.stack([np.isin(labels, classes) for classes in groups])).float()
    if feather > 0:
        masks = _gaussian_blur(masks, feather)
        masks = masks / masks.sum(0, keepdim=True).clamp_min(1e-8)
    return masks.to(device)


def _gaussian_blur(masks: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    batch = masks.unsqueeze(1)  # (R, 1, H, W)
    # Replicate padding: a region touching the border must not fade out towards it.
    batch = F.conv2d(F.pad(batch, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    batch = F.conv2d(F.pad(batch, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return batch.squeeze(1)
