"""Comparison grid: one row per sample, columns image / prediction / ground truth (d2l's figure).

Cells are as large as the largest image and each picture sits unscaled in the middle of its cell,
so masks are shown pixel for pixel. With titles, a header names the columns and each row starts
with the sample's name and, when both masks are given, its pixel accuracy and mIoU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from segtool.core.errors import SegtoolError
from segtool.data.palettes import Palette
from segtool.viz.fonts import get_font, line_height
from segtool.viz.overlay import colorize_labels

GAP = 4  # white space between and around cells
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
FONT_SIZE = 12


@dataclass
class CompareSample:
    image: np.ndarray             # H x W x 3 uint8
    pred: np.ndarray | None = None  # H x W labels
    gt: np.ndarray | None = None    # H x W labels
    name: str = ""


def sample_scores(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                  ignore_index: int = 255) -> tuple[float, float] | None:
    """(pixel accuracy, mIoU) of one sample, or None when ``gt`` has no labelled pixel.

    Pixels whose ground truth is void or outside the palette are skipped; a predicted value
    outside the palette counts as wrong. The mean runs over classes present in prediction or
    ground truth (classes absent from both have no IoU), as ``evaluate`` does.
    """
    import torch  # here, not at the top: a grid without titles needs no torch

    from segtool.ops.metrics import confusion_matrix, scores_from_confusion

    gt = torch.from_numpy(np.asarray(gt).ravel().astype(np.int64))
    pred = torch.from_numpy(np.asarray(pred).ravel().astype(np.int64))
    keep = (gt >= 0) & (gt < num_classes) & (gt != ignore_index)
    gt, pred = gt[keep], pred[keep]
    if gt.numel() == 0:
        return None
    # Predictions outside the palette go to an extra class: never right, and in no real class's union.
    pred = torch.where((pred >= 0) & (pred < num_classes), pred, num_classes)
    scores = scores_from_confusion(confusion_matrix(pred, gt, num_classes + 1, ignore_index).numpy())
    ious = [row["iou"] for row in scores["per_class"][:num_classes] if row["iou"] is not None]
    return scores["pixel_acc"], float(np.mean(ious))


def _columns(samples: Sequence[CompareSample]) -> list[str]:
    columns = ["image"]
    if any(s.pred is not None for s in samples):
        columns.append("prediction")
    if any(s.gt is not None for s in samples):
        columns.append("ground truth")
    return columns


def row_title(sample: CompareSample, num_classes: int, ignore_index: int = 255) -> str:
    parts = [sample.name] if sample.name else []
    if sample.pred is not None and sample.gt is not None:
        scores = sample_scores(sample.pred, sample.gt, num_classes, ignore_index)
        if scores is None:
            parts.append("no labelled pixels")
        else:
            parts.append(f"pixel acc {scores[0]:.3f} · mIoU {scores[1]:.3f}")
    return " · ".join(parts)


def render_compare_grid(samples: Sequence[CompareSample], palette: Palette, *, titles: bool = False) -> Image.Image:
    """The grid as an RGB image: len(samples) rows x (image, prediction?, ground truth?) columns."""
    if not samples:
        raise SegtoolError("compare needs at least one sample")
    columns = _columns(samples)
    for i, s in enumerate(samples):
        for kind, mask in (("prediction", s.pred), ("ground truth", s.gt)):
            if kind in columns and mask is None:
                raise SegtoolError(f"sample {s.name or i + 1}: has no {kind} while other samples have one")
            if mask is not None and np.asarray(mask).shape != s.image.shape[:2]:
                h, w = s.image.shape[:2]
                raise SegtoolError(f"{s.name or f'sample {i + 1}'}: {kind} is {mask.shape[1]}x{mask.shape[0]} "
                                   f"but the image is {w}x{h}")
    cell_w = max(s.image.shape[1] for s in samples)
    cell_h = max(s.image.shape[0] for s in samples)
    font = get_font(FONT_SIZE)
    title_h = line_height(font) + GAP if titles else 0

    width = len(columns) * (cell_w + GAP) + GAP
    height = title_h + len(samples) * (title_h + cell_h + GAP) + GAP
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    if titles:
        for c, name in enumerate(columns):
            draw.text((GAP + c * (cell_w + GAP), GAP), fit_text(draw, name, font, cell_w), fill=TEXT_COLOR,
                      font=font)

    y = title_h + GAP
    for sample in samples:
        if titles:
            title = row_title(sample, palette.num_classes, palette.ignore_index)
            draw.text((GAP, y), fit_text(draw, title, font, width - 2 * GAP), fill=TEXT_COLOR, font=font)
            y += title_h
        pictures = [sample.image]
        pictures += [colorize_labels(m, palette)[0] for m in (sample.pred, sample.gt) if m is not None]
        for c, picture in enumerate(pictures):
            h, w = picture.shape[:2]
            x0 = GAP + c * (cell_w + GAP) + (cell_w - w) // 2
            grid.paste(Image.fromarray(picture), (x0, y + (cell_h - h) // 2))
        y += cell_h + GAP
    return grid


def fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, cut with an ellipsis where it would run past ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…" if text else ""
