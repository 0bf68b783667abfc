"""One label check before training, evaluation and voc-stats: the mistakes that cost days.

It reads a sample of masks (evenly spread, at most ``SAMPLE`` per split: seconds even for 1000-px
JPEG masks) and reports, one line each with the command that fixes it:
- grey masks with many distinct values (JPEG-saved masks; ``--binary`` or ``colormap2label --tolerance``),
- 0/255 masks read without ``--binary`` (255 is the ignore label: every object pixel would be ignored),
- RGB colour masks without a palette, label values >= the class count,
- masks of another size than their image, masks no image pairs with,
- classes present in the train masks but absent from the val masks, train and val being the same images.
A real problem is an ``error`` (the run must not start); a doubtful one a ``warning``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.data.images import image_size, open_image
from segtool.data.masks import COLOR_MODES, index_array

SAMPLE = 48
JPEG_LIKE = 16  # more distinct grey values than this in one mask: not a label mask as saved


@dataclass
class Finding:
    level: str  # "error" | "warning"
    message: str


@dataclass
class LabelCheck:
    findings: list[Finding] = field(default_factory=list)
    masks_checked: int = 0

    def add(self, level: str, message: str) -> None:
        if all(f.message != message for f in self.findings):
            self.findings.append(Finding(level, message))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def report(self, *, strict: bool = True) -> None:
        """Print every finding as one stderr line; raise on the first error when ``strict``."""
        from segtool.core.console import warn

        errors = self.errors
        for finding in self.findings:
            if not (strict and errors and finding is errors[0]):
                warn(f"label check: {finding.message}")
        if strict and errors:
            more = f" ({len(errors) - 1} more problems above)" if len(errors) > 1 else ""
            raise SegtoolError(f"label check: {errors[0].message}{more}")


def current_command() -> str:
    """The command line as typed (``segtool train ...``), to which a fix appends its option."""
    args = sys.argv[1:]
    return shlex.join(["segtool", *args]) if args else "segtool"


def spread(items: list, count: int = SAMPLE) -> list:
    """At most ``count`` items evenly spread over the list (first and last included)."""
    if len(items) <= count:
        return list(items)
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def raw_values(path: Path) -> tuple[str, np.ndarray | None]:
    """(PIL mode, stored values of an index-mode mask or None for colour masks)."""
    img = open_image(path)
    if img.mode in COLOR_MODES or img.mode in ("LA", "PA"):
        if img.mode in ("RGB", "RGBA", "RGBX"):
            rgb = np.asarray(img.convert("RGB"))
            if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                return "grey-rgb", rgb[..., 0].copy()  # a grey mask saved as RGB
        return img.mode, None
    return img.mode, index_array(img, path)


def raw_checks(check: LabelCheck, samples: list[tuple[Path, Path]], *, binary: bool, palette_given: bool,
               command: str, split: str) -> None:
    """What the stored mask values say (before any decoding): JPEG grey, 0/255, colour, sizes."""
    grey_many, zero255, colour = [], [], []
    for image_path, mask_path in spread(samples):
        if not mask_path.is_file() or not image_path.is_file():
            continue  # missing files are reported by the dataset (and voc-stats) with their names
        try:
            _mode, values = raw_values(mask_path)
            (iw, ih), (mw, mh) = image_size(image_path), image_size(mask_path)
        except SegtoolError:
            continue  # unreadable files: the dataset (and voc-stats) name them when they are read
        check.masks_checked += 1
        if values is None:
            colour.append(mask_path)
        else:
            distinct = np.flatnonzero(np.bincount(values.reshape(-1), minlength=256))
            if distinct.size > JPEG_LIKE and not binary:
                grey_many.append((mask_path, distinct.size))
            elif set(distinct.tolist()) <= {0, IGNORE_INDEX} and IGNORE_INDEX in distinct and not binary:
                zero255.append(mask_path)
        if (iw, ih) != (mw, mh):
            check.add("error", f"{mask_path}: mask is {mw}x{mh} but image {image_path.name} is {iw}x{ih} (WxH); "
                               "masks must have their image's size")
    if grey_many:
        path, many = grey_many[0]
        check.add("error", f"{path}: grey mask with {many} distinct values ({len(grey_many)} of the "
                           f"{split} masks checked), as JPEG saves them; for a binary set threshold at 128: "
                           f"{command} --binary; for class colours snap them: segtool colormap2label MASKS "
                           "--palette FILE.csv --tolerance 30 --out-dir FIXED")
    if zero255:
        check.add("error", f"{zero255[0]}: mask holds only 0 and 255, and 255 is the ignore label (every object "
                           f"pixel would be ignored); read it as a binary mask: {command} --binary")
    if colour and not palette_given and not binary:
        check.add("error", f"{colour[0]}: RGB colour mask but no palette; name the colours: {command} --palette "
                           "FILE.csv (name,r,g,b lines), or convert once: segtool colormap2label MASKS "
                           "--palette FILE.csv --out-dir LABELS")


def label_checks(check: LabelCheck, samples: list[tuple[Path, Path]], *, decoder, num_classes: int,
                 command: str) -> np.ndarray:
    """Decoded labels: values >= the class count; returns which classes occur (bool, num_classes)."""
    present = np.zeros(max(num_classes, 1), dtype=bool)
    for _image_path, mask_path in spread(samples):
        if not mask_path.is_file():
            continue
        try:
            labels = decoder(mask_path)
        except SegtoolError:
            continue  # unreadable: reported by the dataset when read
        counts = np.bincount(labels.reshape(-1), minlength=256)
        counts[IGNORE_INDEX] = 0
        high = np.flatnonzero(counts[num_classes:])
        if high.size:
            check.add("error", f"{mask_path}: label {int(high.max()) + num_classes} but the dataset has "
                               f"{num_classes} classes (0..{num_classes - 1}, 255 = ignore); give a palette with "
                               f"more classes: {command} --palette FILE.csv")
        present |= counts[:present.size] > 0
    return present


def compare_splits(check: LabelCheck, train: np.ndarray, val: np.ndarray, names, val_count: int) -> None:
    missing = [str(names[i]) for i in np.flatnonzero(train & ~val) if i < len(names)]
    if missing and val_count:
        check.add("warning", f"classes {', '.join(missing)} appear in the train masks but in none of the "
                             f"{val_count} val masks checked: their val IoU will be n/a")


def unpaired_masks(check: LabelCheck, image_dir: Path, mask_dir: Path) -> None:
    from segtool.data.folder import pair_files

    _pairs, _lonely, orphans = pair_files(image_dir, mask_dir)
    if orphans:
        check.add("warning", f"{orphans[0]}: {len(orphans)} masks in {mask_dir} have no image in {image_dir} "
                             "(left out)")


def _samples(fmt: str, root: Path, split: str, layout) -> list[tuple[Path, Path]]:
    """The pairs of a split without building its palette (the folder format reads every mask for that)."""
    from segtool.data import folder
    from segtool.data.sources import resolve_split

    if fmt == "folder":
        return folder.folder_samples(root, split, layout)
    return resolve_split(fmt, root, split, check=False).samples


def check_dataset(fmt: str, root: str | Path, split: str = "train", val_split: str | None = "val", *,
                  palette: str | None = None, binary: bool = False, layout=None,
                  command: str | None = None) -> LabelCheck:
    """Run every check on ``split`` (and ``val_split``); see the module docstring. Problems that stop
    the dataset from being read at all (no folders, no pairs) raise as they would anyway."""
    from segtool.data import folder
    from segtool.data.sources import resolve_split

    root = Path(root)
    command = command or current_command()
    check = LabelCheck()
    splits = [split] + ([val_split] if val_split and val_split != split else [])
    samples = {}
    for name in splits:
        try:
            samples[name] = _samples(fmt, root, name, layout)
        except SegtoolError:
            if name == split:
                raise
    for name, pairs in samples.items():
        if name == split or pairs != samples[split]:
            raw_checks(check, pairs, binary=binary, palette_given=palette is not None, command=command, split=name)
    if fmt == "folder":
        image_dir, mask_dir, _ = folder.find_folders(root, split, layout or folder.FolderLayout())
        unpaired_masks(check, image_dir, mask_dir)
        if val_split in samples and samples[val_split] == samples[split] and split != val_split:
            check.add("warning", f"{root}: no split lists, so train and val are the same {len(samples[split])} "
                                 f"images (val scores will flatter the model); hold some out: {command} "
                                 "--val-fraction 0.1")
    if check.errors:
        return check
    present = {}
    for name, pairs in samples.items():
        files = resolve_split(fmt, root, name, palette=palette, binary=binary, check=False, layout=layout)
        present[name] = label_checks(check, pairs, decoder=files.decoder, num_classes=files.palette.num_classes,
                                     command=command)
        names = files.palette.names
    if val_split in present and split in present and val_split != split:
        compare_splits(check, present[split], present[val_split], names, len(spread(samples[val_split])))
    return check
