"""Mask pictures, pixel for pixel: colourise, blend, outlines, legend, grid, confusion, terminal."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from segtool.core.errors import SegtoolError
from segtool.data.palettes import get_palette, parse_palette_csv
from segtool.viz.confusion import EMPTY_ROW, confusion_layout, render_confusion
from segtool.viz.grid import GAP, CompareSample, render_compare_grid, sample_scores
from segtool.viz.legend import count_labels, legend_entries, render_legend
from segtool.viz.mask_view import compose_mask_picture, mark_void, match_mask_size
from segtool.viz.overlay import (
    WARNING_COLOR,
    blend_overlay,
    class_boundaries,
    colorize_labels,
    draw_outlines,
)
from segtool.viz.terminal import half_block_preview, sparkline

# Saturated colours: anti-aliased black text on white only makes greys, so a swatch colour
# found in a legend picture can only come from a swatch.
RGBY = parse_palette_csv("red,255,0,0\ngreen,0,255,0\nblue,0,0,255\nyellow,255,255,0\nvoid,9,9,9\n")


def _labels():
    return np.array([[0, 0, 1, 1, 255],
                     [0, 2, 2, 1, 255],
                     [3, 3, 2, 255, 255]], dtype=np.uint8)


def _image(shape=(3, 5), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_overlay_pixel_is_the_alpha_blend_and_void_is_untouched():
    labels, image = _labels(), _image()
    out = blend_overlay(image, labels, RGBY, alpha=0.25)
    for y, x in np.ndindex(labels.shape):
        if labels[y, x] == 255:
            assert (out[y, x] == image[y, x]).all()
        else:
            colour = RGBY.colors[labels[y, x]].astype(np.float64)
            expected = np.floor(0.75 * image[y, x] + 0.25 * colour + 0.5)
            assert (out[y, x] == expected).all(), (y, x)


def test_overlay_blends_void_only_with_an_ignore_colour():
    labels, image = _labels(), _image()
    out = blend_overlay(image, labels, RGBY, alpha=0.5, ignore_color=(200, 100, 0))
    expected = np.floor(0.5 * image[0, 4] + 0.5 * np.array([200, 100, 0]) + 0.5)
    assert (out[0, 4] == expected).all()
    assert (blend_overlay(image, labels, RGBY, alpha=0.0) == image).all()
    full = blend_overlay(image, labels, RGBY, alpha=1.0)
    assert (full[labels != 255] == RGBY.colors[labels[labels != 255]]).all()


def test_overlay_rejects_size_mismatch_and_bad_alpha():
    with pytest.raises(SegtoolError, match="5x3"):
        blend_overlay(_image((4, 5)), _labels(), RGBY)
    with pytest.raises(SegtoolError, match="alpha"):
        blend_overlay(_image(), _labels(), RGBY, alpha=1.5)


def test_values_outside_palette_are_warning_coloured_and_counted():
    labels = np.array([[0, 4, 255], [300, -1, 3]], dtype=np.int32)
    rgb, unknown = colorize_labels(labels, RGBY)
    assert unknown == 3
    for y, x in [(0, 1), (1, 0), (1, 1)]:
        assert tuple(rgb[y, x]) == WARNING_COLOR
    assert tuple(rgb[0, 2]) == (9, 9, 9)  # the palette's void colour
    assert tuple(rgb[1, 2]) == (255, 255, 0)


def test_boundaries_mark_both_sides_and_skip_void():
    labels = np.zeros((6, 6), dtype=np.uint8)
    labels[2:4, 2:4] = 1
    labels[:, 5] = 255
    edge = class_boundaries(labels)
    assert edge[2:4, 2:4].all()  # the 2x2 square is all edge
    assert edge[1, 2] and edge[2, 1] and not edge[0, 0]
    assert edge[:, 4].all() and not edge[:, 5].any()  # beside the void column, never in it
    out = draw_outlines(np.zeros((6, 6, 3), np.uint8), labels, color=(1, 2, 3))
    assert (out[edge] == (1, 2, 3)).all() and (out[~edge] == 0).all()


def test_legend_lists_exactly_the_classes_present():
    labels = np.array([[0, 0, 2, 2], [0, 2, 2, 255]], dtype=np.uint8)
    entries = legend_entries(count_labels(labels), RGBY)
    assert [e.name for e in entries] == ["red", "blue", "void"]
    assert [e.pixels for e in entries] == [3, 4, 1]
    assert sum(e.share for e in entries) == pytest.approx(1.0)
    assert entries[1].label == "blue 50.0%"
    strip = np.asarray(render_legend(entries, 200))
    colours = {tuple(c) for c in strip.reshape(-1, 3)}
    assert {(255, 0, 0), (0, 0, 255)} <= colours
    assert not {(0, 255, 0), (255, 255, 0)} & colours  # absent classes draw no swatch


def test_mask_picture_with_legend_and_unknown_values():
    labels = np.array([[0, 1], [7, 7]], dtype=np.uint8)
    pic = compose_mask_picture(labels, RGBY, legend=True)
    assert pic.unknown == {7: 2}
    assert [e.name for e in pic.entries] == ["red", "green", "outside palette"]
    assert pic.image.width >= 2 and pic.image.height > 2  # the strip sits under the 2x2 mask
    assert tuple(np.asarray(pic.image)[1, 0]) == WARNING_COLOR


def test_mark_void_maps_a_dataset_void_value_to_255():
    labels = np.array([[0, 11], [3, 11]], dtype=np.uint8)
    assert mark_void(labels, 11).tolist() == [[0, 255], [3, 255]]
    assert mark_void(labels, 255) is labels


def test_mask_is_resized_with_nearest_neighbour_only_when_asked():
    labels = np.array([[1, 2], [3, 255]], dtype=np.uint8)
    with pytest.raises(SegtoolError, match="--resize"):
        match_mask_size(labels, (4, 4, 3))
    big = match_mask_size(labels, (4, 6, 3), resize=True)
    assert big.shape == (4, 6)
    assert set(np.unique(big)) == {1, 2, 3, 255}  # no interpolated in-between labels


def test_grid_dimensions_follow_rows_and_columns():
    voc = get_palette("voc")
    a = CompareSample(_image((8, 10)), np.ones((8, 10), np.uint8), np.zeros((8, 10), np.uint8), "a")
    b = CompareSample(_image((6, 12)), np.ones((6, 12), np.uint8), np.ones((6, 12), np.uint8), "b")
    grid = render_compare_grid([a, b], voc)
    assert grid.size == (3 * 12 + 4 * GAP, 2 * 8 + 3 * GAP)
    pixels = np.asarray(grid)
    # Row 0, prediction column: a 10x8 picture centred in a 12x8 cell.
    x0, y0 = GAP + (12 + GAP) + 1, GAP
    assert (pixels[y0:y0 + 8, x0:x0 + 10] == voc.colors[1]).all()
    assert (pixels[y0:y0 + 8, GAP + 1:GAP + 11] == a.image).all()
    only_pred = render_compare_grid([CompareSample(a.image, a.pred)], voc)
    assert only_pred.size == (2 * 10 + 3 * GAP, 8 + 2 * GAP)
    heights = [render_compare_grid([a] * n, voc, titles=True).height for n in (1, 2, 3)]
    assert heights[2] - heights[1] == heights[1] - heights[0] > 8 + GAP  # titles add height per row


def test_grid_refuses_mask_of_other_size():
    sample = CompareSample(_image((8, 10)), np.ones((8, 9), np.uint8), None, "a")
    with pytest.raises(SegtoolError, match="9x8"):
        render_compare_grid([sample], get_palette("voc"))


def test_sample_scores_match_a_hand_count():
    gt = np.array([[0, 0, 1, 1, 255]])
    pred = np.array([[0, 1, 1, 1, 0]])
    acc, miou = sample_scores(pred, gt, num_classes=3)
    assert acc == pytest.approx(3 / 4)
    # class 0: 1 / (2 + 1 - 1); class 1: 2 / (2 + 3 - 2); class 2 absent from both -> left out.
    assert miou == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert sample_scores(pred, np.full_like(gt, 255), 3) is None


def test_confusion_rows_are_normalised_and_size_grows_with_classes():
    names = ["a", "b", "c", "d"]
    matrix = np.array([[8, 2, 0, 0],
                       [1, 1, 0, 0],
                       [0, 0, 5, 0],
                       [0, 0, 0, 0]])
    img = np.asarray(render_confusion(matrix, names)).astype(int)
    lay = confusion_layout(names)

    def corner(i, j):  # top-left pixel of a cell: numbers are centred, the corner is pure colour
        x0, y0, _, _ = lay.cell_box(i, j)
        return img[y0, x0]

    darkness = {cell: -corner(*cell).sum() for cell in [(0, 0), (1, 0), (0, 1), (0, 2), (2, 2)]}
    # Row-normalised: 1.0 (2,2) > 0.8 (0,0) > 0.5 (1,0) > 0.2 (0,1) > 0 (0,2). Column-normalised
    # would put (1,0) = 1/9 below (0,1) = 2/3.
    assert darkness[(2, 2)] > darkness[(0, 0)] > darkness[(1, 0)] > darkness[(0, 1)] > darkness[(0, 2)]
    assert (corner(1, 0) == corner(1, 1)).all()  # 0.5 and 0.5 in the same row
    assert tuple(corner(3, 0)) == EMPTY_ROW  # no ground-truth pixels
    small = render_confusion(np.eye(3), ["x", "y", "z"])
    large = render_confusion(np.eye(12), [f"c{i}" for i in range(12)])
    assert large.width > small.width and large.height > small.height
    with pytest.raises(SegtoolError, match="4x4"):
        render_confusion(np.eye(3), names)


def test_half_block_preview_draws_top_and_bottom_pixels():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0] = (255, 0, 0)
    rgb[1] = (0, 0, 255)
    console = Console(force_terminal=True, color_system="truecolor", width=40, record=True)
    with console.capture() as cap:
        console.print(half_block_preview(rgb))
    text = cap.get()
    assert text.count("▀") == 3
    assert "38;2;255;0;0" in text and "48;2;0;0;255" in text  # red above, blue below


def test_sparkline_shape():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, None, float("nan"), 1.0]) == "▁  ▁"
    assert len(sparkline(list(range(100)), width=10)) == 10
