"""Built-in and file palettes."""

from __future__ import annotations

import numpy as np
import pytest

from segtool.core.errors import SegtoolError
from segtool.data.palettes import get_palette, parse_palette_csv, voc_colormap


def test_voc_palette_matches_spec_colours():
    pal = get_palette("voc")
    assert pal.num_classes == 21
    assert tuple(pal.colors[1]) == (128, 0, 0)
    assert tuple(pal.colors[8]) == (64, 0, 0)
    assert tuple(pal.colors[20]) == (0, 64, 128)
    assert pal.names[15] == "person"
    table = np.array(pal.pil_palette()).reshape(256, 3)
    assert tuple(table[255]) == (224, 224, 192)
    assert (table[:255] == voc_colormap(256)[:255]).all()


def test_builtins_sizes():
    assert get_palette("camvid11").num_classes == 11
    assert get_palette("cityscapes").num_classes == 19
    cam = get_palette("camvid32")
    assert cam.num_classes == 31 and cam.ignore_color == (0, 0, 0)
    assert "Void" not in cam.names


def test_class_dict_csv_with_irregular_spaces(fixtures_dir):
    path = fixtures_dir / "camvid32" / "class_dict.csv"
    pal = get_palette(str(path))
    builtin = get_palette("camvid32")
    assert pal.names == builtin.names
    assert (pal.colors == builtin.colors).all()
    assert pal.ignore_color == (0, 0, 0)


def test_csv_without_header_and_yaml(tmp_path):
    pal = parse_palette_csv("sky, 0,0,255\nground,0 ,255, 0\n")
    assert pal.names == ("sky", "ground")
    assert tuple(pal.colors[1]) == (0, 255, 0)
    yml = tmp_path / "p.yaml"
    yml.write_text("classes:\n  - {name: a, color: [1, 2, 3]}\n  - {name: void, color: [9, 9, 9]}\n")
    pal = get_palette(yml)
    assert pal.names == ("a",) and pal.ignore_color == (9, 9, 9)


@pytest.mark.parametrize("text", ["a,1,2\n", "a,1,2,300\n", "name,r,g,b\na,x,2,3\n", ""])
def test_bad_csv(text):
    with pytest.raises(SegtoolError):
        parse_palette_csv(text)


def test_unknown_palette_name():
    with pytest.raises(SegtoolError, match="voc"):
        get_palette("pascal")


def test_colorize_uses_ignore_colour():
    pal = get_palette("voc")
    rgb = pal.colorize(np.array([[0, 1], [255, 7]]))
    assert rgb.shape == (2, 2, 3)
    assert tuple(rgb[1, 0]) == (224, 224, 192)
    assert tuple(rgb[0, 1]) == (128, 0, 0)
