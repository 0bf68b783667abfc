"""The fcn8 head ``upsample_81 -> upsample_82 -> final`` computed as one stride-8 transposed conv.

The three layers contain no nonlinearity, so for an input X (N x C x h x w, C = 768 + n) they are one
affine map. With the three weights W1 (k4 s4 p0), W2 (k4 s2 p1) and W3 (k7 p3), output pixel u
(per axis) receives input pixel i through the tap m = 2a + b + (6 - d) of a 16-tap kernel placed at
u = 8i + m - 4, where a, b, d are the taps of W1, W2, W3. So

    head(X) = conv_transpose2d(X, K, stride=8, padding=4) + bias_map - ring(X)

* ``K`` (C x n x 16 x 16) is composed from W1, W2, W3: one GEMM over the channels between W2 and
  W3 for every pair of their taps (W3 first, since n << C), the pairs summed into a 10x10 kernel,
  then the same with W1 at upsample_82's stride 2. ~31 GMAC for the real head (~38 with the ring
  kernels below), differentiable, so training updates the three original parameters.
* ``bias_map`` (n x 8h x 8w) is the chain's answer to a zero input. It is not constant: upsample_82's
  taps alternate with the pixel parity and thin out at the border, and final's zero padding adds a
  border band. It is computed exactly from 16 0/1 tap masks (one 17-channel 7x7 conv).
* ``ring``: the composed kernel behaves as if ``final`` saw the one-pixel ring of upsample_82's output
  that its padding=1 crops away; the real ``final`` sees zeros there. That ring comes only from the
  outermost row / column of X (tap 0 or 3 of W1 and W2), so its effect on the 3-pixel output border
  band is subtracted exactly with four edge kernels, adding back the four corners counted twice.

Per image the fused head costs ~1/50 of the layer chain; composing costs about one image's worth
of head compute, independent of batch and image size, and is cached in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ComposedHead",
    "FusedHeadCache",
    "bias_response",
    "compose_head",
    "fused_head_forward",
    "fused_head_macs",
    "layered_head_macs",
    "compose_macs",
]


class _PlaceTaps(torch.autograd.Function):
    """Sum per-tap products into a kernel: out[i, k, s*a + q] += p[i, a, k, q] (a, q per axis).

    ``F.fold`` computes the same, but its backward (im2col) is ~20x slower on CPU for these shapes;
    here the backward is a strided view of the incoming gradient.
    """

    @staticmethod
    def forward(ctx, p: Tensor, stride: int) -> Tensor:
        ci, ah, aw, k, qh, qw = p.shape
        out = p.new_zeros(ci, k, stride * (ah - 1) + qh, stride * (aw - 1) + qw)
        for y in range(ah):
            for x in range(aw):
                out[:, :, stride * y:stride * y + qh, stride * x:stride * x + qw] += p[:, y, x]
        ctx.stride, ctx.shape = stride, p.shape
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous()
        s_i, s_k, s_y, s_x = grad.stride()
        s = ctx.stride
        return grad.as_strided(ctx.shape, (s_i, s * s_y, s * s_x, s_k, s_y, s_x)), None


class _Slices(torch.autograd.Function):
    """Several slices of one tensor whose backward fills a single zero gradient.

    Plain indexing would give each slice its own full-size zero gradient to fill and add.
    """

    @staticmethod
    def forward(ctx, x: Tensor, index: list[tuple[slice, ...]]):
        ctx.index, ctx.shape = index, x.shape
        return tuple(x[i].clone() for i in index)

    @staticmethod
    def backward(ctx, *grads: Tensor):
        total = grads[0].new_zeros(ctx.shape)
        for i, grad in zip(ctx.index, grads, strict=True):
            if grad is not None:
                total[i] += grad
        return total, None


def _tap_products(w_in: Tensor, w_out: Tensor) -> Tensor:
    """P[i, a_y, a_x, k, q_y, q_x] = sum_o w_in[i, o, a] * w_out[o, k, q]: one GEMM over the middle channels."""
    ci, co, ah, aw = w_in.shape
    _, k, qh, qw = w_out.shape
    flat = w_in.permute(0, 2, 3, 1).reshape(ci * ah * aw, co) @ w_out.reshape(co, k * qh * qw)
    return flat.view(ci, ah, aw, k, qh, qw)


def _final_as_transposed(w3: Tensor) -> Tensor:
    """final's weight (n x C x 7 x 7 correlation) as a C x n transposed-conv kernel (flipped taps)."""
    return w3.flip(-2, -1).transpose(0, 1)


@dataclass
class ComposedHead:
    """Everything the fused head needs that depends only on the weights."""

    kernel: Tensor  # C x n x 16 x 16
    top: Tensor  # C x n x 3 x 16: response of the ring row above the image (from X's first row)
    bottom: Tensor
    left: Tensor  # C x n x 16 x 3
    right: Tensor
    corners: tuple[Tensor, Tensor, Tensor, Tensor]  # C x n x 3 x 3: top-left, top-right, bottom-left, bottom-right


def compose_head(w1: Tensor, w2: Tensor, w3: Tensor) -> ComposedHead:
    """The composed kernel plus the exact border-ring kernels (see the module docstring)."""
    pairs = _tap_products(w2, _final_as_transposed(w3))  # every (W2 tap, W3 tap) pair, reused below
    kernel = _PlaceTaps.apply(_tap_products(w1, _PlaceTaps.apply(pairs, 1)), 2)

    first, last = slice(0, 1), slice(3, 4)  # taps of W1/W2 that feed the cropped ring
    # Taps of W3 (flipped) that reach the ring from inside the image: the top ring row sits above
    # output rows 0..2 (W3 rows 0..2, flipped 4..6); the bottom one below the last three.
    near, far = slice(4, 7), slice(0, 3)
    every = slice(None)
    parts = [(first, every, near, every), (last, every, far, every),  # top, bottom
             (every, first, every, near), (every, last, every, far),  # left, right
             (first, first, near, near), (first, last, near, far),  # corners
             (last, first, far, near), (last, last, far, far)]
    w1_parts = _Slices.apply(w1, [(slice(None), slice(None), ry, rx) for ry, rx, _, _ in parts])
    pair_parts = _Slices.apply(pairs, [(slice(None), ry, rx, slice(None), dy, dx) for ry, rx, dy, dx in parts])
    ring = [_PlaceTaps.apply(_tap_products(w1_part, _PlaceTaps.apply(pair_part, 1)), 2)
            for w1_part, pair_part in zip(w1_parts, pair_parts, strict=True)]
    return ComposedHead(kernel, *ring[:4], corners=tuple(ring[4:]))


def _tap_masks(h: int, w: int, like: Tensor) -> Tensor:
    """1 x 16 x 8h x 8w: mask b says whether tap b of upsample_82 reaches that output pixel."""
    ones = like.new_ones(1, 1, 4 * h, 4 * w)
    taps = torch.eye(16, dtype=like.dtype, device=like.device).view(1, 16, 4, 4)
    return F.conv_transpose2d(ones, taps, stride=2, padding=1)


def bias_response(b1: Tensor, b2: Tensor, b3: Tensor, w2: Tensor, w3: Tensor, h: int, w: int) -> Tensor:
    """The head's output for a zero input of size h x w: n x 8h x 8w (exact, ~1 GMAC at 224 px)."""
    n = w3.shape[0]
    per_tap = torch.einsum("c,cobx->obx", b1, w2).reshape(-1, 16)  # C x 16: b1 through each W2 tap
    sources = torch.cat([b2[:, None], per_tap], dim=1)  # C x 17: constant b2, then the 16 tap maps
    weight = torch.einsum("kodx,os->ksdx", w3, sources)  # n x 17 x 7 x 7
    taps = _tap_masks(h, w, w3)
    masks = torch.cat([taps.new_ones(1, 1, 8 * h, 8 * w), taps], dim=1)
    return (F.conv2d(masks, weight, padding=3) + b3.view(1, n, 1, 1))[0]


class _BorderCorrection(torch.autograd.Function):
    """out + bias_map, minus the ring's response in the 3-pixel border band, plus the corners.

    One new tensor, updated in place: autograd on sliced in-place updates would copy the full
    gradient once per update.
    """

    @staticmethod
    def forward(ctx, out: Tensor, bias_map: Tensor, top: Tensor, bottom: Tensor, left: Tensor, right: Tensor,
                top_left: Tensor, top_right: Tensor, bottom_left: Tensor, bottom_right: Tensor) -> Tensor:
        result = out + bias_map
        for band, sign, update in _border_bands(top, bottom, left, right, top_left, top_right,
                                                bottom_left, bottom_right):
            result[band] += sign * update
        return result

    @staticmethod
    def backward(ctx, grad: Tensor):
        bands = [grad[band] * sign for band, sign, _ in _border_bands(*[None] * 8)]
        return (grad, grad.sum(0), *bands)


def _border_bands(top, bottom, left, right, top_left, top_right, bottom_left, bottom_right):
    """(output region, sign, update) for the four ring bands (subtracted) and four corners (added back)."""
    every = slice(None)
    head, tail = slice(0, 3), slice(-3, None)
    return [((every, every, head, every), -1, top), ((every, every, tail, every), -1, bottom),
            ((every, every, every, head), -1, left), ((every, every, every, tail), -1, right),
            ((every, every, head, head), 1, top_left), ((every, every, head, tail), 1, top_right),
            ((every, every, tail, head), 1, bottom_left), ((every, every, tail, tail), 1, bottom_right)]


def fused_head_forward(x: Tensor, composed: ComposedHead, bias_map: Tensor) -> Tensor:
    """Apply the fused head to x (N x C x h x w) -> N x n x 8h x 8w."""
    out = F.conv_transpose2d(x, composed.kernel, stride=8, padding=4)
    # The ring that upsample_82's padding crops comes only from X's outermost rows and columns.
    every, first, last = slice(None), slice(0, 1), slice(-1, None)
    edges = [(every, every, first, every), (every, every, last, every),
             (every, every, every, first), (every, every, every, last),
             (every, every, first, first), (every, every, first, last),
             (every, every, last, first), (every, every, last, last)]
    top_row, bottom_row, left_col, right_col, *corner_px = _Slices.apply(x, edges)
    rows = dict(stride=(1, 8), padding=(0, 4))
    cols = dict(stride=(8, 1), padding=(4, 0))
    ring = [F.conv_transpose2d(top_row, composed.top, **rows),
            F.conv_transpose2d(bottom_row, composed.bottom, **rows),
            F.conv_transpose2d(left_col, composed.left, **cols),
            F.conv_transpose2d(right_col, composed.right, **cols)]
    corners = [F.conv_transpose2d(px, kernel) for px, kernel in zip(corner_px, composed.corners, strict=True)]
    return _BorderCorrection.apply(out, bias_map, *ring, *corners)


class FusedHeadCache:
    """Eval-mode cache of the composed kernels (and bias maps per input size).

    Valid while the six head parameters are the same tensors at the same version: an optimizer
    step, ``load_state_dict`` or any in-place change bumps ``_version`` and forces a recompose.
    """

    max_sizes = 8  # bias maps kept, one per input size (oldest dropped first)

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._composed: ComposedHead | None = None
        self._bias_maps: dict[tuple[int, int], Tensor] = {}

    @staticmethod
    def _key_of(params: list[Tensor]) -> tuple:
        return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)

    def is_valid(self, params: list[Tensor]) -> bool:
        return self._composed is not None and self._key == self._key_of(params)

    def clear(self) -> None:
        self._key, self._composed, self._bias_maps = None, None, {}

    def get(self, up81: nn.ConvTranspose2d, up82: nn.ConvTranspose2d, final: nn.Conv2d,
            h: int, w: int) -> tuple[ComposedHead, Tensor]:
        params = _head_params(up81, up82, final)
        if not self.is_valid(params):
            self.clear()
            with torch.no_grad():
                self._composed = compose_head(up81.weight, up82.weight, final.weight)
            self._key = self._key_of(params)
        if (h, w) not in self._bias_maps:
            if len(self._bias_maps) >= self.max_sizes:  # e.g. predicting images of many sizes
                self._bias_maps.pop(next(iter(self._bias_maps)))
            with torch.no_grad():
                self._bias_maps[(h, w)] = bias_response(up81.bias, up82.bias, final.bias,
                                                        up82.weight, final.weight, h, w)
        return self._composed, self._bias_maps[(h, w)]


def _head_params(up81: nn.Module, up82: nn.Module, final: nn.Module) -> list[Tensor]:
    return [up81.weight, up81.bias, up82.weight, up82.bias, final.weight, final.bias]


def layered_head_macs(batch: int, channels: int, classes: int, h: int, w: int) -> int:
    """Multiply-adds of the layer-by-layer head on an N x C x h x w input."""
    up81 = batch * h * w * channels * channels * 16
    up82 = batch * 16 * h * w * channels * channels * 16
    final = batch * 64 * h * w * channels * classes * 49
    return up81 + up82 + final


def compose_macs(channels: int, classes: int) -> int:
    """Multiply-adds of composing the kernel and the four ring kernels (independent of batch)."""
    main = classes * 49 * channels * channels * 16 + channels * 16 * channels * classes * 100
    ring = 4 * (classes * 21 * channels * channels * 4 + channels * 4 * channels * classes * 30)
    return main + ring


def fused_head_macs(batch: int, channels: int, classes: int, h: int, w: int) -> int:
    """Multiply-adds of applying the fused head (kernel already composed), bias map included."""
    apply = batch * h * w * channels * classes * 256
    bias = 64 * h * w * 17 * classes * 49
    return apply + bias
