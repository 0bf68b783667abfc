"""Prediction: label maps for image files, at each input's original size.

Images of the same size are batched together; each batch is padded to the model's size rule and
the logits cropped back, so the output has exactly the input's width and height. Outputs: a
palette PNG of class indices (readable as VOC-style labels), a colour PNG, or an overlay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from segtool.core.errors import SegtoolError
from segtool.engine.inference import labels_from_logits, model_logits
from segtool.engine.speed import autocast

OUTPUT_FORMATS = ("index", "color", "overlay")


@dataclass
class Predictor:
    """A model restored from a checkpoint, ready to label RGB arrays."""

    model: torch.nn.Module
    device: torch.device
    multiple: int
    normalize: str | None
    amp: bool = False
    window: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    tta: object | None = None  # engine.inference.TTA (--tta)
    input_scale: float = 1.0  # the model was trained on images resized by this (--input-scale)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict, device: torch.device, *, amp: bool = False,
                        window: tuple[int, int] | None = None, stride: tuple[int, int] | None = None,
                        tta=None) -> Predictor:
        """The checkpoint's model on ``device``, with its size rule and input normalisation."""
        from segtool.engine.checkpoint import model_from_checkpoint
        from segtool.models import size_multiple

        return cls(model_from_checkpoint(checkpoint, device), device, size_multiple(checkpoint["model_name"]),
                   checkpoint["config"].get("normalize"), amp, window, stride, tta,
                   float(checkpoint["config"].get("input_scale") or 1.0))

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255)
        if self.normalize == "imagenet":
            from segtool.core.conventions import IMAGENET_MEAN, IMAGENET_STD

            mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
            tensor = (tensor - mean) / std
        return tensor

    @torch.no_grad()
    def labels(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """H x W x 3 uint8 images of one size -> H x W uint8 label maps."""
        batch = torch.stack([self.to_tensor(img) for img in images]).to(self.device)
        with autocast(self.device, self.amp):
            logits = model_logits(self.model, batch, self.multiple, self.window, self.stride, self.tta,
                                  self.input_scale)
        labels = labels_from_logits(logits.float()).to(torch.uint8).cpu().numpy()
        return list(labels)


@dataclass
class PredictReport:
    written: list[Path | str] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def same_size_batches(items: Iterable[tuple[Path, np.ndarray]], batch_size: int
                      ) -> Iterator[list[tuple[Path, np.ndarray]]]:
    """Consecutive images of equal size, up to ``batch_size`` at a time (no padding between images)."""
    batch: list[tuple[Path, np.ndarray]] = []
    for path, image in items:
        if batch and (len(batch) >= batch_size or batch[0][1].shape != image.shape):
            yield batch
            batch = []
        batch.append((path, image))
    if batch:
        yield batch


def read_images(paths: Iterable[Path], skip_bad: bool, report: PredictReport) -> Iterator[tuple[Path, np.ndarray]]:
    from segtool.data.images import read_image

    for path in paths:
        try:
            yield path, read_image(path)
        except SegtoolError as exc:
            if not skip_bad:
                raise
            report.skipped.append((path, str(exc)))


def render_output(image: np.ndarray, labels: np.ndarray, palette, fmt: str, alpha: float):
    """The PIL image to write for one prediction."""
    from PIL import Image

    if fmt == "index":
        from segtool.data.masks import label_image

        return label_image(labels, palette)
    if fmt == "color":
        return Image.fromarray(palette.colorize(labels))
    from segtool.viz.overlay import blend_overlay

    return Image.fromarray(blend_overlay(image, labels, palette, alpha))


def predict_files(predictor: Predictor, paths: Iterable[Path], destination: Callable[[Path], Path | str], *,
                  palette, fmt: str = "index", alpha: float = 0.5, batch_size: int = 4, skip_bad: bool = False,
                  force: bool = False, on_image: Callable[[], None] | None = None) -> PredictReport:
    """Label every image and write ``destination(path)`` (``-`` = stdout), one step after another.

    The plain reference loop; `segtool predict` runs ``engine.batch_predict.predict_many`` (same
    masks, decoding and writing overlapped with the model, batches grouped by size).
    """
    from segtool.core.io import save_image

    if fmt not in OUTPUT_FORMATS:
        raise SegtoolError(f"--format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    report = PredictReport()
    for batch in same_size_batches(read_images(paths, skip_bad, report), max(1, batch_size)):
        labels = predictor.labels([image for _, image in batch])
        for (path, image), label_map in zip(batch, labels, strict=True):
            target = destination(path)
            save_image(render_output(image, label_map, palette, fmt, alpha), target, force=force, format="PNG")
            report.written.append(target)
            if on_image is not None:
                on_image()
    return report
