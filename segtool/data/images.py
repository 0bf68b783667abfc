"""Reading images as 8-bit RGB arrays, with one clear error per unreadable file.

PIL decodes lazily, so ``read_image`` forces the full decode inside the ``try`` to turn truncated
files into a ``SegtoolError`` naming the file instead of a traceback later in a loader worker.
Modes that have a meaningful RGB view are converted (L, LA, RGBA, CMYK, P, 16-bit grey); modes
that do not (32-bit float / int) are refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from segtool.core.errors import SegtoolError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# Exceptions PIL raises for corrupt, truncated or non-image files.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
                  Image.DecompressionBombError)


@contextmanager
def _decode_errors(path: Path, failure: str) -> Iterator[None]:
    """Turn PIL's many exceptions for a bad file into one SegtoolError naming ``path``."""
    try:
        yield
    except FileNotFoundError:
        raise SegtoolError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SegtoolError(f"{path}: is a directory, expected an image file") from None
    except UnidentifiedImageError:
        raise SegtoolError(f"{path}: not an image file (or an unsupported format)") from None
    except _DECODE_ERRORS as exc:
        raise SegtoolError(f"{path}: {failure} ({_reason(exc)})") from None


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode ``path``; any failure becomes a SegtoolError naming the file."""
    path = Path(path)
    with _decode_errors(path, "corrupt or truncated image"), Image.open(path) as img:
        img.load()  # decode now: the pixels stay after the file closes
        return img


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    path = Path(path)
    with _decode_errors(path, "unreadable image header"), Image.open(path) as img:
        return img.size


def to_rgb(img: Image.Image, source: str | os.PathLike = "image") -> Image.Image:
    """Convert a decoded PIL image to mode RGB where that is meaningful, else refuse."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grey: keep the top 8 bits (PIL's own convert("L") clips instead of scaling).
        arr = (np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Alpha is dropped, not composited: segmentation images are opaque photos in practice.
        return img.convert("RGBA").convert("RGB")
    if mode in ("L", "P", "CMYK", "YCbCr", "LAB", "HSV", "1", "RGBX"):
        return img.convert("RGB")
    raise SegtoolError(f"{source}: image mode {mode} (e.g. 32-bit int/float) has no RGB meaning; "
                       "convert it to 8-bit RGB first")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """H x W x 3 uint8 RGB array of the image at ``path``."""
    img = to_rgb(open_image(path), path)
    return np.asarray(img, dtype=np.uint8)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
