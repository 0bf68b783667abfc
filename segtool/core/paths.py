"""Where segtool looks for datasets, caches and pretrained weights."""

from __future__ import annotations

import os
from pathlib import Path

# torchvision's file names for the ImageNet weights segtool's models and stylize can use.
KNOWN_WEIGHTS = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
    "resnet18": "resnet18-f37072fd.pth",
}


def data_home() -> Path:
    """``$SEGTOOL_DATA`` if set, else ``./data``."""
    env = os.environ.get("SEGTOOL_DATA")
    return Path(env) if env else Path("data")


def default_voc_root() -> Path:
    return data_home() / "VOCdevkit" / "VOC2012"


def cache_home() -> Path:
    """``$SEGTOOL_CACHE``, else ``$XDG_CACHE_HOME/segtool``, else ``~/.cache/segtool``."""
    env = os.environ.get("SEGTOOL_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "segtool"


def torch_home() -> Path:
    """Same rule as ``torch.hub.get_dir()`` without importing torch."""
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "torch"


def torch_checkpoint_dir() -> Path:
    return torch_home() / "hub" / "checkpoints"


def cached_weight_file(key: str) -> Path:
    return torch_checkpoint_dir() / KNOWN_WEIGHTS[key]
