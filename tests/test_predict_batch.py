"""Batched prediction (engine.batch_predict): same masks as the one-by-one loop, size groups, --json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _train_helpers import random_checkpoint
from PIL import Image

from segtool.engine.batch_predict import predict_many
from segtool.engine.checkpoint import load_checkpoint, palette_from_checkpoint
from segtool.engine.predict import Predictor, predict_files

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", num_classes=3, seed=4)


@pytest.fixture
def images(tmp_path):
    """Two sizes interleaved, so neighbours rarely share a size (the old loop cannot batch them)."""
    rng = np.random.default_rng(5)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(7):
        h, w = (37, 50) if i % 2 else (50, 37)
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return sorted(folder.iterdir())


def _run(fn, checkpoint, paths, out, **kwargs):
    ckpt = load_checkpoint(checkpoint)
    out.mkdir(exist_ok=True)
    predictor = Predictor.from_checkpoint(ckpt, torch.device("cpu"))
    return fn(predictor, paths, lambda p: out / f"{p.stem}.png", palette=palette_from_checkpoint(ckpt), **kwargs)


@pytest.mark.parametrize("workers, decoder", [(0, "thread"), (2, "thread"), (1, "process")])
def test_same_masks_bit_for_bit_as_one_by_one(checkpoint, images, tmp_path, workers, decoder):
    _run(predict_files, checkpoint, images, tmp_path / "old", batch_size=1)
    report = _run(predict_many, checkpoint, images, tmp_path / "new", batch_size=3, workers=workers,
                  decoder=decoder)
    assert len(report.written) == 7 and sorted(r["batch"] for r in report.files) == [1, 3, 3, 3, 3, 3, 3]
    for path in images:
        old = Image.open(tmp_path / "old" / f"{path.stem}.png")
        new = Image.open(tmp_path / "new" / f"{path.stem}.png")
        assert new.mode == old.mode == "P" and new.getpalette() == old.getpalette()
        assert np.array_equal(np.asarray(old), np.asarray(new))


def test_unreadable_image_skipped_or_fatal(checkpoint, images, tmp_path):
    from segtool.core.errors import SegtoolError

    bad = images[0].parent / "broken.png"
    bad.write_bytes(b"not an image")
    report = _run(predict_many, checkpoint, [*images, bad], tmp_path / "skip", skip_bad=True)
    assert len(report.written) == 7 and [p for p, _ in report.skipped] == [bad]
    with pytest.raises(SegtoolError):
        _run(predict_many, checkpoint, [bad, *images], tmp_path / "stop")


def test_writer_error_reaches_the_caller(checkpoint, images, tmp_path):
    from segtool.core.errors import SegtoolError

    out = tmp_path / "out"
    (out / f"{images[3].stem}.png").mkdir(parents=True)  # a folder where an output file should go
    with pytest.raises(SegtoolError, match="is a directory"):
        _run(predict_many, checkpoint, images, out, force=True)


def test_predict_json_reports_files_and_timing(cli, checkpoint, images, tmp_path):
    result = cli("predict", checkpoint, images[0].parent, "--out-dir", tmp_path / "out", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == 7 and report["runtime"] == "pytorch" and report["images_per_s"] > 0
    first = report["files"][0]
    assert set(first) >= {"input", "output", "size", "decode_ms", "infer_ms", "write_ms", "batch"}
    assert sorted(f["output"] for f in report["files"]) == sorted(str(tmp_path / "out" / f"{p.stem}.png")
                                                                  for p in images)


def test_fcn_resnet18_batched_masks_equal_one_by_one(tmp_path):
    """The benchmark's model: batching 4 VOC-shaped (3:4) images changes no mask pixel."""
    from segtool.models import create_model

    torch.manual_seed(0)
    ckpt = {"model_name": "fcn-resnet18", "num_classes": 21, "config": {"normalize": "imagenet"},
            "model": create_model("fcn-resnet18", 21).state_dict()}
    predictor = Predictor.from_checkpoint(ckpt, torch.device("cpu"))
    rng = np.random.default_rng(6)
    images = [rng.integers(0, 256, size=(75, 100, 3), dtype=np.uint8) for _ in range(4)]
    one_by_one = [predictor.labels([image])[0] for image in images]
    batched = predictor.labels(images)
    assert all(np.array_equal(a, b) for a, b in zip(one_by_one, batched, strict=True))


def test_many_sizes_hold_few_images(checkpoint, tmp_path, monkeypatch):
    """Every image a different size: groups never fill, the oldest runs once 4 batches' worth wait."""
    import segtool.engine.batch_predict as batch_predict

    rng = np.random.default_rng(7)
    folder = tmp_path / "sizes"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, size=(20 + i, 30, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    decoded, at_first_batch = [], []
    real_decode = batch_predict._decode
    monkeypatch.setattr(batch_predict, "_decode", lambda path: decoded.append(path) or real_decode(path))
    ckpt = load_checkpoint(checkpoint)
    predictor = Predictor.from_checkpoint(ckpt, torch.device("cpu"))
    real_labels = predictor.labels
    predictor.labels = lambda images: at_first_batch.append(len(decoded)) or real_labels(images)
    (tmp_path / "out").mkdir()
    report = predict_many(predictor, sorted(folder.iterdir()), lambda p: tmp_path / "out" / f"{p.stem}.png",
                          palette=palette_from_checkpoint(ckpt), batch_size=2, workers=0)
    assert len(report.written) == 12 and all(r["batch"] == 1 for r in report.files)
    assert at_first_batch[0] == 9  # 4 x batch 2 waiting, plus the one that tipped it
