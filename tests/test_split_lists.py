"""Split lists as users save them: a UTF-8 byte-order mark (Windows editors) must not hide the first id."""

from __future__ import annotations

import numpy as np
from PIL import Image

from segtool.data import build_dataset

BOM = "\ufeff"


def test_voc_split_list_with_bom(tmp_path):
    voc = tmp_path / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    for name in ("a", "b"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(voc / "JPEGImages" / f"{name}.jpg")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(voc / "SegmentationClass" / f"{name}.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text(BOM + "a\nb\n", encoding="utf-8")
    ds = build_dataset("voc", voc, "train")
    assert [ds.sample_paths(i)[0].name for i in range(len(ds))] == ["a.jpg", "b.jpg"]


def test_camvid_split_list_with_bom(tmp_path):
    for sub in ("train", "trainannot"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "train" / "x.png")
    Image.fromarray(np.full((8, 8), 3, np.uint8)).save(tmp_path / "trainannot" / "x.png")
    (tmp_path / "train.txt").write_text(BOM + "/SegNet/CamVid/train/x.png /SegNet/CamVid/trainannot/x.png\n",
                                        encoding="utf-8")
    ds = build_dataset("camvid", tmp_path, "train")
    assert len(ds) == 1 and ds.sample_paths(0)[0].name == "x.png"


def test_folder_split_list_with_bom(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for name in ("p", "q"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / f"{name}.jpg")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / f"{name}.png")
    (tmp_path / "train.txt").write_text(BOM + "q\n", encoding="utf-8")
    ds = build_dataset("folder", tmp_path, "train")
    assert len(ds) == 1 and ds.sample_paths(0)[0].name == "q.jpg"
