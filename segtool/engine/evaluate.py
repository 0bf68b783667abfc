"""Evaluation: confusion matrix over a dataset, scores, and the report shown by `segtool evaluate`.

``run_validation`` is shared by the training loop (per-epoch validation) and the evaluate command.
Each DDP rank scores its own shard; the confusion matrix and loss sums are then summed over ranks,
so the scores are exactly those of a single-process run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from segtool.engine.distributed import all_reduce_sum
from segtool.engine.inference import labels_from_logits, model_logits
from segtool.engine.speed import autocast, to_device
from segtool.ops.metrics import ConfusionMatrix, confusion_matrix


@dataclass
class Validation:
    matrix: np.ndarray
    scores: dict
    loss: float | None
    images: int


@torch.no_grad()
def run_validation(model, loader, *, num_classes: int, device: torch.device, multiple: int, amp: bool = False,
                   channels_last: bool = False, loss_fn=None, class_names=None, window=None, stride=None,
                   progress_task=None, progress=None, input_scale: float = 1.0, tta=None,
                   per_image: list | None = None) -> Validation:
    """Score ``model`` on ``loader`` (batches of padded images; padding is labelled 255).

    ``tta``: inference.TTA. ``per_image``: a list that gets each image's confusion matrix (numpy).

    ``input_scale`` != 1 runs the model on resized images and scores its logits resized back to the
    labels' size, so a model trained at reduced resolution is still scored on every labelled pixel."""
    if progress is None:  # the training loop's validation: plain lines in logs (rich bars do not nest)
        from segtool.core.console import plain_progress

        progress = plain_progress()
        progress_task = progress.add_task("validate", total=len(getattr(loader, "dataset", ())) or None,
                                          unit="img")
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(num_classes, device)
    loss_sum, images_seen = 0.0, 0
    try:
        for images, masks, _sizes in loader:
            images = to_device(images, device, channels_last)
            masks = masks.to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model_logits(model, images, multiple, window, stride, tta, input_scale)
            logits = logits.float()
            if loss_fn is not None:
                loss_sum += float(loss_fn.single(logits, masks)) * images.shape[0]
            try:
                labels = labels_from_logits(logits)
                confusion.update(labels, masks)
                if per_image is not None:
                    per_image.extend(confusion_matrix(p, m, num_classes).cpu().numpy()
                                     for p, m in zip(labels, masks, strict=True))
            except ValueError as exc:
                from segtool.core.errors import SegtoolError

                raise SegtoolError(f"validation data: {exc}") from None
            images_seen += images.shape[0]
            if progress is not None:
                progress.advance(progress_task, images.shape[0])
    finally:
        model.train(was_training)
    confusion.reduce_()
    loss_sum, images_seen = all_reduce_sum([loss_sum, float(images_seen)], device)
    loss = loss_sum / images_seen if (loss_fn is not None and images_seen) else None
    return Validation(confusion.numpy(), confusion.compute(class_names), loss, int(images_seen))


# -- reporting ------------------------------------------------------------------------------------

def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def render_report(scores: dict, title: str = "evaluation") -> None:
    """A rich table of per-class scores and the summary on stderr."""
    from rich.table import Table

    from segtool.core.console import console

    table = Table(title=title, title_justify="left")
    for column in ("#", "class", "IoU", "acc", "Dice", "pixels"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in scores["per_class"]:
        table.add_row(str(row["index"]), row["name"], _fmt(row["iou"]), _fmt(row["acc"]), _fmt(row["dice"]),
                      f"{row['pixels']:,}")
    console.print(table)
    console.print(f"mIoU {_fmt(scores['miou'])}   pixel acc {_fmt(scores['pixel_acc'])}   "
                  f"mean acc {_fmt(scores['mean_acc'])}   fwIoU {_fmt(scores['fwiou'])}   "
                  f"({scores['num_pixels']:,} labelled pixels; n/a = class absent from prediction and ground "
                  "truth, left out of the means)", markup=False, highlight=False)


def confusion_csv(matrix: np.ndarray, class_names) -> str:
    """Rows = ground truth, columns = prediction, with class names as header and first column."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(class_names)
    writer.writerow(["gt\\pred", *names])
    for name, row in zip(names, matrix.tolist(), strict=True):
        writer.writerow([name, *row])
    return buffer.getvalue()


# -- `segtool evaluate` ---------------------------------------------------------------------------

def evaluate_checkpoint(checkpoint: dict, source, split: str, device: torch.device, *, batch_size: int = 1,
                        workers: int = 0, palette: str | None = None, amp: bool = False,
                        window: tuple[int, int] | None = None, stride: tuple[int, int] | None = None,
                        show_progress: bool = True, binary: bool = False, tta=None,
                        per_image=None) -> tuple[Validation, list[str]]:
    """Score a checkpoint's model on ``split`` of ``source``; returns the validation and class names.

    ``per_image`` (engine.per_image.PerImage) gets each image's confusion matrix and the dataset."""
    from segtool.core.console import progress
    from segtool.core.errors import SegtoolError
    from segtool.data.folder import FolderLayout
    from segtool.data.transforms import eval_transforms
    from segtool.engine.checkpoint import model_from_checkpoint
    from segtool.engine.distributed import DistInfo
    from segtool.engine.loaders import eval_loader, open_dataset, segtool_error_from_worker
    from segtool.models import size_multiple
    from segtool.ops.losses import is_binary_loss

    config = checkpoint.get("config", {})
    binary = binary or bool(config.get("binary")) or is_binary_loss(config.get("loss") or "ce")
    source = source.materialise()
    layout = FolderLayout.from_config(config) if _same_data(checkpoint, source) else None
    palette = palette or config.get("palette")
    if source.format != "demo":
        from segtool.data.label_check import check_dataset

        check_dataset(source.format, source.root, split, None, palette=palette, binary=binary,
                      layout=layout).report()
    dataset = open_dataset(source, split, transforms=eval_transforms(config.get("normalize")),
                           palette=palette, binary=binary, layout=layout)
    if int(dataset.num_classes) != int(checkpoint["num_classes"]):
        raise SegtoolError(f"{checkpoint.get('path', 'checkpoint')}: checkpoint has {checkpoint['num_classes']} "
                           f"classes, but dataset {source.root} ({split}) has {dataset.num_classes}")
    if len(dataset) == 0:
        raise SegtoolError(f"{source.root}: the {split} split is empty")
    multiple = size_multiple(checkpoint["model_name"])
    model = model_from_checkpoint(checkpoint, device)
    # multiple=1: model_logits pads each batch itself (after --input-scale, so no padded band is rescaled).
    loader = eval_loader(dataset, batch_size=batch_size, info=DistInfo(), workers=workers, multiple=1,
                         device=device)
    names = list(checkpoint.get("class_names") or dataset.class_names)
    if per_image is not None:
        per_image.dataset = dataset
    with progress(show=show_progress) as bar:
        task = bar.add_task(f"evaluate {split}", total=len(dataset))
        try:
            result = run_validation(model, loader, num_classes=int(checkpoint["num_classes"]), device=device,
                                    multiple=multiple, amp=amp, class_names=names, window=window, stride=stride,
                                    progress=bar, progress_task=task,
                                    input_scale=float(config.get("input_scale") or 1.0), tta=tta,
                                    per_image=per_image.matrices if per_image is not None else None)
        except SegtoolError as exc:
            raise segtool_error_from_worker(exc) from None
    order = getattr(loader.batch_sampler, "order", None)
    if per_image is not None and order is not None:  # size-grouped batches: back to dataset order
        per_image.matrices = [matrix for _index, matrix in sorted(zip(order, per_image.matrices, strict=True),
                                                                   key=lambda pair: pair[0])]
    return result, names


def _same_data(checkpoint: dict, source) -> bool:
    """The folder layout (--images/--masks, --val-fraction split) applies to the set the model was trained on."""
    trained = (checkpoint.get("data") or {}).get("root")
    return trained is not None and source.root is not None and str(source.root) == str(trained)


def write_confusion(matrix: np.ndarray, class_names, path: str, *, force: bool = False) -> None:
    """FILE.csv (counts) or FILE.png (row-normalised heat map from segtool.viz)."""
    from segtool.core.io import atomic_write, save_image

    if str(path).lower().endswith(".csv"):
        text = confusion_csv(matrix, class_names)
        atomic_write(path, lambda handle: handle.write(text), force=force, binary=False)
        return
    from segtool.viz.confusion import render_confusion

    save_image(render_confusion(matrix, list(class_names)), path, force=force)
