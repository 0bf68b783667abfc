"""Datasets and DataLoaders for training and evaluation (where the data is: segtool.data.sources).

Reproducible augmentation: the training sampler yields ``(index, seed)`` pairs and the dataset
seeds torch's RNG with that seed before transforming the sample. The seed depends only on
(run seed, epoch, index), so augmentations are the same whatever the number of workers or DDP
ranks, and a run resumed in the middle of an epoch sees exactly the batches it would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from segtool.core.errors import SegtoolError
from segtool.data.sources import DataSource
from segtool.engine.distributed import DistInfo
from segtool.engine.inference import PadCollate
from segtool.engine.signals import ignore_stop_signals_in_worker

# -- datasets -------------------------------------------------------------------------------------

@dataclass
class DatasetInfo:
    num_classes: int
    class_names: list[str]
    colors: list[list[int]]
    ignore_color: list[int] | None = None


def open_dataset(source: DataSource, split: str, *, transforms=None, palette: str | None = None,
                 binary: bool = False, small_images: str = "pad", crop=None, layout=None):
    """``layout``: a ``FolderLayout`` (folder format's folders and --val-fraction split; from the config)."""
    from segtool.data.datasets import build_dataset

    return build_dataset(source.format, source.root, split, transforms=transforms, palette=palette, binary=binary,
                         small_images=small_images, crop=tuple(crop) if crop else None, layout=layout)


def dataset_info(dataset) -> DatasetInfo:
    palette = dataset.palette
    ignore = getattr(palette, "ignore_color", None)
    return DatasetInfo(int(dataset.num_classes), [str(n) for n in dataset.class_names],
                       [[int(v) for v in c] for c in palette.colors],
                       [int(v) for v in ignore] if ignore is not None else None)


# -- sampling -------------------------------------------------------------------------------------

def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A per-sample seed from (run seed, epoch, index): independent of workers, ranks and resume."""
    return (seed * 1_000_003 + epoch * 10_007 + index * 7_919 + 0x5E6) % (2**63 - 1)


class SeededSampler(Sampler):
    """Wraps a (distributed) sampler; yields (index, seed); can skip the first batches once."""

    def __init__(self, inner: DistributedSampler, seed: int):
        self.inner = inner
        self.seed = int(seed)
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.inner.set_epoch(epoch)

    def skip_next(self, samples: int) -> None:
        """Resume mid-epoch: the next pass leaves out its first ``samples`` samples."""
        self._skip = int(samples)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self._skip = self._skip, 0
        for position, index in enumerate(self.inner):
            if position >= skip:
                yield int(index), sample_seed(self.seed, self.epoch, int(index))

    def __len__(self) -> int:
        return len(self.inner)


class SeededDataset(Dataset):
    """Looks up ``(index, seed)``: seeds torch's RNG (in a fork, so the caller's stream is kept)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class ShardSampler(Sampler):
    """Evaluation: rank r takes every world-th sample, without padding (each pixel counted once)."""

    def __init__(self, length: int, info: DistInfo):
        self.indices = list(range(info.rank, length, info.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def default_workers(world_size: int = 1) -> int:
    """0 on small machines (workers would steal the cores the model needs), else up to 8 per rank."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores <= 2:
        return 0
    return min(8, max(1, cores // max(1, world_size) - 1))


def worker_count(requested: int | None, world_size: int = 1) -> int:
    """--workers as given, capped at twice the cores this process may use (more only queue up and
    can exhaust memory or file handles: --workers 1000 hangs); None: ``default_workers``."""
    if requested is None:
        return default_workers(world_size)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = max(2, 2 * cores)
    if requested > limit:
        from segtool.core.console import warn

        warn(f"--workers {requested}: capped at {limit} (twice the {cores} CPU cores)")
        return limit
    return requested


def _loader_options(workers: int, device: torch.device) -> dict:
    options = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        options.update(persistent_workers=True, worker_init_fn=ignore_stop_signals_in_worker)
    return options


def train_loader(dataset, *, batch_size: int, seed: int, info: DistInfo, workers: int, multiple: int,
                 device: torch.device) -> tuple[DataLoader, SeededSampler]:
    inner = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed,
                               drop_last=info.enabled)
    sampler = SeededSampler(inner, seed)
    shard = len(inner)
    # Drop the last partial batch (BatchNorm on a batch of one fails), unless that is all there is.
    drop_last = shard >= batch_size
    loader = DataLoader(SeededDataset(dataset), batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                        collate_fn=PadCollate(multiple), generator=torch.Generator().manual_seed(seed),
                        **_loader_options(workers, device))
    return loader, sampler


class SizeGroupedBatches(Sampler):
    """Evaluation batches that hold images of one size only.

    Padding a batch of mixed sizes changes what a model with global context sees (BiSeNetV2's
    global pooling averages over the padded band too), so batched scores would differ from scoring
    one image at a time. Sizes come from the image headers; ``order`` is the flattened index order,
    for callers that collect per-image results."""

    def __init__(self, indices: list[int], sizes: list[tuple[int, int]], batch_size: int):
        groups: dict[tuple[int, int], list[int]] = {}
        for index in indices:
            groups.setdefault(sizes[index], []).append(index)
        size = max(1, int(batch_size))
        self.batches = [group[start:start + size] for group in groups.values()
                        for start in range(0, len(group), size)]
        self.order = [index for batch in self.batches for index in batch]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _image_sizes(dataset) -> list[tuple[int, int]] | None:
    """(width, height) of every sample from its image header; None where the dataset has no files."""
    samples = getattr(dataset, "samples", None)
    if not samples or not isinstance(samples[0], tuple):
        return None
    from segtool.data.images import image_size

    return [image_size(image) for image, _mask in samples]


def eval_loader(dataset, *, batch_size: int, info: DistInfo, workers: int, multiple: int,
                device: torch.device) -> DataLoader:
    """Batches in dataset order when every image has one size, else grouped by size (SizeGroupedBatches)."""
    shard = ShardSampler(len(dataset), info)
    sizes = _image_sizes(dataset) if batch_size > 1 else None
    if sizes is not None and len(set(sizes)) > 1:
        return DataLoader(dataset, batch_sampler=SizeGroupedBatches(shard.indices, sizes, batch_size),
                          collate_fn=PadCollate(multiple), **_loader_options(workers, device))
    return DataLoader(dataset, batch_size=batch_size, sampler=shard,
                      collate_fn=PadCollate(multiple), **_loader_options(workers, device))


def segtool_error_from_worker(exc: BaseException) -> SegtoolError | None:
    """A SegtoolError raised in a loader worker arrives wrapped in a traceback text; recover its message."""
    if not isinstance(exc, SegtoolError):
        return None
    text = str(exc)
    marker = "SegtoolError: "
    if "Traceback" in text and marker in text:
        return SegtoolError(text.rsplit(marker, 1)[1].strip())
    return exc
