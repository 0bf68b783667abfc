"""Dataset statistics behind ``segtool voc-stats``: sizes, class pixels, void share, weights, mean/std.

Each sample is measured in a worker process (``measure_sample``) that returns a few hundred
numbers; the parent folds them into running totals (``StatsAccumulator``), so memory stays flat in
the number of images. Problems (missing or unreadable files, size mismatches, labels outside the
palette) are collected and reported rather than raised.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.data import camvid, voc
from segtool.data.images import image_size, read_image
from segtool.data.mask_decoder import MaskDecoder
from segtool.data.sources import SplitFiles, resolve_split

SPLIT_CHOICES = ("train", "val", "trainval", "test", "all")
ENET_C = 1.02  # ENet's class weight 1 / ln(c + p)


@dataclass
class SampleStats:
    """What one worker reports for one (image, mask) pair."""

    index: int
    size: tuple[int, int] | None = None             # (width, height) from the image header
    counts: np.ndarray | None = None                # 256 label-value pixel counts
    channel_sum: np.ndarray | None = None           # per-channel sum and sum of squares (0..255 scale)
    channel_sqsum: np.ndarray | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, what is wrong)


_worker: dict = {}


def _init_worker(decoder: MaskDecoder, mean_std: bool) -> None:
    _worker["decoder"] = decoder
    _worker["mean_std"] = mean_std


def measure_sample(task: tuple[int, Path, Path]) -> SampleStats:
    """Header size, label histogram and (optionally) channel sums of one sample; never raises."""
    index, image_path, mask_path = task
    out = SampleStats(index)
    try:
        out.size = image_size(image_path)
        if _cut_short(image_path):
            out.problems.append((str(image_path), "truncated: the file ends before the image does"))
        if _worker["mean_std"]:
            pixels = read_image(image_path).reshape(-1, 3).astype(np.float64)
            out.channel_sum = pixels.sum(axis=0)
            out.channel_sqsum = np.einsum("ij,ij->j", pixels, pixels)
    except SegtoolError as exc:
        out.problems.append((str(image_path), _strip(exc, image_path)))
    try:
        labels = _worker["decoder"](mask_path)
    except SegtoolError as exc:
        out.problems.append((str(mask_path), _strip(exc, mask_path)))
        return out
    if out.size is not None and (labels.shape[1], labels.shape[0]) != out.size:
        out.problems.append((str(mask_path), f"mask is {labels.shape[1]}x{labels.shape[0]} but its image is "
                                             f"{out.size[0]}x{out.size[1]} (WxH)"))
    out.counts = label_histogram(labels)
    num_classes = _worker["decoder"].palette.num_classes
    bad = np.flatnonzero(out.counts[num_classes:IGNORE_INDEX]) + num_classes
    if bad.size:
        out.problems.append((str(mask_path), f"labels {', '.join(map(str, bad.tolist()))} >= num_classes "
                                             f"{num_classes} (255 is the only other allowed value)"))
    return out


# (magic bytes at the start, marker that must be in the last KB) of JPEG and PNG files.
_END_MARKERS = ((b"\xff\xd8", b"\xff\xd9"), (b"\x89PNG", b"IEND"))


def _cut_short(path: Path) -> bool:
    """A JPEG without its end-of-image marker or a PNG without IEND near the end: truncated. The
    header alone (no --mean-std) would not show it; reading the last KB costs nothing."""
    with open(path, "rb") as handle:
        head = handle.read(4)
        marker = next((end for magic, end in _END_MARKERS if head.startswith(magic)), None)
        if marker is None:
            return False
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 1024))
        return marker not in handle.read()


def label_histogram(labels: np.ndarray) -> np.ndarray:
    """Pixels per label value 0..255 of one mask."""
    return np.bincount(np.asarray(labels).reshape(-1), minlength=256)


def _strip(exc: SegtoolError, path: Path) -> str:
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


class StatsAccumulator:
    """Running totals over samples; memory independent of the number of images."""

    def __init__(self, num_classes: int, crop: tuple[int, int] | None, memberships: list[tuple[str, ...]]):
        self.num_classes = num_classes
        self.crop = crop
        self.memberships = memberships
        self.pixels = np.zeros(256, dtype=np.int64)
        self.images_with = np.zeros(256, dtype=np.int64)
        # Median frequency balancing needs, per class, the pixels of the images that contain it.
        self.pixels_of_images_with = np.zeros(256, dtype=np.int64)
        self.sizes: Counter = Counter()
        self.crop_ok: Counter = Counter()
        self.crop_of: Counter = Counter()
        self.channel_sum = np.zeros(3)
        self.channel_sqsum = np.zeros(3)
        self.channel_pixels = 0
        self.measured = 0
        self.invalid: Counter = Counter()  # label value -> pixels, for values >= num_classes (not 255)
        self.problems: list[dict] = []

    def add(self, s: SampleStats) -> None:
        for file, problem in s.problems:
            self.problems.append({"file": file, "problem": problem})
        if s.size is not None:
            self.sizes[s.size] += 1
            if self.crop is not None:
                fits = s.size[1] >= self.crop[0] and s.size[0] >= self.crop[1]
                for split in self.memberships[s.index]:
                    self.crop_of[split] += 1
                    self.crop_ok[split] += int(fits)
        if s.channel_sum is not None:
            self.channel_sum += s.channel_sum
            self.channel_sqsum += s.channel_sqsum
            self.channel_pixels += s.size[0] * s.size[1]
        if s.counts is None:
            return
        self.measured += 1
        self.pixels += s.counts
        present = s.counts > 0
        self.images_with += present
        self.pixels_of_images_with[present] += int(s.counts.sum())
        for value in np.flatnonzero(present[self.num_classes:IGNORE_INDEX]) + self.num_classes:
            self.invalid[int(value)] += int(s.counts[value])


def iter_measurements(tasks: list[tuple[int, Path, Path]], decoder: MaskDecoder, *, mean_std: bool,
                      workers: int) -> Iterator[SampleStats]:
    """Measure samples in ``workers`` processes (in this process for 1), in any order."""
    if workers <= 1 or len(tasks) < 2:
        _init_worker(decoder, mean_std)
        yield from map(measure_sample, tasks)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    with context.Pool(workers, initializer=_init_worker, initargs=(decoder, mean_std)) as pool:
        yield from pool.imap_unordered(measure_sample, tasks, chunksize=chunk)


def split_sizes(source: SplitFiles) -> dict[str, int]:
    """Images listed per split file next to the chosen one (VOC: train/val/trainval, CamVid: lists)."""
    counts: dict[str, int] = {}
    if source.format in ("voc", "demo"):
        base = voc.resolve_voc_root(source.root) / "ImageSets" / "Segmentation"
        for path in sorted(base.glob("*.txt")):
            counts[path.stem] = sum(1 for line in path.read_text().splitlines() if line.strip())
    elif source.format == "camvid":
        for name in ("train", "val", "test"):
            if (source.root / f"{name}.txt").is_file() or (source.root / name).is_dir():
                try:
                    counts[name] = len(_camvid_samples(source.root, name))
                except SegtoolError:
                    pass
    else:
        counts[source.split] = len(source.samples)
    return counts


def _member_counts(memberships: list[tuple[str, ...]]) -> dict[str, int]:
    """Images per split of a folder dataset (its split folders, lists or --val-fraction parts)."""
    return dict(Counter(name for member in memberships for name in member))


def _camvid_samples(root: Path, split: str) -> list:
    if camvid.detect_layout(root, split) == "segnet11":
        return camvid.segnet_samples(root, split, check=False)
    return camvid.camvid32_samples(root, split, check=False)


def gather_sources(fmt: str, root: Path, split: str, *, palette: str | None = None,
                   binary: bool = False, download: bool = False,
                   layout=None) -> tuple[SplitFiles, list[tuple[Path, Path]], list[tuple[str, ...]]]:
    """The source, its samples and each sample's splits; ``all`` = every split, each sample once.
    ``layout``: the folder format's --images/--masks folders and --val-fraction split."""
    if download and fmt == "voc":
        resolve_split(fmt, root, "train", palette=palette, download=True, check=False)
    generated_split = layout is not None and layout.val_fraction is not None
    if split != "all" or (fmt == "folder" and not generated_split):  # a folder without splits is one split
        source = resolve_split(fmt, root, split, palette=palette, binary=binary, check=False, layout=layout)
        return source, source.samples, [(split,)] * len(source.samples)
    names = ("train", "val", "test") if fmt == "camvid" else ("train", "val")
    first = None
    order: dict[tuple[Path, Path], list[str]] = {}
    for name in names:
        try:
            source = resolve_split(fmt, root, name, palette=palette, binary=binary, check=False, layout=layout)
        except SegtoolError:
            if name == names[0] and fmt != "camvid":
                raise
            continue
        first = first or source
        for pair in source.samples:
            order.setdefault(pair, []).append(name)
    if first is None:
        raise SegtoolError(f"{root}: no split lists found")
    first.split = "all"
    return first, list(order), [tuple(v) for v in order.values()]


def dataset_stats(fmt: str, root: str | Path, split: str = "train", *, crop: tuple[int, int] | None = None,
                  mean_std: bool = False, workers: int = 1, palette: str | None = None, binary: bool = False,
                  download: bool = False, on_sample=None, layout=None) -> dict:
    """All statistics of one split as a JSON-ready dict (see ``segtool voc-stats --help``)."""
    source, samples, memberships = gather_sources(fmt, Path(root), split, palette=palette, binary=binary,
                                                  download=download, layout=layout)
    tasks = []
    acc = StatsAccumulator(source.palette.num_classes, crop, memberships)
    for index, (image_path, mask_path) in enumerate(samples):
        missing = [p for p in (image_path, mask_path) if not p.is_file()]
        if missing:
            for path in missing:
                acc.problems.append({"file": str(path), "problem": "file not found"})
            continue
        tasks.append((index, image_path, mask_path))
    for result in iter_measurements(tasks, source.decoder, mean_std=mean_std, workers=workers):
        acc.add(result)
        if on_sample:
            on_sample()
    return _report(source, samples, acc, split, crop, mean_std)


def count_class_pixels(masks: Iterable[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(labelled pixels per class, pixels of the images that contain each class), as voc-stats counts them."""
    acc = StatsAccumulator(num_classes, None, [])
    for index, labels in enumerate(masks):
        acc.add(SampleStats(index, counts=label_histogram(labels)))
    return acc.pixels[:num_classes], acc.pixels_of_images_with[:num_classes]


def class_weights(pixels: np.ndarray, pixels_of_images_with: np.ndarray) -> tuple[list, list]:
    """(median frequency balancing, ENet 1/ln(1.02 + p)); None for classes never seen."""
    seen = pixels > 0
    freq = np.where(seen, pixels / np.maximum(pixels_of_images_with, 1), 0.0)
    median = float(np.median(freq[seen])) if seen.any() else 0.0
    total = pixels.sum()
    share = pixels / total if total else np.zeros_like(pixels, dtype=float)
    median_freq = [round(median / f, 6) if s else None for f, s in zip(freq, seen, strict=True)]
    enet = [round(1.0 / float(np.log(ENET_C + p)), 6) if s else None for p, s in zip(share, seen, strict=True)]
    return median_freq, enet


def _absent_note(split: str) -> str:
    # Both weights divide by the class's own frequency: a class never seen has none to divide by.
    return f"no weight: the class has no pixels in split {split} (weights are 1 / its frequency)"


def _report(source: SplitFiles, samples, acc: StatsAccumulator, split: str, crop, mean_std: bool) -> dict:
    nc = source.palette.num_classes
    class_pixels = acc.pixels[:nc]
    labelled = int(class_pixels.sum())
    total = int(acc.pixels.sum())
    median_freq, enet = class_weights(class_pixels, acc.pixels_of_images_with[:nc])
    sizes = acc.sizes
    report: dict = {
        "root": str(source.root), "format": source.format, "split": split,
        "palette": source.palette.name, "num_classes": nc,
        "splits": split_sizes(source) if source.format != "folder" else _member_counts(acc.memberships),
        "images": len(samples), "measured": acc.measured,
        "problems": sorted(acc.problems, key=lambda p: (p["file"], p["problem"])),  # workers finish in any order
        "image_size": None,
        "pixels": total, "labelled_pixels": labelled,
        "void_pixels": int(acc.pixels[IGNORE_INDEX]),
        "void_fraction": round(int(acc.pixels[IGNORE_INDEX]) / total, 6) if total else None,
        "invalid_label_pixels": {str(k): v for k, v in sorted(acc.invalid.items())},
        "classes": [
            {"index": i, "name": source.palette.names[i], "pixels": int(class_pixels[i]),
             "fraction": round(int(class_pixels[i]) / labelled, 6) if labelled else 0.0,
             "images": int(acc.images_with[i]), "weight_median_freq": median_freq[i], "weight_enet": enet[i],
             "weight_note": None if class_pixels[i] else _absent_note(split)}
            for i in range(nc)
        ],
    }
    if sizes:
        widths = [w for w, _ in sizes]
        heights = [h for _, h in sizes]
        common, count = min(sizes.items(), key=lambda item: (-item[1], item[0]))  # ties: smallest size
        report["image_size"] = {"min_width": min(widths), "max_width": max(widths), "min_height": min(heights),
                                "max_height": max(heights), "most_common": list(common),
                                "most_common_count": count, "distinct": len(sizes)}
    if crop is not None:
        order = list(dict.fromkeys(split for member in acc.memberships for split in member))
        report["crop"] = {"height": crop[0], "width": crop[1],
                          "at_least": {k: acc.crop_ok[k] for k in order}, "of": {k: acc.crop_of[k] for k in order}}
    if mean_std:
        n = max(acc.channel_pixels, 1)
        mean = acc.channel_sum / n
        std = np.sqrt(np.maximum(acc.channel_sqsum / n - mean ** 2, 0.0))
        report["mean"] = [round(float(v) / 255, 6) for v in mean]
        report["std"] = [round(float(v) / 255, 6) for v in std]
    return report


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
