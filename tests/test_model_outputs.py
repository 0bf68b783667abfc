"""One model-output contract, one logits dispatch, one size-multiple lookup."""

from __future__ import annotations

import numpy as np
import torch

from segtool.engine.inference import model_logits
from segtool.models import size_multiple
from segtool.ops.outputs import split_outputs


def test_split_outputs_reads_every_form():
    main, aux = torch.zeros(1), torch.ones(1)
    assert split_outputs(main) == (main, [])
    assert split_outputs((main, aux)) == (main, [aux])
    assert split_outputs((main, [aux, aux])) == (main, [aux, aux])
    assert split_outputs({"out": main, "aux": aux}) == (main, [aux])


class _Sum(torch.nn.Module):
    """Two-class 'logits' from the channel sum; returns torchvision's dict like tv: models."""

    def forward(self, x):
        s = x.sum(1, keepdim=True)
        return {"out": torch.cat([s, -s], 1)}


def test_model_logits_pads_or_slides_to_the_input_size():
    images = torch.rand(2, 3, 20, 30)
    whole = model_logits(_Sum(), images, multiple=8)
    slid = model_logits(_Sum(), images, multiple=8, window=(16, 16), stride=(8, 8))
    assert whole.shape == slid.shape == (2, 2, 20, 30)
    assert torch.allclose(whole, slid, atol=1e-5)  # a pointwise model: windows average to the same


def test_size_multiple():
    assert size_multiple("fcn8") == 32
    assert size_multiple("tv:fcn_resnet50") == 1


def test_predictor_from_checkpoint(tmp_path):
    from segtool.engine.predict import Predictor
    from segtool.models import create_model

    model = create_model("fcn8", 3)
    ckpt = {"model_name": "fcn8", "num_classes": 3, "model": model.state_dict(), "config": {"normalize": None}}
    predictor = Predictor.from_checkpoint(ckpt, torch.device("cpu"), window=(32, 32), stride=(16, 16))
    assert (predictor.multiple, predictor.normalize, predictor.window) == (32, None, (32, 32))
    labels = predictor.labels([np.zeros((40, 50, 3), np.uint8)])
    assert labels[0].shape == (40, 50)
