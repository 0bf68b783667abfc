"""Pascal VOC 2012 segmentation: locate the folder, read split lists, download with torchvision.

Layout: ``VOCdevkit/VOC2012/{JPEGImages/*.jpg, SegmentationClass/*.png,
ImageSets/Segmentation/{train,val,trainval}.txt}``. The root may be the VOC2012 folder, its parent
VOCdevkit, or the folder holding VOCdevkit. Masks are palette PNGs read as indices (255 = void).
"""

from __future__ import annotations

import socket
from pathlib import Path

from segtool.core.errors import SegtoolError
from segtool.core.paths import data_home
from segtool.data.palettes import Palette, get_palette

VOC_SPLITS = ("train", "val", "trainval")
HOW_TO_GET = ("get VOC2012 with --download (about 2 GB), or try segtool on synthetic data made by "
              "`segtool make-demo-data DIR`")
DOWNLOAD_TIMEOUT_S = 15


def is_voc_folder(path: Path) -> bool:
    return (path / "JPEGImages").is_dir() and (path / "SegmentationClass").is_dir()


def resolve_voc_root(root: str | Path) -> Path:
    """The VOC2012 folder for ``root`` (itself, ``root/VOC2012`` or ``root/VOCdevkit/VOC2012``)."""
    root = Path(root)
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if is_voc_folder(candidate):
            return candidate
    if not root.exists():
        raise SegtoolError(f"{root}: VOC root not found (looked for {root}, {root / 'VOC2012'} and "
                           f"{root / 'VOCdevkit' / 'VOC2012'}; the default is $SEGTOOL_DATA/VOCdevkit/VOC2012, "
                           f"else ./data/VOCdevkit/VOC2012); {HOW_TO_GET}")
    raise SegtoolError(f"{root}: no VOC2012 layout here (looked for JPEGImages/ and SegmentationClass/ in "
                       f"{root}, {root / 'VOC2012'} and {root / 'VOCdevkit' / 'VOC2012'}); {HOW_TO_GET}")


def split_file(voc_root: Path, split: str | Path) -> Path:
    """The list file of a split name (train / val / trainval) or a path to a list file."""
    name = str(split)
    if name in VOC_SPLITS or ("/" not in name and not name.endswith(".txt")):
        path = voc_root / "ImageSets" / "Segmentation" / f"{name}.txt"
    else:
        path = Path(split)
    if not path.is_file():
        raise SegtoolError(f"{path}: split list not found (splits: {', '.join(VOC_SPLITS)} or a path "
                           "to a list file)")
    return path


def read_list(path: Path, voc_root: Path, image_dir: str = "JPEGImages",
              mask_dir: str = "SegmentationClass") -> list[tuple[Path, Path]]:
    """Pairs from a list file: one id per line, or 'image mask' paths relative to the VOC folder."""
    pairs = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SegtoolError(f"{path}: cannot read split list ({exc.__class__.__name__})") from None
    for lineno, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) == 1:
            pairs.append((voc_root / image_dir / f"{fields[0]}.jpg", voc_root / mask_dir / f"{fields[0]}.png"))
        elif len(fields) == 2:  # SBD-style "/JPEGImages/x.jpg /SegmentationClassAug/x.png"
            pairs.append((voc_root / fields[0].lstrip("/"), voc_root / fields[1].lstrip("/")))
        else:
            raise SegtoolError(f"{path}: line {lineno}: expected an id or 'image mask', got {line.strip()!r}")
    if not pairs:
        raise SegtoolError(f"{path}: split list is empty")
    return pairs


def check_files_exist(pairs: list[tuple[Path, Path]], source: Path | str) -> None:
    """Fail on the first missing image or mask, saying how many are missing in all."""
    missing = [p for pair in pairs for p in pair if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more files missing)" if len(missing) > 1 else ""
        raise SegtoolError(f"{missing[0]}: file listed in {source} not found{more}")


def voc_samples(root: str | Path, split: str | Path = "train", *, check: bool = True) -> list[tuple[Path, Path]]:
    voc_root = resolve_voc_root(root)
    listing = split_file(voc_root, split)
    pairs = read_list(listing, voc_root)
    if check:
        check_files_exist(pairs, listing)
    return pairs


def voc_palette() -> Palette:
    return get_palette("voc")


def download_dest(root: str | Path) -> Path:
    """The folder to download into so that VOC ends up at ``root`` (VOC2012, VOCdevkit or parent)."""
    root = Path(root)
    if root.name == "VOC2012" and root.parent.name == "VOCdevkit":
        return root.parent.parent
    if root.name == "VOCdevkit":
        return root.parent
    return root


def download_voc(dest: str | Path | None = None) -> Path:
    """Fetch VOC2012 trainval with torchvision's downloader into ``dest`` (default: the data home).

    A socket timeout makes an offline machine fail within seconds with a clear message instead of
    hanging; the downloader's own exceptions become a SegtoolError.
    """
    dest = Path(dest) if dest is not None else data_home()
    target = dest / "VOCdevkit" / "VOC2012"
    if is_voc_folder(target):
        return target
    from torchvision.datasets import VOCSegmentation

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    made = _missing_parents(dest)  # removed again if the download fails: no empty folders left behind
    existed = set(dest.iterdir()) if dest.is_dir() else set()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        VOCSegmentation(root=str(dest), year="2012", image_set="trainval", download=True)
    except BaseException as exc:
        _undo_download(dest, made, existed)
        if isinstance(exc, SegtoolError) or not isinstance(exc, Exception):
            raise
        reason = " ".join(str(exc).split()) or exc.__class__.__name__
        raise SegtoolError(f"{target}: could not download VOC2012 ({exc.__class__.__name__}: {reason}); "
                           "are you offline? Put VOCdevkit/VOC2012 there by hand, or use "
                           "`segtool make-demo-data DIR` for synthetic data") from None
    finally:
        socket.setdefaulttimeout(previous)
    if not is_voc_folder(target):
        raise SegtoolError(f"{target}: download finished but the VOC2012 folder is not there")
    return target


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    return missing


def _undo_download(dest: Path, made: list[Path], existed: set[Path]) -> None:
    """Remove the partial archive and folders a failed download created; what was there stays."""
    import shutil

    if dest.is_dir():
        for entry in set(dest.iterdir()) - existed:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    for folder in made:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            break
