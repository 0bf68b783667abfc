"""compare-runs: per-class IoU of two checkpoints, their difference, a seeded paired bootstrap CI;
confusion_matrix's refusal of predictions outside the classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _train_helpers import random_checkpoint

from segtool.engine.compare_runs import compare, paired_bootstrap
from segtool.ops.metrics import confusion_matrix, scores_from_confusion

pytestmark = pytest.mark.usefixtures("one_thread")


def _matrices(seed, images=6, classes=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 20, size=(classes, classes)) for _ in range(images)]


def test_bootstrap_matches_a_plain_resampling_loop():
    a, b = np.stack(_matrices(0)), np.stack(_matrices(1))
    got = paired_bootstrap(a, b, n=300, seed=7)
    rng = np.random.default_rng(7)
    diffs = []
    for start in range(0, 300, 256):  # the same random stream: 256 resamples per draw
        picks = rng.integers(0, 6, size=(min(256, 300 - start), 6))
        for row in picks:
            miou = [scores_from_confusion(m[row].sum(0))["miou"] for m in (a, b)]
            diffs.append(miou[1] - miou[0])
    assert got["ci95"] == pytest.approx(list(np.percentile(diffs, [2.5, 97.5])), rel=1e-9)
    assert got["p_b_not_better"] == pytest.approx(np.mean(np.array(diffs) <= 0))
    assert paired_bootstrap(a, b, n=300, seed=7) == got  # seeded


def test_identical_runs_have_a_zero_difference_and_a_zero_width_interval():
    a = _matrices(2)
    result = compare(a, a, ["x", "y", "z"], bootstrap=200)
    assert result["miou_difference"] == 0 and result["bootstrap"]["ci95"] == [0.0, 0.0]
    assert [row["difference"] for row in result["per_class"]] == [0.0, 0.0, 0.0]


def test_confusion_matrix_rejects_predictions_outside_the_classes():
    target = torch.tensor([0, 1, 2, 255])
    with pytest.raises(ValueError, match="prediction 3 outside 0..2"):
        confusion_matrix(torch.tensor([0, 3, 1, 0]), target, 3)
    with pytest.raises(ValueError, match="prediction -1 outside"):
        confusion_matrix(torch.tensor([0, -1, 1, 0]), target, 3)
    with pytest.raises(ValueError, match="3 predictions for 4 labels"):
        confusion_matrix(torch.tensor([0, 1, 1]), target, 3)
    # a prediction under an ignored pixel does not count, whatever it is
    assert confusion_matrix(torch.tensor([0, 1, 2, 9]), target, 3).trace() == 3


def test_compare_runs_cli_table_on_stderr_json_on_stdout(cli, tiny_demo, tmp_path):
    data = {"format": "demo", "root": str(tiny_demo), "demo": None}
    a = random_checkpoint(tmp_path / "a.pt", seed=0, data=data)
    b = random_checkpoint(tmp_path / "b.pt", seed=1, data=data)
    result = cli("compare-runs", a, b, "--json", "--bootstrap", "200", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["images"] == 4 and out["bootstrap"]["n"] == 200 and len(out["per_class"]) == 3
    low, high = out["bootstrap"]["ci95"]
    assert low <= high and out["miou_difference"] == pytest.approx(out["miou_b"] - out["miou_a"])
    assert "95% CI" in result.stderr and "IoU A" in result.stderr
    again = cli("compare-runs", a, b, "--json", "--bootstrap", "200", "--device", "cpu")
    assert json.loads(again.stdout) == out


def test_compare_runs_refuses_checkpoints_of_other_classes(cli, tmp_path):
    a = random_checkpoint(tmp_path / "a.pt", num_classes=3)
    b = random_checkpoint(tmp_path / "b.pt", num_classes=4)
    result = cli("compare-runs", a, b, "--device", "cpu")
    assert result.exit_code == 1 and result.stderr.strip().startswith("error:") and "3 classes vs 4" in result.stderr
    assert result.stderr.count("\n") == 1
