"""Registry, output shapes, architectures and learning of every model family (small inputs, CPU)."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
import torch.nn.functional as F

from segtool.core.errors import SegtoolError
from segtool.core.weights import KNOWN_WEIGHTS
from segtool.models import create_model, get_model_info, list_models
from segtool.models.fcn_resnet18 import FCNResNet18

pytestmark = pytest.mark.usefixtures("one_thread")


# Narrow fcn8 keeps these tests fast; the full width is covered in test_models_fcn8.py.
SMALL = {"fcn8": {"width_mult": 0.125}}
OWN = ["fcn8", "fcn-resnet18", "fcn32s", "fcn16s", "fcn8s", "fcns", "bisenetv2"]


def _build(name: str, classes: int, **options) -> torch.nn.Module:
    return create_model(name, classes, **{**SMALL.get(name, {}), **options})


def test_registry_lists_every_family():
    assert list_models() == OWN
    tv = list_models(include_torchvision=True)
    assert "tv:fcn_resnet50" in tv and "tv:deeplabv3_resnet50" in tv


def test_unknown_model_lists_valid_names():
    with pytest.raises(SegtoolError) as err:
        create_model("fcn9", 21)
    message = str(err.value)
    assert all(name in message for name in OWN) and "tv:<builder>" in message
    with pytest.raises(SegtoolError, match="tv:fcn_resnet50"):
        create_model("tv:nope", 21)
    with pytest.raises(SegtoolError):
        get_model_info("fcn9")


def test_bad_options_and_class_counts_are_user_errors():
    with pytest.raises(SegtoolError, match="fused"):
        create_model("fcn8", 21, fusd=True)
    with pytest.raises(SegtoolError, match="num_classes"):
        create_model("fcn8", 0)
    with pytest.raises(SegtoolError, match="no pretrained backbone"):
        create_model("bisenetv2", 21, pretrained=True)


@pytest.mark.parametrize("name", OWN + ["tv:fcn_resnet50"])
def test_model_info_is_plain_and_complete(name):
    info = get_model_info(name)
    recipe = info.recipe
    for key in ("optimizer", "lr", "momentum", "weight_decay", "schedule", "schedule_options", "batch_size",
                "epochs", "crop", "loss", "aux_weight", "head_lr_mult", "hflip", "vflip", "pretrained"):
        assert key in recipe, key
    assert json.loads(json.dumps(info.to_dict()))["name"] == name  # plain types only
    assert recipe["schedule"] in ("onecycle", "poly", "step", "linear", "none")
    assert info.normalization in ("imagenet", None)
    if not name.startswith("tv:"):
        assert info.size_multiple == 32
        assert info.backbone is None or info.backbone in KNOWN_WEIGHTS
        assert info.backbone_file == (KNOWN_WEIGHTS[info.backbone] if info.backbone else None)


def test_recipes_follow_the_write_ups():
    fcn8 = get_model_info("fcn8")
    assert fcn8.normalization is None and fcn8.default_crop == (224, 224)
    assert (fcn8.recipe["lr"], fcn8.recipe["weight_decay"], fcn8.recipe["batch_size"]) == (1.0, 5e-4, 8)
    assert fcn8.recipe["schedule_options"]["max_lr"] == 0.1
    resnet = get_model_info("fcn-resnet18")
    assert resnet.recipe["head_lr_mult"] == 10 and resnet.default_crop == (320, 480) and resnet.recipe["pretrained"]
    vgg = get_model_info("fcns")
    assert (vgg.recipe["lr"], vgg.recipe["momentum"], vgg.default_crop) == (1e-2, 0.7, (160, 160))
    bise = get_model_info("bisenetv2")
    assert bise.recipe["schedule_options"] == {"end_lr": 0.05, "fraction": 0.75}
    assert bise.recipe["aux_weight"] == 0.2 and bise.recipe["hflip"] and bise.recipe["vflip"]


@pytest.mark.parametrize("name", OWN)
def test_eval_output_shapes(name):
    model = _build(name, 3).eval()
    with torch.no_grad():
        for size in [(32, 32), (64, 96)]:
            assert model(torch.rand(1, 3, *size)).shape == (1, 3, *size)
    if name != "bisenetv2":  # bisenetv2 resizes internally; the others need the size rule
        with pytest.raises(SegtoolError, match="not a multiple of 32"):
            model(torch.rand(1, 3, 32, 48))
    binary = _build(name, 1).eval()
    with torch.no_grad():
        assert binary(torch.rand(2, 3, 64, 32)).shape == (2, 1, 64, 32)


@pytest.mark.parametrize("name", ["tv:lraspp_mobilenet_v3_large", "tv:deeplabv3_mobilenet_v3_large"])
def test_torchvision_models_follow_the_interface(name):
    model = create_model(name, 2)
    x = torch.rand(2, 3, 64, 80)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 2, 64, 80)
    model.train()
    out = model(x)
    if get_model_info(name).aux_heads:
        main, aux = out
        assert main.shape == (2, 2, 64, 80) and [a.shape for a in aux] == [(2, 2, 64, 80)]
    else:
        assert out.shape == (2, 2, 64, 80)
    assert any(n.startswith("backbone.") for n, _ in model.named_parameters())
    no_aux = create_model("tv:deeplabv3_mobilenet_v3_large", 2, aux_loss=False).train()
    assert isinstance(no_aux(x), torch.Tensor)


def test_backbones_are_named_backbone_and_read_out_by_name():
    resnet = create_model("fcn-resnet18", 21)
    keys = resnet.state_dict().keys()
    assert "backbone.layer4.1.bn2.weight" in keys and not any(k.startswith("backbone.fc") for k in keys)
    assert {k.split(".")[0] for k in keys} == {"backbone", "final_conv", "transpose_conv"}
    vgg = create_model("fcn8s", 21)
    backbone = sum(p.numel() for n, p in vgg.named_parameters() if n.startswith("backbone."))
    assert backbone == 14_714_688  # VGG-16 features
    assert vgg.backbone.return_layers == {"4": "x1", "9": "x2", "16": "x3", "23": "x4", "30": "x5"}


def test_vgg_variants_differ_only_by_skips():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    outputs = {}
    state = create_model("fcn32s", 2).state_dict()
    for name in ("fcn32s", "fcn16s", "fcn8s", "fcns"):
        model = create_model(name, 2).eval()
        model.load_state_dict(state)  # same parameters: only the skip wiring differs
        with torch.no_grad():
            outputs[name] = model(x)
    values = list(outputs.values())
    assert all(not torch.allclose(a, b) for i, a in enumerate(values) for b in values[i + 1:])


def test_transpose_conv_starts_as_bilinear_upsampling():
    model = FCNResNet18(3)
    assert torch.allclose(model.transpose_conv.weight[0, 1], torch.zeros(64, 64))  # no channel mixing
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 4), torch.linspace(0, 1, 6), indexing="ij")
    smooth = torch.stack([torch.sin(3 * xx) + yy, xx * yy, torch.cos(2 * yy)])[None]
    with torch.no_grad():
        up = model.transpose_conv(smooth)
    reference = F.interpolate(smooth, scale_factor=32, mode="bilinear", align_corners=False)
    assert up.shape == reference.shape == (1, 3, 128, 192)
    inner = (slice(None), slice(None), slice(32, -32), slice(32, -32))
    assert (up[inner] - reference[inner]).abs().max() < 1e-5
    assert (up - reference).abs().max() > 0.1  # the border really differs: the test looks at the interior


def test_bisenetv2_non_square_batch_one_and_aux_only_in_training():
    model = create_model("bisenetv2", 11).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 256, 512)).shape == (1, 11, 256, 512)
    model.train()
    main, aux = model(torch.rand(2, 3, 64, 128))
    assert main.shape == (2, 11, 64, 128) and len(aux) == 4
    assert all(a.shape == (2, 11, 64, 128) for a in aux)
    with pytest.raises(SegtoolError, match="batch size of at least 2"):
        model(torch.rand(1, 3, 64, 64))


def test_bisenetv2_aggregation_is_element_wise():
    from segtool.models import bisenetv2

    source = inspect.getsource(bisenetv2)
    assert "matmul" not in source.replace("never torch.matmul", "").replace("``torch.matmul``", "")
    assert "@" not in inspect.getsource(bisenetv2.BGALayer.forward)


def _two_images(size=(32, 32), classes=3):
    """Two tiny images whose colour says the class: a box and a stripe on a background."""
    torch.manual_seed(0)
    labels = torch.zeros(2, *size, dtype=torch.long)
    labels[0, 8:24, 8:24] = 1
    labels[1, :, 12:20] = 2 % classes
    colours = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.1, 0.1], [0.1, 0.8, 0.2]])
    images = colours[labels].permute(0, 3, 1, 2) + 0.05 * torch.randn(2, 3, *size)
    return images, labels


def _loss(model, images, labels, binary: bool):
    out = model(images)
    main, aux = out if isinstance(out, tuple) else (out, [])
    if binary:
        target = (labels > 0).float()[:, None]
        return sum([F.binary_cross_entropy_with_logits(o, target) for o in [main, *aux]])
    return F.cross_entropy(main, labels) + 0.2 * sum(F.cross_entropy(a, labels) for a in aux)


@pytest.mark.parametrize("name,options,binary", [
    ("fcn8", {"fused": True}, False),
    ("fcn8", {"fused": False}, True),
    ("fcn-resnet18", {}, False),
    pytest.param("fcn32s", {}, False, marks=pytest.mark.slow),  # VGG-16: ~4 s each
    pytest.param("fcn16s", {}, False, marks=pytest.mark.slow),  # VGG-16: ~4 s each
    pytest.param("fcn8s", {}, False, marks=pytest.mark.slow),  # VGG-16: ~4 s each
    pytest.param("fcns", {}, True, marks=pytest.mark.slow),  # VGG-16: ~4 s each
    ("bisenetv2", {}, False),
    ("tv:lraspp_mobilenet_v3_large", {}, False),
])
def test_loss_falls_when_overfitting_two_images(name, options, binary):
    images, labels = _two_images()
    torch.manual_seed(1)
    model = _build(name, 1 if binary else 3, **options).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = _loss(model, images, labels, binary)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
