"""fcn32s / fcn16s / fcn8s / fcns on torchvision's VGG-16 ``features`` (SPEC section 4).

The backbone is read out by name after each of its five max-pools (x1..x5 at 1/2..1/32). The
decoder is five stride-2 transposed convs 512 -> 512 -> 256 -> 128 -> 64 -> 32, each followed by ReLU
and BatchNorm; the variants differ only in how many skips they add (after the ReLU, before the
BatchNorm, as in the write-up): none (32s), x4 (16s), x4 + x3 (8s), x4 + x3 + x2 + x1 (s).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.vgg import cfgs, make_layers

from segtool.models._registry import check_input_size, model_card, register_model
from segtool.models._weights import init_backbone

__all__ = ["VGGFCN", "fcn32s", "fcn16s", "fcn8s", "fcns"]

# Indices of VGG-16's five max-pools in ``vgg16().features``.
_POOLS = {"4": "x1", "9": "x2", "16": "x3", "23": "x4", "30": "x5"}
_DECODER = (512, 512, 256, 128, 64, 32)


def vgg16_features() -> nn.Sequential:
    """``torchvision.models.vgg16().features`` (same keys), without building the 120M-parameter classifier."""
    features = make_layers(cfgs["D"], batch_norm=False)
    for module in features.modules():
        if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return features


class VGGFCN(nn.Module):
    """VGG-16 FCN decoder with ``skips`` skip connections (0, 1, 2 or 4)."""

    def __init__(self, num_classes: int, skips: int, name: str = "VGG FCN"):
        super().__init__()
        self.name = name
        self.backbone = IntermediateLayerGetter(vgg16_features(), return_layers=_POOLS)
        self.skips = skips
        self.relu = nn.ReLU(inplace=True)
        for i in range(5):
            c_in, c_out = _DECODER[i], _DECODER[i + 1]
            self.add_module(f"deconv{i + 1}", nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1,
                                                                 output_padding=1))
            self.add_module(f"bn{i + 1}", nn.BatchNorm2d(c_out))
        self.classifier = nn.Conv2d(_DECODER[-1], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        check_input_size(self.name, x.shape[-2], x.shape[-1], 32)
        features = self.backbone(x)
        skip_inputs = [features["x4"], features["x3"], features["x2"], features["x1"]][: self.skips]
        score = features["x5"]
        for i in range(5):
            score = self.relu(getattr(self, f"deconv{i + 1}")(score))
            if i < len(skip_inputs):
                score = score + skip_inputs[i]
            score = getattr(self, f"bn{i + 1}")(score)
        return self.classifier(score)


_DEMO = {"optimizer": "adamw", "lr": 3e-4, "weight_decay": 1e-4, "head_lr_mult": 1.0,
         "schedule": "onecycle", "epochs": 8, "clip_grad": 1.0}


def _register_variant(name: str, skips: int, skip_names: str, demo: dict | None = None):
    """Register the variant ``name`` (one card, one builder); the four differ only in ``skips``
    (and in ``demo``, overrides of the shared demo preset ``_DEMO``)."""
    info = model_card(
        name, "fcn-vgg16", f"VGG-16 FCN, 5 transposed convs, skips: {skip_names}",
        size_multiple=32, normalization="imagenet", crop=(160, 160), backbone="vgg16",
        recipe={"optimizer": "sgd", "lr": 1e-2, "momentum": 0.7, "batch_size": 4, "epochs": 100,
                "head_lr_mult": 10.0, "pretrained": True,
                # The demo trains from scratch (no download) and VGG-16 has no BatchNorm: SGD 1e-2 does not
                # learn there; AdamW one-cycle at a low peak (3e-4), clipped at norm 1, over 8 epochs does
                # (fcn8s: val mIoU 0.72 in 4 min; 1 thread on a busy 2-core machine).
                "demo": {**_DEMO, **(demo or {})}},
    )

    def build(num_classes: int, *, pretrained: bool = False, backbone_weights=None) -> VGGFCN:
        model = VGGFCN(num_classes, skips, name)
        # vgg16's keys are "features.N.*"; the getter's are "N.*"; the classifier is ignored.
        init_backbone(model.backbone, "vgg16", pretrained=pretrained, backbone_weights=backbone_weights,
                      strip_prefixes=("features.",))
        return model

    build.__name__ = build.__qualname__ = name
    return register_model(info)(build)


# fcn32s paints 64-px demo images from 2x2 features: at the shared values it reaches 0.29-0.45, and with more
# steps alone it overfits the 240 images (0.52); flips and rescaling let it learn: val mIoU 0.60 in 8.6 min
# (2 idle threads; lr 1e-3 instead: 0.54).
fcn32s = _register_variant("fcn32s", 0, "none", {"batch_size": 8, "lr": 5e-4, "epochs": 32,
                                                 "hflip": True, "scale": [0.75, 1.25]})
fcn16s = _register_variant("fcn16s", 1, "pool4", {"epochs": 16})  # 8: 0.44, 16: 0.76 (5.4 min)
fcn8s = _register_variant("fcn8s", 2, "pool4, pool3")
fcns = _register_variant("fcns", 4, "pool4, pool3, pool2, pool1")
