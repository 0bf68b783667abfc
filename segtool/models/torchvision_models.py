"""``tv:<builder>``: any torchvision.models.segmentation builder behind segtool's model interface.

Built with ``weights=None`` (segmentation weights are not used), ``weights_backbone`` = ImageNet when
pretrained, ``num_classes`` as asked and the auxiliary head where the builder has one. The module
keeps torchvision's parameter names (``backbone.*``, ``classifier.*``, ``aux_classifier.*``), so
torchvision checkpoints load into it; only the output changes: a Tensor in eval, and
``(out, [aux])`` in training when the auxiliary head is on.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from urllib.parse import urlparse

import torch.nn.functional as F
import torchvision.models as tvm
from torch import Tensor, nn
from torchvision.models import segmentation
from torchvision.models.segmentation.lraspp import LRASPP

from segtool.core.errors import SegtoolError
from segtool.models._registry import ModelInfo
from segtool.models._weights import fetch_backbone_file, load_backbone_state, load_state_file

__all__ = ["PREFIX", "TorchvisionSegmentation", "create_torchvision_model", "published_param_count",
           "torchvision_builders", "torchvision_info"]

PREFIX = "tv:"


def torchvision_builders() -> list[str]:
    return sorted(tvm.list_models(module=segmentation))


def _builder(name: str):
    builder = name[len(PREFIX):]
    if builder not in torchvision_builders():
        raise SegtoolError(f"unknown torchvision segmentation builder {builder!r} "
                           f"(valid: {', '.join(PREFIX + b for b in torchvision_builders())})")
    return builder, tvm.get_model_builder(builder)


def published_param_count(name: str) -> int | None:
    """Parameter count torchvision publishes for the builder's VOC-label weights (21 classes, with aux)."""
    builder, _ = _builder(name)
    weights = tvm.get_model_weights(builder)
    return next(iter(weights)).meta.get("num_params")


def _has_aux(fn) -> bool:
    return "aux_loss" in inspect.signature(fn).parameters


def _backbone_weights_enum(fn):
    return inspect.signature(fn).parameters["weights_backbone"].default


class TorchvisionSegmentation(nn.Module):
    """A torchvision FCN / DeepLabV3 / LRASPP with segtool's output convention."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone = model.backbone
        self.classifier = model.classifier
        self.aux_classifier = getattr(model, "aux_classifier", None)
        self._classifier_reads_dict = isinstance(model, LRASPP)  # LRASPP mixes "low" and "high"

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, list[Tensor]]:
        size = x.shape[-2:]
        features = self.backbone(x)
        out = self.classifier(features if self._classifier_reads_dict else features["out"])
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        if not self.training or self.aux_classifier is None:
            return out
        aux = F.interpolate(self.aux_classifier(features["aux"]), size=size, mode="bilinear", align_corners=False)
        return out, [aux]


# The demo (64 px, from scratch): at 64 px LRASPP's features are 4x4 and MobileNetV3's BatchNorm
# (momentum 0.01) lags the weights, so eval predicts background (mIoU 0.17-0.19 with SGD or AdamW 1e-2).
# At twice the size, batch 8 (more steps), AdamW 3e-3 over 16 epochs decaying to 0 lets it catch up: val mIoU
# 0.78 in 2.6 min with the recipe's poly 0.9 (one-cycle: 0.74 in 3.6 min; the demo layer keeps the recipe's
# schedule options, so poly it is); 1 thread on a busy 2-core machine.
_LRASPP_DEMO = {"input_scale": 2.0, "crop": [128, 128], "batch_size": 8, "optimizer": "adamw", "lr": 3e-3,
                "weight_decay": 1e-4, "warmup_ratio": 0.1, "epochs": 16}  # the recipe's poly 0.9 schedule


def torchvision_info(name: str) -> ModelInfo:
    builder, fn = _builder(name)
    weights = _backbone_weights_enum(fn)
    backbone_file = Path(urlparse(weights.url).path).name if weights is not None else None
    aux = _has_aux(fn)
    return ModelInfo(
        name=name,
        family="torchvision",
        description=f"torchvision.models.segmentation.{builder}" + (" (+ aux head)" if aux else ""),
        size_multiple=1,
        normalization="imagenet",
        backbone=builder.split("_", 1)[1],
        backbone_file=backbone_file,
        default_crop=(480, 480),
        # torchvision's references/segmentation recipe (lr scaled for one device, batch 4).
        recipe={
            "optimizer": "sgd", "lr": 0.02, "momentum": 0.9, "weight_decay": 1e-4,
            "schedule": "poly", "schedule_options": {"power": 0.9},
            "batch_size": 4, "epochs": 30, "crop": [480, 480], "loss": "ce",
            "aux_weight": 0.5 if aux else 0.0, "head_lr_mult": 1.0, "hflip": True, "vflip": False,
            "pretrained": True,
            **({"demo": _LRASPP_DEMO} if builder.startswith("lraspp") else {}),
        },
        aux_heads=1 if aux else 0,
        options=("aux_loss",) if aux else (),
    )


def create_torchvision_model(name: str, num_classes: int, *, pretrained: bool = False,
                             backbone_weights: str | Path | None = None, **options) -> TorchvisionSegmentation:
    builder, fn = _builder(name)
    kwargs: dict = {"weights": None, "num_classes": num_classes, "weights_backbone": None}
    if _has_aux(fn):
        kwargs["aux_loss"] = bool(options.pop("aux_loss", True))
    if options:
        valid = "aux_loss" if _has_aux(fn) else "none"
        raise SegtoolError(f"model {name}: unknown option(s) {', '.join(sorted(options))} (valid: {valid})")
    if pretrained and backbone_weights is None:
        weights = _backbone_weights_enum(fn)
        fetch_backbone_file(weights.url, f"{name} backbone")  # torchvision then finds it cached
        kwargs["weights_backbone"] = weights
    try:
        model = TorchvisionSegmentation(fn(**kwargs))
    except SegtoolError:
        raise
    except Exception as exc:  # e.g. a cached file torchvision cannot read
        raise SegtoolError(f"model {name}: could not load the pretrained backbone ({exc}); "
                           "pass --backbone-weights PATH or use --no-pretrained") from exc
    if backbone_weights is not None:
        # ResNet files match the getter's keys; MobileNetV3 ones carry a "features." prefix.
        load_backbone_state(model.backbone, load_state_file(backbone_weights), str(backbone_weights),
                            strip_prefixes=("features.",))
    return model
