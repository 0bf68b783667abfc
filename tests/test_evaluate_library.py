"""segtool.engine.evaluate called directly (no CLI): counts match the masks, sliding window, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _train_helpers import random_checkpoint
from PIL import Image

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.engine.checkpoint import load_checkpoint, source_for_checkpoint
from segtool.engine.evaluate import evaluate_checkpoint, write_confusion

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from segtool.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("data") / "demo", train=1, val=2, size=32, classes=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return load_checkpoint(random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", num_classes=3, seed=5))


def _ground_truth_counts(root, num_classes: int) -> np.ndarray:
    counts = np.zeros(num_classes, dtype=np.int64)
    for name in (root / "ImageSets" / "Segmentation" / "val.txt").read_text().split():
        mask = np.asarray(Image.open(root / "SegmentationClass" / f"{name}.png"))
        counts += np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=num_classes)[:num_classes]
    return counts


def test_confusion_rows_are_the_masks_class_counts(demo, checkpoint, tmp_path):
    source = source_for_checkpoint(checkpoint, str(demo), "demo")
    result, names = evaluate_checkpoint(checkpoint, source, "val", CPU, batch_size=2, show_progress=False)
    assert result.images == 2 and names == list(checkpoint["class_names"])
    assert result.matrix.shape == (3, 3)
    np.testing.assert_array_equal(result.matrix.sum(1), _ground_truth_counts(demo, 3))
    scores = result.scores
    assert scores["pixel_acc"] == pytest.approx(np.trace(result.matrix) / result.matrix.sum())
    assert [row["name"] for row in scores["per_class"]] == names

    write_confusion(result.matrix, names, str(tmp_path / "cm.csv"))
    rows = [line.split(",") for line in (tmp_path / "cm.csv").read_text().splitlines()]
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], dtype=np.int64), result.matrix)


def test_a_window_the_size_of_the_image_is_one_whole_pass(demo, checkpoint):
    source = source_for_checkpoint(checkpoint, str(demo), "demo")
    whole, _ = evaluate_checkpoint(checkpoint, source, "val", CPU, show_progress=False)
    windowed, _ = evaluate_checkpoint(checkpoint, source, "val", CPU, window=(32, 32), stride=(32, 32),
                                      show_progress=False)
    np.testing.assert_array_equal(whole.matrix, windowed.matrix)
    overlapping, _ = evaluate_checkpoint(checkpoint, source, "val", CPU, window=(32, 32), stride=(16, 16),
                                         show_progress=False)
    assert overlapping.matrix.sum() == whole.matrix.sum()  # same pixels scored, whatever the windows


def test_class_count_mismatch_is_a_user_error(demo, tmp_path):
    two_classes = load_checkpoint(random_checkpoint(tmp_path / "two.pt", num_classes=2))
    source = source_for_checkpoint(two_classes, str(demo), "demo")
    with pytest.raises(SegtoolError, match="classes"):
        evaluate_checkpoint(two_classes, source, "val", CPU, show_progress=False)
