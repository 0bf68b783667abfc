"""Pretrained backbone weights: from a given file, from the torch cache, or torchvision's download.

Offline machines are the common case here, so a missing cache file fails fast (a 3-second reach
probe before torchvision's download) with one line that names the expected file, the cache
directory and both ways out: ``--backbone-weights PATH`` or ``--no-pretrained``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from segtool.core import paths
from segtool.core.errors import SegtoolError

__all__ = ["imagenet_weights_url", "load_state_file", "fetch_pretrained_state", "load_backbone_state",
           "ensure_weights_reachable", "init_backbone", "reject_pretrained"]

_PROBE_SECONDS = 3.0
_STALL_SECONDS = 30.0  # a download that sends nothing for this long is given up


def imagenet_weights_url(key: str) -> str:
    """torchvision's URL for the ImageNet weights of ``key`` ("resnet18", "vgg16", "vgg19")."""
    from torchvision.models import ResNet18_Weights, VGG16_Weights, VGG19_Weights

    enums = {"resnet18": ResNet18_Weights, "vgg16": VGG16_Weights, "vgg19": VGG19_Weights}
    return enums[key].IMAGENET1K_V1.url


def _reachable(url: str, timeout: float = _PROBE_SECONDS) -> tuple[bool, str]:
    """Can we open a TCP connection to the URL's host within ``timeout`` seconds (DNS included)?"""
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: dict[str, object] = {}

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc

    # A thread, because name resolution ignores socket timeouts and can hang offline.
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if outcome.get("ok"):
        return True, ""
    return False, str(outcome.get("error") or f"no answer from {host} within {timeout:.0f} s")


def _missing_message(filename: str, what: str, reason: str) -> str:
    cache = paths.torch_checkpoint_dir()
    return (f"pretrained {what} weights not available: {filename} is not in the torch cache {cache} "
            f"and cannot be downloaded ({reason}). Copy {filename} into {cache}, pass "
            f"--backbone-weights PATH, or use --no-pretrained to start from random weights")


def ensure_weights_reachable(url: str, what: str) -> Path:
    """Return the cached file for ``url``; if absent, fail fast unless a download can start."""
    filename = Path(urlparse(url).path).name
    cached = paths.torch_checkpoint_dir() / filename
    if cached.is_file():
        return cached
    ok, reason = _reachable(url)
    if not ok:
        raise SegtoolError(_missing_message(filename, what, reason))
    return cached


def fetch_pretrained_state(key: str) -> dict[str, torch.Tensor]:
    """ImageNet state dict for ``key`` from the torch cache, downloading it like torchvision does."""
    url = imagenet_weights_url(key)
    cached = ensure_weights_reachable(url, key)
    if cached.is_file():
        return load_state_file(cached)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_STALL_SECONDS)  # urllib has no timeout of its own: a stalled server would hang us
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=str(paths.torch_checkpoint_dir()),
                                                  map_location="cpu", check_hash=True, weights_only=True)
    except Exception as exc:  # network errors come in many types (URLError, HTTPError, socket errors)
        raise SegtoolError(_missing_message(cached.name, key, f"download failed: {exc}")) from exc
    finally:
        socket.setdefaulttimeout(previous)


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
        load_backbone_state(backbone, fetch_pretrained_state(key), paths.KNOWN_WEIGHTS.get(key, key),
                            strip_prefixes)


def reject_pretrained(name: str, pretrained: bool, backbone_weights: str | Path | None) -> None:
    """Models trained from scratch have no backbone to load; asking for one is a user error."""
    if pretrained or backbone_weights is not None:
        raise SegtoolError(f"model {name} has no pretrained backbone; use --no-pretrained "
                           "(its recipe trains from random initialisation)")
