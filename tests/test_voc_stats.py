"""`segtool voc-stats`: counts against independent numpy counts, problems, crops, workers, formats."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from segtool.data.masks import write_label_png
from segtool.data.palettes import get_palette
from segtool.data.stats import class_weights, dataset_stats


def _voc(root, specs):
    """specs: id -> (split, (w, h), label fill). Returns the VOC2012 folder."""
    voc = root / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    splits: dict[str, list[str]] = {}
    for i, (name, (split, (w, h), fill)) in enumerate(specs.items()):
        splits.setdefault(split, []).append(name)
        Image.fromarray(np.full((h, w, 3), (10 * i, 100, 200), np.uint8)).save(voc / "JPEGImages" / f"{name}.png")
        mask = np.zeros((h, w), np.uint8)
        mask[: h // 2] = fill
        mask[h // 2] = 255
        write_label_png(mask, voc / "SegmentationClass" / f"{name}.png", get_palette("voc"))
    for split, names in splits.items():
        (voc / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return voc


def _fix_jpg_names(voc):
    # The VOC reader expects .jpg; the synthetic images are lossless PNG bytes under that name.
    for path in (voc / "JPEGImages").glob("*.png"):
        path.rename(path.with_suffix(".jpg"))


def test_fixture_class_counts_match_numpy(cli, fixtures_dir):
    root = fixtures_dir / "voc2012-mini"
    result = cli("voc-stats", root, "--json", "--workers", "2")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    expected = np.zeros(256, np.int64)
    present = np.zeros(256, np.int64)
    for name in (root / "ImageSets/Segmentation/train.txt").read_text().split():
        values = np.array(Image.open(root / "SegmentationClass" / f"{name}.png"))
        counts = np.bincount(values.ravel(), minlength=256)
        expected += counts
        present += counts > 0
    assert [c["pixels"] for c in report["classes"]] == expected[:21].tolist()
    assert [c["images"] for c in report["classes"]] == present[:21].tolist()
    assert report["void_pixels"] == expected[255] > 0  # 255 stays 255, never becomes background
    assert report["images"] == 3 and report["problems"] == []
    assert report["image_size"]["most_common"] == [500, 375]
    assert "person" in result.stderr and "void" in result.stderr  # the table is on stderr


def test_problems_listed_exit_code_only_with_strict(cli, tmp_path):
    voc = _voc(tmp_path, {"a": ("train", (8, 6), 1), "b": ("train", (8, 6), 40), "c": ("train", (8, 6), 2),
                          "d": ("train", (8, 6), 3), "e": ("train", (8, 6), 3)})
    _fix_jpg_names(voc)
    (voc / "JPEGImages" / "c.jpg").unlink()
    (voc / "SegmentationClass" / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    write_label_png(np.zeros((3, 3), np.uint8), voc / "SegmentationClass" / "e.png", force=True)
    result = cli("voc-stats", voc, "--json", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    problems = {p["file"].split("/")[-1]: p["problem"] for p in json.loads(result.stdout)["problems"]}
    assert set(problems) == {"b.png", "c.jpg", "d.png", "e.png"}
    assert "40" in problems["b.png"] and "not found" in problems["c.jpg"]
    assert "corrupt" in problems["d.png"] or "not an image" in problems["d.png"]
    assert "3x3" in problems["e.png"]
    assert "c.jpg: file not found" in result.stderr
    strict = cli("voc-stats", voc, "--strict", "-q")
    assert strict.exit_code == 1 and strict.stderr.strip().endswith("4 problems found (--strict)")


def test_crop_counts_per_split_mean_std_and_workers_agree(tmp_path):
    voc = _voc(tmp_path, {"a": ("train", (40, 30), 1), "b": ("train", (20, 30), 2), "c": ("val", (50, 40), 3),
                          "d": ("val", (10, 10), 1)})
    _fix_jpg_names(voc)
    one = dataset_stats("voc", tmp_path, "all", crop=(25, 30), mean_std=True, workers=1)
    two = dataset_stats("voc", tmp_path, "all", crop=(25, 30), mean_std=True, workers=2)
    assert one == two
    assert one["crop"]["at_least"] == {"train": 1, "val": 1} and one["crop"]["of"] == {"train": 2, "val": 2}
    assert one["images"] == 4 and one["splits"] == {"train": 2, "val": 2}
    pixels = np.concatenate([np.asarray(Image.open(p)).reshape(-1, 3) for p in sorted((voc / "JPEGImages").iterdir())])
    assert np.allclose(one["mean"], pixels.mean(axis=0) / 255, atol=1e-5)
    assert np.allclose(one["std"], pixels.std(axis=0) / 255, atol=1e-5)


def test_class_weights_formulas():
    pixels = np.array([600, 300, 100, 0])
    pixels_of_images_with = np.array([1000, 600, 1000, 0])
    median_freq, enet = class_weights(pixels, pixels_of_images_with)
    freqs = [0.6, 0.5, 0.1]
    assert np.allclose(median_freq[:3], [0.5 / f for f in freqs], atol=1e-6) and median_freq[3] is None
    assert np.allclose(enet[:3], [1 / np.log(1.02 + p) for p in (0.6, 0.3, 0.1)], atol=1e-6) and enet[3] is None


def test_camvid_and_folder_formats(cli, fixtures_dir, tmp_path):
    result = cli("voc-stats", fixtures_dir / "camvid-segnet11-mini", "--format", "camvid", "--split", "all",
                 "--json", "--crop", "360x480")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["num_classes"] == 11 and report["images"] == 5
    assert report["crop"]["at_least"] == {"train": 2, "val": 1, "test": 2}
    raw = np.concatenate([np.array(Image.open(p)).ravel()
                          for p in sorted((fixtures_dir / "camvid-segnet11-mini").glob("*annot/*.png"))])
    assert report["void_pixels"] == int((raw == 11).sum())  # SegNet's void 11 counted as 255
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    Image.fromarray(np.array([[0, 1, 2, 255]] * 4, np.uint8)).save(tmp_path / "masks" / "x.png")
    report = json.loads(cli("voc-stats", tmp_path, "--format", "folder", "--json", "-q").stdout)
    assert [c["pixels"] for c in report["classes"]] == [4, 4, 4] and report["void_pixels"] == 4


def test_missing_root_says_where_and_how(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_DATA", str(tmp_path))
    result = cli("voc-stats")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert str(tmp_path / "VOCdevkit" / "VOC2012") in result.stderr
    assert "--download" in result.stderr and "make-demo-data" in result.stderr
    assert cli("voc-stats", tmp_path, "--crop", "big").exit_code == 2
    assert cli("voc-stats", tmp_path, "--split", "everything").exit_code == 2
