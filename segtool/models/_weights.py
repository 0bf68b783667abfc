"""Backbone weights for the models: from a given file, or torchvision's ImageNet file.

Finding the ImageNet file (torch cache, offline policy, download) is ``segtool.core.weights``;
this module reads a state dict and copies it into a backbone, with one clear line when it does not fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from segtool.core.errors import SegtoolError
from segtool.core.weights import KNOWN_WEIGHTS, fetch_weights, weight_url

__all__ = ["BACKBONE_WAYS_OUT", "fetch_backbone_file", "fetch_pretrained_state", "init_backbone",
           "load_backbone_state", "load_state_file", "reject_pretrained"]

# How a user gets past missing ImageNet weights; ends the offline error line.
BACKBONE_WAYS_OUT = "pass --backbone-weights PATH, or use --no-pretrained to start from random weights"


def fetch_backbone_file(url: str, what: str) -> Path:
    """The torch-cache file for ``url``, downloaded when missing; fails fast offline."""
    return fetch_weights(url, what, BACKBONE_WAYS_OUT)


def fetch_pretrained_state(key: str) -> dict[str, torch.Tensor]:
    """ImageNet state dict for ``key`` ("resnet18", "vgg16") from the torch cache or a download."""
    return load_state_file(fetch_backbone_file(weight_url(key), key))


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file: plain, or inside a checkpoint under "model"/"state_dict"."""
    path = Path(path)
    if not path.is_file():
        raise SegtoolError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for bad files
        raise SegtoolError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from exc
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SegtoolError(f"{path}: does not hold a state dict of tensors")
    return state


def load_backbone_state(backbone: nn.Module, state: dict[str, torch.Tensor], source: str,
                        strip_prefixes: Iterable[str] = ()) -> None:
    """Copy ``state`` into ``backbone``; keys the backbone lacks (a classifier) are ignored.

    Every backbone tensor must be present with the right shape, otherwise the file is for another
    architecture and we say so instead of training on half-loaded weights.
    """
    renamed = {}
    for key, value in state.items():
        for prefix in strip_prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        renamed[key] = value
    own = backbone.state_dict()
    missing = [k for k in own if k not in renamed]
    wrong = [k for k in own if k in renamed and renamed[k].shape != own[k].shape]
    if missing or wrong:
        detail = (f"missing {len(missing)} tensors (e.g. {missing[0]})" if missing
                  else f"{len(wrong)} tensors of the wrong shape (e.g. {wrong[0]})")
        raise SegtoolError(f"{source}: does not fit this backbone: {detail}")
    backbone.load_state_dict({k: renamed[k] for k in own})


def init_backbone(backbone: nn.Module, key: str, *, pretrained: bool, backbone_weights: str | Path | None,
                  strip_prefixes: Iterable[str] = ()) -> None:
    """Load ImageNet (or given) weights into ``backbone``; nothing when neither is asked for."""
    if backbone_weights is not None:
        load_backbone_state(backbone, load_state_file(backbone_weights), str(backbone_weights), strip_prefixes)
    elif pretrained:
        load_backbone_state(backbone, fetch_pretrained_state(key), KNOWN_WEIGHTS.get(key, key),
                            strip_prefixes)


def reject_pretrained(name: str, pretrained: bool, backbone_weights: str | Path | None) -> None:
    """Models trained from scratch have no backbone to load; asking for one is a user error."""
    if pretrained or backbone_weights is not None:
        raise SegtoolError(f"model {name} has no pretrained backbone; use --no-pretrained "
                           "(its recipe trains from random initialisation)")
