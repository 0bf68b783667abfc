"""Per-batch segmentation losses on N x C x H x W logits and N x H x W labels.

Every function skips pixels labelled ``ignore_index`` and takes optional per-class ``weight``
(C values, as ``--class-weights``). Classes absent from a batch's labels are left out of the
per-class means of Dice and Lovász (smp's and the Lovász paper's "present" classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError


def two_class(logits: torch.Tensor) -> torch.Tensor:
    """One binary logit x -> two-class logits [0, x]: softmax gives (1 - sigmoid(x), sigmoid(x)), so the
    softmax losses apply unchanged to a one-channel (--loss bce) model."""
    return torch.cat([torch.zeros_like(logits), logits], dim=1) if logits.shape[1] == 1 else logits


def _valid(logits: torch.Tensor, target: torch.Tensor, ignore_index: int):
    """(P x C logits of the labelled pixels, their P labels)."""
    channels = logits.shape[1]
    flat = logits.permute(0, 2, 3, 1).reshape(-1, channels)
    labels = target.reshape(-1)
    keep = labels != ignore_index
    return flat[keep], labels[keep].long()


def _class_weight(weight: torch.Tensor | None, channels: int, like: torch.Tensor) -> torch.Tensor:
    if weight is None:
        return like.new_ones(channels)
    if weight.numel() != channels:
        raise SegtoolError(f"{weight.numel()} class weights for a model with {channels} outputs")
    return weight.to(like.dtype)


def _present_mean(per_class: torch.Tensor, present: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean over the classes present in the labels (0 when none is)."""
    w = weight * present.to(weight.dtype)
    return (per_class * w).sum() / w.sum().clamp_min(1e-12)


def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                         ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """BCE-with-logits for N x 1 x H x W logits and 0/1 targets; ``weight`` (2 values) weighs background /
    foreground pixels, normalised by the summed weights as weighted CE is."""
    if logits.shape[1] != 1:
        raise SegtoolError(f"--loss bce needs a model with 1 output channel, got {logits.shape[1]}")
    logits = logits[:, 0]
    valid = target != ignore_index
    target_f = torch.where(valid, target, torch.zeros_like(target)).to(logits.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target_f, reduction="none")
    pixel_weight = valid.to(logits.dtype)
    if weight is not None:
        pixel_weight = pixel_weight * weight.to(logits.dtype)[target_f.long()]
    return (per_pixel * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)


def cross_entropy(logits, target, weight=None, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    weight = weight.to(logits.dtype) if weight is not None else None
    return F.cross_entropy(two_class(logits), target, weight=weight, ignore_index=ignore_index)


def dice_loss(logits, target, weight=None, ignore_index: int = IGNORE_INDEX, smooth: float = 0.0) -> torch.Tensor:
    """1 - soft Dice (Milletari et al. 2016) per class over the whole batch, mean over present classes."""
    logits = two_class(logits)
    flat, labels = _valid(logits, target, ignore_index)
    channels = logits.shape[1]
    probs = flat.softmax(1)
    onehot = F.one_hot(labels, channels).to(probs.dtype)
    inter = (probs * onehot).sum(0)
    total = probs.sum(0) + onehot.sum(0)
    dice = (2 * inter + smooth) / (total + smooth).clamp_min(1e-7)
    return _present_mean(1 - dice, onehot.sum(0) > 0, _class_weight(weight, channels, probs))


def focal_loss(logits, target, weight=None, ignore_index: int = IGNORE_INDEX, gamma: float = 2.0,
               alpha: float | None = None) -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017): -alpha_t (1 - p_t)^gamma log p_t, averaged like weighted CE.

    ``alpha`` weighs class 0 (background) by 1 - alpha and every other class by alpha; gamma 0 and no
    alpha is cross entropy."""
    logits = two_class(logits)
    flat, labels = _valid(logits, target, ignore_index)
    log_pt = flat.log_softmax(1).gather(1, labels[:, None])[:, 0]
    per_pixel = -((1 - log_pt.exp()).clamp_min(0) ** gamma) * log_pt
    pixel_weight = _class_weight(weight, logits.shape[1], flat)[labels]
    scaled = per_pixel * pixel_weight
    if alpha is not None:
        scaled = scaled * torch.where(labels == 0, 1.0 - alpha, alpha)
    return scaled.sum() / pixel_weight.sum().clamp_min(1e-12)


def _lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at sorted errors (Berman et al. 2018, alg. 1)."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax(logits, target, weight=None, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Lovász-softmax (Berman et al. 2018) over the batch's labelled pixels, mean over present classes."""
    logits = two_class(logits)
    flat, labels = _valid(logits, target, ignore_index)
    channels = logits.shape[1]
    probs = flat.softmax(1)
    per_class = probs.new_zeros(channels)
    present = torch.zeros(channels, dtype=torch.bool, device=probs.device)
    for c in range(channels):
        fg = (labels == c).to(probs.dtype)
        if fg.numel() == 0 or not bool(fg.any()):
            continue
        present[c] = True
        errors = (fg - probs[:, c]).abs()
        errors_sorted, order = errors.sort(descending=True)
        per_class[c] = errors_sorted @ _lovasz_grad(fg[order])
    return _present_mean(per_class, present, _class_weight(weight, channels, probs))


def ohem_cross_entropy(logits, target, weight=None, ignore_index: int = IGNORE_INDEX, thresh: float | None = 0.7,
                       min_kept: int = 100_000) -> torch.Tensor:
    """Cross entropy over the hardest pixels, selected as mmsegmentation's OHEMPixelSampler does.

    ``min_kept`` counts per image. With ``thresh``: the pixels whose probability of their true class
    is below max(thresh, the (kept + 1)-th lowest such probability); without: the kept pixels of
    highest loss. Averaged over the kept pixels (mmseg divides by all pixels, so its scale shrinks
    with the kept fraction)."""
    logits = two_class(logits)
    flat, labels = _valid(logits, target, ignore_index)
    per_pixel = F.cross_entropy(flat, labels, reduction="none")
    with torch.no_grad():
        kept = torch.zeros_like(labels, dtype=torch.bool)
        count, batch_kept = labels.numel(), int(min_kept) * target.shape[0]
        if count:
            if thresh is not None:
                prob_t = flat.detach().softmax(1).gather(1, labels[:, None])[:, 0]
                floor = prob_t.sort().values[min(batch_kept, count - 1)]
                kept = prob_t < max(float(floor), float(thresh))
            else:
                kept[per_pixel.detach().topk(min(count, batch_kept)).indices] = True
    pixel_weight = _class_weight(weight, logits.shape[1], flat)[labels] * kept.to(flat.dtype)
    return (per_pixel * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)
