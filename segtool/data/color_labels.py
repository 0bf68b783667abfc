"""RGB colour -> class label through a palette, with lookup memory proportional to the classes.

The classic method indexes a 256^3-entry table (16 MB as uint8, 128 MB as int64, copied into every
loader worker). ``ColorToLabel`` needs about a kilobyte:

- fast path (palettes whose colours use few distinct values per channel, e.g. VOC: 6x6x4 codes,
  CamVid-32: 5x5x5): PIL maps each channel to a small code (``Image.point``), folds the three
  codes into one byte (``convert("L", matrix)``, exact for small integers) and maps that byte to
  the label (``point`` again) — all C loops; a 256-bin histogram of the folded byte tells whether
  any pixel has an unknown colour.
- general path (any palette, and masks with unknown colours): colours packed into uint32 keys,
  looked up in a collision-free multiplicative hash table (or ``np.searchsorted`` if none exists),
  which also gives the first unknown pixel and lets ``tolerance`` snap near colours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.data.palettes import IGNORE_INDEX, Palette

UNKNOWN_POLICIES = ("ignore", "error")


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
    """RGB colour -> label index through a palette (see the module docstring for the two paths)."""

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
        self.codes = _ChannelCodes.build(self.colors, self.values)

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        hashed = keys * self.multiplier  # wraps modulo 2^32 by design
        hashed >>= self.shift
        return hashed

    @property
    def nbytes(self) -> int:
        """Lookup memory in bytes (hash table + sorted keys + colours for snapping)."""
        return (self.keys.nbytes + self.values.nbytes + self.colors.nbytes
                + self.hash_keys.nbytes + self.hash_values.nbytes + (self.codes.nbytes if self.codes else 0))

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
        """Labels (H x W uint8, possibly read-only) of an RGB PIL image or H x W x 3 array."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        if self.codes is not None:
            img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
            labels = self.codes.labels(img if img.mode == "RGB" else img.convert("RGB"))
            if labels is not None:
                return ConversionResult(labels, 0)
            # Some colour is unknown: the key path finds where, counts and snaps.
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


@dataclass
class _ChannelCodes:
    """Fast path: per-channel codes folded into one byte, then one 256-entry label table.

    Channel c value v -> code (its rank among the palette's values in channel c, or ``n_c`` for
    "no palette colour has this value"); the byte ``(code_r * N_g + code_g) * N_b + code_b`` indexes
    ``cube``. Exists only when N_r * N_g * N_b <= 256.
    """

    channel_lut: list[int]       # 768 entries for Image.point on RGB
    matrix: tuple[float, ...]    # convert("L", matrix) folding the three codes
    cube: list[int]              # 256 entries: folded byte -> label (255 for unknown too)
    unknown: np.ndarray          # 256 bools: folded bytes that are no palette colour

    nbytes = 768 + 256 + 256

    @classmethod
    def build(cls, colors: np.ndarray, labels: np.ndarray) -> _ChannelCodes | None:
        values = [sorted(set(colors[:, c].tolist())) for c in range(3)]
        sizes = [len(v) + 1 for v in values]  # + 1 for "not a palette value"
        if sizes[0] * sizes[1] * sizes[2] > 256:
            return None
        lut: list[int] = []
        for c in range(3):
            table = [len(values[c])] * 256
            for code, value in enumerate(values[c]):
                table[value] = code
            lut += table
        cube = [IGNORE_INDEX] * 256
        unknown = np.ones(256, dtype=bool)
        for (r, g, b), label in zip(colors.tolist(), labels.tolist(), strict=True):
            folded = (values[0].index(r) * sizes[1] + values[1].index(g)) * sizes[2] + values[2].index(b)
            cube[folded] = int(label)
            unknown[folded] = False
        matrix = (float(sizes[1] * sizes[2]), float(sizes[2]), 1.0, 0.0)
        return cls(lut, matrix, cube, unknown)

    def labels(self, img: Image.Image) -> np.ndarray | None:
        """H x W uint8 labels, or None when some pixel has a colour outside the palette."""
        folded = img.point(self.channel_lut).convert("L", matrix=self.matrix)
        histogram = np.asarray(folded.histogram())
        if histogram[self.unknown].any():
            return None
        return np.asarray(folded.point(self.cube))
