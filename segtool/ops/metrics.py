"""Segmentation metrics from a confusion matrix.

The confusion matrix is accumulated on the model's device with one ``bincount`` per batch
(rows = ground truth, columns = prediction; pixels labelled 255 are skipped), as torchvision's
segmentation reference does. Scores are computed from it in float64 on the CPU, mmsegmentation
style: a class with no ground-truth pixels has no accuracy, a class absent from both prediction
and ground truth has no IoU or Dice, and such "n/a" entries are left out of the means.
"""

from __future__ import annotations

import numpy as np
import torch

from segtool.core.conventions import IGNORE_INDEX


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts; entry [t, p] = pixels of class t predicted as p."""
    if pred.numel() != target.numel():
        raise ValueError(f"{pred.numel()} predictions for {target.numel()} labels")
    target = target.reshape(-1)
    pred = pred.reshape(-1).to(target.device)
    keep = target != ignore_index
    target, pred = target[keep].long(), pred[keep].long()
    bad_label = (target < 0) | (target >= num_classes)
    bad_pred = (pred < 0) | (pred >= num_classes)
    if bool((bad_label | bad_pred).any()):  # one device sync for both checks
        if bool(bad_label.any()):
            raise ValueError(f"label {int(target[bad_label][0])} outside 0..{num_classes - 1} (255 = ignore)")
        raise ValueError(f"prediction {int(pred[bad_pred][0])} outside 0..{num_classes - 1}")
    codes = target * num_classes + pred
    return torch.bincount(codes, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class ConfusionMatrix:
    """Accumulates a confusion matrix over batches; ``reduce_`` sums it across DDP ranks."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu",
                 ignore_index: int = IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def reduce_(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix)

    def numpy(self) -> np.ndarray:
        return self.matrix.cpu().numpy()

    def compute(self, class_names: list[str] | tuple[str, ...] | None = None) -> dict:
        return scores_from_confusion(self.numpy(), class_names)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (the n/a entries)."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean_of_defined(values: np.ndarray) -> float | None:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else None


def _plain(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def scores_from_confusion(matrix: np.ndarray, class_names=None) -> dict:
    """Pixel acc, mean class acc, mIoU, fwIoU and per-class IoU / acc / Dice / pixels (None = n/a)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    true_pos = np.diag(matrix)
    gt_pixels = matrix.sum(axis=1)
    pred_pixels = matrix.sum(axis=0)
    union = gt_pixels + pred_pixels - true_pos
    total = gt_pixels.sum()

    iou = _ratio(true_pos, union)
    acc = _ratio(true_pos, gt_pixels)
    dice = _ratio(2 * true_pos, gt_pixels + pred_pixels)
    # Frequency-weighted IoU: classes with no ground truth have weight 0 and do not count.
    freq = gt_pixels / total if total > 0 else np.zeros(n)
    fw_iou = float((freq[freq > 0] * iou[freq > 0]).sum()) if total > 0 else None

    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    per_class = [
        {"index": i, "name": names[i] if i < len(names) else str(i), "iou": _plain(iou[i]),
         "acc": _plain(acc[i]), "dice": _plain(dice[i]), "pixels": int(gt_pixels[i])}
        for i in range(n)
    ]
    return {
        "pixel_acc": float(true_pos.sum() / total) if total > 0 else None,
        "mean_acc": _mean_of_defined(acc),
        "miou": _mean_of_defined(iou),
        "fwiou": fw_iou,
        "mean_dice": _mean_of_defined(dice),
        "num_pixels": int(total),
        "per_class": per_class,
    }
