"""Model registry: names -> small builder functions plus a ``ModelInfo`` card each.

Each family file registers its entry points with ``@register_model(ModelInfo(...))``. The card says
what a caller needs without building the model: the input-size rule, the expected normalisation, the
backbone weights it can use, the default crop and the training recipe (plain types only, so it can go
into a config file or a checkpoint as is).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from segtool.core.errors import SegtoolError
from segtool.core.weights import KNOWN_WEIGHTS

__all__ = ["ModelInfo", "model_card", "register_model", "registered_names", "lookup", "check_options", "check_input_size"]


@dataclass(frozen=True)
class ModelInfo:
    """What a model expects and how its original write-up trained it.

    recipe keys (read by training): optimizer ("sgd"/"adamw"), lr, momentum, weight_decay,
    schedule ("onecycle"/"poly"/"step"/"linear"/"none"), schedule_options (dict; onecycle: max_lr,
    div_factor, final_div_factor, pct_start, cycle_momentum, base_momentum, max_momentum; linear:
    end_lr, fraction (of the whole run over which lr goes linearly to end_lr, then stays); poly:
    power), batch_size, epochs, crop [H, W], loss ("ce"/"bce"), aux_weight, head_lr_mult (for
    parameters outside ``backbone.*``), hflip, vflip, pretrained (default for this model).
    """

    name: str
    family: str
    description: str
    size_multiple: int  # H and W must be multiples of it
    normalization: str | None  # "imagenet" or None (inputs in [0, 1])
    backbone: str | None  # e.g. "resnet18", "vgg16" (keys of segtool.core.weights.KNOWN_WEIGHTS)
    backbone_file: str | None  # the torchvision weight file name in the torch cache
    default_crop: tuple[int, int]
    recipe: dict = field(default_factory=dict, hash=False)
    aux_heads: int = 0  # auxiliary outputs returned in training mode
    options: tuple[str, ...] = ()  # extra keyword options create_model accepts for this model

    @property
    def size_rule(self) -> str:
        if self.size_multiple <= 1:
            return "any H, W (output resized to the input)"
        return f"H, W multiples of {self.size_multiple}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["default_crop"] = list(self.default_crop)
        data["options"] = list(self.options)
        data["size_rule"] = self.size_rule
        return data


# Recipe values most cards share; a card states only where it differs.
_RECIPE_DEFAULTS = {"momentum": 0.0, "weight_decay": 0.0, "schedule": "none", "schedule_options": {},
                    "loss": "ce", "aux_weight": 0.0, "head_lr_mult": 1.0, "hflip": False, "vflip": False,
                    "pretrained": False}


def model_card(name: str, family: str, description: str, *, size_multiple: int, normalization: str | None,
               crop: tuple[int, int], recipe: dict, backbone: str | None = None, **extra: Any) -> ModelInfo:
    """A ``ModelInfo`` for one of segtool's own models.

    The recipe gets ``_RECIPE_DEFAULTS`` for the keys it leaves out and ``crop`` (also the default
    crop); the backbone file is the ``KNOWN_WEIGHTS`` entry of ``backbone``.
    """
    return ModelInfo(name=name, family=family, description=description, size_multiple=size_multiple,
                     normalization=normalization, backbone=backbone,
                     backbone_file=KNOWN_WEIGHTS[backbone] if backbone else None, default_crop=tuple(crop),
                     recipe={**copy.deepcopy(_RECIPE_DEFAULTS), "crop": list(crop), **recipe}, **extra)


Builder = Callable[..., Any]
_MODELS: dict[str, tuple[Builder, ModelInfo]] = {}


def register_model(info: ModelInfo) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder(num_classes, *, pretrained, backbone_weights, **options)``."""

    def decorate(builder: Builder) -> Builder:
        if info.name in _MODELS:
            raise ValueError(f"model {info.name!r} registered twice")
        _MODELS[info.name] = (builder, info)
        return builder

    return decorate


def registered_names() -> list[str]:
    return list(_MODELS)


def lookup(name: str) -> tuple[Builder, ModelInfo] | None:
    return _MODELS.get(name)


def check_options(name: str, builder: Builder, options: dict[str, Any]) -> None:
    """Unknown keyword options are a user error that names the valid ones."""
    params = inspect.signature(builder).parameters
    valid = [p for p in params if p not in ("num_classes", "pretrained", "backbone_weights")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        allowed = ", ".join(valid) if valid else "none"
        raise SegtoolError(f"model {name}: unknown option(s) {', '.join(unknown)} (valid: {allowed})")


def check_input_size(name: str, height: int, width: int, multiple: int) -> None:
    """A clear error instead of a shape mismatch deep inside the network."""
    if height % multiple or width % multiple:
        raise SegtoolError(f"model {name}: input {height}x{width} is not a multiple of {multiple} "
                           f"(pad or crop it to e.g. {-(-height // multiple) * multiple}x{-(-width // multiple) * multiple})")
