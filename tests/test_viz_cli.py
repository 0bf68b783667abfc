"""`segtool show-mask | compare | plot-log` end to end, bad inputs included."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from segtool.data.palettes import get_palette
from segtool.viz.curves import MISSING_MATPLOTLIB, plot_curves, read_metrics
from segtool.viz.overlay import WARNING_COLOR, blend_overlay

VOC = get_palette("voc")


def _mask_png(path, labels, mode="P"):
    labels = np.asarray(labels, dtype=np.uint8)
    img = Image.fromarray(labels)  # mode L: the values are the indices
    if mode == "P":
        img = img.convert("L")
        img = Image.frombytes("P", img.size, labels.tobytes())
        img.putpalette(VOC.pil_palette())
    img.save(path)
    return path


def _image_png(path, shape=(6, 8), seed=1):
    pixels = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path, pixels


def _labels(shape=(6, 8)):
    labels = np.zeros(shape, dtype=np.uint8)
    labels[1:4, 2:6] = 15  # person
    labels[4:, :] = 255
    return labels


def _one_line_error(result):
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_show_mask_overlay_matches_the_blend(cli, tmp_path):
    mask = _mask_png(tmp_path / "m.png", _labels())
    image, pixels = _image_png(tmp_path / "i.png")
    out = tmp_path / "out.png"
    result = cli("show-mask", mask, "--image", image, "--alpha", "0.25", "-o", out)
    assert result.exit_code == 0, result.stderr
    got = np.asarray(Image.open(out).convert("RGB"))
    assert (got == blend_overlay(pixels, _labels(), VOC, alpha=0.25)).all()
    expected = np.floor(0.75 * pixels[2, 3] + 0.25 * np.array([192, 128, 128]) + 0.5)
    assert (got[2, 3] == expected).all()
    assert (got[5] == pixels[5]).all()  # void row untouched


def test_show_mask_to_stdout_with_legend_outline_and_l_mask(cli, tmp_path):
    mask = _mask_png(tmp_path / "m.png", _labels((40, 60)), mode="L")
    result = cli("show-mask", mask, "--legend", "--outline", "--ignore-color", "1,2,3", "-o", "-")
    assert result.exit_code == 0, result.stderr
    picture = Image.open(io.BytesIO(result.stdout_bytes))
    assert picture.format == "PNG" and picture.height > 40  # the legend strip is below the mask
    pixels = np.asarray(picture.convert("RGB"))
    assert tuple(pixels[39, 0]) == (1, 2, 3)  # void in the ignore colour
    assert tuple(pixels[1, 3]) == (255, 255, 255)  # outline on the person's top edge
    assert tuple(pixels[2, 3]) == (192, 128, 128)  # inside the person
    assert tuple(pixels[2, 40]) == (0, 0, 0)  # background, away from any edge


def test_show_mask_term_preview(cli, tmp_path):
    mask = _mask_png(tmp_path / "m.png", _labels())
    result = cli("show-mask", mask, "--term", "--legend")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("▀") == 8 * 3  # 8 columns x 6 pixel rows / 2
    assert "\x1b[" in result.stdout  # coloured
    for name in ("background", "person", "void"):
        assert name in result.stdout
    assert "aeroplane" not in result.stdout


def test_show_mask_size_mismatch_errors_or_resizes(cli, tmp_path):
    mask = _mask_png(tmp_path / "m.png", _labels((3, 4)))
    image, _ = _image_png(tmp_path / "i.png")
    out = tmp_path / "out.png"
    result = cli("show-mask", mask, "--image", image, "-o", out)
    _one_line_error(result)
    assert "4x3" in result.stderr and "8x6" in result.stderr and not out.exists()
    result = cli("show-mask", mask, "--image", image, "--resize", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert Image.open(out).size == (8, 6)


def test_show_mask_counts_values_outside_palette(cli, tmp_path):
    labels = _labels()
    labels[0, :3] = 40
    mask = _mask_png(tmp_path / "m.png", labels)
    out = tmp_path / "out.png"
    result = cli("show-mask", mask, "-o", out)
    assert result.exit_code == 0
    stderr = " ".join(result.stderr.split())  # rich wraps long warnings
    assert "warning" in stderr and "3 pixels" in stderr and "): 40;" in stderr
    assert tuple(np.asarray(Image.open(out).convert("RGB"))[0, 0]) == WARNING_COLOR


@pytest.mark.parametrize("case", ["missing", "garbage", "rgb"])
def test_show_mask_unreadable_inputs(cli, tmp_path, case):
    mask = tmp_path / "m.png"
    if case == "garbage":
        mask.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    elif case == "rgb":
        Image.new("RGB", (4, 4), (128, 0, 0)).save(mask)
    out = tmp_path / "out.png"
    result = cli("show-mask", mask, "-o", out)
    _one_line_error(result)
    assert str(mask) in result.stderr and not out.exists()


def test_show_mask_option_errors(cli, tmp_path):
    mask = _mask_png(tmp_path / "m.png", _labels())
    out = tmp_path / "out.png"
    out.write_bytes(b"keep")
    result = cli("show-mask", mask, "-o", out)
    _one_line_error(result)
    assert "--force" in result.stderr and out.read_bytes() == b"keep"
    assert cli("show-mask", mask, "--ignore-color", "1,2", "-o", tmp_path / "x.png").exit_code == 2
    assert cli("show-mask", mask, "--alpha", "2", "-o", tmp_path / "x.png").exit_code == 2
    assert cli("show-mask", mask).exit_code == 2  # neither -o nor --term
    assert not (tmp_path / "x.png").exists()


def test_compare_grid_and_count_mismatch(cli, tmp_path):
    from segtool.viz.grid import GAP

    image, _ = _image_png(tmp_path / "i.png")
    mask = _mask_png(tmp_path / "m.png", _labels())
    out = tmp_path / "grid.png"
    args = ["--image", image, "--pred", mask, "--gt", mask]
    result = cli("compare", *args, *args, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert Image.open(out).size == (3 * 8 + 4 * GAP, 2 * 6 + 3 * GAP)
    result = cli("compare", *args, "--image", image, "--pred", mask, "-o", tmp_path / "bad.png")
    assert result.exit_code == 2 and "--gt" in result.stderr
    assert not (tmp_path / "bad.png").exists()
    titled = tmp_path / "titled.png"
    assert cli("compare", *args, "--titles", "-o", titled).exit_code == 0
    assert Image.open(titled).height > 6 + 2 * GAP


def _write_run(run, lines):
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    return run


def _records(n=5):
    return [json.dumps({"epoch": e, "train_loss": 2 / e, "val_loss": None if e == 1 else 2.5 / e,
                        "pixel_acc": 1 - 0.5 / e, "miou": 0.5 - 0.4 / e, "lr": 0.1 / e}) for e in range(1, n + 1)]


def test_read_metrics_tolerates_a_truncated_last_line_only(tmp_path):
    run = _write_run(tmp_path / "run", [*_records(3), '{"epoch": 4, "tra'])
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [1, 2, 3] and records[0]["val_loss"] is None
    bad = _write_run(tmp_path / "bad", [_records()[0], "{oops", _records()[1]])
    with pytest.raises(Exception, match="line 2"):
        read_metrics(bad)


def test_plot_log_writes_png_of_requested_size(cli, tmp_path):
    pytest.importorskip("matplotlib")
    run = _write_run(tmp_path / "run", _records())
    out = tmp_path / "curves.png"
    result = cli("plot-log", run, "-o", out, "--size", "320x240")
    assert result.exit_code == 0, result.stderr
    assert Image.open(out).size == (320, 240)
    default = cli("plot-log", run, "--size", "300x200")
    assert default.exit_code == 0 and Image.open(run / "curves.png").size == (300, 200)


def test_plot_log_without_matplotlib_gives_the_install_hint(cli, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    run = _write_run(tmp_path / "run", _records())
    result = cli("plot-log", run)
    _one_line_error(result)
    assert result.stderr == f"error: {MISSING_MATPLOTLIB}\n"
    assert not (run / "curves.png").exists()
    with pytest.raises(Exception, match="segtool\\[plot\\]"):
        plot_curves(read_metrics(run), tmp_path / "x.png")
    term = cli("plot-log", run, "--term")  # the terminal table needs no matplotlib
    assert term.exit_code == 0, term.stderr
    assert "miou" in term.stdout and "▁" in term.stdout and "mean_acc" not in term.stdout


def test_plot_log_bad_run_dirs(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("plot-log", empty)
    _one_line_error(result)
    assert "metrics.jsonl" in result.stderr and not (empty / "curves.png").exists()
    _one_line_error(cli("plot-log", tmp_path / "nope"))
    assert cli("plot-log", empty, "--size", "big").exit_code == 2


def test_show_mask_on_real_voc_mask(cli, fixtures_dir, tmp_path):
    root = fixtures_dir / "voc2012-mini"
    mask, image = root / "SegmentationClass" / "2011_000003.png", root / "JPEGImages" / "2011_000003.jpg"
    labels = np.asarray(Image.open(mask))
    pixels = np.asarray(Image.open(image).convert("RGB"))
    out = tmp_path / "o.png"
    result = cli("show-mask", mask, "--image", image, "-o", out)
    assert result.exit_code == 0 and "warning" not in result.stderr
    got = np.asarray(Image.open(out).convert("RGB"))
    void = labels == 255
    assert void.any() and (got[void] == pixels[void]).all()
    assert (got[~void] == blend_overlay(pixels, labels, VOC)[~void]).all()
    term = cli("show-mask", mask, "--term", "--legend")
    present = {VOC.names[v] for v in np.unique(labels) if v < 21}
    assert all(name in term.stdout for name in present)
    assert not any(name in term.stdout for name in set(VOC.names) - present)


def test_segnet_camvid_void_value(cli, fixtures_dir, tmp_path):
    root = fixtures_dir / "camvid-segnet11-mini"
    mask, image = root / "trainannot" / "0001TP_006690.png", root / "train" / "0001TP_006690.png"
    plain = cli("show-mask", mask, "--palette", "camvid11", "--term", "--legend")
    assert "--void-value 11" in " ".join(plain.stderr.split())  # 11 is SegNet's void: say how to fix
    fixed = cli("show-mask", mask, "--image", image, "--palette", "camvid11", "--void-value", "11",
                "--term", "--legend")
    assert fixed.exit_code == 0 and "warning" not in fixed.stderr
    assert "void" in fixed.stdout and "outside palette" not in fixed.stdout
