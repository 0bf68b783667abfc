"""Comparison grid: one row per sample, columns image / prediction / ground truth (d2l's figure).

Cells are as large as the largest image and each picture sits unscaled in the middle of its cell,
so masks are shown pixel for pixel. With titles, a header names the columns and each row starts
with the sample's name and, when both masks are given, its pixel accuracy and mIoU; titles wrap
to the grid's width (shrinking the font for a word too long for a cell) rather than being cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from segtool.core.errors import SegtoolError
from segtool.data.palettes import Palette
from segtool.viz.fonts import fit_text_lines, get_font, line_height, text_size
from segtool.viz.overlay import colorize_labels

GAP = 4  # white space between and around cells
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
FONT_SIZE = 12
MIN_FONT_SIZE = 8  # titles shrink down to this size before words are cut


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
    if titles:  # cells at least as wide as each header word at the smallest size: no header is cut
        cell_w = max(cell_w, *(text_size(word, get_font(MIN_FONT_SIZE))[0] for c in columns for word in c.split()))
    width = len(columns) * (cell_w + GAP) + GAP
    # Titles wrap (and shrink down to 8 px) to fit small images instead of being cut off.
    headers = [fit_text_lines(name, cell_w, FONT_SIZE, MIN_FONT_SIZE) for name in columns] if titles else []
    header_size = min((getattr(font, "size", FONT_SIZE) for font, _ in headers), default=FONT_SIZE)
    headers = [fit_text_lines(name, cell_w, header_size, MIN_FONT_SIZE) for name in columns] if titles else []
    header_h = max(_text_height(*h) for h in headers) + GAP if titles else 0
    row_titles = [fit_text_lines(row_title(s, palette.num_classes, palette.ignore_index), width - 2 * GAP,
                                 FONT_SIZE, MIN_FONT_SIZE) for s in samples] if titles else [None] * len(samples)

    height = header_h + sum(cell_h + GAP + (_text_height(*t) + GAP if t else 0) for t in row_titles) + GAP
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for c, (font, lines) in enumerate(headers):
        _draw_lines(draw, (GAP + c * (cell_w + GAP), GAP), font, lines)

    y = header_h + GAP
    for sample, title in zip(samples, row_titles, strict=True):
        if title:
            _draw_lines(draw, (GAP, y), *title)
            y += _text_height(*title) + GAP
        pictures = [sample.image]
        pictures += [colorize_labels(m, palette)[0] for m in (sample.pred, sample.gt) if m is not None]
        for c, picture in enumerate(pictures):
            h, w = picture.shape[:2]
            x0 = GAP + c * (cell_w + GAP) + (cell_w - w) // 2
            grid.paste(Image.fromarray(picture), (x0, y + (cell_h - h) // 2))
        y += cell_h + GAP
    return grid


def _text_height(font, lines: list[str]) -> int:
    return len(lines) * line_height(font)


def _draw_lines(draw: ImageDraw.ImageDraw, origin: tuple[int, int], font, lines: list[str]) -> None:
    x, y = origin
    for i, line in enumerate(lines):
        draw.text((x, y + i * line_height(font)), line, fill=TEXT_COLOR, font=font)
