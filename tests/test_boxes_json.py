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
