"""Label masks: read index masks, convert RGB colour masks to labels, write label PNGs.

Palette ("P") and grey ("L") PNGs hold the class index as the pixel value, so they are read
directly — never through RGB, which is both slower and lossy (VOC's void colour is not a class).
RGB colour masks go through ``ColorToLabel``: a small collision-free hash table of the palette's
packed colours — memory proportional to the number of classes instead of the classic
256^3-entry table (16-128 MB per dataset object and loader worker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.core.io import atomic_write
from segtool.data.images import open_image
from segtool.data.palettes import IGNORE_INDEX, Palette

INDEX_MODES = ("P", "L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I")
COLOR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
UNKNOWN_POLICIES = ("ignore", "error")


def index_array(img: Image.Image, source: str | os.PathLike = "mask") -> np.ndarray:
    """H x W uint8 label values of an index-mode image (P / L / 1 / 16-bit with values <= 255)."""
    mode = img.mode
    if mode in ("P", "L"):
        return np.asarray(img)  # the stored indices; a P image's palette is not applied
    if mode == "1":
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I"):
        arr = np.asarray(img)
        if arr.size and int(arr.max()) > 255:
            raise SegtoolError(f"{source}: {mode} mask holds value {int(arr.max())}; "
                               "label masks must hold values 0..255")
        return arr.astype(np.uint8)
    raise SegtoolError(f"{source}: mode {mode} is not an index mask (expected P or L; "
                       "RGB colour masks need a palette, e.g. --palette voc)")


def read_index_mask(path: str | os.PathLike) -> np.ndarray:
    """H x W uint8 array of the label values stored in a P / L mask file."""
    return index_array(open_image(path), path)


def pack_rgb(rgb) -> np.ndarray:
    """RGB pixels -> uint32 keys ``r | g << 8 | b << 16`` (flat), from a PIL image or H x W x 3 array.

    A PIL RGB image already stores 4 bytes per pixel, so ``tobytes("raw", "RGBX")`` gives the keys
    with a single copy; arrays get a zero fourth byte.
    """
    if isinstance(rgb, Image.Image):
        keys = np.frombuffer(rgb.tobytes("raw", "RGBX"), dtype="<u4").copy()
    else:
        arr = np.asarray(rgb, dtype=np.uint8)
        padded = np.zeros(arr.shape[:-1] + (4,), dtype=np.uint8)
        padded[..., :3] = arr[..., :3]
        keys = padded.reshape(-1, 4).view("<u4")[:, 0].copy()
    keys &= np.uint32(0xFFFFFF)
    return keys


def _key(color) -> int:
    r, g, b = (int(v) for v in color)
    return r | (g << 8) | (b << 16)


def _perfect_hash(keys: np.ndarray) -> tuple[int, int] | None:
    """(multiplier, bits) so that ``(key * multiplier mod 2^32) >> (32 - bits)`` is collision-free."""
    multipliers = (2654435761, 2246822519, 3266489917, 668265263, 374761393, 1640531527, 3141592653)
    min_bits = max(1, int(len(keys) - 1).bit_length() + 1)
    for bits in range(min_bits, 17):
        for mult in multipliers:
            hashed = ((keys.astype(np.uint64) * mult) & 0xFFFFFFFF) >> (32 - bits)
            if len(np.unique(hashed)) == len(keys):
                return mult, bits
    return None


@dataclass
class ConversionResult:
    labels: np.ndarray       # H x W uint8
    unknown_pixels: int      # pixels whose colour is not in the palette (after snapping)
    snapped_pixels: int = 0  # pixels moved to a palette colour by --tolerance


class ColorToLabel:
    """RGB colour -> label index through a palette, with lookup memory of a few bytes per class.

    The palette's colours get a collision-free multiplicative hash (table of 2^bits entries,
    bits <= 16, typically a few hundred entries), so a pixel costs one multiply, one shift and two
    small-table loads; a key compare tells unknown colours apart. Should no such hash exist the
    sorted key table is searched instead (``np.searchsorted``).
    """

    def __init__(self, palette: Palette, include_ignore: bool = True):
        table: dict[int, int] = {}
        entries = [(c, i) for i, c in enumerate(palette.colors)]
        if include_ignore and palette.ignore_color is not None:
            entries.append((palette.ignore_color, palette.ignore_index))
        for color, label in entries:
            key = _key(color)
            if key in table and table[key] != label:
                raise SegtoolError(f"palette {palette.name}: colour {tuple(int(v) for v in color)} is "
                                   f"used by labels {table[key]} and {label}")
            table.setdefault(key, label)
        self.palette = palette
        self.keys = np.array(sorted(table), dtype=np.uint32)
        self.values = np.array([table[int(k)] for k in self.keys], dtype=np.uint8)
        self.colors = np.stack([self.keys & 255, (self.keys >> 8) & 255, self.keys >> 16], axis=1).astype(np.int32)
        found = _perfect_hash(self.keys)
        if found is None:
            self.multiplier, self.shift = None, None
            self.hash_keys = self.hash_values = np.zeros(0, dtype=np.uint32)
        else:
            mult, bits = found
            self.multiplier, self.shift = np.uint32(mult), np.uint32(32 - bits)
            slots = self._hash(self.keys)
            # An empty slot holds a key no RGB pixel can have (bit 24 set), so lookups miss.
            self.hash_keys = np.full(1 << bits, 1 << 24, dtype=np.uint32)
            self.hash_keys[slots] = self.keys
            self.hash_values = np.full(1 << bits, IGNORE_INDEX, dtype=np.uint8)
            self.hash_values[slots] = self.values

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        hashed = keys * self.multiplier  # wraps modulo 2^32 by design
        hashed >>= self.shift
        return hashed

    @property
    def nbytes(self) -> int:
        """Lookup memory in bytes (hash table + sorted keys + colours for snapping)."""
        return (self.keys.nbytes + self.values.nbytes + self.colors.nbytes
                + self.hash_keys.nbytes + self.hash_values.nbytes)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels, found) for flat uint32 keys; ``found`` is None when every key is known."""
        if self.multiplier is not None:
            slots = self._hash(keys)
            labels = self.hash_values[slots]
            found = self.hash_keys[slots] == keys
        else:
            pos = np.searchsorted(self.keys, keys)
            np.minimum(pos, len(self.keys) - 1, out=pos)
            found = self.keys[pos] == keys
            labels = self.values[pos]
        return labels, (None if found.all() else found)

    def labels_for_keys(self, keys: np.ndarray, tolerance: float = 0.0) -> tuple[np.ndarray, np.ndarray | None, int]:
        """(labels, missing, snapped) for flat keys; unknown keys get 255 and are True in ``missing``
        (None when every key is known); ``tolerance`` snaps near colours first."""
        labels, found = self.lookup(keys)
        if found is None:
            return labels, None, 0
        missing = ~found
        snapped = self._snap(keys, missing, labels, tolerance) if tolerance > 0 else 0
        labels[missing] = IGNORE_INDEX
        return labels, (missing if missing.any() else None), snapped

    def __call__(self, rgb, *, unknown: str = "ignore", tolerance: float = 0.0,
                 source: str | os.PathLike = "mask") -> ConversionResult:
        """Labels (H x W uint8) of an RGB PIL image or H x W x 3 array."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        if isinstance(rgb, Image.Image):
            width, height = rgb.size
        else:
            height, width = np.shape(rgb)[:2]
        keys = pack_rgb(rgb)
        labels, missing, snapped = self.labels_for_keys(keys, tolerance)
        unknown_count = 0 if missing is None else int(missing.sum())
        if unknown_count and unknown == "error":
            first = int(np.flatnonzero(missing)[0])
            raise self.unknown_error(source, keys[first], first % width, first // width, unknown_count)
        return ConversionResult(labels.reshape(height, width), unknown_count, snapped)

    def unknown_error(self, source, key, x: int, y: int, count: int) -> SegtoolError:
        key = int(key)
        color = (key & 255, (key >> 8) & 255, key >> 16)
        return SegtoolError(f"{source}: colour {color} at (x={x}, y={y}) is not in palette {self.palette.name} "
                            f"({count} such pixels; use --unknown ignore, or --tolerance to snap near colours)")

    def _snap(self, keys: np.ndarray, missing: np.ndarray, labels: np.ndarray, tolerance: float) -> int:
        """Give missing pixels the label of the nearest palette colour within ``tolerance``.

        Works on the distinct unknown colours (few, even in JPEG-saved masks), so memory stays
        proportional to classes x distinct colours. Updates ``missing`` and ``labels`` in place.
        """
        idx = np.flatnonzero(missing)
        distinct, inverse = np.unique(keys[idx], return_inverse=True)
        rgb = np.stack([distinct & 255, (distinct >> 8) & 255, distinct >> 16], axis=1).astype(np.int32)
        dist2 = ((rgb[:, None, :] - self.colors[None, :, :]) ** 2).sum(axis=2)
        nearest = dist2.argmin(axis=1)
        ok = dist2[np.arange(len(distinct)), nearest] <= tolerance * tolerance
        pixel_ok = ok[inverse]
        hit = idx[pixel_ok]
        labels[hit] = self.values[nearest[inverse[pixel_ok]]]
        missing[hit] = False
        return int(hit.size)


def read_label_mask(path: str | os.PathLike, palette: Palette | None = None, *, unknown: str = "ignore",
                    tolerance: float = 0.0, converter: ColorToLabel | None = None) -> ConversionResult:
    """Labels of any mask file: P / L read as indices; colour masks through ``palette``."""
    img = open_image(path)
    if img.mode in INDEX_MODES:
        return ConversionResult(index_array(img, path), 0)
    if img.mode in ("LA", "PA"):
        return ConversionResult(index_array(img.getchannel(0) if img.mode == "LA" else img.convert("P"), path), 0)
    if img.mode not in COLOR_MODES:
        raise SegtoolError(f"{path}: mask mode {img.mode} is not supported")
    if converter is None:
        if palette is None:
            raise SegtoolError(f"{path}: {img.mode} colour mask needs a palette to map colours to labels "
                               "(e.g. --palette voc)")
        converter = ColorToLabel(palette)
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    return converter(rgb, unknown=unknown, tolerance=tolerance, source=path)


def label_image(labels: np.ndarray, palette: Palette | None = None, *, gray: bool = False,
                source: str = "labels") -> Image.Image:
    """A PIL image of a label map: palette mode with ``palette``'s colours, or plain L with ``gray``."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise SegtoolError(f"{source}: label map must be 2-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise SegtoolError(f"{source}: label values must be 0..255")
    data = np.ascontiguousarray(labels, dtype=np.uint8)
    height, width = data.shape
    if gray or palette is None:
        return Image.frombytes("L", (width, height), data.tobytes())
    img = Image.frombytes("P", (width, height), data.tobytes())
    img.putpalette(palette.pil_palette())
    return img


def write_label_png(labels: np.ndarray, path: str | os.PathLike, palette: Palette | None = None, *,
                    gray: bool = False, force: bool = False) -> None:
    """Write a label map atomically as a palette-mode PNG (or L PNG with ``gray``)."""
    img = label_image(labels, palette, gray=gray, source=str(path))
    atomic_write(path, lambda handle: img.save(handle, format="PNG"), force=force)


def write_color_png(labels: np.ndarray, path: str | os.PathLike, palette: Palette, *,
                    force: bool = False) -> None:
    """Write the RGB rendering of a label map atomically (label2color)."""
    rgb = palette.colorize(labels)
    img = Image.fromarray(rgb)
    atomic_write(path, lambda handle: img.save(handle, format="PNG"), force=force)

