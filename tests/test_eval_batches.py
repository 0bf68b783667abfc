"""Evaluation batches hold images of one size only, so a batched score equals the one-at-a-time score
(padding a mixed batch would change what a model with global pooling sees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segtool.engine.distributed import DistInfo
from segtool.engine.evaluate import run_validation
from segtool.engine.loaders import SizeGroupedBatches, eval_loader


def test_size_grouped_batches_keep_one_size_per_batch():
    sizes = [(4, 4), (6, 4), (4, 4), (6, 4), (4, 4), (8, 8)]
    batches = SizeGroupedBatches(list(range(6)), sizes, batch_size=2)
    assert list(batches) == [[0, 2], [4], [1, 3], [5]]
    assert batches.order == [0, 2, 4, 1, 3, 5]
    assert len(batches) == 4


class GlobalContext(torch.nn.Module):
    """Logits that depend on the mean over the whole (padded) input, like BiSeNetV2's context branch."""

    def forward(self, images):
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        return torch.cat([images[:, :1] - mean, mean - images[:, :1]], dim=1)


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index, (height, width) in enumerate([(20, 30), (32, 32), (20, 30), (40, 24), (32, 32), (20, 30)]):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / "images" / f"{index}.png")
        Image.fromarray(rng.integers(0, 2, (height, width), dtype=np.uint8)).save(root / "masks" / f"{index}.png")
    return root


@pytest.mark.parametrize("batch_size", [2, 4])
def test_batched_validation_scores_like_one_image_at_a_time(tmp_path, batch_size):
    from segtool.data.datasets import build_dataset
    from segtool.data.transforms import eval_transforms

    dataset = build_dataset("folder", _folder(tmp_path / "data"), None, transforms=eval_transforms("none"))
    scores = {}
    for size in (1, batch_size):
        loader = eval_loader(dataset, batch_size=size, info=DistInfo(), workers=0, multiple=1,
                             device=torch.device("cpu"))
        for images, _masks, sizes in loader:  # never a padded batch
            assert (sizes == sizes[0]).all()
            assert tuple(images.shape[-2:]) == tuple(sizes[0].tolist())
        scores[size] = run_validation(GlobalContext(), loader, num_classes=2, device=torch.device("cpu"),
                                      multiple=1).matrix
    np.testing.assert_array_equal(scores[batch_size], scores[1])
