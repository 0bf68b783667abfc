"""The box commands end to end: anchors, iou, box-convert, nms; formats, stdin pipelines, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.ops as tvops
from PIL import Image

from segtool.ops.boxes import anchors_at, multibox_prior, pairwise_iou

BOXES = "x1,y1,x2,y2,score,label\n0,0,10,10,0.9,cat\n1,1,11,11,0.8,cat\n20,20,30,30,0.7,dog\n2,2,12,12,0.95,dog\n"
XYXY = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 12, 12]], dtype=torch.float64)


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result.stdout


def one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def box_file(tmp_path) -> Path:
    path = tmp_path / "boxes.csv"
    path.write_text(BOXES)
    return path


# ---- anchors -------------------------------------------------------------------------------------

def test_anchors_layout_text_and_json(cli):
    assert "2042040" in ok(cli("anchors", "--size", "561x728"))
    report = json.loads(ok(cli("anchors", "--size", "561x728", "--json")))
    assert report["count"] == 2042040 and report["shape"] == [1, 2042040, 4] and report["per_pixel"] == 5
    assert [(a["size"], a["ratio"]) for a in report["layout"]] == [(0.75, 1), (0.5, 1), (0.25, 1), (0.75, 2),
                                                                    (0.75, 0.5)]


@pytest.mark.parametrize("pixels", [False, True])
def test_anchors_at_a_pixel_equal_the_library(cli, pixels):
    args = ["--pixels"] if pixels else []
    report = json.loads(ok(cli("anchors", "--size", "561x728", "--at", "250,250", "--json", *args)))
    got = np.array([[a[k] for k in ("x1", "y1", "x2", "y2")] for a in report["anchors"]])
    want = anchors_at(561, 728, (0.75, 0.5, 0.25), (1, 2, 0.5), 250, 250, pixels=pixels).numpy()
    if pixels:  # the float64 formula to 1e-4 px, not d2l's float32 values times (W, H, W, H)
        assert got[0].tolist() == [40.125, 40.125, 460.875, 460.875] and np.abs(got - want).max() < 1e-3
    else:
        assert np.array_equal(got.astype(np.float32), want)
    csv_rows = ok(cli("anchors", "--size", "561x728", "--at", "250,250", "--csv", *args)).splitlines()
    assert csv_rows[0] == "k,size,ratio,x1,y1,x2,y2" and len(csv_rows) == 6


def test_anchors_all_streams_every_anchor_exactly(cli):
    lines = ok(cli("anchors", "--size", "3x4", "--all")).splitlines()
    assert lines[0] == "row,col,k,x1,y1,x2,y2" and len(lines) == 1 + 3 * 4 * 5
    table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert table[7, :3].tolist() == [0, 1, 2]  # pixel-major: row, column, anchor
    assert np.array_equal(table[:, 3:].astype(np.float32), multibox_prior(3, 4, (0.75, 0.5, 0.25), (1, 2, 0.5))[0].numpy())
    records = [json.loads(line) for line in ok(cli("anchors", "--size", "3x4", "--all", "--json")).splitlines()]
    assert len(records) == 60 and records[-1]["row"] == 2 and records[-1]["k"] == 4


def test_anchors_draw_on_an_image(cli, tmp_path):
    image = tmp_path / "img.png"
    Image.new("RGB", (80, 60), "white").save(image)
    out = tmp_path / "anchors.png"
    ok(cli("anchors", "--image", image, "--at", "30,40", "--draw", out, "--sizes", "0.5,0.25", "--ratios", "1,2"))
    drawn = np.asarray(Image.open(out))
    assert drawn.shape == (60, 80, 3)
    assert (drawn == [0, 0, 255]).all(axis=-1).any()  # the first anchor is blue
    assert (drawn == [255, 0, 0]).all(axis=-1).any()  # the third is red
    refused = cli("anchors", "--image", image, "--at", "30,40", "--draw", out)
    assert "already exists" in one_line_error(refused)


@pytest.mark.parametrize("args,code,message", [
    (["--size", "561x728", "--at", "561,0"], 1, "outside the 561x728 image"),
    (["--size", "561x728", "--at", "0,-1"], 1, "outside"),
    (["--size", "10x10", "--draw", "x.png"], 2, "--draw needs --at"),
    (["--size", "10x10", "--image", "x.png"], 2, "exactly one of --image or --size"),
    (["--size", "10by10"], 2, "expected HxW"),
    (["--size", "10x10", "--sizes", "0.5,a"], 2, "comma-separated numbers"),
])
def test_anchors_bad_input(cli, args, code, message):
    result = cli("anchors", *args)
    assert result.exit_code == code
    assert message in result.stderr


def test_anchors_unreadable_image(cli, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert "bad.png: not an image file" in one_line_error(cli("anchors", "--image", bad))


# ---- iou -----------------------------------------------------------------------------------------

def test_iou_matrix_from_file_stdin_and_inline(cli, box_file):
    want = pairwise_iou(XYXY, XYXY)
    rows = ok(cli("iou", box_file, "--csv")).splitlines()
    assert torch.tensor([[float(v) for v in r.split(",")] for r in rows], dtype=torch.float64).equal(want)
    from_stdin = ok(cli("iou", "-", "--csv", input=BOXES))
    assert from_stdin.splitlines() == rows
    doc = json.loads(ok(cli("iou", box_file, "--json", "--kind", "diou")))
    assert doc["shape"] == [4, 4]
    torch.testing.assert_close(torch.tensor(doc["matrix"], dtype=torch.float64), pairwise_iou(XYXY, XYXY, "diou"))
    text = ok(cli("iou", "--box", "0,0,10,10", "--box", "5,0,15,10")).split()
    assert [float(v) for v in text] == pytest.approx([1, 1 / 3, 1 / 3, 1], abs=1e-4)


def test_iou_a_against_b_best_and_threshold(cli, box_file, tmp_path):
    other = tmp_path / "b.json"
    other.write_text(json.dumps([{"x": 0, "y": 0, "w": 10, "h": 10}, {"x": 19, "y": 21, "w": 10, "h": 10}]))
    lines = ok(cli("iou", box_file, other, "--best", "--csv")).splitlines()
    assert lines[0] == "a,b,iou" and [line.split(",")[1] for line in lines[1:]] == ["0", "0", "1", "0"]
    pairs = [json.loads(line) for line in ok(cli("iou", box_file, other, "--min-iou", "0.5", "--json")).splitlines()]
    assert [(p["a"], p["b"]) for p in pairs] == [(0, 0), (1, 0), (2, 1)]
    assert pairs[0]["iou"] == 1
    best_above = ok(cli("iou", box_file, other, "--best", "--min-iou", "0.6", "--csv")).splitlines()
    assert [line.split(",")[:2] for line in best_above[1:]] == [["0", "0"], ["1", "0"], ["2", "1"]]


@pytest.mark.parametrize("content,message", [
    ("0,0,10\n", "a.csv: line 1: expected 4 columns (x1,y1,x2,y2), got 3"),
    ("0,0,10,10\n0,zero,1,1\n", "a.csv: line 2: non-numeric field 'zero'"),
    ("", "a.csv: no boxes found (empty input)"),
    ("0,0,10,NaN\n", "a.csv: line 1: non-finite value 'NaN'"),
    ("0,0,10,10\n5,5,1,9\n", "a.csv: line 2: inverted box (x2 < x1 or y2 < y1)"),
])
def test_iou_bad_input_is_one_line(cli, tmp_path, content, message):
    path = tmp_path / "a.csv"
    path.write_text(content)
    assert message in one_line_error(cli("iou", path))


def test_iou_fix_swaps_corners(cli):
    fixed = ok(cli("iou", "--box", "10,10,0,0", "--box", "0,0,10,10", "--fix", "--csv"))
    assert fixed.splitlines() == ["1,1", "1,1"]


@pytest.mark.parametrize("args", [["--kind", "jaccard"], ["--in-format", "xyzw"], ["--json", "--csv"]])
def test_iou_bad_options_exit_2(cli, box_file, args):
    assert cli("iou", box_file, *args).exit_code == 2


def test_iou_draw(cli, box_file, tmp_path):
    image = tmp_path / "img.png"
    Image.new("RGB", (40, 40), "white").save(image)
    out = tmp_path / "iou.png"
    ok(cli("iou", box_file, "--draw", image, "-o", out))
    assert Image.open(out).size == (40, 40)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 broken")
    message = one_line_error(cli("iou", box_file, "--draw", bad, "-o", tmp_path / "o.png"))
    assert message.startswith(f"error: {bad}: ") and "image" in message


# ---- box-convert ---------------------------------------------------------------------------------

def test_box_convert_csv_keeps_columns_and_round_trips(cli, box_file):
    out = ok(cli("box-convert", "--to", "cxcywh", box_file))
    assert out.splitlines()[:2] == ["cx,cy,w,h,score,label", "5,5,10,10,0.9,cat"]
    back = ok(cli("box-convert", "--from", "cxcywh", "--to", "xyxy", "-", input=out))
    assert back == BOXES


def test_box_convert_round_trips_exactly_through_text(cli):
    rng = np.random.default_rng(0)
    xy = np.round(rng.uniform(0, 5000, (50, 2)) * 64) / 64
    boxes = np.concatenate([xy, xy + np.round(rng.uniform(1, 500, (50, 2)) * 64) / 64], axis=1)
    text = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in boxes)
    for fmt in ("xywh", "cxcywh"):
        there = ok(cli("box-convert", "--to", fmt, "-", input=text))
        back = ok(cli("box-convert", "--from", fmt, "--to", "xyxy", "-", input=there))
        assert np.array_equal(np.array([[float(v) for v in r.split(",")] for r in back.splitlines()]), boxes)


def test_box_convert_json_lines_and_documents(cli):
    lines = ok(cli("box-convert", "--to", "xywh", "-", input='{"x1": 1, "y1": 2, "x2": 4, "y2": 8, "id": 7}\n[0,0,2,2]\n'))
    assert [json.loads(line) for line in lines.splitlines()] == [{"x": 1, "y": 2, "w": 3, "h": 6, "id": 7},
                                                                  [0, 0, 2, 2]]
    doc = ok(cli("box-convert", "--to", "cxcywh", "-", input="[[0, 0, 2, 4], [1, 1, 2, 2]]"))
    assert json.loads(doc) == [[1, 2, 2, 4], [1.5, 1.5, 1, 1]]


def test_box_convert_normalize_clip_and_output_file(cli, tmp_path):
    out = tmp_path / "norm.csv"
    ok(cli("box-convert", "--to", "xyxy", "--size", "100x200", "--normalize", "--clip", "-o", out, "-",
           input="-20,10,100,50\n"))
    assert out.read_text() == "0,0.1,0.5,0.5\n"
    assert "already exists" in one_line_error(cli("box-convert", "--to", "xyxy", "-o", out, "-", input="0,0,1,1\n"))
    pixels = ok(cli("box-convert", "--to", "xywh", "--size", "100x200", "--denormalize", "-", input=out.read_text()))
    assert pixels == "0,10,100,40\n"


@pytest.mark.parametrize("args,stdin,code,message", [
    (["--to", "xyzw"], "0,0,1,1\n", 2, ""),
    (["--to", "xyxy", "--normalize"], "0,0,1,1\n", 2, "need --size"),
    (["--to", "xywh"], "0,0,1,1\n3,3,1,1\n", 1, "<stdin>: line 2: inverted box"),
    (["--to", "xywh"], "x,y,w,h\n0,0,-1,1\n", 1, "<stdin>: line 2: inverted box (negative width or height)"),
    (["--to", "xywh"], "", 1, "<stdin>: no boxes found"),
    (["--to", "xywh"], "1,2,3,4,5\n", 1, "expected 4 columns"),
])
def test_box_convert_bad_input(cli, args, stdin, code, message):
    result = cli("box-convert", *args, "-", input=stdin)
    assert result.exit_code == code
    assert message in result.stderr


def test_box_convert_fix(cli):
    assert ok(cli("box-convert", "--to", "xywh", "--fix", "-", input="3,3,1,1\n")) == "1,1,2,2\n"


# ---- nms -----------------------------------------------------------------------------------------

def test_nms_indices_match_torchvision(cli, box_file):
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95], dtype=torch.float64)
    want = tvops.nms(XYXY, scores, 0.5).tolist()
    assert [int(v) for v in ok(cli("nms", box_file, "--scores", "score")).split()] == want
    assert [int(v) for v in ok(cli("nms", "-", "--scores", "0.9,0.8,0.7,0.95", input=BOXES)).split()] == want
    per_class = tvops.batched_nms(XYXY, scores, torch.tensor([0, 0, 1, 1]), 0.5).tolist()
    doc = json.loads(ok(cli("nms", box_file, "--scores", "score", "--classes", "label", "--json")))
    assert doc["kept"] == per_class and doc["of"] == 4


def test_nms_rows_and_score_file(cli, box_file, tmp_path):
    scores = tmp_path / "scores.txt"
    scores.write_text("0.9\n0.8\n0.7\n0.95\n")
    rows = [json.loads(line) for line in ok(cli("nms", box_file, "--scores", scores, "--rows", "--json",
                                                "--classes", "label")).splitlines()]
    assert rows[0] == {"index": 3, "score": 0.95, "class": "dog", "x1": 2, "y1": 2, "x2": 12, "y2": 12}
    assert ok(cli("nms", box_file, "--scores", "score", "--min-score", "0.92")).split() == ["3"]


@pytest.mark.parametrize("scores,message", [("0.9,0.8", "has 2 values for 4 boxes"),
                                            ("confidence", "not a file, not a column"),
                                            ("label", "non-numeric field 'cat'")])
def test_nms_bad_scores(cli, box_file, scores, message):
    assert message in one_line_error(cli("nms", box_file, "--scores", scores))


def test_pipelines_script_is_valid_bash():
    script = Path(__file__).resolve().parent.parent / "examples" / "pipelines.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
