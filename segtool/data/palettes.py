"""Class palettes: names and colours for label maps, built in or read from a user file.

A ``Palette`` maps label index -> (name, RGB colour). Label 255 is the ignore ("void") label
everywhere in segtool; a palette may give it a colour (VOC: (224, 224, 192)). Built-ins:
``voc`` (21 classes, full 256-entry bit-interleaved colormap), ``camvid32`` (the 32-colour CamVid
table; its ``Void`` row is the ignore colour, so 31 classes), ``camvid11`` (SegNet's 11 classes,
label 11 = void -> 255), ``cityscapes`` (19 train ids). User files: CSV ``name,r,g,b`` (header
optional, spaces tolerated) or YAML (a ``name: [r, g, b]`` mapping or a list of ``{name, color}``).
Rows named void / unlabelled / ignore become the ignore colour instead of a class.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segtool.core.conventions import IGNORE_INDEX
from segtool.core.errors import SegtoolError
from segtool.core.io import read_text_file

_VOID_NAMES = {"void", "unlabelled", "unlabeled", "ignore", "background_ignore"}

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa",
    "train", "tv/monitor",
)

CAMVID11 = (
    ("Sky", (128, 128, 128)), ("Building", (128, 0, 0)), ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)), ("Pavement", (60, 40, 222)), ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)), ("Fence", (64, 64, 128)), ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)), ("Bicyclist", (0, 128, 192)),
)

# The 32-colour CamVid table (Brostow et al.), in the usual class_dict.csv order.
CAMVID32 = (
    ("Animal", (64, 128, 64)), ("Archway", (192, 0, 128)), ("Bicyclist", (0, 128, 192)),
    ("Bridge", (0, 128, 64)), ("Building", (128, 0, 0)), ("Car", (64, 0, 128)),
    ("CartLuggagePram", (64, 0, 192)), ("Child", (192, 128, 64)), ("Column_Pole", (192, 192, 128)),
    ("Fence", (64, 64, 128)), ("LaneMkgsDriv", (128, 0, 192)), ("LaneMkgsNonDriv", (192, 0, 64)),
    ("Misc_Text", (128, 128, 64)), ("MotorcycleScooter", (192, 0, 192)), ("OtherMoving", (128, 64, 64)),
    ("ParkingBlock", (64, 192, 128)), ("Pedestrian", (64, 64, 0)), ("Road", (128, 64, 128)),
    ("RoadShoulder", (128, 128, 192)), ("Sidewalk", (0, 0, 192)), ("SignSymbol", (192, 128, 128)),
    ("Sky", (128, 128, 128)), ("SUVPickupTruck", (64, 128, 192)), ("TrafficCone", (0, 0, 64)),
    ("TrafficLight", (0, 64, 64)), ("Train", (192, 64, 128)), ("Tree", (128, 128, 0)),
    ("Truck_Bus", (192, 128, 192)), ("Tunnel", (64, 0, 64)), ("VegetationMisc", (192, 192, 0)),
    ("Void", (0, 0, 0)), ("Wall", (64, 192, 0)),
)

CITYSCAPES19 = (
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)), ("fence", (190, 153, 153)), ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)), ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)), ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)), ("car", (0, 0, 142)), ("truck", (0, 0, 70)), ("bus", (0, 60, 100)),
    ("train", (0, 80, 100)), ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
)


def voc_colormap(n: int = 256) -> np.ndarray:
    """The standard bit-interleaved VOC colormap, (n, 3) uint8."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


@dataclass(frozen=True)
class Palette:
    """Class names and colours. ``colors[i]`` is the RGB of label ``i``."""

    name: str
    names: tuple[str, ...]
    colors: np.ndarray  # (num_classes, 3) uint8
    ignore_color: tuple[int, int, int] | None = None  # colour of label 255, if the palette has one
    ignore_index: int = IGNORE_INDEX
    # Colours for the other 256 entries of a PIL "P" palette (VOC keeps its full colormap there).
    extended: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def pil_palette(self) -> list[int]:
        """768 ints for ``Image.putpalette``: class colours, then extra entries, 255 = ignore colour."""
        table = np.zeros((256, 3), dtype=np.uint8)
        if self.extended is not None:
            table[: len(self.extended)] = self.extended
        table[: self.num_classes] = self.colors
        if self.ignore_color is not None:
            table[self.ignore_index] = self.ignore_color
        return table.reshape(-1).tolist()

    def lut(self, unknown_color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """(256, 3) uint8 lookup from label value to colour, for colourising index masks."""
        table = np.empty((256, 3), dtype=np.uint8)
        table[:] = unknown_color
        table[: self.num_classes] = self.colors
        if self.ignore_color is not None:
            table[self.ignore_index] = self.ignore_color
        return table

    def colorize(self, labels: np.ndarray, unknown_color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """H x W label array (any int dtype, values 0..255) -> H x W x 3 uint8 RGB."""
        return self.lut(unknown_color)[np.asarray(labels).astype(np.uint8, copy=False)]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "classes": [
                {"index": i, "name": n, "color": [int(c) for c in self.colors[i]]}
                for i, n in enumerate(self.names)
            ],
            "ignore_index": self.ignore_index,
            "ignore_color": list(self.ignore_color) if self.ignore_color is not None else None,
        }


def _from_rows(name: str, rows, source: str) -> Palette:
    names, colors, ignore = [], [], None
    for row_name, rgb in rows:
        if len(rgb) != 3 or any(not (0 <= int(v) <= 255) for v in rgb):
            raise SegtoolError(f"{source}: colour of {row_name!r} must be three values 0..255, got {rgb}")
        rgb = tuple(int(v) for v in rgb)
        if row_name.strip().lower() in _VOID_NAMES:
            ignore = rgb
            continue
        names.append(row_name.strip())
        colors.append(rgb)
    if not names:
        raise SegtoolError(f"{source}: palette defines no classes")
    if len(names) > IGNORE_INDEX:
        raise SegtoolError(f"{source}: {len(names)} classes; at most 255 fit next to the ignore label")
    return Palette(name, tuple(names), np.array(colors, dtype=np.uint8).reshape(-1, 3), ignore)


def parse_palette_csv(text: str, source: str = "palette.csv") -> Palette:
    """CSV ``name,r,g,b`` with an optional header; irregular spaces are fine."""
    rows = []
    for lineno, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        fields = [f.strip() for f in fields]
        if not fields or all(not f for f in fields) or fields[0].startswith("#"):
            continue
        if len(fields) != 4:
            raise SegtoolError(f"{source}: line {lineno}: expected name,r,g,b, got {len(fields)} fields")
        try:
            rgb = [int(float(v)) for v in fields[1:]]
        except ValueError:
            if lineno == 1:
                continue  # header row such as "name,r,g,b"
            raise SegtoolError(f"{source}: line {lineno}: colour values must be numbers: {fields[1:]}") from None
        rows.append((fields[0], rgb))
    return _from_rows(Path(source).stem, rows, source)


def parse_palette_yaml(text: str, source: str = "palette.yaml") -> Palette:
    import yaml

    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: nested thousands deep
        raise SegtoolError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    if isinstance(data, dict) and "classes" in data:
        data = data["classes"]
    rows = []
    if isinstance(data, dict):
        rows = [(str(k), list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in data.items()]
    elif isinstance(data, list):
        for item in data:
            if not isinstance(item, dict) or "name" not in item or "color" not in item:
                raise SegtoolError(f"{source}: list entries need 'name' and 'color' keys, got {item!r}")
            rows.append((str(item["name"]), list(item["color"])))
    else:
        raise SegtoolError(f"{source}: expected a mapping name: [r, g, b] or a list of {{name, color}}")
    return _from_rows(Path(source).stem, rows, source)


def load_palette_file(path: str | Path) -> Palette:
    path = Path(path)
    text = read_text_file(path, "palette file")
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_palette_yaml(text, str(path))
    return parse_palette_csv(text, str(path))


def _builtin(name: str) -> Palette:
    if name == "voc":
        full = voc_colormap(256)
        return Palette("voc", VOC_CLASSES, full[:21].copy(), (224, 224, 192), extended=full)
    if name == "camvid11":
        return Palette("camvid11", tuple(n for n, _ in CAMVID11),
                       np.array([c for _, c in CAMVID11], dtype=np.uint8), (0, 0, 0))
    if name == "camvid32":
        return _from_rows("camvid32", CAMVID32, "camvid32")
    if name == "cityscapes":
        return Palette("cityscapes", tuple(n for n, _ in CITYSCAPES19),
                       np.array([c for _, c in CITYSCAPES19], dtype=np.uint8), (0, 0, 0))
    raise KeyError(name)


BUILTIN_PALETTES = ("voc", "camvid32", "camvid11", "cityscapes")


def list_palettes() -> list[str]:
    return list(BUILTIN_PALETTES)


def get_palette(spec: str | Path) -> Palette:
    """A built-in palette by name, or a CSV/YAML palette file by path."""
    text = str(spec)
    if text.lower() in BUILTIN_PALETTES:
        return _builtin(text.lower())
    path = Path(text)
    if path.suffix.lower() in (".csv", ".yaml", ".yml", ".txt") or path.exists():
        return load_palette_file(path)
    raise SegtoolError(f"unknown palette {text!r}: use one of {', '.join(BUILTIN_PALETTES)} "
                       "or a CSV (name,r,g,b) / YAML file")


def binary_palette() -> Palette:
    """Two classes for binary masks (background / foreground)."""
    return Palette("binary", ("background", "foreground"),
                   np.array([(0, 0, 0), (255, 255, 255)], dtype=np.uint8), (128, 128, 128))
