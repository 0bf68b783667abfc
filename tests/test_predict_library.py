"""segtool.engine.predict called directly (no CLI): labels match the model, batching, files, bad images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _train_helpers import random_checkpoint
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.core.io import plan_outputs
from segtool.engine.checkpoint import load_checkpoint, palette_from_checkpoint
from segtool.engine.predict import Predictor, predict_files

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return load_checkpoint(random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", num_classes=3, seed=2))


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return Predictor.from_checkpoint(checkpoint, CPU)


def _images(*sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]


def test_labels_are_the_models_argmax_at_the_original_size(predictor):
    image = _images((37, 50))[0]
    [labels] = predictor.labels([image])
    assert labels.shape == (37, 50) and labels.dtype == np.uint8
    tensor = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None]
    with torch.no_grad():  # fcn8: pad to a multiple of 32, then crop back
        logits = predictor.model(F.pad(tensor, (0, 64 - 50, 0, 64 - 37)))[..., :37, :50]
    np.testing.assert_array_equal(labels, logits.argmax(1)[0].numpy())


def test_a_batch_gives_what_each_image_gives_alone(predictor):
    images = _images((40, 40), (40, 40), seed=1)
    together = predictor.labels(images)
    for image, labels in zip(images, together, strict=True):
        np.testing.assert_array_equal(predictor.labels([image])[0], labels)


def test_predict_files_writes_every_output_and_skips_bad_ones(checkpoint, predictor, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    sizes = {"a.png": (33, 45), "b.png": (33, 45), "c.png": (20, 64)}
    for name, image in zip(sizes, _images(*sizes.values(), seed=2), strict=True):
        Image.fromarray(image).save(folder / name)
    (folder / "bad.png").write_bytes(b"not an image")
    paths = sorted(folder.iterdir())
    plan = dict(plan_outputs(paths, None, str(tmp_path / "out"), force=False))
    seen = []
    report = predict_files(predictor, paths, plan.__getitem__, palette=palette_from_checkpoint(checkpoint),
                           fmt="color", batch_size=2, skip_bad=True, on_image=lambda: seen.append(1))
    assert [path.name for path, _ in report.skipped] == ["bad.png"]
    assert len(report.written) == len(seen) == 3
    for name, (h, w) in sizes.items():
        out = Image.open(tmp_path / "out" / name)
        assert out.mode == "RGB" and out.size == (w, h)

    with pytest.raises(SegtoolError, match="bad.png"):
        predict_files(predictor, paths, plan.__getitem__, palette=palette_from_checkpoint(checkpoint), force=True)
