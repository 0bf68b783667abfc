"""``build_dataset``: one entry point for every dataset format segtool reads.

Formats: ``voc`` (Pascal VOC 2012), ``camvid`` (SegNet 11-class or 32-class colour layout),
``folder`` (images/ + masks/), ``demo`` (the built-in synthetic set; root None = the cached default).
"""

from __future__ import annotations

from pathlib import Path

from segtool.core.errors import SegtoolError
from segtool.data import camvid, folder, voc
from segtool.data.base import SMALL_IMAGE_POLICIES, MaskDecoder, SegmentationDataset
from segtool.data.demo import demo_palette, ensure_demo_dataset, read_manifest
from segtool.data.palettes import Palette, binary_palette, get_palette

FORMATS = ("voc", "camvid", "folder", "demo")


def build_dataset(fmt: str, root: str | Path | None, split: str = "train", *, transforms=None,
                  palette: str | None = None, binary: bool = False, small_images: str = "pad",
                  crop: tuple[int, int] | None = None, download: bool = False) -> SegmentationDataset:
    """A torch Dataset of (image, mask) pairs; see ``SegmentationDataset`` for what items look like.

    ``palette`` overrides the format's class names/colours (and converts RGB colour masks);
    ``binary`` reads 0/255 or 0/1 masks as {0, 1} with 2 classes; ``small_images="drop"`` removes
    samples smaller than ``crop`` (the original recipes' behaviour) instead of padding them later.
    """
    if fmt not in FORMATS:
        raise SegtoolError(f"unknown dataset format {fmt!r}: use one of {', '.join(FORMATS)}")
    if small_images not in SMALL_IMAGE_POLICIES:
        raise SegtoolError(f"small_images must be one of {', '.join(SMALL_IMAGE_POLICIES)}, got {small_images!r}")
    if root is None and fmt == "voc" and download:
        root = voc.download_voc()
    if root is None and fmt != "demo":
        raise SegtoolError(f"the {fmt} format needs a dataset root folder")

    override = get_palette(palette) if palette else None
    if fmt == "voc":
        root_path = Path(root)
        if download and not _has_voc(root_path):
            voc.download_voc(root_path)
        samples = voc.voc_samples(root_path, split)
        pal = override or voc.voc_palette()
        decoder = MaskDecoder(pal)
    elif fmt == "demo":
        root_path = ensure_demo_dataset() if root is None else Path(root)
        samples = voc.voc_samples(root_path, split)
        manifest = read_manifest(voc.resolve_voc_root(root_path)) or {}
        pal = override or (demo_palette(int(manifest["classes"])) if "classes" in manifest else voc.voc_palette())
        decoder = MaskDecoder(pal)
    elif fmt == "camvid":
        root_path = Path(root)
        layout = camvid.detect_layout(root_path, split)
        if layout == "segnet11":
            samples = camvid.segnet_samples(root_path, split)
            pal = override or get_palette("camvid11")
            decoder = MaskDecoder(pal, value_map=camvid.segnet_value_map())
        else:
            samples = camvid.camvid32_samples(root_path, split)
            pal = override or camvid.camvid32_palette(root_path)
            decoder = MaskDecoder(pal)
    else:
        root_path = Path(root)
        samples = folder.folder_samples(root_path, split)
        pal = override or (binary_palette() if binary else folder.folder_palette(root_path, samples))
        decoder = MaskDecoder(pal)

    if binary:
        pal = binary_palette() if override is None else _two_class(override)
        decoder = MaskDecoder(pal, binary=True)
    dataset = SegmentationDataset(samples, pal, decoder=decoder, transforms=transforms, name=f"{fmt}:{split}")
    if small_images == "drop":
        if crop is None:
            raise SegtoolError("small_images='drop' needs a crop size to compare against")
        dataset.drop_smaller_than(tuple(crop))
        if len(dataset) == 0:
            raise SegtoolError(f"{root_path}: no {split} image is at least {crop[0]}x{crop[1]} (HxW); "
                               "use small_images='pad' or a smaller crop")
    return dataset


def _has_voc(root: Path) -> bool:
    try:
        voc.resolve_voc_root(root)
    except SegtoolError:
        return False
    return True


def _two_class(palette: Palette) -> Palette:
    if palette.num_classes != 2:
        raise SegtoolError(f"binary masks have 2 classes but palette {palette.name} has {palette.num_classes}")
    return palette
