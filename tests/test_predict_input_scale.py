"""A model trained with --input-scale predicts at that scale too (evaluate, per-image and predict share model_logits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _train_helpers import random_checkpoint

from segtool.engine.checkpoint import load_checkpoint
from segtool.engine.inference import labels_from_logits, model_logits
from segtool.engine.predict import Predictor

pytestmark = pytest.mark.usefixtures("one_thread")


def test_predictor_runs_the_model_at_the_checkpoints_input_scale(tmp_path):
    path = random_checkpoint(tmp_path / "r.pt", num_classes=3, seed=2)
    checkpoint = load_checkpoint(path)
    checkpoint["config"]["input_scale"] = 0.5
    predictor = Predictor.from_checkpoint(checkpoint, torch.device("cpu"))
    assert predictor.input_scale == 0.5
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    seen = []
    hook = predictor.model.register_forward_pre_hook(lambda _module, args: seen.append(tuple(args[0].shape[-2:])))
    got = predictor.labels([image])[0]
    hook.remove()
    assert got.shape == (70, 90)
    assert seen == [(64, 64)]  # 70x90 at 0.5 = 35x45, padded to fcn8's multiple of 32 (96x96 without the scale)
    with torch.no_grad():
        batch = predictor.to_tensor(image)[None]
        want = labels_from_logits(model_logits(predictor.model, batch, predictor.multiple, input_scale=0.5))
    assert np.array_equal(got, want[0].numpy().astype(np.uint8))
