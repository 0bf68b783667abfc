"""`segtool evaluate`: exact agreement with numpy, padding never counted, sliding window, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _train_helpers import TINY_MODEL, random_checkpoint
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def demo40(tmp_path_factory):
    """40x40 images: fcn8 needs multiples of 32, so every image is padded to 64x64."""
    from segtool.data.demo import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("data") / "demo40", train=2, val=3, size=40, classes=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", num_classes=3, seed=3)


def _numpy_scores(checkpoint_path, root, n=3):
    """Predictions from the model, then confusion counts and scores by plain numpy, pixel by pixel."""
    from segtool.models import create_model

    saved = torch.load(checkpoint_path, weights_only=True)
    model = create_model("fcn8", n, **TINY_MODEL)
    model.load_state_dict(saved["model"])
    model.eval()
    matrix = np.zeros((n, n), dtype=np.int64)
    for name in (root / "ImageSets" / "Segmentation" / "val.txt").read_text().split():
        image = np.asarray(Image.open(root / "JPEGImages" / f"{name}.jpg").convert("RGB"))
        gt = np.asarray(Image.open(root / "SegmentationClass" / f"{name}.png"))
        tensor = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None]
        with torch.no_grad():
            logits = model(F.pad(tensor, (0, 64 - 40, 0, 64 - 40)))[..., :40, :40]
        pred = logits.argmax(1)[0].numpy()
        for t, p in zip(gt.ravel(), pred.ravel(), strict=True):
            if t != 255:
                matrix[t, p] += 1
    tp = np.diag(matrix).astype(np.float64)
    gt_px, pred_px = matrix.sum(1).astype(np.float64), matrix.sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou, acc = tp / (gt_px + pred_px - tp), tp / gt_px
    return matrix, {"pixel_acc": tp.sum() / gt_px.sum(), "mean_acc": np.nanmean(acc), "miou": np.nanmean(iou),
                    "fwiou": np.nansum(gt_px / gt_px.sum() * iou), "iou": iou}


def test_evaluate_agrees_exactly_with_numpy(cli, demo40, checkpoint, tmp_path):
    confusion = tmp_path / "cm.csv"
    result = cli("evaluate", checkpoint, "--data", demo40, "--format", "demo", "--json", "--device", "cpu",
                 "--batch-size", "2", "--confusion", confusion)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds only the JSON
    matrix, expected = _numpy_scores(checkpoint, demo40)
    assert report["images"] == 3 and report["num_pixels"] == int(matrix.sum())
    for key in ("pixel_acc", "mean_acc", "miou", "fwiou"):
        assert report[key] == expected[key], key
    ious = [np.nan if c["iou"] is None else c["iou"] for c in report["per_class"]]
    np.testing.assert_array_equal(ious, expected["iou"])
    rows = [line.split(",") for line in confusion.read_text().splitlines()]
    assert rows[0] == ["gt\\pred", "background", "aeroplane", "bicycle"]
    assert np.array_equal(np.array([r[1:] for r in rows[1:]], dtype=np.int64), matrix)
    assert "mIoU" in result.stderr  # the rich table goes to stderr


def test_sliding_window(cli, demo40, checkpoint, tmp_path):
    whole = json.loads(cli("evaluate", checkpoint, "--data", demo40, "--json", "--device", "cpu").stdout)
    # A window as large as the image is one whole-image pass.
    big = cli("evaluate", checkpoint, "--data", demo40, "--json", "--device", "cpu", "--sliding-window",
              "--window", "64")
    assert big.exit_code == 0, big.stderr
    assert json.loads(big.stdout)["miou"] == whole["miou"]
    small = cli("evaluate", checkpoint, "--data", demo40, "--json", "--device", "cpu", "--sliding-window",
                "--window", "32", "--stride", "16", "--confusion", tmp_path / "cm.png")
    assert small.exit_code == 0, small.stderr
    assert 0.0 <= json.loads(small.stdout)["miou"] <= 1.0
    assert Image.open(tmp_path / "cm.png").size[0] > 0


def test_bad_checkpoints_and_data(cli, demo40, checkpoint, tmp_path):
    # Another class count: the error names both.
    four = random_checkpoint(tmp_path / "four.pt", num_classes=4)
    result = cli("evaluate", four, "--data", demo40, "--device", "cpu")
    assert result.exit_code == 1 and "4 classes" in result.stderr and "has 3" in result.stderr

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    result = cli("evaluate", truncated, "--data", demo40)
    assert result.exit_code == 1 and "truncated.pt: cannot read checkpoint" in result.stderr

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    result = cli("evaluate", foreign, "--data", demo40)
    assert result.exit_code == 1 and "not a segtool training checkpoint" in result.stderr

    result = cli("evaluate", tmp_path / "missing.pt")
    assert result.exit_code == 1 and "missing.pt: checkpoint not found" in result.stderr

    # A label outside 0..num_classes-1 (other than 255): the error names the mask file.
    broken = tmp_path / "broken"
    shutil.copytree(demo40, broken)
    first = (broken / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[0]
    mask_path = broken / "SegmentationClass" / f"{first}.png"
    mask = Image.open(mask_path)
    values = np.array(mask)
    values[0, 0] = 7
    bad = Image.fromarray(values, "P")
    bad.putpalette(mask.getpalette())
    bad.save(mask_path)
    result = cli("evaluate", checkpoint, "--data", broken, "--format", "demo", "--device", "cpu")
    assert result.exit_code == 1 and f"{first}.png" in result.stderr and "label 7" in result.stderr

    # Resuming a checkpoint of another model names both models.
    result = cli("train", "bisenetv2", "--resume", checkpoint, "--data", demo40, "--out", tmp_path / "r")
    assert result.exit_code == 1 and "'fcn8'" in result.stderr and "'bisenetv2'" in result.stderr
