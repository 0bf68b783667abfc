"""`segtool train`: the demo default path, the run directory and its files, binary segmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from _train_helpers import TINY_DEMO, TINY_MODEL, train_args
from PIL import Image

from segtool.engine import config as config_module
from segtool.engine.run_dir import METRIC_KEYS

pytestmark = pytest.mark.usefixtures("one_thread")


def test_demo_default_path_with_one_notice(cli, tmp_path, monkeypatch):
    # No --data and no VOC at the default location: the demo set (tiny here) is generated into the cache.
    monkeypatch.setenv("SEGTOOL_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("SEGTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    for key, value in TINY_DEMO.items():
        monkeypatch.setitem(config_module.DEMO_DATA, key, value)
    monkeypatch.setitem(config_module.DEMO_PRESET, "crop", [32, 32])
    monkeypatch.setitem(config_module.DEMO_PRESET, "batch_size", 4)
    monkeypatch.setitem(config_module.DEMO_PRESET, "val_batch_size", 4)

    result = cli("train", "fcn8", "--max-steps", "1", "--device", "cpu", "--workers", "0",
                 "--model-option", f"width_mult={TINY_MODEL['width_mult']}")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("training on the built-in demo set") == 1
    assert "--data" in result.stderr  # says how to point it at VOC
    assert list((tmp_path / "cache").glob("demo-*/demo.json"))
    runs = list((tmp_path / "runs").glob("fcn8-*"))
    assert len(runs) == 1
    run = runs[0]
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "last.pt", "best.pt"):
        assert (run / name).is_file(), name

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and list(rows[0]) == list(METRIC_KEYS)
    assert rows[0]["step"] == 1 and 0.0 <= rows[0]["miou"] <= 1.0
    assert (run / "metrics.csv").read_text().splitlines()[0] == ",".join(METRIC_KEYS)
    assert yaml.safe_load((run / "config.yaml").read_text())["format"] == "demo"

    checkpoint = torch.load(run / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "step", "rng", "config", "model_name",
                "num_classes", "class_names", "palette", "segtool_version"):
        assert key in checkpoint, key
    assert checkpoint["model_name"] == "fcn8" and checkpoint["num_classes"] == 3
    assert checkpoint["class_names"][:2] == ["background", "aeroplane"]
    assert isinstance(checkpoint["config"], dict) and checkpoint["step"] == 1
    assert "done: 1 step (epoch 1, 1 step in)" in result.stderr


def test_existing_run_dir_needs_force(cli, tmp_path, tiny_demo):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("x")
    result = cli(*train_args(tiny_demo, out, "--max-steps", "1"))
    assert result.exit_code == 1 and "already exists" in result.stderr and "--force" in result.stderr
    result = cli(*train_args(tiny_demo, out, "--max-steps", "1", "--force"))
    assert result.exit_code == 0, result.stderr
    assert (out / "last.pt").is_file()


def test_binary_bce_on_a_folder_dataset(cli, tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "bags"
    for split, count in (("train", 4), ("val", 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(count):
            mask = np.zeros((32, 32), dtype=np.uint8)
            y, x = rng.integers(0, 16, size=2)
            mask[y:y + 14, x:x + 14] = 255  # white-on-black, like the bag write-up
            image = rng.integers(0, 80, size=(32, 32, 3), dtype=np.uint8)
            image[mask > 0] = (200, 180, 40)
            Image.fromarray(image).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{i}.png")
    out = tmp_path / "run"
    args = train_args(root, out, "--max-steps", "2", "--loss", "bce", "--lr", "0.01")
    args[args.index("--format") + 1] = "folder"
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["num_classes"] == 2 and checkpoint["out_channels"] == 1
    final_weight = [v for k, v in checkpoint["model"].items() if v.ndim == 4][-1]
    assert final_weight.shape[0] == 1 or final_weight.shape[1] == 1  # one output channel

    # It evaluates as 2 classes and predicts 0/1 label maps.
    result = cli("evaluate", out / "last.pt", "--data", root, "--format", "folder", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["per_class"]) == 2
    result = cli("predict", out / "last.pt", root / "val" / "images", "--out-dir", tmp_path / "pred",
                 "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    labels = np.asarray(Image.open(tmp_path / "pred" / "0.png"))
    assert labels.shape == (32, 32) and set(np.unique(labels)) <= {0, 1}
