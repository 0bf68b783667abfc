"""Region-guided style transfer (library): masked Gram matrices, region plans, per-region colours.

Random VGG weights and 32x48 images, as tests/test_style.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.data.palettes import get_palette
from segtool.style import StyleConfig, load_vgg19, plan_regions, read_mask, stylize, stylize_regions
from segtool.style.guided import masked_gram
from segtool.style.losses import gram
from segtool.style.regions import region_masks

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 32, 48
VOC = get_palette("voc")
PERSON = 15  # VOC index
RED, BLUE = (220, 30, 30), (30, 30, 220)


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    vgg = load_vgg19(StyleConfig().layers, random_weights=True)
    # Random convolutions with zero bias give a flat colour c and its mirror -c (in normalised
    # units) the same Gram matrix, so red could be matched by cyan; biases, as trained VGG's
    # have, break that symmetry.
    for module in vgg.features:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.bias, std=0.5)
    return vgg


@pytest.fixture
def scene(tmp_path):
    """A grey noisy content image, a left/right mask (background | person), red and blue styles."""
    rng = np.random.default_rng(0)
    content = Image.fromarray(np.clip(128 + rng.normal(0, 10, (H, W, 3)), 0, 255).astype(np.uint8))
    labels = np.zeros((H, W), np.uint8)
    labels[:, W // 2:] = PERSON
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (48, 48), RED).save(red)
    Image.new("RGB", (40, 56), BLUE).save(blue)
    return content, labels, red, blue


def _halves(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.asarray(image, dtype=np.float64)
    return pixels[:, : W // 2], pixels[:, W // 2:]


def _mean(pixels: np.ndarray) -> np.ndarray:
    return pixels.reshape(-1, 3).mean(0)


def test_masked_gram_is_the_gram_of_the_masked_pixels():
    features = torch.randn(1, 4, 6, 8)
    assert torch.allclose(masked_gram(features, torch.ones(6, 8)), gram(features))
    left = torch.zeros(6, 8)
    left[:, :3] = 1
    assert torch.allclose(masked_gram(features, left), gram(features[..., :3]), atol=1e-6)


def test_plan_groups_classes_by_style_names_and_indices(tmp_path):
    labels = np.array([[0, 15, 12], [8, 8, 255]], np.uint8)
    plan, warnings = plan_regions(labels, VOC, [("Person", "none"), ("12", "a.jpg"), ("cat", "a.jpg"),
                                                ("bird", "b.jpg")], default="c.jpg")
    by_name = {r.name: (r.classes, str(r.style) if r.style else None) for r in plan.regions}
    assert by_name == {"background+255": ((0, 255), "c.jpg"), "person": ((15,), None),
                       "cat+dog": ((8, 12), "a.jpg")}
    assert [str(p) for p in plan.styles] == ["c.jpg", "a.jpg"]
    assert warnings == ["--style bird: class not in the mask; its style is unused"]
    assert plan_regions(labels, VOC, [("potted_plant", "x.jpg"), ("0", "x.jpg")])[0].regions[0].style is not None


@pytest.mark.parametrize(("assignments", "default", "match"), [
    ([("persn", "a.jpg")], "none", r"no class 'persn' in the voc palette; valid: background, aeroplane.*person"),
    ([("person", "a.jpg"), ("15", "b.jpg")], "none", "given a style twice"),
    ([("person", "none")], "none", "every region of the mask is none"),
    ([("300", "a.jpg")], "none", "0..255"),
])
def test_plan_errors_name_the_fix(assignments, default, match):
    labels = np.array([[0, 15]], np.uint8)
    with pytest.raises(SegtoolError, match=match):
        plan_regions(labels, VOC, assignments, default)


def test_feathered_masks_blend_and_sum_to_one():
    labels = np.zeros((H, W), np.uint8)
    labels[:, W // 2:] = 1
    hard = region_masks(labels, [(0,), (1,)], (H, W))
    soft = region_masks(labels, [(0,), (1,)], (H, W), feather=3.0)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(soft.sum(0), torch.ones(H, W))
    border = soft[0, :, W // 2 - 2: W // 2 + 2]
    assert ((border > 0.05) & (border < 0.95)).all()  # blended across the border ...
    assert soft[0, :, :8].min() > 0.999 and soft[1, :, -8:].min() > 0.999  # ... and flat away from it


def test_each_region_takes_its_own_style_colour(extractor, scene):
    content, labels, red, blue = scene
    plan, _ = plan_regions(labels, VOC, [("background", str(red)), ("person", str(blue))])
    config = StyleConfig(size=(H, W), steps=30, seed=0, style_weight=1e6)
    left, right = map(_mean, _halves(stylize_regions(content, plan, config, extractor=extractor).image))
    to = {"left-red": np.linalg.norm(left - RED), "left-blue": np.linalg.norm(left - BLUE),
          "right-blue": np.linalg.norm(right - BLUE), "right-red": np.linalg.norm(right - RED)}
    print({k: round(float(v), 1) for k, v in to.items()})
    assert to["left-red"] < 0.25 * to["left-blue"], to
    assert to["right-blue"] < 0.25 * to["right-red"], to
    # Swapping the assignment swaps the colours: the mask, not the image, decides.
    plan, _ = plan_regions(labels, VOC, [("background", str(blue)), ("person", str(red))])
    left, right = map(_mean, _halves(stylize_regions(content, plan, config, extractor=extractor).image))
    assert np.linalg.norm(left - BLUE) < np.linalg.norm(left - RED)
    assert np.linalg.norm(right - RED) < np.linalg.norm(right - BLUE)


def test_lbfgs_regions_take_their_colours(extractor, scene):
    content, labels, red, blue = scene
    plan, _ = plan_regions(labels, VOC, [("background", str(red)), ("person", str(blue))])
    config = StyleConfig(size=(H, W), steps=8, seed=0, style_weight=1e6, optimizer="lbfgs")
    left, right = map(_mean, _halves(stylize_regions(content, plan, config, extractor=extractor).image))
    assert np.linalg.norm(left - RED) < 0.5 * np.linalg.norm(left - BLUE)
    assert np.linalg.norm(right - BLUE) < 0.5 * np.linalg.norm(right - RED)


def test_none_region_keeps_the_content(extractor, scene):
    content, labels, red, _ = scene
    plan, _ = plan_regions(labels, VOC, [("background", str(red)), ("person", "none")])
    config = StyleConfig(size=(H, W), steps=20, seed=0, style_weight=1e6)
    result = stylize_regions(content, plan, config, extractor=extractor)
    styled, kept = _halves(result.image)
    _, original = _halves(content)
    assert np.abs(kept - original).max() == 0  # hard border: the content exactly
    assert np.linalg.norm(_mean(styled) - RED) < 60
    soft = stylize_regions(content, plan, config, feather=2.0, extractor=extractor).image
    _, kept = _halves(soft)
    interior = np.abs(kept[:, 8:] - original[:, 8:])  # 8 px (4 sigma) from the border
    assert interior.mean() < 1.0, interior.mean()
    near = np.abs(kept[:, :2] - original[:, :2]).mean()
    assert near > interior.mean()  # the feather blends the style into the border


def test_one_region_over_everything_is_plain_stylize(extractor, scene):
    content, labels, red, _ = scene
    plan, _ = plan_regions(labels, VOC, [], default=str(red))
    config = StyleConfig(size=(H, W), steps=3, seed=0)
    guided = stylize_regions(content, plan, config, extractor=extractor)
    plain = stylize(content, [red], config, extractor=extractor)
    for name, value in plain.losses.items():
        assert guided.losses[name] == pytest.approx(value, rel=1e-4), name


def test_scales_snapshots_and_preserve_colors(extractor, scene):
    content, labels, red, _ = scene
    plan, _ = plan_regions(labels, VOC, [("background", str(red))])
    snapshots = []
    config = StyleConfig(size=48, steps=2, scales=(24,), preserve_colors=True, seed=0)
    result = stylize_regions(content, plan, config, feather=1.5, extractor=extractor, snapshot_every=1,
                             on_snapshot=lambda stage, step, image: snapshots.append((stage, step, image.size)))
    assert [s["size"] for s in result.stages] == [[16, 24], [32, 48]]
    assert snapshots == [(1, 1, (24, 16)), (1, 2, (24, 16)), (2, 1, (48, 32)), (2, 2, (48, 32))]
    _, kept = _halves(result.image)
    _, original = _halves(content)
    assert np.abs(kept[:, 6:] - original[:, 6:]).mean() < 1.0


def test_style_mask_takes_statistics_from_the_same_class(extractor, scene, tmp_path):
    content, labels, _, _ = scene
    two_tone = np.zeros((40, 40, 3), np.uint8)
    two_tone[:20], two_tone[20:] = RED, BLUE  # red top = background, blue bottom = person
    style = tmp_path / "two_tone.png"
    Image.fromarray(two_tone).save(style)
    style_labels = np.zeros((40, 40), np.uint8)
    style_labels[20:] = PERSON
    plan, _ = plan_regions(labels, VOC, [("background", str(style)), ("person", str(style))],
                           style_labels=style_labels)
    assert [r.name for r in plan.regions] == ["background", "person"]
    config = StyleConfig(size=(H, W), steps=30, seed=0, style_weight=1e6)
    left, right = map(_mean, _halves(stylize_regions(content, plan, config, extractor=extractor).image))
    assert np.linalg.norm(left - RED) < np.linalg.norm(left - BLUE)
    assert np.linalg.norm(right - BLUE) < np.linalg.norm(right - RED)
    with pytest.raises(SegtoolError, match="no pixel of person in the style mask"):
        plan_regions(labels, VOC, [("person", str(style))], style_labels=np.zeros((40, 40), np.uint8))


def test_read_mask_from_stdin_bytes():
    labels = np.array([[0, 15], [15, 0]], np.uint8)
    buffer = io.BytesIO()
    image = Image.fromarray(labels, mode="L").convert("P")
    image.putpalette(VOC.pil_palette())
    image.save(buffer, format="PNG")
    assert np.array_equal(read_mask("-", VOC, stdin=io.BytesIO(buffer.getvalue())), labels)
    with pytest.raises(SegtoolError, match="nothing on stdin"):
        read_mask("-", VOC, stdin=io.BytesIO(b""))
    with pytest.raises(SegtoolError, match="stdin does not hold a readable mask"):
        read_mask("-", VOC, stdin=io.BytesIO(b"not a png"))
