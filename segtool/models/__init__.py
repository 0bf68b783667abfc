"""Segmentation models behind one registry.

    from segtool.models import create_model, list_models, get_model_info
    model = create_model("fcn8", num_classes=21)            # eval: logits N x 21 x H x W
    model = create_model("fcn-resnet18", 2, pretrained=True)
    model = create_model("tv:deeplabv3_resnet50", 21)       # any torchvision segmentation builder
    get_model_info("bisenetv2").recipe["lr"]                 # 0.1

Families (one file each): fcn8 (from-scratch FCN-8s with a fused head), fcn-resnet18 (d2l),
fcn32s/fcn16s/fcn8s/fcns (VGG-16), bisenetv2, and ``tv:<builder>`` for torchvision's models.
Models with a pretrained backbone keep it as ``model.backbone``; every other parameter is "head".
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from torch import nn

from segtool.core.errors import SegtoolError
from segtool.models._registry import ModelInfo, check_options, lookup, registered_names

# Importing a family module registers its builders; this order is the listing order.
# isort: off
from segtool.models import fcn8, fcn_resnet18, fcn_vgg, bisenetv2  # noqa: F401
# isort: on
from segtool.models.torchvision_models import (
    PREFIX,
    create_torchvision_model,
    torchvision_builders,
    torchvision_info,
)

__all__ = ["ModelInfo", "create_model", "get_model_info", "list_models", "size_multiple"]


def list_models(*, include_torchvision: bool = False) -> list[str]:
    """segtool's own models; with include_torchvision also every ``tv:<builder>``."""
    names = registered_names()
    if include_torchvision:
        names += [PREFIX + b for b in torchvision_builders()]
    return names


def _unknown(name: str) -> SegtoolError:
    return SegtoolError(f"unknown model {name!r}; valid: {', '.join(registered_names())}, "
                        f"or tv:<builder> with builder one of {', '.join(torchvision_builders())}")


def get_model_info(name: str) -> ModelInfo:
    """The model's card; its recipe is a fresh copy, so callers may edit it."""
    if name.startswith(PREFIX):
        return torchvision_info(name)
    entry = lookup(name)
    if entry is None:
        raise _unknown(name)
    return dataclasses.replace(entry[1], recipe=copy.deepcopy(entry[1].recipe))


def size_multiple(name: str) -> int:
    """Input sides of model ``name`` must be multiples of this (1: any size)."""
    return int(get_model_info(name).size_multiple or 1)


def create_model(name: str, num_classes: int, *, pretrained: bool = False,
                 backbone_weights: str | Path | None = None, **options) -> nn.Module:
    """Build a model. Eval forward: N x 3 x H x W -> logits N x num_classes x H x W.

    pretrained: load ImageNet backbone weights from the torch cache (download where a network
    exists); backbone_weights: load them from this file instead. options: per-model extras, listed
    in ``get_model_info(name).options`` (e.g. ``fused`` for fcn8).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SegtoolError(f"num_classes must be a positive integer, got {num_classes!r}")
    if name.startswith(PREFIX):
        return create_torchvision_model(name, num_classes, pretrained=pretrained,
                                        backbone_weights=backbone_weights, **options)
    entry = lookup(name)
    if entry is None:
        raise _unknown(name)
    builder, _ = entry
    check_options(name, builder, options)
    return builder(num_classes, pretrained=pretrained, backbone_weights=backbone_weights, **options)
