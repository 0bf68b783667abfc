"""Dataset-scale boxes: array readers, --group, and the spatial index against the full matrix (exact, ties included)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from segtool.core.errors import SegtoolError
from segtool.ops.boxes.groups import align_groups, grouped_matches
from segtool.ops.boxes.index import best_match_indexed, candidate_pairs
from segtool.ops.boxes.iou import best_match, pairs_above
from segtool.ops.boxes.read import read_boxes
from segtool.ops.boxes.read_table import read_box_table


def random_boxes(rng, n: int) -> np.ndarray:
    """Boxes on a half-pixel lattice: many equal, touching and zero-area boxes, so ties are common."""
    xy = rng.integers(0, 40, (n, 2)) / 2
    return np.concatenate((xy, xy + rng.integers(0, 12, (n, 2)) / 2), 1)


def gather(chunks):
    parts = list(chunks)
    if not parts:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def test_index_equals_full_matrix_on_random_boxes():
    rng = np.random.default_rng(0)
    for trial in range(60):
        a, b = random_boxes(rng, int(rng.integers(1, 50))), random_boxes(rng, int(rng.integers(1, 50)))
        if trial % 2:
            b = np.concatenate((b, a[: len(a) // 2]))  # exact duplicates: tied best matches
        values, indices = best_match_indexed(a, b, max_pairs=int(rng.integers(1, 40)))
        want_v, want_i = best_match(torch.from_numpy(a), torch.from_numpy(b))
        assert np.array_equal(values, want_v.numpy()) and np.array_equal(indices, want_i.numpy())
        for threshold in (1e-12, 0.25, 1.0):
            ia, ib, v = gather(candidate_pairs(a, b, max_pairs=int(rng.integers(1, 40))))
            keep = v >= threshold
            wa, wb, wv = (t.numpy() for t in pairs_above(torch.from_numpy(a), torch.from_numpy(b), threshold))
            assert np.array_equal(ia[keep], wa) and np.array_equal(ib[keep], wb) and np.array_equal(v[keep], wv)


def grouped_tables(rng, n: int, m: int):
    """Two CSVs sharing some image ids, rows shuffled (groups not contiguous); one id on each side only."""
    a, b = random_boxes(rng, n), random_boxes(rng, m)
    ga, gb = rng.integers(0, 6, n), rng.integers(1, 7, m)

    def csv(boxes, groups):
        return "image,x1,y1,x2,y2\n" + "".join(f"im{g},{','.join(map(str, r))}\n" for g, r in zip(groups, boxes, strict=True))
    return (read_box_table("-", stdin=io.StringIO(csv(a, ga)), group="image"),
            read_box_table("-", stdin=io.StringIO(csv(b, gb)), group="image"), a, b, ga, gb)


@pytest.mark.parametrize("kind", ["iou", "giou"])
def test_grouped_best_equals_per_group_full_matrix(kind):
    rng = np.random.default_rng(1)
    ta, tb, a, b, ga, gb = grouped_tables(rng, 120, 90)
    grouping = align_groups(ta, tb)
    assert (grouping.summary.only_a, grouping.summary.only_b) == (1, 1)  # im0 only in A, im6 only in B
    ia, ib, v = gather(grouped_matches(ta.xyxy(), tb.xyxy(), grouping, kind, best=True, min_iou=None))
    want = []
    for g in dict.fromkeys(ga.tolist()):  # groups in order of first appearance in A
        rows_a, rows_b = np.flatnonzero(ga == g), np.flatnonzero(gb == g)
        if len(rows_b):
            values, where = best_match(torch.from_numpy(a[rows_a]), torch.from_numpy(b[rows_b]), kind)
            want += list(zip(rows_a.tolist(), rows_b[where.numpy()].tolist(), values.tolist(), strict=True))
    assert list(zip(ia.tolist(), ib.tolist(), v.tolist(), strict=True)) == want


def test_array_reader_agrees_with_the_line_reader(tmp_path):
    text = "# boxes\nx,y,w,h,score\n0,0,10,10,0.9\n\n1.5,2,3,4,0.8\n"
    path = tmp_path / "b.csv"
    path.write_text(text)
    table = read_box_table(path, keep=["score"])
    old = read_boxes(path)
    assert table.fmt == old.fmt == "xywh" and table.boxes.tolist() == old.tensor().tolist()
    assert [table.where(i) for i in range(len(table))] == [r.where for r in old.records] == ["line 3", "line 5"]
    lines = "".join(json.dumps({"x1": i, "y1": 0, "x2": i + 1, "y2": 1, "img": i % 2}) + "\n" for i in range(5))
    grouped = read_box_table("-", stdin=io.StringIO(lines), group="img", chunk_chars=30)
    assert grouped.groups.tolist() == [0, 1, 0, 1, 0] and grouped.group_keys == [0, 1]


@pytest.mark.parametrize("text,group,message", [
    ("image,x1,y1,x2,y2\na,0,0,1,1\n", "img", "line 1 (header): no column 'img' for --group"),
    ('{"x1":0,"y1":0,"x2":1,"y2":1,"img":1}\n{"x1":0,"y1":0,"x2":1,"y2":1,"img":"b"}\n', "img",
     "line 2: group 'img' is \"b\", a string, but earlier keys are numbers"),
    ('{"x1":0,"y1":0,"x2":1,"y2":1,"img":null}\n', "img", "line 1: group 'img' is null"),
    ("img,x1,y1,x2,y2\na,0,0,1,1\nb,0,nan,1,1\n", "img", "line 3: non-finite value 'nan'"),
])
def test_bad_group_input(text, group, message):
    with pytest.raises(SegtoolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_box_table("-", stdin=io.StringIO(text), group=group)


def test_inverted_box_names_its_line():
    table = read_box_table("-", stdin=io.StringIO("img,x1,y1,x2,y2\na,0,0,1,1\nb,5,5,1,9\n"), group="img")
    with pytest.raises(SegtoolError, match="line 3: inverted box"):
        table.xyxy()


def test_cli_grouped_best_and_nms(cli, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("image,x1,y1,x2,y2\nq,0,0,10,10\np,0,0,10,10\nq,20,20,30,30\nz,0,0,1,1\n")
    b.write_text("x1,y1,x2,y2,image\n0,0,10,10,p\n21,21,30,30,q\n0,0,10,10,q\n")
    result = cli("iou", a, b, "--best", "--group", "image", "--csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["image,a,b,iou", "q,0,2,1", "q,2,1,0.81", "p,1,0,1"]
    assert "1 only in A (1 boxes without a match)" in result.stderr
    jsonl = [json.loads(line) for line in cli("iou", a, b, "--min-iou", "0.9", "--group", "image",
                                               "--json").stdout.splitlines()]
    assert jsonl == [{"image": "q", "a": 0, "b": 2, "iou": 1}, {"image": "p", "a": 1, "b": 0, "iou": 1}]
    kept = cli("nms", b, "--scores", "0.9,0.8,0.7", "--group", "image", "--csv").stdout.splitlines()
    assert kept == ["image,index", "p,0", "q,1", "q,2"]
    missing = cli("iou", a, b, "--best", "--group", "img")
    assert missing.exit_code == 1 and missing.stdout == "" and "no column 'img'" in missing.stderr
