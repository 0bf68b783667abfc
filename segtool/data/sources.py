"""Where the data is, and which files a split of it holds, for every format (torch-free).

``DataSource`` names a dataset's location (format and root; the demo set until generated);
``find_data_source`` turns ``--data`` / ``--format`` into one, detecting the format from the folder's
layout. ``resolve_split`` turns (format, root, split, palette, binary) into ``SplitFiles``: the list of
(image, mask) pairs, the palette and the ``MaskDecoder``; ``build_dataset`` wraps that in a torch
Dataset and ``voc-stats`` feeds it to worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segtool.core.conventions import DATASET_FORMATS
from segtool.core.errors import SegtoolError
from segtool.core.paths import default_voc_root
from segtool.data import camvid, folder, voc
from segtool.data.demo import MANIFEST, demo_palette, ensure_demo_dataset, read_manifest
from segtool.data.mask_decoder import MaskDecoder
from segtool.data.palettes import Palette, binary_palette, get_palette

FORMATS = DATASET_FORMATS


# -- where the data is ------------------------------------------------------------------------------

@dataclass
class DataSource:
    """A dataset location: format (voc|camvid|folder|demo) and root folder (None: the demo set, not yet made)."""

    format: str
    root: Path | None
    demo: dict | None = None  # ensure_demo_dataset arguments for the demo set
    note: str = ""  # what to tell the user about the choice (the demo fallback)

    def materialise(self) -> DataSource:
        """Generate (or find in the cache) the demo set; other sources are returned unchanged."""
        if self.format != "demo" or self.root is not None:
            return self
        return DataSource("demo", Path(ensure_demo_dataset(**self.demo)), self.demo, self.note)

    def to_dict(self) -> dict:
        """Plain types for a checkpoint (``weights_only`` loading); ``from_dict`` reads it back."""
        return {"format": self.format, "root": str(self.root) if self.root else None, "demo": self.demo}

    @classmethod
    def from_dict(cls, values: dict) -> DataSource:
        root = values.get("root")
        return cls(values["format"], Path(root) if root else None, values.get("demo"))


def detect_format(root: Path) -> str:
    """demo (a demo.json manifest), voc (JPEGImages + SegmentationClass), camvid (SegNet lists or
    {split}annot/), folder (an image + mask folder pair: images/ + masks/, X/ + X_msk/ ...), else camvid."""
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if voc.is_voc_folder(candidate):
            return "demo" if (candidate / MANIFEST).is_file() else "voc"
    if (root / "trainannot").is_dir() or (root / "class_dict.csv").is_file():
        return "camvid"
    if folder.detect_pair(root) is not None or folder.detect_pair(root / "train") is not None:
        return "folder"
    if (root / "images").is_dir() or (root / "train" / "images").is_dir():
        return "folder"  # masks/ missing: the folder format names what is absent
    return "camvid"


def demo_notice(demo: dict, voc_root: Path) -> str:
    return (f"no --data given and no Pascal VOC at {voc_root}: training on the built-in demo set "
            f"({demo['train']} train / {demo['val']} val images, {demo['size']}x{demo['size']} px, "
            f"{demo['classes']} object classes + background, generated once into the segtool cache) with the demo preset "
            "(see --print-config). For VOC: put VOCdevkit/ under ./data (or set SEGTOOL_DATA), or pass "
            "--data PATH/TO/VOCdevkit.")


def should_use_demo(data: str | None, fmt: str) -> bool:
    """True when no data is named and the default VOC folder is absent (or --format demo)."""
    if fmt == "demo":
        return True
    return data is None and fmt == "auto" and not default_voc_root().is_dir()


def find_data_source(data: str | None, fmt: str, demo: dict, *, check: bool = True) -> DataSource:
    """``--data`` (must exist) else VOC at the default place else the demo set; ``check=False`` (--print-config)
    accepts a --data that is not there yet. ``fmt="auto"`` detects the format from the folder's layout."""
    if fmt == "demo":
        if data is not None:
            return DataSource("demo", Path(data), demo)
        return DataSource("demo", None, demo, demo_notice(demo, default_voc_root()))
    if data is not None:
        root = Path(data)
        if not root.exists():
            if check:
                raise SegtoolError(f"{root}: dataset not found (--data)")
            return DataSource(fmt, root)
        return DataSource(detect_format(root) if fmt == "auto" else fmt, root)
    if fmt in ("auto", "voc"):
        voc_root = default_voc_root()
        if voc_root.is_dir():
            return DataSource("voc", voc_root)
        if fmt == "voc":
            raise SegtoolError(f"{voc_root}: no Pascal VOC at the default location; pass --data PATH")
        return DataSource("demo", None, demo, demo_notice(demo, voc_root))
    raise SegtoolError(f"--format {fmt} needs --data ROOT")


# -- the files of one split ---------------------------------------------------------------------------

@dataclass
class SplitFiles:
    """What one split of a DataSource holds: (image, mask) pairs and how to read the masks."""

    format: str
    root: Path
    split: str
    samples: list[tuple[Path, Path]]
    palette: Palette
    decoder: MaskDecoder


def resolve_split(fmt: str, root: str | Path | None, split: str = "train", *, palette: str | None = None,
                  binary: bool = False, download: bool = False, check: bool = True,
                  layout: folder.FolderLayout | None = None) -> SplitFiles:
    """Files, palette and mask decoder of a dataset; ``check=False`` leaves missing files to the caller.
    ``layout``: the folder format's explicit folders and --val-fraction split."""
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
        samples = folder.folder_samples(root_path, split, layout)
        pal = override or (binary_palette() if binary else folder.folder_palette(root_path, samples))

    if binary:
        pal = binary_palette() if override is None else _two_class(override)
        return SplitFiles(fmt, root_path, split, samples, pal, MaskDecoder(pal, binary=True))
    return SplitFiles(fmt, root_path, split, samples, pal, MaskDecoder(pal, value_map=value_map))


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
