"""Box library: formats, the IoU family against torchvision, chunked queries, validation, NMS, box files."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torchvision.ops as tvops

from segtool.core.errors import SegtoolError
from segtool.ops.boxes import (
    best_match,
    clip_boxes,
    convert_boxes,
    pairs_above,
    pairwise_iou,
    suppress,
    to_normalized,
    to_pixels,
    validate_boxes,
)
from segtool.ops.boxes.read import read_boxes

TORCHVISION = {"iou": tvops.box_iou, "giou": tvops.generalized_box_iou,
               "diou": tvops.distance_box_iou, "ciou": tvops.complete_box_iou}


def random_boxes(n: int, generator: torch.Generator, scale: float = 100.0, min_size: float = 1.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale / 3 + min_size
    return torch.cat((xy, xy + wh), dim=1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("kind", sorted(TORCHVISION))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-4)])
def test_float_boxes_match_torchvision(kind, dtype, tol, gen):
    a, b = random_boxes(37, gen).to(dtype), random_boxes(53, gen).to(dtype)
    ours = pairwise_iou(a, b, kind)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, TORCHVISION[kind](a, b), rtol=0, atol=tol)


@pytest.mark.parametrize("kind", sorted(TORCHVISION))
@pytest.mark.parametrize("dtype,low,high", [(torch.int16, -32000, 32000), (torch.uint8, 0, 255),
                                            (torch.int32, -10**6, 10**6)])
def test_integer_boxes_do_not_overflow(kind, dtype, low, high, gen):
    # int16 boxes up to 64000 wide: areas reach 4e9, past the int32 that torchvision upcasts int16 to.
    def boxes(n):
        corners = torch.randint(low, high, (n, 2, 2), generator=gen)
        return torch.cat((corners.min(dim=1).values, corners.max(dim=1).values), dim=1).to(dtype)

    a, b = boxes(29), boxes(31)
    reference = TORCHVISION[kind](a.double(), b.double())
    ours = pairwise_iou(a, b, kind)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, reference.nan_to_num(0.0), rtol=0, atol=1e-6)


def test_int16_big_boxes_exact_where_int32_would_overflow():
    boxes = torch.tensor([[-32000, -32000, 32000, 32000], [0, 0, 32000, 32000]], dtype=torch.int16)
    ours = pairwise_iou(boxes, boxes)
    assert ours[0, 1].item() == pytest.approx(0.25, abs=1e-12)
    assert (ours.diagonal() == 1).all()


def test_zero_area_boxes_give_zero_not_nan():
    boxes = torch.tensor([[1.0, 1, 1, 1], [2, 2, 2, 2], [0, 0, 0, 5], [0, 0, 4, 4]])
    for kind in TORCHVISION:
        values = pairwise_iou(boxes, boxes, kind)
        assert torch.isfinite(values).all(), kind
    iou = pairwise_iou(boxes, boxes)
    assert iou[:3].abs().sum() == 0 and iou[:, :3].abs().sum() == 0
    assert torch.isnan(tvops.box_iou(boxes, boxes)[0, 0])  # what torchvision gives


@pytest.mark.parametrize("kind", sorted(TORCHVISION))
def test_chunked_equals_full_matrix(kind, gen):
    a, b = random_boxes(41, gen), random_boxes(23, gen)
    full = pairwise_iou(a, b, kind, chunk_elements=10**9)
    for chunk in (1, 23, 50, 1000):
        assert torch.equal(pairwise_iou(a, b, kind, chunk_elements=chunk), full)


@pytest.mark.parametrize("kind", ["iou", "ciou"])
def test_best_match_and_pairs_above_equal_brute_force(kind, gen):
    a, b = random_boxes(60, gen, scale=50), random_boxes(45, gen, scale=50)
    full = TORCHVISION[kind](a, b)
    values, indices = best_match(a, b, kind, chunk_elements=100)
    brute_values, brute_indices = full.max(dim=1)
    torch.testing.assert_close(values, brute_values, rtol=0, atol=1e-12)
    assert torch.equal(indices, brute_indices)
    ia, ib, v = pairs_above(a, b, 0.3, kind, chunk_elements=77)
    want = (full >= 0.3).nonzero()
    assert ia.numel() > 0
    assert torch.equal(torch.stack((ia, ib), dim=1), want)
    torch.testing.assert_close(v, full[full >= 0.3], rtol=0, atol=1e-12)


def test_best_match_against_empty_set():
    values, indices = best_match(torch.tensor([[0.0, 0, 1, 1]]), torch.empty(0, 4))
    assert indices.tolist() == [-1] and math.isnan(values.item())


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_conversions_round_trip_exactly(fmt, gen):
    # Coordinates on a 1/64 pixel grid: every step of the conversion is exact in float64.
    boxes = (random_boxes(200, gen, scale=4000) * 64).round() / 64
    there = convert_boxes(boxes, "xyxy", fmt)
    assert torch.equal(convert_boxes(there, fmt, "xyxy"), boxes)
    other = "cxcywh" if fmt == "xywh" else "xywh"
    assert torch.equal(convert_boxes(convert_boxes(there, fmt, other), other, fmt), there)


def test_conversion_of_random_floats_is_close_and_formulas_hold(gen):
    boxes = random_boxes(100, gen)
    torch.testing.assert_close(convert_boxes(convert_boxes(boxes, "xyxy", "cxcywh"), "cxcywh", "xyxy"), boxes,
                               rtol=1e-15, atol=1e-12)
    c = convert_boxes(boxes, "xyxy", "cxcywh")
    torch.testing.assert_close(c[:, 0], (boxes[:, 0] + boxes[:, 2]) / 2)
    torch.testing.assert_close(c[:, 3], boxes[:, 3] - boxes[:, 1])
    assert convert_boxes(torch.tensor([[1, 2, 5, 9]], dtype=torch.uint8), "xyxy", "xywh").tolist() == [[1, 2, 4, 7]]


def test_unknown_format_is_a_user_error():
    with pytest.raises(SegtoolError, match="unknown box format 'xyzw'"):
        convert_boxes(torch.zeros(1, 4), "xyzw", "xyxy")


def test_normalised_pixel_and_clip():
    boxes = torch.tensor([[10.0, 20, 110, 220]], dtype=torch.float64)
    normal = to_normalized(boxes, (400, 200))
    assert normal.tolist() == [[0.05, 0.05, 0.55, 0.55]]
    torch.testing.assert_close(to_pixels(normal, (400, 200)), boxes, rtol=1e-15, atol=0)
    clipped = clip_boxes(torch.tensor([[-5.0, -5, 250, 500]]), (400, 200))
    assert clipped.tolist() == [[0, 0, 200, 400]]
    assert clip_boxes(torch.tensor([[0.5, 0.5, 2.0, 1.0]]), (1, 1), fmt="xywh").tolist() == [[0.5, 0.5, 0.5, 0.5]]


def test_validation_names_the_row_and_fix_swaps():
    boxes = torch.tensor([[0.0, 0, 5, 5], [10, 0, 5, 5]])
    with pytest.raises(SegtoolError, match=r"a.csv: line 7: inverted box .*--fix"):
        validate_boxes(boxes, source="a.csv", names=["line 3", "line 7"])
    assert validate_boxes(boxes, fix=True).tolist() == [[0, 0, 5, 5], [5, 0, 10, 5]]
    with pytest.raises(SegtoolError, match="negative width"):
        validate_boxes(torch.tensor([[0.0, 0, -2, 3]]), "xywh")
    with pytest.raises(SegtoolError, match="box 0: non-finite"):
        validate_boxes(torch.tensor([[0.0, math.inf, 1, 1]]))


def test_suppress_matches_torchvision(gen):
    boxes = random_boxes(80, gen, scale=60)
    scores = torch.rand(80, generator=gen, dtype=torch.float64)
    assert torch.equal(suppress(boxes, scores, 0.4), tvops.nms(boxes, scores, 0.4))
    classes = torch.randint(0, 3, (80,), generator=gen)
    assert torch.equal(suppress(boxes, scores, 0.4, classes=classes), tvops.batched_nms(boxes, scores, classes, 0.4))
    kept = suppress(boxes, scores, 0.4, min_score=0.5)
    assert (scores[kept] >= 0.5).all() and kept.numel() > 0
    with pytest.raises(SegtoolError, match="80 boxes but 3 scores"):
        suppress(boxes, scores[:3])


# ---- box files -------------------------------------------------------------------------------

def _read(text: str, fmt=None):
    return read_boxes("-", fmt, stdin=io.StringIO(text))


@pytest.mark.parametrize("text,fmt", [
    ("0,0,10,10\n5,5,15,20\n", "xyxy"),
    ("# comment\nx1,y1,x2,y2,score\n0,0,10,10,0.5\n5,5,15,20,0.7\n", "xyxy"),
    ("xmin ymin xmax ymax\n0 0 10 10\n\n5 5 15 20\n", "xyxy"),
    ("[[0,0,10,10],[5,5,15,20]]", "xyxy"),
    ('{"boxes": [[0,0,10,10],[5,5,15,20]]}', "xyxy"),
    ("[0,0,10,10]\n[5,5,15,20]\n", "xyxy"),
    ('[{"x":0,"y":0,"w":10,"h":10},\n {"x":5,"y":5,"w":10,"h":15}]', "xywh"),
    ('{"cx":5,"cy":5,"w":10,"h":10,"label":"cat"}\n{"cx":10,"cy":12.5,"w":10,"h":15,"label":"dog"}\n', "cxcywh"),
    ('{"bbox":[0,0,10,10]}\n{"bbox":[5,5,15,20]}\n', "xyxy"),
])
def test_box_file_forms(text, fmt):
    box_set = _read(text)
    assert box_set.fmt == fmt
    assert convert_boxes(box_set.tensor(), fmt, "xyxy").tolist() == [[0, 0, 10, 10], [5, 5, 15, 20]]


def test_extra_columns_are_kept_by_name():
    box_set = _read('{"x1":0,"y1":0,"x2":1,"y2":1,"score":0.5,"label":"cat"}\n')
    assert box_set.extra == {"score": [0.5], "label": ["cat"]}


@pytest.mark.parametrize("text,message", [
    ("0,0,10\n", "<stdin>: line 1: expected 4 columns (x1,y1,x2,y2), got 3"),
    ("0,0,10,10\n1,2,x,4\n", "<stdin>: line 2: non-numeric field 'x'"),
    ("x1,y1,x2,y2\n0,0,1,1\n0,0,1\n", "line 3: expected 4 columns like the header"),
    ("a,b,c,d\n0,0,1,1\n", "line 1 (header): no box fields among (a, b, c, d)"),
    ("", "<stdin>: no boxes found (empty input)"),
    ("# only a comment\n\n", "no boxes found"),
    ("0,0,nan,1\n", "line 1: non-finite value 'nan'"),
    ("0,0,inf,1\n", "non-finite value 'inf'"),
    ("[[0,0,1]]", "item 1: expected 4 numbers"),
    ('[{"x1": 0}]', "item 1: no box fields"),
    ("[[0,0,1,1],", "not valid JSON"),
    ('[[0,0,"a",1]]', "item 1: non-numeric field 'a'"),
    ("[]", "no boxes found"),
])
def test_box_file_errors_name_the_line(text, message):
    with pytest.raises(SegtoolError) as info:
        _read(text)
    assert message in str(info.value)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(SegtoolError, match="no such file"):
        read_boxes(tmp_path / "nope.csv")
