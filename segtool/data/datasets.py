"""``build_dataset``: one entry point for every dataset format segtool reads.

Formats: ``voc`` (Pascal VOC 2012), ``camvid`` (SegNet 11-class or 32-class colour layout),
``folder`` (images/ + masks/), ``demo`` (the built-in synthetic set; root None = the cached default).
"""

from __future__ import annotations

from pathlib import Path

from segtool.core.errors import SegtoolError
from segtool.data.base import SMALL_IMAGE_POLICIES, SegmentationDataset
from segtool.data.sources import FORMATS, resolve_split

__all__ = ["FORMATS", "build_dataset"]


def build_dataset(fmt: str, root: str | Path | None, split: str = "train", *, transforms=None,
                  palette: str | None = None, binary: bool = False, small_images: str = "pad",
                  crop: tuple[int, int] | None = None, download: bool = False,
                  layout=None) -> SegmentationDataset:
    """A torch Dataset of (image, mask) pairs; see ``SegmentationDataset`` for what items look like.

    ``palette`` overrides the format's class names/colours (and converts RGB colour masks);
    ``binary`` reads 0/255 or 0/1 masks as {0, 1} with 2 classes; ``small_images="drop"`` removes
    samples smaller than ``crop`` (the original recipes' behaviour) instead of padding them later;
    ``download`` fetches VOC2012 with torchvision's downloader when it is not under ``root``;
    ``layout`` (``folder.FolderLayout``) names the folder format's folders and --val-fraction split.
    """
    if small_images not in SMALL_IMAGE_POLICIES:
        raise SegtoolError(f"small_images must be one of {', '.join(SMALL_IMAGE_POLICIES)}, got {small_images!r}")
    if small_images == "drop" and crop is None:
        raise SegtoolError("small_images='drop' needs a crop size to compare against")
    files = resolve_split(fmt, root, split, palette=palette, binary=binary, download=download, layout=layout)
    dataset = SegmentationDataset(files.samples, files.palette, decoder=files.decoder, transforms=transforms,
                                  name=f"{fmt}:{split}")
    if small_images == "drop":
        dataset.drop_smaller_than(tuple(crop))
        if len(dataset) == 0:
            raise SegtoolError(f"{files.root}: no {split} image is at least {crop[0]}x{crop[1]} (HxW); "
                               "use small_images='pad' or a smaller crop")
    return dataset
