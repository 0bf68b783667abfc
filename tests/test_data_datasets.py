"""build_dataset on VOC / CamVid / folder / demo layouts, with the item contract and bad inputs."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.data import build_dataset
from segtool.data.masks import write_label_png
from segtool.data.palettes import get_palette
from segtool.data.transforms import train_transforms


def _voc_tree(root, sizes=((40, 30), (20, 16)), labels=(0, 3)):
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    ids = []
    for i, (w, h) in enumerate(sizes):
        sample = f"s{i}"
        ids.append(sample)
        Image.fromarray(np.full((h, w, 3), 100 + i, np.uint8)).save(voc / "JPEGImages" / f"{sample}.jpg")
        mask = np.full((h, w), labels[i % len(labels)], np.uint8)
        mask[0, :] = 255
        write_label_png(mask, voc / "SegmentationClass" / f"{sample}.png", get_palette("voc"))
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")
    return voc


def test_voc_item_contract_and_root_detection(tmp_path):
    voc = _voc_tree(tmp_path)
    for root in (tmp_path, tmp_path / "VOCdevkit", voc):
        ds = build_dataset("voc", root, "train")
        assert len(ds) == 2 and ds.num_classes == 21 and ds.class_names[1] == "aeroplane"
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 30, 40) and 0 <= image.min() <= image.max() <= 1
    assert mask.dtype == torch.int64 and mask.shape == (30, 40)
    assert set(mask.unique().tolist()) == {0, 255}
    assert ds.sample_paths(1)[1].name == "s1.png"
    image, mask = build_dataset("voc", voc, transforms=train_transforms((24, 24)))[1]  # padded: 20x16 < 24x24
    assert image.shape == (3, 24, 24) and mask.shape == (24, 24) and (mask == 255).sum() > 24 * 24 - 20 * 16


def test_voc_small_images_drop_reads_headers(tmp_path):
    voc = _voc_tree(tmp_path)
    ds = build_dataset("voc", voc, small_images="drop", crop=(24, 24))
    assert len(ds) == 1 and ds.sample_paths(0)[0].name == "s0.jpg"


def test_voc_missing_root_and_split_explain(tmp_path):
    with pytest.raises(SegtoolError, match="make-demo-data") as info:
        build_dataset("voc", tmp_path / "nowhere")
    assert "nowhere" in str(info.value) and "--download" in str(info.value)
    voc = _voc_tree(tmp_path)
    with pytest.raises(SegtoolError, match="val.txt"):
        build_dataset("voc", voc, "val")
    (voc / "JPEGImages" / "s1.jpg").unlink()
    with pytest.raises(SegtoolError, match="s1.jpg"):
        build_dataset("voc", voc)


def test_bad_label_values_and_size_mismatch_name_the_mask(tmp_path):
    voc = _voc_tree(tmp_path, labels=(0, 40))
    ds = build_dataset("voc", voc)
    ds[0]
    with pytest.raises(SegtoolError, match=r"s1\.png.*label 40"):
        ds[1]
    write_label_png(np.zeros((5, 5), np.uint8), voc / "SegmentationClass" / "s0.png", force=True)
    with pytest.raises(SegtoolError, match=r"s0\.png: mask is 5x5"):
        ds[0]


def test_voc_download_offline_fails_fast(tmp_path, monkeypatch):
    import time

    def refuse(*args, **kwargs):
        raise OSError("network unreachable (blocked by test)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    start = time.monotonic()
    with pytest.raises(SegtoolError, match="could not download VOC2012") as info:
        build_dataset("voc", tmp_path / "data", download=True)
    assert time.monotonic() - start < 10
    assert "offline" in str(info.value)


def test_camvid_segnet_fixture(fixtures_dir):
    ds = build_dataset("camvid", fixtures_dir / "camvid-segnet11-mini", "train")
    assert len(ds) == 2 and ds.num_classes == 11 and ds.class_names[0] == "Sky"
    image, mask = ds[0]
    assert image.shape == (3, 360, 480)
    raw = np.array(Image.open(ds.sample_paths(0)[1]))
    assert ((raw == 11) == (mask.numpy() == 255)).all()  # void 11 -> ignore
    assert set(mask.unique().tolist()) <= set(range(11)) | {255}
    assert len(build_dataset("camvid", fixtures_dir / "camvid-segnet11-mini", "val")) == 1


def test_camvid32_colour_layout(tmp_path, fixtures_dir):
    (tmp_path / "train").mkdir()
    (tmp_path / "train_labels").mkdir()
    (tmp_path / "class_dict.csv").write_text((fixtures_dir / "camvid32" / "class_dict.csv").read_text())
    pal = get_palette(tmp_path / "class_dict.csv")
    labels = np.array([[0, 1, 2], [255, 30, 4]], np.uint8)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "train" / "a.png")
    Image.fromarray(pal.colorize(labels)).save(tmp_path / "train_labels" / "a_L.png")
    ds = build_dataset("camvid", tmp_path, "train")
    assert ds.num_classes == 31
    assert (ds[0][1].numpy() == labels).all()


def test_folder_index_binary_and_rgb_masks(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "images" / "a.jpg")
    mask = np.array([[0, 255] * 3] * 4, np.uint8)
    Image.fromarray(mask).save(tmp_path / "masks" / "a.png")
    ds = build_dataset("folder", tmp_path, binary=True)
    assert ds.num_classes == 2 and set(ds[0][1].unique().tolist()) == {0, 1}
    # The same 0/255 mask as index labels: 255 = ignore, one class found -> at least 2 classes.
    assert set(build_dataset("folder", tmp_path)[0][1].unique().tolist()) == {0, 255}
    Image.fromarray(get_palette("voc").colorize(np.array([[0, 1, 2] * 2] * 4))).save(tmp_path / "masks" / "a.png")
    ds = build_dataset("folder", tmp_path, palette="voc")
    assert ds[0][1][0, :3].tolist() == [0, 1, 2]
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "images" / "b.jpg")
    with pytest.raises(SegtoolError, match=r"b\.jpg: no mask"):
        build_dataset("folder", tmp_path, palette="voc")


def test_demo_dataset_contract(tmp_path, monkeypatch):
    from segtool.data.demo import make_demo_dataset

    root = make_demo_dataset(tmp_path / "demo", train=4, val=2, size=64, classes=3)
    ds = build_dataset("demo", root, "train")
    assert len(ds) == 4 and ds.num_classes == 4 and ds.class_names == ("background", "aeroplane", "bicycle", "bird")
    image, mask = ds[0]
    assert image.shape == (3, 64, 64) and set(mask.unique().tolist()) <= {0, 1, 2, 3, 255}
    assert len(build_dataset("voc", root, "val")) == 2  # a plain VOC layout


def test_unknown_format():
    with pytest.raises(SegtoolError, match="voc, camvid"):
        build_dataset("coco", ".")
