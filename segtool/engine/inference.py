"""Whole-image and sliding-window inference with padding to the model's size rule.

Models such as fcn8 need sides that are multiples of 32: images are padded at the bottom and right
(image with 0, mask with 255 so padding is never counted) and the logits cropped back. Sliding
window (mmsegmentation's ``slide`` mode) averages the logits of overlapping windows for images too
large to run whole. ``--tta`` averages probabilities over flips and scales (``tta_logits``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.ops.outputs import split_outputs


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple) if multiple > 1 else int(value)


def pad_batch(images: list[torch.Tensor], masks: list[torch.Tensor] | None, multiple: int):
    """Stack differently sized C x H x W images (and H x W masks) into one padded batch."""
    height = round_up(max(img.shape[-2] for img in images), multiple)
    width = round_up(max(img.shape[-1] for img in images), multiple)
    batch = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    for i, img in enumerate(images):
        batch[i, :, : img.shape[-2], : img.shape[-1]] = img
    if masks is None:
        return batch, None
    target = masks[0].new_full((len(masks), height, width), IGNORE_INDEX)
    for i, mask in enumerate(masks):
        target[i, : mask.shape[-2], : mask.shape[-1]] = mask
    return batch, target


class PadCollate:
    """DataLoader collate_fn: pad (image, mask) samples to a common size that is a multiple."""

    def __init__(self, multiple: int = 1):
        self.multiple = max(1, int(multiple))

    def __call__(self, samples):
        images = [s[0] for s in samples]
        masks = [s[1] for s in samples]
        sizes = torch.tensor([[img.shape[-2], img.shape[-1]] for img in images])
        batch, target = pad_batch(images, masks, self.multiple)
        return batch, target, sizes


def labels_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """N x C x H x W logits -> N x H x W labels; one channel means binary (logit > 0)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def padded_logits(model, images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Run the model on images padded to ``multiple``; logits cropped to the input size."""
    height, width = images.shape[-2:]
    pad_h, pad_w = round_up(height, multiple) - height, round_up(width, multiple) - width
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    logits, _aux = split_outputs(model(images))
    return logits[..., :height, :width]


def sliding_window_logits(model, images: torch.Tensor, window: tuple[int, int], stride: tuple[int, int],
                          multiple: int) -> torch.Tensor:
    """Average logits over overlapping windows (each padded to ``multiple``)."""
    height, width = images.shape[-2:]
    win_h, win_w = min(window[0], height), min(window[1], width)
    step_h, step_w = max(1, stride[0]), max(1, stride[1])
    rows = max(height - win_h + step_h - 1, 0) // step_h + 1
    cols = max(width - win_w + step_w - 1, 0) // step_w + 1
    total = None
    count = images.new_zeros((1, 1, height, width))
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * step_h + win_h, height), min(c * step_w + win_w, width)
            y1, x1 = max(y2 - win_h, 0), max(x2 - win_w, 0)
            logits = padded_logits(model, images[..., y1:y2, x1:x2], multiple).float()
            if total is None:
                total = images.new_zeros((images.shape[0], logits.shape[1], height, width), dtype=torch.float32)
            total[..., y1:y2, x1:x2] += logits
            count[..., y1:y2, x1:x2] += 1
    return total / count


def model_logits(model, images: torch.Tensor, multiple: int, window: tuple[int, int] | None = None,
                 stride: tuple[int, int] | None = None, tta: TTA | None = None,
                 input_scale: float = 1.0) -> torch.Tensor:
    """Logits at the input's size: sliding windows when ``window`` is given, else one padded pass;
    with ``tta``, the log of the probabilities averaged over flips and scales. ``input_scale`` != 1
    (a model trained with --input-scale) runs the model on resized images and resizes its logits back."""
    if input_scale != 1.0:
        return _rescaled_logits(model, images, multiple, window, stride, tta, input_scale)
    if tta is not None:
        return tta_logits(model, images, multiple, window, stride, tta)
    if window is not None:
        return sliding_window_logits(model, images, window, stride, multiple)
    return padded_logits(model, images, multiple)


def _rescaled_logits(model, images, multiple, window, stride, tta, input_scale: float) -> torch.Tensor:
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    size = (max(1, round(height * input_scale)), max(1, round(width * input_scale)))
    small = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=input_scale < 1)
    logits = model_logits(model, small, multiple, window, stride, tta)
    return F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)


# -- test-time augmentation -----------------------------------------------------------------------

@dataclass(frozen=True)
class TTA:
    """``--tta flip[,scales=0.75,1.0,1.25]``: horizontal flip and/or input scales."""

    flip: bool = True
    scales: tuple[float, ...] = (1.0,)

    @property
    def passes(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)


def parse_tta(text: str | None) -> TTA | None:
    """``flip``, ``flip,scales=0.75,1.0,1.25`` or ``scales=0.5,1.0``; None/empty: no TTA."""
    if not text:
        return None
    flip, scales, in_scales = False, [], False
    for token in (t.strip().lower() for t in str(text).split(",")):
        if token == "flip":
            flip, in_scales = True, False
            continue
        if token.startswith("scales="):
            token, in_scales = token[len("scales="):], True
        try:
            if not in_scales:
                raise ValueError
            value = float(token)
            if not 0.1 <= value <= 4:
                raise ValueError
        except ValueError:
            raise SegtoolError(f"--tta {text!r}: expected flip and/or scales=S1,S2,... (each 0.1..4), "
                               f"e.g. flip,scales=0.75,1.0,1.25; bad part {token!r}") from None
        scales.append(value)
    return TTA(flip, tuple(scales) or (1.0,))


def tta_logits(model, images: torch.Tensor, multiple: int, window, stride, tta: TTA) -> torch.Tensor:
    """Average the class probabilities (sigmoid for one channel) of every scale x flip pass at the
    input's size; returned as logits (log p, or logit p) so argmax / > 0 read them as usual."""
    height, width = images.shape[-2:]
    total = None
    for scale in tta.scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = images if scale == 1.0 else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        for flipped in ((False, True) if tta.flip else (False,)):
            logits = model_logits(model, scaled.flip(-1) if flipped else scaled, multiple, window, stride).float()
            if flipped:
                logits = logits.flip(-1)
            if scale != 1.0:
                logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
            probs = logits.sigmoid() if logits.shape[1] == 1 else logits.softmax(1)
            total = probs if total is None else total.add_(probs)
    mean = total / tta.passes
    return torch.logit(mean, eps=1e-7) if mean.shape[1] == 1 else mean.clamp_min(1e-12).log()
