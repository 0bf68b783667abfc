"""Where a dataset's files are and how to read its masks, for every format (torch-free).

``resolve_source`` turns (format, root, split, palette, binary) into the list of (image, mask)
pairs, the palette and the ``MaskDecoder``; ``build_dataset`` wraps that in a torch Dataset and
``voc-stats`` feeds it to worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segtool.core.errors import SegtoolError
from segtool.data import camvid, folder, voc
from segtool.data.demo import demo_palette, ensure_demo_dataset, read_manifest
from segtool.data.mask_decoder import MaskDecoder
from segtool.data.palettes import Palette, binary_palette, get_palette

FORMATS = ("voc", "camvid", "folder", "demo")


@dataclass
class Source:
    format: str
    root: Path
    split: str
    samples: list[tuple[Path, Path]]
    palette: Palette
    decoder: MaskDecoder


def resolve_source(fmt: str, root: str | Path | None, split: str = "train", *, palette: str | None = None,
                   binary: bool = False, download: bool = False, check: bool = True) -> Source:
    """Files, palette and mask decoder of a dataset; ``check=False`` leaves missing files to the caller."""
    if fmt not in FORMATS:
        raise SegtoolError(f"unknown dataset format {fmt!r}: use one of {', '.join(FORMATS)}")
    if root is None and fmt == "voc" and download:
        root = voc.download_voc()
    if root is None and fmt != "demo":
        raise SegtoolError(f"the {fmt} format needs a dataset root folder")

    override = get_palette(palette) if palette else None
    value_map = None
    if fmt == "voc":
        root_path = Path(root)
        if download and not _has_voc(root_path):
            voc.download_voc(voc.download_dest(root_path))
        samples = voc.voc_samples(root_path, split, check=check)
        pal = override or voc.voc_palette()
    elif fmt == "demo":
        root_path = ensure_demo_dataset() if root is None else Path(root)
        samples = voc.voc_samples(root_path, split, check=check)
        manifest = read_manifest(voc.resolve_voc_root(root_path)) or {}
        pal = override or (demo_palette(int(manifest["classes"])) if "classes" in manifest else voc.voc_palette())
    elif fmt == "camvid":
        root_path = Path(root)
        if camvid.detect_layout(root_path, split) == "segnet11":
            samples = camvid.segnet_samples(root_path, split, check=check)
            pal = override or get_palette("camvid11")
            value_map = camvid.segnet_value_map()
        else:
            samples = camvid.camvid32_samples(root_path, split, check=check)
            pal = override or camvid.camvid32_palette(root_path)
    else:
        root_path = Path(root)
        samples = folder.folder_samples(root_path, split)
        pal = override or (binary_palette() if binary else folder.folder_palette(root_path, samples))

    if binary:
        pal = binary_palette() if override is None else _two_class(override)
        return Source(fmt, root_path, split, samples, pal, MaskDecoder(pal, binary=True))
    return Source(fmt, root_path, split, samples, pal, MaskDecoder(pal, value_map=value_map))


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
