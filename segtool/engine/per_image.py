"""`evaluate --per-image FILE` and `--worst K GRID.png`: scores of each image, and the worst ones drawn.

Each image's confusion matrix is kept during evaluation (C x C counts, small); its scores use the
same rules as the dataset's (ops.metrics): mIoU over the classes present in its ground truth or
prediction. The worst-K grid runs the model again on those K images only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.ops.metrics import scores_from_confusion

PER_IMAGE_FORMATS = (".csv", ".jsonl")


@dataclass
class PerImage:
    """Filled by engine.evaluate.evaluate_checkpoint: per-image confusion matrices and the dataset."""

    matrices: list = field(default_factory=list)
    dataset: object | None = None

    def name(self, index: int) -> str:
        return self.dataset.sample_paths(index)[0].stem if self.dataset is not None else str(index)


def image_rows(per_image: PerImage, class_names) -> list[dict]:
    """One row per image: index, name, pixel_acc, miou, labelled pixels and each class's IoU (None = n/a)."""
    rows = []
    for index, matrix in enumerate(per_image.matrices):
        scores = scores_from_confusion(matrix, class_names)
        rows.append({"index": index, "image": per_image.name(index), "pixel_acc": scores["pixel_acc"],
                     "miou": scores["miou"], "pixels": scores["num_pixels"],
                     **{f"iou:{row['name']}": row["iou"] for row in scores["per_class"]}})
    return rows


def check_per_image_target(path: str) -> None:
    if not str(path).lower().endswith(PER_IMAGE_FORMATS):
        raise SegtoolError(f"--per-image {path}: expected a .csv or .jsonl file name")


def write_rows(rows: list[dict], path: str, *, force: bool = False) -> None:
    """FILE.csv (n/a cells empty) or FILE.jsonl (null)."""
    from segtool.core.io import atomic_write

    check_per_image_target(path)
    if str(path).lower().endswith(".jsonl"):
        text = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["index"], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        text = buffer.getvalue()
    atomic_write(path, lambda handle: handle.write(text), force=force, binary=False)


def worst(rows: list[dict], k: int) -> list[dict]:
    """The ``k`` rows of lowest mIoU (images without labelled pixels have none and are left out)."""
    scored = [row for row in rows if row["miou"] is not None]
    return sorted(scored, key=lambda row: (row["miou"], row["index"]))[:k]


def predicted_labels(checkpoint: dict, dataset, indices, device, *, tta=None, window=None, stride=None,
                     amp: bool = False) -> list[np.ndarray]:
    """The checkpoint's labels for ``indices`` of ``dataset``, as evaluate computed them."""
    import torch

    from segtool.engine.checkpoint import model_from_checkpoint
    from segtool.engine.inference import labels_from_logits, model_logits
    from segtool.engine.speed import autocast
    from segtool.models import size_multiple

    model = model_from_checkpoint(checkpoint, device)
    multiple = size_multiple(checkpoint["model_name"])
    scale = float(checkpoint.get("config", {}).get("input_scale") or 1.0)
    out = []
    with torch.no_grad():
        for index in indices:
            image, _mask = dataset[index]
            with autocast(device, amp):
                logits = model_logits(model, image[None].to(device), multiple, window, stride, tta, scale)
            out.append(labels_from_logits(logits.float())[0].cpu().numpy().astype(np.uint8))
    return out


def worst_grid(checkpoint: dict, per_image: PerImage, rows: list[dict], k: int, device, **inference):
    """A PIL grid of the ``k`` worst images: image | prediction | ground truth, titled with their scores."""
    from segtool.engine.checkpoint import palette_from_checkpoint
    from segtool.viz.grid import CompareSample, render_compare_grid

    chosen = worst(rows, k)
    if not chosen:
        raise SegtoolError("--worst: no image has labelled pixels")
    dataset = per_image.dataset
    preds = predicted_labels(checkpoint, dataset, [row["index"] for row in chosen], device, **inference)
    samples = []
    for row, pred in zip(chosen, preds, strict=True):
        image, labels = dataset.read_sample(row["index"])
        samples.append(CompareSample(image, pred, labels, name=row["image"]))
    return render_compare_grid(samples, palette_from_checkpoint(checkpoint), titles=True)


def write_outputs(checkpoint: dict, per_image: PerImage, class_names, device, *, rows_path: str | None = None,
                  worst_k: int = 0, grid_path: str | None = None, force: bool = False, **inference) -> list[dict]:
    """`evaluate --per-image FILE` and `--worst K GRID.png`; returns the rows."""
    rows = image_rows(per_image, class_names)
    if rows_path is not None:
        write_rows(rows, rows_path, force=force)
    if worst_k and grid_path is not None:
        from segtool.core.io import save_image

        save_image(worst_grid(checkpoint, per_image, rows, worst_k, device, **inference), grid_path, force=force)
    return rows


def check_targets(rows_path: str | None, worst_k: int | None, grid_path: str | None, force: bool) -> None:
    """Before any work: the output names and K are usable."""
    from segtool.core.io import check_output

    if rows_path is not None:
        check_per_image_target(rows_path)
        check_output(rows_path, force)
    if grid_path is not None:
        if worst_k is None or worst_k < 1:
            raise SegtoolError(f"--worst {worst_k} {grid_path}: K must be at least 1")
        if not str(grid_path).lower().endswith(".png"):
            raise SegtoolError(f"--worst {worst_k} {grid_path}: expected a .png file name")
        check_output(grid_path, force)
