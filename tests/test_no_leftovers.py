"""Failed commands leave nothing behind and damaged files are found (issue 14, classes 2 and 4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from segtool.core.errors import SegtoolError


def test_a_failed_voc_download_leaves_no_folders_or_partial_archive(tmp_path, monkeypatch):
    import torchvision.datasets

    from segtool.data import voc

    def failing_download(root, **kwargs):
        (Path(root) / "VOCtrainval_11-May-2012.tar").write_bytes(b"the first megabytes")
        raise OSError("connection reset")

    monkeypatch.setattr(torchvision.datasets, "VOCSegmentation", failing_download)
    with pytest.raises(SegtoolError, match="could not download VOC2012"):
        voc.download_voc(tmp_path / "new" / "sub")
    assert not (tmp_path / "new").exists()

    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("x")
    monkeypatch.setattr(torchvision.datasets, "VOCSegmentation", lambda root, **kw: (_ for _ in ()).throw(
        OSError("offline")))
    with pytest.raises(SegtoolError):
        voc.download_voc(keep)
    assert sorted(p.name for p in keep.iterdir()) == ["mine.txt"]


def test_voc_stats_strict_finds_a_truncated_jpeg_without_mean_std(cli, tmp_path, tiny_demo):
    data = tmp_path / "demo"
    shutil.copytree(tiny_demo, data)
    jpeg = sorted((data / "JPEGImages").glob("*.jpg"))[0]
    jpeg.write_bytes(jpeg.read_bytes()[:-200])  # the header is intact; the end of the scan is gone
    result = cli("voc-stats", data, "--strict", "--workers", "1")
    assert result.exit_code == 1
    assert "truncated: the file ends before the image does" in " ".join(result.stderr.split())


def test_predict_out_dir_is_not_made_when_the_checkpoint_is_bad(cli, tmp_path, tiny_demo):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    out = tmp_path / "preds"
    result = cli("predict", bad, tiny_demo / "JPEGImages", "--out-dir", out, "--device", "cpu")
    assert result.exit_code == 1 and "bad.pt: cannot read checkpoint: not a torch checkpoint" in result.stderr
    assert not out.exists()
