"""Where segtool looks for datasets, caches and pretrained weights."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """``$SEGTOOL_DATA`` if set, else ``./data``."""
    env = os.environ.get("SEGTOOL_DATA")
    return Path(env) if env else Path("data")


def default_voc_root() -> Path:
    return data_home() / "VOCdevkit" / "VOC2012"


def _user_cache(variable: str, name: str) -> Path:
    """``$<variable>``, else ``$XDG_CACHE_HOME/<name>``, else ``~/.cache/<name>``."""
    env = os.environ.get(variable)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / name


def cache_home() -> Path:
    """``$SEGTOOL_CACHE``, else ``$XDG_CACHE_HOME/segtool``, else ``~/.cache/segtool``."""
    return _user_cache("SEGTOOL_CACHE", "segtool")


def torch_home() -> Path:
    """Same rule as ``torch.hub.get_dir()`` without importing torch."""
    return _user_cache("TORCH_HOME", "torch")


def torch_checkpoint_dir() -> Path:
    """Where torch.hub (and so torchvision) keeps downloaded weight files."""
    return torch_home() / "hub" / "checkpoints"
