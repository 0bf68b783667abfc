"""JSON box documents read a chunk of items at a time agree with json.load, errors included."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from segtool.core.errors import SegtoolError
from segtool.core.io import parse_json_text
from segtool.ops.boxes.read import read_boxes
from segtool.ops.boxes.read_table import read_box_table


def _documents():
    rng = np.random.default_rng(0)
    boxes = [[float(v) for v in row] for row in rng.integers(0, 50, (40, 4)).cumsum(1) / 2]
    objects = [{"name": 'a"},{], ' * (i % 3), "box": b, "score": i / 10, "image": f"im{i % 4}"}
               for i, b in enumerate(boxes)]
    named = [{"x": b[0], "y": b[1], "w": b[2], "h": b[3], "image": i % 3} for i, b in enumerate(boxes)]
    yield json.dumps(boxes)
    yield json.dumps(boxes, indent=2)
    yield json.dumps(objects)  # strings holding "}," and "],": a run cut there cannot parse
    yield json.dumps({"meta": {"a": [1, {"b": "],"}]}, "boxes": named, "after": [1, 2]}, indent=1)
    yield "\n# a comment\n\n" + json.dumps(named, separators=(",", ":"))
    yield json.dumps([1, 2, 3, 4], indent=1)  # a single box
    yield "[\n" + ",\n".join(json.dumps(b) for b in boxes) + "\n]\n"


@pytest.mark.parametrize("chunk", [7, 64, 1 << 22])
def test_streamed_document_equals_the_whole_document_reader(chunk):
    for text in _documents():
        old = read_boxes("-", stdin=io.StringIO(text))
        table = read_box_table("-", stdin=io.StringIO(text), chunk_chars=chunk,
                               group="image" if "image" in text else None, keep=["score"])
        assert table.fmt == old.fmt and table.boxes.tolist() == old.tensor().tolist(), text[:60]
        assert [table.where(i) for i in range(len(table))] == [r.where for r in old.records]
        if "image" in text:
            keys = [r.fields["image"] for r in old.records]
            assert [table.group_keys[c] for c in table.groups] == keys
        if "score" in text:
            assert table.extra["score"].tolist() == [r.fields["score"] for r in old.records]


@pytest.mark.parametrize("text", [
    "[[0,0,1,1],", "[[0,0,1,1] [0,0,1,1]]", "[[0,0,1,1],\n  [0,0,1,1]\n  {", '{"boxes": [[0,0,1,1]], }',
    '{"boxes": [[0,0,1,1]]} x', "[[0,0,1,1],\n [0,0,1,1],\n]", '{"a": 1 "boxes": []}',
])
@pytest.mark.parametrize("chunk", [3, 1 << 22])
def test_bad_json_names_the_place_json_names(text, chunk):
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"at line {exc.lineno} column {exc.colno}"
    with pytest.raises(SegtoolError, match="not valid JSON") as info:
        read_box_table("-", stdin=io.StringIO(text), chunk_chars=chunk)
    assert where in str(info.value)


@pytest.mark.parametrize("text,message", [
    ('[[0,0,1,1], [0,0,1], [0,0,1,1]]', "item 2: expected 4 numbers"),
    ('[[0,0,1,1], {"x1": 0}]', "item 2: no box fields"),
    ('[[0,0,1,1], [0,0,"a",1]]', "item 2: non-numeric field 'a'"),
    ("[[0,0,1,1], [0,0,NaN,1]]", "item 2: non-finite value"),
    ('{"boxes": 3}', 'a JSON object document needs a "boxes" list'),
    ('{"other": [[0,0,1,1]],\n "more": 1}', 'a JSON object document needs a "boxes" list'),
    ("[]", "no boxes found"),
    ("[" * 100000 + "]" * 100000, "not valid JSON (nested too deeply"),
    ('{"boxes": ' + "[" * 100000 + "]" * 100000 + "}", "not valid JSON (nested too deeply"),
])
def test_document_errors_are_one_line(text, message):
    with pytest.raises(SegtoolError) as info:
        read_box_table("-", stdin=io.StringIO(text), chunk_chars=16)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_deep_json_is_one_line_in_every_box_reader(cli, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        parse_json_text(deep.read_text())
    with pytest.raises(SegtoolError, match="nested too deeply"):
        read_boxes(deep)
    for args in (["iou", deep, deep], ["box-convert", "--to", "xywh", deep],
                 ["nms", tmp_path / "b.csv", "--scores", deep]):
        (tmp_path / "b.csv").write_text("0,0,1,1\n")
        result = cli(*args)
        assert result.exit_code == 1 and "nested too deeply" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_huge_finite_boxes_give_finite_iou_and_json(cli, tmp_path):
    import torch

    from segtool.ops.boxes import best_match, pairwise_iou
    from segtool.ops.boxes.index import best_match_indexed

    huge = torch.tensor([[0.0, 0, 1e308, 1e308], [-1e308, -1e308, 1e308, 1e308]], dtype=torch.float64)
    for kind in ("iou", "giou", "diou", "ciou"):
        assert torch.isfinite(pairwise_iou(huge, huge, kind)).all()
    assert pairwise_iou(huge, huge).tolist() == [[1, 0.25], [0.25, 1]]
    values, indices = best_match_indexed(huge.numpy(), huge.numpy())
    assert values.tolist() == [1, 1] and indices.tolist() == [0, 1] == best_match(huge, huge)[1].tolist()
    # A power of two is exact: ordinary boxes scaled up give the same bits.
    small = torch.tensor([[0.0, 0, 3, 7], [1, 2, 9.5, 4], [2, 2, 2, 2]], dtype=torch.float64)
    assert torch.equal(pairwise_iou(small * 2.0**1020, small.flip(0) * 2.0**1020, "giou"),
                       pairwise_iou(small, small.flip(0), "giou"))
    path = tmp_path / "huge.csv"
    path.write_text("0,0,1e308,1e308\n-1e308,-1e308,1e308,1e308\n")
    for args in ([], ["--best"], ["--min-iou", "0.1"]):
        result = cli("iou", path, "--json", *args)
        assert result.exit_code == 0 and "nan" not in result.stdout.lower()
        for line in result.stdout.splitlines() if args else [result.stdout]:
            json.loads(line)
    for bad in ("nan", "inf"):
        result = cli("iou", path, "--min-iou", bad)
        assert result.exit_code == 2 and "--min-iou" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_json_output_writes_null_for_non_finite_values():
    import numpy as np

    from segtool.ops.boxes.output import write_matches

    out = io.StringIO()
    write_matches(out, [(np.array([0]), np.array([-1]), np.array([np.nan]))], "iou", "jsonl")
    assert json.loads(out.getvalue()) == {"a": 0, "b": -1, "iou": None}


def test_library_box_functions_name_the_shape_they_need():
    import torch

    from segtool.ops.boxes import best_match, convert_boxes, pairwise_iou, suppress

    for call, shape in [(lambda: pairwise_iou(torch.zeros(3, 5), torch.zeros(2, 4)), r"\(N, 4\), got \(3, 5\)"),
                        (lambda: best_match(torch.zeros(3, 4), torch.zeros(4)), r"\(N, 4\), got \(4,\)"),
                        (lambda: suppress(torch.zeros(4), torch.zeros(4)), r"\(N, 4\), got \(4,\)"),
                        (lambda: suppress(torch.zeros(2, 4), torch.zeros(2, 1)), r"scores of shape \(N,\)"),
                        (lambda: pairwise_iou([[0, 0, 1, 1]], torch.zeros(1, 4)), "torch.Tensor"),
                        (lambda: convert_boxes(torch.zeros(2, 3), "xyxy", "xywh"), r"\(\.\.\., 4\)")]:
        with pytest.raises(ValueError, match=shape):
            call()


def test_box_commands_name_the_device_only_when_it_matters(cli, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("0,0,1,1\n0,0,2,2\n")
    assert "device:" not in cli("iou", path).stderr
    assert "device:" not in cli("anchors", "--size", "4x4", "--at", "1,1").stderr
    import torch

    threads = torch.get_num_threads()  # asked for: named (the same count, so no other test is slowed)
    said = cli("iou", path, "--device", "cpu", "--threads", str(threads)).stderr
    assert f"device: cpu, {threads} thread{'s' * (threads != 1)}\n" in said
