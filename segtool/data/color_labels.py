"""RGB colour -> class label through a palette, with lookup memory proportional to the classes.

The classic method indexes a 256^3-entry table (16 MB as uint8, 128 MB as int64, copied into every
loader worker). ``ColorToLabel`` keeps only the palette's colours as sorted uint32 keys
(4 bytes + 1 label byte + 12 bytes for snapping per class) and searches them with
``np.searchsorted``. To be fast as well, it exploits that label masks are piecewise constant: in
raster order a mask of 500x375 pixels has only a few thousand runs of one colour, so it looks up one
key per run and expands the labels with ``np.repeat``. Noisy masks (JPEG-saved) fall back to one
lookup per pixel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.data.palettes import Palette

UNKNOWN_POLICIES = ("ignore", "error")
_RGB_MASK = np.uint32(0xFFFFFF)
_MAX_RUN_SHARE = 4  # look up per run while runs < pixels / 4


@dataclass
class ConversionResult:
    labels: np.ndarray       # H x W uint8
    unknown_pixels: int      # pixels whose colour is not in the palette (after snapping)
    snapped_pixels: int = 0  # pixels moved to a palette colour by --tolerance


def _raw_keys(rgb) -> tuple[np.ndarray, int, int]:
    """(flat uint32 pixels ``r | g << 8 | b << 16 | x << 24``, width, height); x is PIL's pad byte.

    A PIL RGB image stores 4 bytes per pixel, so ``tobytes("raw", "RGBX")`` is one plain copy.
    """
    if isinstance(rgb, Image.Image):
        img = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    else:
        arr = np.asarray(rgb)[..., :3]
        img = Image.fromarray(np.ascontiguousarray(arr.reshape(-1, arr.shape[-2], 3), dtype=np.uint8))
    width, height = img.size
    return np.frombuffer(img.tobytes("raw", "RGBX"), dtype="<u4"), width, height


def pack_rgb(rgb) -> np.ndarray:
    """RGB pixels (PIL image or H x W x 3 array) -> flat uint32 keys ``r | g << 8 | b << 16``."""
    return _raw_keys(rgb)[0] & _RGB_MASK


def _key(color) -> int:
    r, g, b = (int(v) for v in color)
    return r | (g << 8) | (b << 16)


class ColorToLabel:
    """RGB colour -> label index through a palette (see the module docstring)."""

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

    @property
    def nbytes(self) -> int:
        """Lookup memory in bytes (sorted keys, labels, colours for snapping)."""
        return self.keys.nbytes + self.values.nbytes + self.colors.nbytes

    def labels_for_keys(self, keys: np.ndarray, tolerance: float = 0.0
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(labels, missing, snapped) for flat keys. Unknown keys get 255 and are True in ``missing``;
        ``tolerance`` first snaps keys within that RGB distance (True in ``snapped``). Masks are None
        when empty."""
        pos = np.searchsorted(self.keys, keys)
        np.minimum(pos, len(self.keys) - 1, out=pos)
        labels = self.values[pos]
        missing = self.keys[pos] != keys
        if not missing.any():
            return labels, None, None
        snapped = self._snap(keys, missing, labels, tolerance) if tolerance > 0 else None
        labels[missing] = IGNORE_INDEX
        return labels, (missing if missing.any() else None), snapped

    def __call__(self, rgb, *, unknown: str = "ignore", tolerance: float = 0.0,
                 source: str | os.PathLike = "mask") -> ConversionResult:
        """Labels (H x W uint8) of an RGB PIL image or H x W x 3 array."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        raw, width, height = _raw_keys(rgb)
        starts = np.flatnonzero(raw[1:] != raw[:-1]) + 1
        if starts.size * _MAX_RUN_SHARE < raw.size:  # piecewise constant: one lookup per run
            starts = np.concatenate(([0], starts))
            lengths = np.diff(starts, append=raw.size)
            keys = raw[starts] & _RGB_MASK
        else:  # noisy mask: one lookup per pixel
            starts = lengths = None
            keys = raw & _RGB_MASK
        labels, missing, snapped = self.labels_for_keys(keys, tolerance)

        def pixels(entries: np.ndarray | None) -> int:
            if entries is None:
                return 0
            return int(lengths[entries].sum()) if lengths is not None else int(entries.sum())

        unknown_count = pixels(missing)
        if unknown_count and unknown == "error":
            entry = int(np.flatnonzero(missing)[0])
            first = int(starts[entry]) if starts is not None else entry
            raise self.unknown_error(source, keys[entry], first % width, first // width, unknown_count)
        if lengths is not None:
            labels = np.repeat(labels, lengths)
        return ConversionResult(labels.reshape(height, width), unknown_count, pixels(snapped))

    def unknown_error(self, source, key, x: int, y: int, count: int) -> SegtoolError:
        key = int(key)
        color = (key & 255, (key >> 8) & 255, key >> 16)
        return SegtoolError(f"{source}: colour {color} at (x={x}, y={y}) is not in palette {self.palette.name} "
                            f"({count} such pixels; use --unknown ignore, or --tolerance to snap near colours)")

    def _snap(self, keys: np.ndarray, missing: np.ndarray, labels: np.ndarray, tolerance: float) -> np.ndarray:
        """Give missing keys the label of the nearest palette colour within ``tolerance``.

        Works on the distinct unknown colours (few, even in JPEG-saved masks), so memory stays
        proportional to classes x distinct colours. Updates ``missing`` and ``labels`` in place and
        returns the mask of snapped keys.
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
        snapped = np.zeros(keys.shape, dtype=bool)
        snapped[hit] = True
        return snapped
