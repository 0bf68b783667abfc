"""d2l anchors (multibox_prior), anchor labelling, offsets and detection decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segtool.core.errors import SegtoolError
from segtool.ops.boxes import (
    anchor_count,
    anchor_grid,
    anchor_shapes,
    anchors_at,
    assign_anchors,
    decode_offsets,
    encode_offsets,
    multibox_detection,
    multibox_prior,
    multibox_prior_pixels,
    multibox_target,
)

SIZES, RATIOS = (0.75, 0.5, 0.25), (1, 2, 0.5)


def d2l_multibox_prior(data, sizes, ratios):
    """d2l's straightforward formulation (repeat / repeat_interleave), as printed in the book."""
    in_height, in_width = data.shape[-2:]
    device, num_sizes, num_ratios = data.device, len(sizes), len(ratios)
    boxes_per_pixel = num_sizes + num_ratios - 1
    size_tensor = torch.tensor(sizes, device=device)
    ratio_tensor = torch.tensor(ratios, device=device)
    steps_h, steps_w = 1.0 / in_height, 1.0 / in_width
    center_h = (torch.arange(in_height, device=device) + 0.5) * steps_h
    center_w = (torch.arange(in_width, device=device) + 0.5) * steps_w
    shift_y, shift_x = torch.meshgrid(center_h, center_w, indexing="ij")
    shift_y, shift_x = shift_y.reshape(-1), shift_x.reshape(-1)
    w = torch.cat((size_tensor * torch.sqrt(ratio_tensor[0]),
                   sizes[0] * torch.sqrt(ratio_tensor[1:]))) * in_height / in_width
    h = torch.cat((size_tensor / torch.sqrt(ratio_tensor[0]), sizes[0] / torch.sqrt(ratio_tensor[1:])))
    anchor_manipulations = torch.stack((-w, -h, w, h)).T.repeat(in_height * in_width, 1) / 2
    out_grid = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=1).repeat_interleave(boxes_per_pixel, dim=0)
    return (out_grid + anchor_manipulations).unsqueeze(0)


def formula_at(height, width, sizes, ratios, y, x) -> np.ndarray:
    """The SPEC formula in float64, written independently of the library: the (A, 4) anchors at (y, x)."""
    pairs = [(s, ratios[0]) for s in sizes] + [(sizes[0], r) for r in ratios[1:]]
    cx, cy = (x + 0.5) / width, (y + 0.5) / height
    out = []
    for s, r in pairs:
        w, h = s * math.sqrt(r) * height / width, s / math.sqrt(r)
        out.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return np.array(out)


def formula_anchors(height, width, sizes, ratios) -> np.ndarray:
    return np.concatenate([formula_at(height, width, sizes, ratios, y, x)
                           for y in range(height) for x in range(width)])


def test_multibox_prior_561x728_shape_and_identical_to_d2l():
    ours = multibox_prior(561, 728, SIZES, RATIOS)
    assert ours.shape == (1, 2042040, 4) and ours.dtype == torch.float32
    assert anchor_count(561, 728, SIZES, RATIOS) == 2042040
    assert torch.equal(ours, d2l_multibox_prior(torch.zeros(1, 3, 561, 728), SIZES, RATIOS))
    # Spot checks against the formula at a few pixels of the big image.
    grid = ours[0].reshape(561, 728, 5, 4)
    for y, x in [(0, 0), (250, 250), (560, 727), (17, 600)]:
        expected = formula_at(561, 728, SIZES, RATIOS, y, x)
        np.testing.assert_allclose(grid[y, x].double().numpy(), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("height,width,sizes,ratios", [(5, 7, SIZES, RATIOS), (4, 3, (0.4,), (1, 3, 0.25, 2)),
                                                       (6, 6, (0.9, 0.1), (1,))])
def test_multibox_prior_follows_the_formula(height, width, sizes, ratios):
    ours = multibox_prior(height, width, sizes, ratios)[0].double().numpy()
    np.testing.assert_allclose(ours, formula_anchors(height, width, sizes, ratios), atol=1e-6, rtol=0)


def test_pixel_variant_single_pixel_and_bands_are_slices_of_the_full_output():
    full = multibox_prior(30, 40, SIZES, RATIOS)[0].reshape(30, 40, 5, 4)
    scale = torch.tensor([40.0, 30, 40, 30])
    assert torch.equal(multibox_prior_pixels(30, 40, SIZES, RATIOS)[0].reshape(30, 40, 5, 4), full * scale)
    assert torch.equal(anchors_at(30, 40, SIZES, RATIOS, 12, 33), full[12, 33])
    assert torch.equal(anchors_at(30, 40, SIZES, RATIOS, 12, 33, pixels=True), full[12, 33] * scale)
    assert torch.equal(anchor_grid(30, 40, SIZES, RATIOS, rows=(7, 11)), full[7:11])
    # In pixels an anchor is H*s*sqrt(r) wide and H*s/sqrt(r) high.
    box = anchors_at(30, 40, SIZES, RATIOS, 12, 33, pixels=True)[3].double()
    assert (box[2] - box[0]).item() == pytest.approx(30 * 0.75 * math.sqrt(2), abs=1e-4)
    assert (box[3] - box[1]).item() == pytest.approx(30 * 0.75 / math.sqrt(2), abs=1e-4)


def test_layout_and_bad_arguments():
    shapes = anchor_shapes(561, 728, SIZES, RATIOS)
    assert [(s.size, s.ratio) for s in shapes] == [(0.75, 1), (0.5, 1), (0.25, 1), (0.75, 2), (0.75, 0.5)]
    assert shapes[0].width_px == pytest.approx(561 * 0.75, rel=1e-6)
    with pytest.raises(SegtoolError, match=r"pixel \(y=561, x=0\) is outside the 561x728 image"):
        anchors_at(561, 728, SIZES, RATIOS, 561, 0)
    with pytest.raises(SegtoolError, match="positive"):
        multibox_prior(4, 4, (0.5, -1), RATIOS)


# ---- labelling: the worked examples of d2l's anchor chapter --------------------------------------

GROUND_TRUTH = torch.tensor([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]])
ANCHORS = torch.tensor([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                        [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])


def test_multibox_target_matches_the_book():
    offsets, mask, classes = multibox_target(ANCHORS.unsqueeze(0), GROUND_TRUTH.unsqueeze(0))
    assert classes.tolist() == [[0, 1, 2, 0, 2]]
    assert mask.tolist() == [[0.0] * 4 + [1.0] * 8 + [0.0] * 4 + [1.0] * 4]
    expected = torch.tensor([[0, 0, 0, 0, 1.40, 10.0, 2.59, 7.18, -1.20, 0.269, 1.68, -1.57,
                              0, 0, 0, 0, -0.571, -1.00, 4.17e-06, 0.626]])
    torch.testing.assert_close(offsets, expected, atol=6e-3, rtol=0)


def test_padding_rows_are_ignored():
    padded = torch.cat((GROUND_TRUTH, torch.tensor([[-1.0, 0, 0, 0, 0]])))
    for got, want in zip(multibox_target(ANCHORS, padded.unsqueeze(0)),
                         multibox_target(ANCHORS, GROUND_TRUTH.unsqueeze(0)), strict=True):
        assert torch.equal(got, want)


def test_every_ground_truth_gets_an_anchor_even_below_the_threshold():
    anchors = torch.tensor([[0.0, 0, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6], [0.0, 0, 0.21, 0.21]])
    gt = torch.tensor([[0.0, 0, 0.5, 0.5], [0.45, 0.45, 0.9, 0.9]])  # IoUs well below 0.5
    assigned = assign_anchors(anchors, gt, iou_threshold=0.5)
    assert sorted(assigned[assigned >= 0].tolist()) == [0, 1]
    assert assigned.tolist() == [-1, 1, 0]


def test_offsets_round_trip():
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.7], [0.3, 0.3, 0.35, 0.9]], dtype=torch.float64)
    anchors = torch.tensor([[0.0, 0.1, 0.4, 0.6], [0.2, 0.25, 0.45, 0.8]], dtype=torch.float64)
    offsets = encode_offsets(anchors, boxes, eps=0.0)
    torch.testing.assert_close(decode_offsets(anchors, offsets), boxes)
    # centre offsets scale by 10, size log-ratios by 5
    assert offsets[0, 0].item() == pytest.approx(10 * (0.3 - 0.2) / 0.4)
    assert offsets[0, 2].item() == pytest.approx(5 * math.log(0.4 / 0.4))


def test_multibox_detection_matches_the_book():
    anchors = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                            [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]])
    offset_preds = torch.zeros(anchors.numel())
    cls_probs = torch.tensor([[0.0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]])
    output = multibox_detection(cls_probs.unsqueeze(0), offset_preds.unsqueeze(0), anchors.unsqueeze(0), 0.5)
    expected = torch.tensor([[[0, 0.9, 0.1, 0.08, 0.52, 0.92], [1, 0.9, 0.55, 0.2, 0.9, 0.88],
                              [-1, 0.8, 0.08, 0.2, 0.56, 0.95], [-1, 0.7, 0.15, 0.3, 0.62, 0.91]]])
    torch.testing.assert_close(output, expected, atol=1e-6, rtol=0)
    # Anchor 1 (now a cat, 0.8) overlaps anchor 0 (dog, 0.9): suppressed class-agnostically, kept per class.
    cls_probs = torch.tensor([[0.0] * 4, [0.9, 0.1, 0.7, 0.1], [0.1, 0.8, 0.3, 0.9]])
    agnostic = multibox_detection(cls_probs[None], offset_preds[None], anchors[None], 0.5)
    per_class = multibox_detection(cls_probs[None], offset_preds[None], anchors[None], 0.5, per_class=True)
    assert (agnostic[0, :, 0] >= 0).sum() == 2
    assert (per_class[0, :, 0] >= 0).sum() == 3
