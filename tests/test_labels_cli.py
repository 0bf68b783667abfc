"""`segtool palette | colormap2label | label2color | make-demo-data` from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segtool.data.palettes import get_palette


def _color_mask(path, labels, palette="voc"):
    Image.fromarray(get_palette(palette).colorize(np.asarray(labels))).save(path)
    return path


def test_palette_listing_and_json(cli, fixtures_dir):
    result = cli("palette", "voc")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[15] == "15\tperson\t192,128,128" and lines[-1] == "255\t(ignore)\t224,224,192"
    data = json.loads(cli("palette", fixtures_dir / "camvid32" / "class_dict.csv", "--json").stdout)
    assert data["num_classes"] == 31 and data["classes"][0] == {"index": 0, "name": "Animal", "color": [64, 128, 64]}
    assert "cityscapes" in cli("palette").stdout
    bad = cli("palette", "pascal")
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "unknown palette" in bad.stderr


def test_round_trip_mask_label2color_colormap2label_is_identity(cli, fixtures_dir, tmp_path):
    masks = fixtures_dir / "voc2012-mini" / "extra_masks"
    result = cli("label2color", masks, "--out-dir", tmp_path / "rgb")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "rgb" / "2007_000032.png").mode == "RGB"
    result = cli("colormap2label", tmp_path / "rgb", "--out-dir", tmp_path / "labels", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"]["files"] == 10 and report["total"]["unknown_pixels"] == 0
    for original in masks.glob("*.png"):
        back = Image.open(tmp_path / "labels" / original.name)
        assert back.mode == "P"
        assert (np.array(back) == np.array(Image.open(original))).all()  # 255 stays 255
        assert back.getpalette()[: 3 * 21] == Image.open(original).getpalette()[: 3 * 21]


def test_stdin_paths_gray_and_palette_mode_input(cli, tmp_path, fixtures_dir):
    a = _color_mask(tmp_path / "a.png", [[0, 1], [2, 255]])
    voc_p = fixtures_dir / "voc2012-mini" / "SegmentationClass" / "2011_000003.png"  # P input: via its palette
    result = cli("colormap2label", "-", "--out-dir", tmp_path / "out", "--gray", input=f"{a}\n{voc_p}\n")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "out" / "a.png").mode == "L"
    assert np.array(Image.open(tmp_path / "out" / "a.png")).tolist() == [[0, 1], [2, 255]]
    assert (np.array(Image.open(tmp_path / "out" / "2011_000003.png")) == np.array(Image.open(voc_p))).all()


def test_unknown_colours_counted_error_and_tolerance(cli, tmp_path):
    rgb = get_palette("voc").colorize(np.array([[0, 1, 1], [15, 15, 0]]))
    rgb[1, 2] = (5, 250, 9)
    rgb[0, 2] = (126, 3, 1)
    Image.fromarray(rgb).save(tmp_path / "m.png")
    result = cli("colormap2label", tmp_path / "m.png", "-o", tmp_path / "l.png", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["files"][0]["unknown_pixels"] == 2
    assert "2 of 6 pixels" in result.stderr
    result = cli("colormap2label", tmp_path / "m.png", "-o", tmp_path / "e.png", "--unknown", "error")
    assert result.exit_code == 1 and not (tmp_path / "e.png").exists()
    assert result.stderr.strip() == ("error: " + str(tmp_path / "m.png") + ": colour (126, 3, 1) at (x=2, y=0) is "
                                     "not in palette voc (2 such pixels; use --unknown ignore, or --tolerance to "
                                     "snap near colours)")
    result = cli("colormap2label", tmp_path / "m.png", "-o", tmp_path / "t.png", "--tolerance", "5", "--json")
    assert np.array(Image.open(tmp_path / "t.png")).tolist() == [[0, 1, 1], [15, 15, 255]]
    assert json.loads(result.stdout)["total"]["snapped_pixels"] == 1


def test_jpeg_saved_colour_mask_with_tolerance(cli, tmp_path):
    labels = np.zeros((32, 32), np.uint8)
    labels[8:24, 8:24] = 12
    Image.fromarray(get_palette("voc").colorize(labels)).save(tmp_path / "j.jpg", quality=90)
    result = cli("colormap2label", tmp_path / "j.jpg", "-o", tmp_path / "j.png", "--tolerance", "40")
    assert result.exit_code == 0
    out = np.array(Image.open(tmp_path / "j.png"))
    assert (out == labels).mean() > 0.97


def test_bad_inputs_one_line_nonzero_nothing_written(cli, tmp_path):
    a = _color_mask(tmp_path / "a.png", [[0, 1]])
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.png").write_text("not an image")
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tif")
    cases = [
        (("colormap2label", tmp_path / "empty", "-d", tmp_path / "o1"), "no input files"),
        (("colormap2label", tmp_path / "missing.png", "-d", tmp_path / "o2"), "no such file"),
        (("colormap2label", a, tmp_path / "notes.png", "-d", tmp_path / "o3"), "notes.png: not an image"),
        (("label2color", tmp_path / "f.tif", "-o", tmp_path / "o4.png"), "f.tif"),
        (("colormap2label", a, "-o", a), "already exists"),
        (("colormap2label", a, "-o", tmp_path / "x.png", "--palette", "nope.csv"), "palette file not found"),
    ]
    for args, words in cases:
        result = cli(*args)
        assert result.exit_code == 1, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert not (tmp_path / "o3" / "notes.png").exists() and not (tmp_path / "o4.png").exists()
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no temp files left
    assert cli("colormap2label", a, a, "-o", tmp_path / "y.png").exit_code == 1  # -o with two inputs
    assert cli("colormap2label", a).exit_code == 2  # neither -o nor --out-dir
    assert cli("colormap2label", a, "-o", tmp_path / "y.png", "--unknown", "maybe").exit_code == 2


def test_force_overwrites(cli, tmp_path):
    a = _color_mask(tmp_path / "a.png", [[0, 1]])
    (tmp_path / "l.png").write_bytes(b"old")
    assert cli("colormap2label", a, "-o", tmp_path / "l.png").exit_code == 1
    assert (tmp_path / "l.png").read_bytes() == b"old"
    assert cli("colormap2label", a, "-o", tmp_path / "l.png", "--force").exit_code == 0
    assert np.array(Image.open(tmp_path / "l.png")).tolist() == [[0, 1]]


def test_label2color_counts_values_outside_palette(cli, tmp_path):
    Image.fromarray(np.array([[0, 30], [255, 1]], np.uint8)).save(tmp_path / "l.png")
    result = cli("label2color", tmp_path / "l.png", "-o", tmp_path / "c.png", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["total"]["unknown_pixels"] == 1
    rgb = np.array(Image.open(tmp_path / "c.png"))
    assert tuple(rgb[1, 0]) == (224, 224, 192) and tuple(rgb[1, 1]) == (128, 0, 0)


@pytest.mark.parametrize("extra", [[], ["--force"]])
def test_make_demo_data_cli(cli, tmp_path, extra):
    out = tmp_path / "demo"
    result = cli("make-demo-data", out, "--train", "2", "--val", "1", "--size", "48", "--classes", "3", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["class_names"] == ["background", "aeroplane", "bicycle", "bird"]
    again = cli("make-demo-data", out, "--train", "3", "--val", "1", "--size", "48", *extra)
    assert again.exit_code == (0 if extra else 1)
    assert len(list((out / "JPEGImages").iterdir())) == (4 if extra else 3)
