"""Issue 14 polish: help shows real metavars, plurals agree with counts."""

from __future__ import annotations

import json
import re

import pytest

from segtool.cli.app import app

TYPE_METAVARS = re.compile(r"<(bool|str|int|float|path|list\[|int range|float range)")


def _command_names():
    from typer.main import get_command

    return sorted(get_command(app).commands)


@pytest.mark.parametrize("name", ["train", "iou", "compare", "stylize", "label2color", "evaluate"])
def test_help_shows_words_not_python_types(cli, name):
    result = cli(name, "--help")
    assert result.exit_code == 0, result.stderr
    assert not TYPE_METAVARS.search(result.stdout), TYPE_METAVARS.search(result.stdout).group(0)


def test_every_command_help_is_free_of_type_metavars(cli):
    for name in _command_names():
        text = cli(name, "--help").stdout
        assert not TYPE_METAVARS.search(text), (name, TYPE_METAVARS.search(text).group(0))
    help_text = cli("train", "--help").stdout
    assert re.search(r"--threads\s+N \[x>=1\]", help_text)  # the range stays, after a word
    assert re.search(r"--force\s+-f\s+Overwrite", help_text)  # flags show no metavar


def test_plural_agrees_with_the_count():
    from segtool.core.console import plural

    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert plural(1, "box", "boxes") == "1 box" and plural(3, "box", "boxes") == "3 boxes"


def test_one_box_one_thread_read_singular(cli, tmp_path):
    source = tmp_path / "boxes.csv"
    source.write_text("1,2,3,4\n")
    result = cli("box-convert", "--to", "xywh", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, result.stderr
    assert "wrote 1 box to" in result.stderr
    result = cli("iou", source, "--threads", "1")
    assert result.exit_code == 0, result.stderr
    assert "device: cpu, 1 thread\n" in result.stderr


def test_label2color_void_value_draws_that_value_as_void(cli, tmp_path):
    import numpy as np
    from PIL import Image

    from segtool.data.palettes import get_palette

    mask = tmp_path / "m.png"
    Image.fromarray(np.array([[0, 1], [30, 255]], dtype=np.uint8), mode="L").save(mask)
    plain = cli("label2color", mask, "-o", tmp_path / "plain.png", "--json")
    assert plain.exit_code == 0, plain.stderr
    assert '"unknown_pixels": 1' in plain.stdout  # 30 is no VOC class
    result = cli("label2color", mask, "-o", tmp_path / "void.png", "--void-value", "30", "--json")
    assert result.exit_code == 0, result.stderr
    assert '"unknown_pixels": 0' in result.stdout
    rgb = np.asarray(Image.open(tmp_path / "void.png").convert("RGB"))
    assert (rgb[1, 0] == rgb[1, 1]).all()  # 30 looks like 255 (void)
    assert tuple(rgb[0, 1]) == tuple(get_palette("voc").colors[1])


def test_voc_stats_json_says_why_a_weight_is_null(cli, tmp_path):
    from tests.test_voc_stats import _fix_jpg_names, _voc

    voc = _voc(tmp_path, {"a": ("train", (8, 8), 1), "b": ("train", (8, 8), 2)})
    _fix_jpg_names(voc)
    result = cli("voc-stats", voc, "--json")
    assert result.exit_code == 0, result.stderr
    classes = {c["name"]: c for c in json.loads(result.stdout)["classes"]}
    assert classes["aeroplane"]["weight_enet"] is not None and classes["aeroplane"]["weight_note"] is None
    cat = classes["cat"]
    assert cat["weight_enet"] is None and cat["weight_median_freq"] is None
    assert "no pixels in split train" in cat["weight_note"]
    assert "never occur in split train" in result.stderr


def test_overlay_leaves_background_and_void_untinted_unless_asked(cli, tmp_path):
    import numpy as np
    from PIL import Image

    from segtool.data.palettes import get_palette
    from segtool.viz.overlay import blend_overlay

    labels = np.array([[0, 1], [255, 0]], dtype=np.uint8)
    image = np.full((2, 2, 3), 200, np.uint8)
    voc = get_palette("voc")
    out = blend_overlay(image, labels, voc, alpha=0.5)
    assert (out[labels != 1] == 200).all() and (out[0, 1] != 200).any()
    tinted = blend_overlay(image, labels, voc, alpha=0.5, tint_background=True)
    assert (tinted[0, 0] == 100).all()  # half-way to VOC's black background
    road = blend_overlay(image, labels, get_palette("cityscapes"), alpha=0.5)
    assert (road[0, 0] != 200).any()  # cityscapes' class 0 is road, a real class

    Image.fromarray(labels, mode="L").save(tmp_path / "m.png")
    Image.fromarray(image).save(tmp_path / "i.png")
    for flag, expected in (((), 200), (("--tint-background",), 100)):
        result = cli("show-mask", tmp_path / "m.png", "-i", tmp_path / "i.png", "-o", tmp_path / "o.png", "-f", *flag)
        assert result.exit_code == 0, result.stderr
        assert (np.asarray(Image.open(tmp_path / "o.png").convert("RGB"))[0, 0] == expected).all()


def test_compare_titles_wrap_to_small_images_instead_of_being_cut(tmp_path):
    import numpy as np

    from segtool.data.palettes import get_palette
    from segtool.viz.fonts import fit_text_lines, text_size
    from segtool.viz.grid import CompareSample, render_compare_grid

    title = "2007_000032 · pixel acc 0.953 · mIoU 0.812"
    font, lines = fit_text_lines(title, 60)
    assert len(lines) > 1 and all(text_size(line, font)[0] <= 60 for line in lines)
    assert " ".join(lines).replace(" · ", " ") == title.replace(" · ", " ")  # nothing cut
    assert fit_text_lines("ground truth", 40)[1] == ["ground", "truth"]

    labels = np.zeros((16, 16), np.uint8)
    sample = CompareSample(np.zeros((16, 16, 3), np.uint8), labels, labels, name="2007_000032")
    plain = render_compare_grid([sample], get_palette("voc"))
    titled = render_compare_grid([sample], get_palette("voc"), titles=True)
    assert titled.width > plain.width  # cells widen to fit "prediction" at the smallest size
    assert titled.height > plain.height + 3 * 9  # header + a row title of several lines


@pytest.mark.parametrize(("option", "value"), [("--lr", "nan"), ("--lr", "inf"), ("--lr", "0"),
                                               ("--style-weight", "nan"), ("--feather", "-inf")])
def test_stylize_refuses_non_finite_or_non_positive_numbers_in_one_line(cli, tmp_path, option, value):
    result = cli("stylize", tmp_path / "a.jpg", tmp_path / "b.jpg", "-o", tmp_path / "out.png", option, value)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {option}: must be a") and len(result.stderr.splitlines()) == 1


def test_style_config_validate_refuses_nan():
    from segtool.core.errors import SegtoolError
    from segtool.style import StyleConfig

    with pytest.raises(SegtoolError, match="--lr must be a positive finite number"):
        StyleConfig(lr=float("nan")).validate()


def test_nms_reads_stdin_once(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text("0.1\n0.2\n")  # a file named "-": "-" still means stdin
    boxes = "0,0,10,10\n1,1,10,10\n"
    twice = cli("nms", "-", "--scores", "-", input=boxes)
    assert twice.exit_code == 2 and "only one input can be - (stdin)" in twice.stderr
    (tmp_path / "b.csv").write_text(boxes)
    from_stdin = cli("nms", "b.csv", "--scores", "-", input="0.9\n0.2\n")
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert from_stdin.stdout.split() == ["0"]  # the stdin scores (box 0 best), not the file "-" (box 1)

    from segtool.core.errors import SegtoolError
    from segtool.ops.boxes.box_table import table_values
    from segtool.ops.boxes.read_table import read_box_table

    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(boxes))
    table = read_box_table("-", None)
    with pytest.raises(SegtoolError, match="stdin already gave the boxes"):
        table_values(table, "-", "--scores")


def test_default_threads_is_one_on_two_cores_and_torch_choice_above(cli, tmp_path, monkeypatch):
    import torch

    from segtool.core import device

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(device.os, "cpu_count", lambda: 8)
        assert device.default_threads() is None
        monkeypatch.setattr(device.os, "cpu_count", lambda: 2)
        assert device.default_threads() == 1
        (tmp_path / "b.csv").write_text("0,0,10,10\n")
        result = cli("iou", tmp_path / "b.csv", "--device", "cpu")  # no --threads: the default
        assert result.exit_code == 0, result.stderr
        assert "device: cpu, 1 thread\n" in result.stderr
    finally:
        torch.set_num_threads(before)
