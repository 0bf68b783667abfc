"""--tta: flip and scale averaging of probabilities (library and commands), per-image rows, worst-K grid."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from _train_helpers import random_checkpoint

from segtool.core.errors import SegtoolError
from segtool.engine.inference import TTA, model_logits, parse_tta

pytestmark = pytest.mark.usefixtures("one_thread")


class Shifted(torch.nn.Module):
    """Logits that depend on the position, so a flip changes them."""

    def forward(self, x):
        ramp = torch.linspace(-1, 1, x.shape[-1]).view(1, 1, 1, -1)
        return torch.cat([x[:, :1] * 3 + ramp, x[:, 1:2] - ramp, x[:, 2:3]], 1)


def test_flip_and_scales_average_probabilities_of_each_pass():
    model = Shifted()
    x = torch.rand(2, 3, 8, 12)
    got = model_logits(model, x, 1, tta=TTA(flip=True, scales=(1.0, 0.5)))
    passes = []
    for scale in (1.0, 0.5):
        size = (round(8 * scale), round(12 * scale))
        xs = x if scale == 1 else torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        for flip in (False, True):
            out = model(xs.flip(-1)).flip(-1) if flip else model(xs)
            if scale != 1:
                out = torch.nn.functional.interpolate(out, size=(8, 12), mode="bilinear", align_corners=False)
            passes.append(out.softmax(1))
    assert torch.allclose(got.softmax(1), torch.stack(passes).mean(0), atol=1e-6)
    # sliding windows combine with it: one window of the whole image is the whole-image pass
    assert torch.allclose(model_logits(model, x, 1, (8, 12), (8, 12), TTA()), model_logits(model, x, 1, tta=TTA()),
                          atol=1e-6)


def test_one_channel_models_average_sigmoids():
    model = lambda x: x[:, :1] - 0.5 + torch.linspace(-1, 1, x.shape[-1]).view(1, 1, 1, -1)  # noqa: E731
    x = torch.rand(1, 3, 4, 6)
    got = model_logits(model, x, 1, tta=TTA(flip=True))
    expected = (model(x).sigmoid() + model(x.flip(-1)).flip(-1).sigmoid()) / 2
    assert torch.allclose(got.sigmoid(), expected, atol=1e-5)


def test_parse_tta():
    assert parse_tta("flip") == TTA(True, (1.0,))
    assert parse_tta("flip,scales=0.75,1.0,1.25") == TTA(True, (0.75, 1.0, 1.25))
    assert parse_tta("scales=0.5,1") == TTA(False, (0.5, 1.0)) and parse_tta(None) is None
    for bad in ("flop", "flip,0.5", "scales=x", "scales=9"):
        with pytest.raises(SegtoolError, match="--tta"):
            parse_tta(bad)


def test_evaluate_tta_per_image_and_worst_grid(cli, tiny_demo, tmp_path):
    ckpt = random_checkpoint(tmp_path / "a.pt", data={"format": "demo", "root": str(tiny_demo), "demo": None})
    rows_file, grid = tmp_path / "rows.csv", tmp_path / "worst.png"
    result = cli("evaluate", ckpt, "--device", "cpu", "--json", "--tta", "flip,scales=1.0,0.5",
                 "--per-image", rows_file, "--worst", "2", grid)
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    rows = list(csv.DictReader(rows_file.open()))
    assert len(rows) == scores["images"] == 4 and {"image", "pixel_acc", "miou", "iou:background"} <= set(rows[0])
    # the per-image matrices add up to the dataset's: pixel-weighted accuracy matches
    pixels = [int(r["pixels"]) for r in rows]
    acc = sum(float(r["pixel_acc"]) * p for r, p in zip(rows, pixels, strict=True)) / sum(pixels)
    assert acc == pytest.approx(scores["pixel_acc"], rel=1e-9)
    from PIL import Image

    with Image.open(grid) as image:
        assert image.height > 2 * 32  # two rows of 32 px images plus titles
    jsonl = tmp_path / "rows.jsonl"
    assert cli("evaluate", ckpt, "--device", "cpu", "--per-image", jsonl).exit_code == 0
    assert [json.loads(line)["image"] for line in jsonl.read_text().splitlines()] == [r["image"] for r in rows]


@pytest.mark.parametrize(("args", "message"), [
    (["--tta", "flop"], "--tta"), (["--per-image", "x.txt"], ".csv or .jsonl"),
    (["--worst", "0", "w.png"], "K must be at least 1"), (["--worst", "2", "w.jpg"], ".png file name")])
def test_evaluate_bad_kit_options(cli, tiny_demo, tmp_path, args, message):
    ckpt = random_checkpoint(tmp_path / "a.pt", data={"format": "demo", "root": str(tiny_demo), "demo": None})
    result = cli("evaluate", ckpt, "--device", "cpu", *args)
    assert result.exit_code != 0 and message in result.stderr and result.stderr.count("error:") == 1


def test_predict_with_tta_writes_labels(cli, tiny_demo, tmp_path):
    ckpt = random_checkpoint(tmp_path / "a.pt")
    image = next((tiny_demo / "JPEGImages").glob("*.jpg"), None) or next(tiny_demo.rglob("*.png"))
    result = cli("predict", ckpt, image, "-o", tmp_path / "out.png", "--tta", "flip", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out.png").is_file()
