"""The samples `segtool train` feeds the model, drawn with its own dataset, transforms and seeds.

``TrainingSamples`` builds the training data with ``builders.build_data`` (the function training
calls) and looks samples up through ``loaders.SeededDataset`` with ``loaders.sample_seed``, so
sample i of epoch e is exactly the one training sees; ``trace_transforms`` records the parameters
drawn on the way. Epochs count from 1, as training's progress shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from segtool.core.conventions import IMAGENET_MEAN, IMAGENET_STD
from segtool.core.errors import SegtoolError
from segtool.data.augment_trace import describe_params, format_params, trace_transforms
from segtool.data.sources import DataSource
from segtool.engine.builders import build_data
from segtool.engine.config import TrainConfig
from segtool.engine.distributed import DistInfo
from segtool.engine.loaders import SeededDataset, sample_seed

__all__ = ["AugmentedSample", "TrainingSamples", "to_uint8"]


@dataclass
class AugmentedSample:
    index: int                # dataset index (the sample id)
    name: str                 # the image file's stem
    epoch: int                # 1-based
    image: torch.Tensor       # float 3 x H x W, exactly what the model gets (normalised if the recipe is)
    mask: torch.Tensor        # int64 H x W, 255 = ignore (padding, void)
    params: dict[str, Any]    # the transform parameters drawn (see augment_trace.describe_params)

    def title(self) -> list[str]:
        """Grid title lines: the sample id, then the parameters drawn."""
        return [f"#{self.index} {self.name} · epoch {self.epoch}", *format_params(self.params)]

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "epoch": self.epoch,
                "size": list(self.image.shape[-2:]), "params": self.params}


class TrainingSamples:
    """The training split of ``config`` on ``source``, sampled as ``segtool train`` samples it."""

    def __init__(self, config: TrainConfig, source: DataSource):
        from segtool.models import size_multiple

        self.config = config
        self.source = source.materialise()
        self.data = build_data(config, self.source, DistInfo(), torch.device("cpu"), size_multiple(config.model))
        self.dataset = self.data.train_dataset
        self.palette = self.dataset.palette

    def __len__(self) -> int:
        return len(self.dataset)

    def order(self, epoch: int) -> list[int]:
        """Dataset indices in the order training visits them in ``epoch`` (one process)."""
        self._check_epoch(epoch)
        self.data.sampler.set_epoch(epoch - 1)
        return [index for index, _ in self.data.sampler]

    def sample(self, index: int, epoch: int = 1) -> AugmentedSample:
        self._check_epoch(epoch)
        if not 0 <= index < len(self.dataset):
            raise SegtoolError(f"--index {index}: the {self.config.split} split has {len(self.dataset)} "
                               f"samples (0..{len(self.dataset) - 1})")
        seed = sample_seed(self.config.seed, epoch - 1, index)
        with trace_transforms(self.dataset.transforms) as records:
            image, mask = SeededDataset(self.dataset)[(index, seed)]
        name = self.dataset.sample_paths(index)[0].stem
        return AugmentedSample(index, name, epoch, image, mask, describe_params(self.dataset.transforms, records))

    def first(self, count: int, epoch: int = 1) -> list[AugmentedSample]:
        """The first ``count`` samples of ``epoch``, in training order."""
        return [self.sample(index, epoch) for index in self.order(epoch)[:count]]

    @staticmethod
    def _check_epoch(epoch: int) -> None:
        if epoch < 1:
            raise SegtoolError(f"--epoch counts from 1, got {epoch}")


def to_uint8(image: torch.Tensor, normalize: str | None) -> np.ndarray:
    """A model input back to H x W x 3 uint8 for display (undoing ImageNet normalisation)."""
    pixels = image.detach().float().cpu()
    if normalize == "imagenet":
        pixels = pixels * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
