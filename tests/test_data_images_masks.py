"""Reading images (mode conversion, corrupt files) and masks (indices, colour -> label)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.data.color_labels import ColorToLabel
from segtool.data.images import image_size, read_image
from segtool.data.masks import read_index_mask, read_label_mask, write_label_png
from segtool.data.palettes import get_palette


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "CMYK", "P", "I;16"])
def test_read_image_converts_modes_to_rgb(tmp_path, mode):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    if mode == "I;16":
        img = Image.fromarray(np.arange(30, dtype=np.uint16).reshape(6, 5) * 2000)
    else:
        img = img.convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    img.save(path)
    out = read_image(path)
    assert out.shape == (6, 5, 3) and out.dtype == np.uint8
    if mode == "I;16":
        assert out[5, 4, 0] == (29 * 2000) >> 8  # scaled, not clipped
    if mode in ("RGBA", "P"):
        assert np.abs(out.astype(int) - np.asarray(img.convert("RGB")).astype(int)).max() == 0


def test_read_image_refuses_float_images(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(path)
    with pytest.raises(SegtoolError, match="f.tif"):
        read_image(path)


def test_corrupt_truncated_and_non_image_files_name_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[:400])
    text = tmp_path / "notes.png"
    text.write_text("hello")
    for path, words in ((truncated, "truncated"), (text, "not an image"), (tmp_path / "nope.png", "not found")):
        with pytest.raises(SegtoolError, match=words) as info:
            read_image(path)
        assert str(path) in str(info.value)
    assert image_size(good) == (64, 64)


def test_palette_png_read_as_indices(fixtures_dir):
    path = fixtures_dir / "voc2012-mini" / "SegmentationClass" / "2011_000003.png"
    labels = read_index_mask(path)
    raw = np.array(Image.open(path))  # PIL's own view of the stored indices
    assert Image.open(path).mode == "P"
    assert labels.dtype == np.uint8 and (labels == raw).all()
    assert 255 in labels and set(np.unique(labels)) <= set(range(21)) | {255}


def test_rgb_mask_to_labels_matches_indices_on_real_masks(fixtures_dir):
    converter = ColorToLabel(get_palette("voc"))
    for path in sorted((fixtures_dir / "voc2012-mini" / "extra_masks").glob("*.png"))[:4]:
        indices = read_index_mask(path)
        rgb = Image.open(path).convert("RGB")
        result = converter(rgb)
        assert result.unknown_pixels == 0
        assert (result.labels == indices).all()  # 255 (void colour) stays 255
        assert (converter(np.asarray(rgb)).labels == indices).all()
    assert converter.nbytes < 1_000_000


def test_unknown_colours_ignore_error_and_tolerance():
    pal = get_palette("voc")
    rgb = pal.colorize(np.array([[0, 1, 2], [3, 255, 4]]))
    rgb[0, 2] = (7, 130, 2)       # near class 2 (0,128,0)
    rgb[1, 0] = (10, 200, 250)    # far from everything
    converter = ColorToLabel(pal)
    res = converter(rgb)
    assert res.unknown_pixels == 2 and res.labels[0, 2] == 255 and res.labels[1, 1] == 255
    assert res.labels[0, 1] == 1 and res.labels[1, 2] == 4
    res = converter(rgb, tolerance=8)
    assert res.labels[0, 2] == 2 and res.unknown_pixels == 1 and res.snapped_pixels == 1
    with pytest.raises(SegtoolError, match=r"m\.png: colour \(7, 130, 2\) at \(x=2, y=0\)"):
        converter(rgb, unknown="error", source="m.png")


def test_write_palette_png_roundtrip(tmp_path):
    labels = np.array([[0, 1, 255], [20, 3, 0]], dtype=np.uint8)
    out = tmp_path / "l.png"
    write_label_png(labels, out, get_palette("voc"))
    img = Image.open(out)
    assert img.mode == "P" and (np.array(img) == labels).all()
    assert tuple(img.convert("RGB").getpixel((2, 0))) == (224, 224, 192)
    with pytest.raises(SegtoolError, match="exists"):
        write_label_png(labels, out, get_palette("voc"))
    gray = tmp_path / "g.png"
    write_label_png(labels, gray, gray=True)
    assert Image.open(gray).mode == "L" and (read_index_mask(gray) == labels).all()


def test_label_mask_rgb_needs_palette(tmp_path):
    path = tmp_path / "c.png"
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(path)
    with pytest.raises(SegtoolError, match="palette"):
        read_label_mask(path)
    assert (read_label_mask(path, get_palette("voc")).labels == 0).all()


@pytest.mark.parametrize("name", ["voc", "camvid32", "cityscapes"])
def test_colour_lookup_agrees_with_a_dictionary(name):
    """Both lookup paths (channel codes, hash) against a plain dict, on palette colours, colours that
    mix palette channel values (the tricky case for per-channel codes) and random colours."""
    pal = get_palette(name)
    reference = {tuple(c): i for i, c in enumerate(pal.colors.tolist())}
    if pal.ignore_color is not None:
        reference[tuple(pal.ignore_color)] = 255
    rng = np.random.default_rng(0)
    channel_values = [np.unique(pal.colors[:, c]) for c in range(3)]
    mixed = np.stack([rng.choice(v, 400) for v in channel_values], axis=1)
    colours = np.concatenate([pal.colors[rng.integers(0, pal.num_classes, 400)], mixed,
                              rng.integers(0, 256, (200, 3))]).astype(np.uint8)
    expected = np.array([reference.get(tuple(c), 255) for c in colours.tolist()], np.uint8)
    unknown = sum(tuple(c) not in reference for c in colours.tolist())
    converter = ColorToLabel(pal)
    known_only = colours[[tuple(c) in reference for c in colours.tolist()]].reshape(1, -1, 3)
    fast = converter(known_only)
    assert fast.unknown_pixels == 0
    assert (fast.labels.ravel() == [reference[tuple(c)] for c in known_only[0].tolist()]).all()
    result = converter(colours.reshape(20, 50, 3))
    assert (result.labels.ravel() == expected).all() and result.unknown_pixels == unknown > 0


def test_rgba_colour_mask_converted_and_16bit_masks(tmp_path):
    pal = get_palette("voc")
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    rgba = np.dstack([pal.colorize(labels), np.full((2, 2), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "RGBA"
    assert (read_label_mask(tmp_path / "a.png", pal).labels == labels).all()
    Image.fromarray(np.array([[0, 3], [255, 1]], np.uint16)).save(tmp_path / "small.png")
    assert read_index_mask(tmp_path / "small.png").tolist() == [[0, 3], [255, 1]]
    Image.fromarray(np.array([[0, 3000]], np.uint16)).save(tmp_path / "big.png")
    with pytest.raises(SegtoolError, match=r"big\.png: .*3000"):
        read_index_mask(tmp_path / "big.png")


def test_run_path_counts_and_locates_unknown_colours():
    """Large flat regions take the one-lookup-per-run path; counts and (x, y) must stay per pixel."""
    pal = get_palette("voc")
    labels = np.zeros((40, 60), np.uint8)
    labels[10:30, 20:50] = 15
    rgb = pal.colorize(labels)
    rgb[25:28, 33:40] = (190, 130, 126)  # 21 pixels near person (192,128,128)
    converter = ColorToLabel(pal)
    result = converter(rgb)
    expected = labels.copy()
    expected[25:28, 33:40] = 255
    assert (result.labels == expected).all() and result.unknown_pixels == 21
    with pytest.raises(SegtoolError, match=r"at \(x=33, y=25\) .*\(21 such pixels"):
        converter(rgb, unknown="error")
    snapped = converter(rgb, tolerance=5)
    assert (snapped.labels == labels).all() and snapped.snapped_pixels == 21 and snapped.unknown_pixels == 0
