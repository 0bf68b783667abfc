"""`segtool compare-runs A.pt B.pt`: two checkpoints on the same images, with an error bar.

Both models score every image; per-class IoU of each comes from the summed confusion matrices.
The 95% confidence interval of mIoU(B) - mIoU(A) is a paired bootstrap over images (Efron &
Tibshirani 1993): resample the images with replacement, recompute both mIoUs from the resampled
images' matrices, take the 2.5 / 97.5 percentiles of the differences. Seeded, so it repeats.
"""

from __future__ import annotations

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.ops.metrics import scores_from_confusion


def check_comparable(a: dict, b: dict) -> None:
    """Same class count, names and palette colours, or the comparison means nothing."""
    where = f"{a.get('path', 'A')} vs {b.get('path', 'B')}"
    if int(a["num_classes"]) != int(b["num_classes"]):
        raise SegtoolError(f"{where}: {a['num_classes']} classes vs {b['num_classes']}; compare-runs needs "
                           "checkpoints of the same classes")
    if list(a["class_names"]) != list(b["class_names"]) or list(a["palette"]) != list(b["palette"]):
        raise SegtoolError(f"{where}: different class names or palette colours; compare-runs needs checkpoints "
                           "trained with the same palette")


def miou_of(matrices: np.ndarray) -> np.ndarray:
    """mIoU of each C x C matrix in a ... x C x C array (classes with an empty union left out)."""
    tp = np.diagonal(matrices, axis1=-2, axis2=-1)
    union = matrices.sum(-1) + matrices.sum(-2) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    with np.errstate(all="ignore"):
        return np.nanmean(iou, axis=-1) if iou.shape[-1] else np.full(iou.shape[:-1], np.nan)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n: int = 1000, seed: int = 0) -> dict:
    """CI of mIoU(b) - mIoU(a) from per-image matrices (images x C x C), resampling images in pairs."""
    images, classes = a.shape[0], a.shape[-1]
    rng = np.random.default_rng(seed)
    flat_a, flat_b = a.reshape(images, -1).astype(np.float64), b.reshape(images, -1).astype(np.float64)
    diffs = np.empty(n)
    for start in range(0, n, 256):  # counts of each image in 256 resamples at a time
        rows = min(256, n - start)
        picks = rng.integers(0, images, size=(rows, images))
        counts = np.zeros((rows, images))
        np.add.at(counts, (np.arange(rows)[:, None], picks), 1)
        sums_a = (counts @ flat_a).reshape(rows, classes, classes)
        sums_b = (counts @ flat_b).reshape(rows, classes, classes)
        diffs[start:start + rows] = miou_of(sums_b) - miou_of(sums_a)
    low, high = np.nanpercentile(diffs, [2.5, 97.5])
    return {"n": int(n), "seed": int(seed), "ci95": [float(low), float(high)],
            "p_b_not_better": float(np.mean(diffs <= 0))}


def compare(matrices_a: list, matrices_b: list, class_names, *, bootstrap: int = 1000, seed: int = 0) -> dict:
    """Scores of A and B, their difference, and the bootstrap CI of the mIoU difference."""
    a, b = np.stack(matrices_a), np.stack(matrices_b)
    if a.shape != b.shape:
        raise SegtoolError(f"A scored {a.shape[0]} images, B {b.shape[0]}: not the same images")
    scores_a, scores_b = scores_from_confusion(a.sum(0), class_names), scores_from_confusion(b.sum(0), class_names)
    per_class = []
    for row_a, row_b in zip(scores_a["per_class"], scores_b["per_class"], strict=True):
        diff = None if row_a["iou"] is None or row_b["iou"] is None else row_b["iou"] - row_a["iou"]
        per_class.append({"index": row_a["index"], "name": row_a["name"], "iou_a": row_a["iou"],
                          "iou_b": row_b["iou"], "difference": diff, "pixels": row_a["pixels"]})
    diff = None if scores_a["miou"] is None or scores_b["miou"] is None else scores_b["miou"] - scores_a["miou"]
    result = {"images": int(a.shape[0]), "miou_a": scores_a["miou"], "miou_b": scores_b["miou"],
              "miou_difference": diff, "pixel_acc_a": scores_a["pixel_acc"], "pixel_acc_b": scores_b["pixel_acc"],
              "per_class": per_class}
    if bootstrap > 0:
        result["bootstrap"] = paired_bootstrap(a, b, bootstrap, seed)
    return result


def compare_checkpoints(a: dict, b: dict, source, split: str, device, *, bootstrap: int = 1000, seed: int = 0,
                        batch_size: int = 1, workers: int = 0, tta=None, show_progress: bool = True) -> dict:
    """Evaluate checkpoints ``a`` and ``b`` on ``split`` of ``source`` and compare them image by image."""
    from segtool.engine.evaluate import evaluate_checkpoint
    from segtool.engine.per_image import PerImage

    check_comparable(a, b)
    per_image = {}
    for key, checkpoint in (("a", a), ("b", b)):
        per_image[key] = PerImage()
        _result, names = evaluate_checkpoint(checkpoint, source, split, device, batch_size=batch_size,
                                             workers=workers, tta=tta, per_image=per_image[key],
                                             show_progress=show_progress)
    result = compare(per_image["a"].matrices, per_image["b"].matrices, names, bootstrap=bootstrap, seed=seed)
    return {"a": a.get("path"), "b": b.get("path"), "split": split, **result}


def render_comparison(result: dict) -> None:
    """The comparison as a rich table and a summary line on stderr."""
    from rich.table import Table

    from segtool.core.console import console

    def fmt(value, signed=False):
        return "n/a" if value is None else (f"{value:+.4f}" if signed else f"{value:.4f}")

    table = Table(title=f"A = {result['a']}   B = {result['b']}   ({result['images']} images, {result['split']})",
                  title_justify="left")
    for column in ("#", "class", "IoU A", "IoU B", "B - A", "pixels"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in result["per_class"]:
        table.add_row(str(row["index"]), row["name"], fmt(row["iou_a"]), fmt(row["iou_b"]),
                      fmt(row["difference"], True), f"{row['pixels']:,}")
    console.print(table)
    line = f"mIoU A {fmt(result['miou_a'])}   B {fmt(result['miou_b'])}   B - A {fmt(result['miou_difference'], True)}"
    boot = result.get("bootstrap")
    if boot:
        low, high = boot["ci95"]
        line += (f"   95% CI [{low:+.4f}, {high:+.4f}] (paired bootstrap over images, {boot['n']} resamples, "
                 f"seed {boot['seed']})")
    console.print(line, markup=False, highlight=False)
