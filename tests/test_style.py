"""Style transfer library: losses, layer names, image loading, colours, the optimisation loops.

Random VGG weights and tiny images (32x48) keep every test to a second or two.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.style import VGG19_LAYERS, StyleConfig, load_vgg19, plan_sizes, stylize
from segtool.style.color import preserve_colors, rgb_to_ycbcr
from segtool.style.images import load_rgb, parse_size
from segtool.style.losses import gram, tv_loss
from segtool.style.memory import estimate_bytes
from segtool.style.vgg import layer_index

SMALL = (32, 48)


def _smooth_image(seed: int, size=(40, 60)) -> Image.Image:
    """A photo-like test image: colour gradients plus a few blocks, some noise."""
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width] / max(size)
    base = np.stack([np.sin(3 * xx + seed), np.cos(4 * yy - seed), xx * yy], axis=-1) * 0.4 + 0.5
    for _ in range(3):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        base[y:y + 8, x:x + 8] = rng.random(3)
    base += rng.normal(0, 0.03, base.shape)
    return Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    return load_vgg19(StyleConfig().layers, random_weights=True)


def _run(extractor, **overrides):
    history = []
    config = StyleConfig(size=SMALL, steps=overrides.pop("steps", 12), seed=0, **overrides)
    result = stylize(_smooth_image(1), [_smooth_image(2)], config, extractor=extractor,
                     on_step=lambda report: history.append(report.losses["total"]))
    return result, history


def test_layer_names_match_torchvision_indices():
    # d2l's recipe: style = features 0, 5, 10, 19, 28 and content = 25.
    assert [layer_index(n) for n in StyleConfig().style_layers] == [0, 5, 10, 19, 28]
    assert layer_index("conv4_4") == 25
    assert len(VGG19_LAYERS) == 37 and VGG19_LAYERS[-1] == "pool5"


def test_extractor_is_frozen_truncated_and_pre_relu(extractor):
    assert len(extractor.features) == 29  # cut after conv5_1
    assert not any(p.requires_grad for p in extractor.parameters())
    assert not extractor.training
    out = extractor(torch.randn(1, 3, 32, 32))
    assert (out["conv1_1"] < 0).any(), "conv outputs must be read before the ReLU"


def test_gram_and_tv_formulas():
    x = torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4)
    flat = x.reshape(2, 12)
    assert torch.allclose(gram(x), flat @ flat.T / 24)
    image = torch.zeros(1, 3, 4, 4)
    image[..., 2:, :] = 1.0  # one horizontal edge: |dy| = 1 on 1 of 3 row pairs, dx = 0
    assert tv_loss(image).item() == pytest.approx(0.5 * (1 / 3))


def test_adam_total_loss_falls(extractor):
    result, history = _run(extractor, steps=20)
    assert len(history) == 20
    # lr 0.3 first roughens the image (d2l's recipe), then the loss comes down steadily.
    assert history[-1] < 0.8 * history[0]
    assert result.losses["total"] < history[-1]
    assert result.image.size == (48, 32)


def test_smoothed_tv_is_close_below_and_smooth():
    torch.manual_seed(0)
    image = torch.randn(1, 3, 16, 20)
    exact = tv_loss(image)
    for eps in (0.1, 0.01, 0.001):
        smooth = tv_loss(image, eps)
        assert exact - eps <= smooth <= exact + 1e-6  # |d| - eps <= sqrt(d^2 + eps^2) - eps <= |d|
        assert smooth < exact - eps / 100  # and it is a different function
    assert tv_loss(image, 1e-6).item() == pytest.approx(exact.item(), abs=1e-5)
    # At a flat image |d| has a kink; the smoothed term has a zero gradient there.
    flat = torch.ones(1, 3, 8, 8, requires_grad=True)
    tv_loss(flat, 0.05).backward()
    assert tv_loss(flat, 0.05).item() == pytest.approx(0.0, abs=1e-7)
    assert torch.count_nonzero(flat.grad) == 0


def test_lbfgs_descends_smoothed_tv_and_reports_the_exact_loss(extractor):
    assert StyleConfig(optimizer="lbfgs").tv_epsilon == 0.05
    assert StyleConfig(optimizer="adam").tv_epsilon == 0.0  # d2l's recipe stays exact
    assert StyleConfig(optimizer="lbfgs", tv_smoothing=0).tv_epsilon == 0.0
    with pytest.raises(SegtoolError, match="--tv-smoothing"):
        StyleConfig(tv_smoothing=-1).validate()
    from segtool.style.optimize import Objective

    content = torch.randn(1, 3, *SMALL)
    objective = Objective.from_images(extractor, content, [torch.randn(1, 3, *SMALL)], (1.0,), ("conv4_4",),
                                      ("conv1_1",), content_weight=1, style_weight=1e4, tv_weight=10,
                                      tv_smoothing=0.05)
    terms = objective(content)
    assert terms.tv.item() == pytest.approx(10 * tv_loss(content).item())  # reported: exact
    assert terms.total.item() == pytest.approx((terms.content + terms.style + terms.tv).item())
    assert terms.minimized.item() == pytest.approx(
        (terms.content + terms.style + 10 * tv_loss(content, 0.05)).item())


def test_smoothed_lbfgs_lowers_the_exact_loss_faster_than_plain(extractor):
    # The reason for the smoothing: on d2l's L1 TV, L-BFGS's curvature pairs break down; with the
    # same number of iterations the smoothed run ends lower even on the exact loss it does not see.
    smoothed, _ = _run(extractor, steps=15, optimizer="lbfgs")
    plain, _ = _run(extractor, steps=15, optimizer="lbfgs", tv_smoothing=0.0)
    assert smoothed.losses["total"] < 0.8 * plain.losses["total"]


def test_lbfgs_total_loss_falls_every_iteration(extractor):
    result, history = _run(extractor, steps=10, optimizer="lbfgs", tv_smoothing=0.0)
    assert len(history) == 10
    # The strong-Wolfe line search only accepts decreasing steps (of the loss it descends: exact here).
    assert all(later <= earlier + 1e-6 for earlier, later in zip(history[:-1], history[1:], strict=True))
    assert result.losses["total"] < 0.7 * history[0]
    assert result.stages[0]["evaluations"] >= 10


def test_seed_makes_runs_identical(extractor):
    first, _ = _run(extractor, steps=4, init="random")
    second, _ = _run(extractor, steps=4, init="random")
    assert np.array_equal(np.asarray(first.image), np.asarray(second.image))


def test_two_style_blend_runs_and_blend_count_checked(extractor):
    styles = [_smooth_image(2), _smooth_image(3, size=(30, 30))]
    config = StyleConfig(size=SMALL, steps=3, style_blend=(0.7, 0.3))
    result = stylize(_smooth_image(1), styles, config, extractor=extractor)
    assert result.image.size == (48, 32)
    with pytest.raises(SegtoolError, match="2 weight.*3 style"):
        stylize(_smooth_image(1), [*styles, styles[0]], config, extractor=extractor)


def test_preserve_colors_keeps_content_chroma(extractor):
    content = _smooth_image(1, size=SMALL)
    config = StyleConfig(size=SMALL, steps=8, preserve_colors=True, style_weight=1e6)
    result = stylize(content, [_smooth_image(5)], config, extractor=extractor)
    got = rgb_to_ycbcr(np.asarray(result.image))
    want = rgb_to_ycbcr(np.asarray(content))
    plain = stylize(content, [_smooth_image(5)], StyleConfig(size=SMALL, steps=8, style_weight=1e6),
                    extractor=extractor)
    plain_ycc = rgb_to_ycbcr(np.asarray(plain.image))
    kept = np.abs(got[..., 1:] - want[..., 1:]).mean()
    drifted = np.abs(plain_ycc[..., 1:] - want[..., 1:]).mean()
    assert kept < 2.0 and drifted > 3 * kept, (kept, drifted)  # chroma kept up to 8-bit rounding
    # ... while the luminance is the stylized one, not the content's.
    assert np.abs(got[..., 0] - plain_ycc[..., 0]).mean() < 2.0


def test_preserve_colors_swaps_luminance_only():
    grey = Image.new("RGB", (8, 8), (100, 100, 100))
    red = Image.new("RGB", (8, 8), (200, 40, 40))
    out = rgb_to_ycbcr(np.asarray(preserve_colors(grey, red)))[0, 0]
    assert out[0] == pytest.approx(100, abs=1)
    assert out[1:] == pytest.approx(rgb_to_ycbcr(np.array([200, 40, 40]))[1:], abs=1)


def test_coarse_to_fine_stages(extractor):
    config = StyleConfig(size=48, steps=2, scales=(24,))
    assert plan_sizes(config, (64, 96)) == [(16, 24), (32, 48)]
    snapshots = []
    result = stylize(_smooth_image(1), [_smooth_image(2)], config, extractor=extractor, snapshot_every=1,
                     on_snapshot=lambda stage, step, image: snapshots.append((stage, step, image.size)))
    assert [s["size"] for s in result.stages] == [[16, 24], [32, 48]]
    assert snapshots == [(1, 1, (24, 16)), (1, 2, (24, 16)), (2, 1, (48, 32)), (2, 2, (48, 32))]


def test_unknown_layer_lists_valid_names():
    with pytest.raises(SegtoolError, match="unknown VGG-19 layer 'conv9_9'.*conv1_1, relu1_1"):
        StyleConfig(style_layers=("conv9_9",)).validate()


def test_parse_size():
    assert parse_size("512") == 512
    assert parse_size("300x450") == (300, 450)
    for bad in ("big", "0x10", "8"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_memory_estimate_grows_with_pixels_and_lbfgs(extractor):
    small = estimate_bytes(extractor.features, (300, 450))
    big = estimate_bytes(extractor.features, (600, 900))
    assert 3.5 < (big - 200 * 2**20) / (small - 200 * 2**20) < 4.5
    assert estimate_bytes(extractor.features, (300, 450), optimizer="lbfgs") > small + 100 * 2**20


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P", "LA", "F"])
def test_inputs_convert_to_rgb(tmp_path, mode):
    source = _smooth_image(1)
    suffix = {"CMYK": "jpg", "F": "tif"}.get(mode, "png")
    path = tmp_path / f"in_{mode.replace(';', '')}.{suffix}"
    if mode == "I;16":
        grey = (np.asarray(source.convert("L"), dtype=np.uint16) * 257)
        Image.fromarray(grey).save(path)  # 16-bit greyscale PNG
    else:
        source.convert(mode).save(path)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == source.size
    if mode in ("I;16", "F"):  # rescaled, not clipped to white
        assert np.abs(np.asarray(image)[..., 0].astype(int) - np.asarray(source.convert("L"))).max() <= 1


def test_non_image_is_one_clear_error(tmp_path):
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not an image")
    with pytest.raises(SegtoolError, match="notes.jpg: not an image"):
        load_rgb(bogus)
    truncated = tmp_path / "cut.png"
    _smooth_image(1).save(tmp_path / "whole.png")
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:200])
    with pytest.raises(SegtoolError, match="cut.png"):
        load_rgb(truncated)


def test_lbfgs_per_iteration_loop_equals_one_long_call():
    """Stepping once per iteration (for progress) changes neither the iterates nor the evaluations."""
    from segtool.style.optimize import LossTerms, run_lbfgs

    torch.manual_seed(0)
    a = torch.randn(30, 30)
    a = a @ a.T + 0.1 * torch.eye(30)
    b = torch.randn(30)

    class Quartic:
        evaluations = 0

        def __call__(self, x):
            self.evaluations += 1
            v = x.flatten()
            loss = 0.5 * v @ a @ v - b @ v + 0.01 * (v ** 4).sum()
            return LossTerms(loss * 0, loss * 0, loss * 0, loss)

    start = torch.randn(1, 1, 5, 6)
    objective = Quartic()
    ours = run_lbfgs(start, objective, 15)
    theirs = start.clone().requires_grad_(True)
    reference = torch.optim.LBFGS([theirs], lr=1, max_iter=15, max_eval=10**6, history_size=100,
                                  tolerance_grad=-1, line_search_fn="strong_wolfe")
    counted = Quartic()

    def closure():
        reference.zero_grad()
        loss = counted(theirs).total
        loss.backward()
        return loss

    reference.step(closure)
    assert torch.equal(ours, theirs.detach())
    assert objective.evaluations == counted.evaluations


def test_torchvision_vgg19_features_load_and_agree(tmp_path):
    """A torchvision VGG-19 ``features`` state dict loads by index and gives the same activations."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(1)
    reference = make_layers(cfgs["E"]).eval()
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in reference.state_dict().items()}, path)
    ours = load_vgg19(["relu2_1", "conv4_4"], weights=path)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        want = reference[:26](x)  # features[25] = conv4_4, before its ReLU
        got = ours(x)
    assert len(ours.features) == 26
    assert torch.allclose(got["conv4_4"], want, atol=1e-5)
    assert torch.allclose(got["relu2_1"], reference[:7](x), atol=1e-5)


def test_segtool_offline_stops_before_the_network(monkeypatch, tmp_path):
    import socket

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SEGTOOL_OFFLINE", "1")
    attempts = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: attempts.append(a))
    with pytest.raises(SegtoolError, match=r"vgg19-dcbb9e9d\.pth.*SEGTOOL_OFFLINE.*--weights PATH.*--random-weights"):
        load_vgg19(["conv1_1"])
    assert attempts == []
