"""A frozen VGG-19 ``features`` stack that returns activations by layer name.

Layer names follow the neural-style convention (conv1_1, relu1_1, ..., pool5) and map one to one
onto torchvision's ``vgg19().features`` indices, so torchvision's ImageNet weights
(``VGG19_Weights.IMAGENET1K_V1``, file vgg19-dcbb9e9d.pth) load unchanged. The stack is cut after
the deepest layer a recipe uses: nothing past conv5_1 is computed for the default recipe.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from segtool.core.errors import SegtoolError
from segtool.core.weights import fetch_weights, weight_url

__all__ = ["VGG19_LAYERS", "VGG19_URL", "VGGFeatures", "check_layer_names", "layer_index",
           "load_vgg19", "resolve_weights_file"]

# Convolutions per block in VGG-19 (torchvision cfg "E"); channels per block.
_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
VGG19_URL = weight_url("vgg19")


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, (convs, _) in enumerate(_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        names.append(f"pool{block}")
    return tuple(names)


VGG19_LAYERS = _layer_names()  # VGG19_LAYERS[i] names torchvision's features[i]


def layer_index(name: str) -> int:
    return VGG19_LAYERS.index(name)


def check_layer_names(names: Iterable[str], option: str) -> tuple[str, ...]:
    """Return the names as a tuple; an unknown one is a SegtoolError listing the valid names."""
    names = tuple(names)
    if not names:
        raise SegtoolError(f"{option}: give at least one layer name")
    for name in names:
        if name not in VGG19_LAYERS:
            raise SegtoolError(f"{option}: unknown VGG-19 layer {name!r}; valid: {', '.join(VGG19_LAYERS)}")
    return names


def _build_features(depth: int) -> nn.Sequential:
    """The first ``depth`` modules of torchvision's vgg19().features, with the same indices."""
    layers: list[nn.Module] = []
    in_channels = 3
    for convs, channels in _BLOCKS:
        for _ in range(convs):
            # Not in-place (torchvision's are): an in-place ReLU would overwrite the conv output
            # we read out, silently turning "conv1_1" into "relu1_1".
            layers += [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_channels = channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers[:depth])


def _init_random(features: nn.Sequential) -> None:
    # torchvision's VGG initialisation, so random-weight runs behave like an untrained VGG.
    for module in features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)


class VGGFeatures(nn.Module):
    """Frozen, eval-mode VGG-19 prefix; ``forward(x)`` returns ``{name: activation}`` for ``layers``."""

    def __init__(self, features: nn.Sequential, layers: Sequence[str]):
        super().__init__()
        self.features = features
        self.layers = tuple(layers)
        self._wanted = {layer_index(name): name for name in self.layers}
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self._wanted:
                out[self._wanted[index]] = x
        return out


# How a stylize user gets past missing ImageNet weights; ends the offline error line.
_WAYS_OUT = "pass --weights PATH, or use --random-weights for a test run"


def resolve_weights_file(weights: str | os.PathLike | None = None) -> Path:
    """The VGG-19 weight file: ``weights`` if given, else the torch cache, else a bounded download.

    Offline (or ``$SEGTOOL_OFFLINE=1``) and not cached is a SegtoolError within a few seconds
    (see ``segtool.core.weights``).
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise SegtoolError(f"{path}: --weights file not found")
        return path
    return fetch_weights(VGG19_URL, "VGG-19", _WAYS_OUT)


def _load_state(path: Path, depth: int) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision VGG-19 checkpoint (or a bare features state dict)."""
    import zipfile

    try:
        # mmap: only the conv tensors we keep are read, not the 400 MB classifier. Legacy
        # (pre-zip) files such as torchvision's 2017 vgg19-dcbb9e9d.pth cannot be mapped.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt/foreign files
        raise SegtoolError(f"{path}: not a readable PyTorch weight file ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SegtoolError(f"{path}: expected a VGG-19 state dict, found {type(state).__name__}")
    prefix = "features." if any(str(k).startswith("features.") for k in state) else ""
    return {k[len(prefix):]: v for k, v in state.items()
            if str(k).startswith(prefix) and str(k)[len(prefix):].split(".")[0].isdigit()
            and int(str(k)[len(prefix):].split(".")[0]) < depth}


def load_vgg19(layers: Iterable[str], *, weights: str | os.PathLike | None = None,
               random_weights: bool = False, device: torch.device | str = "cpu") -> VGGFeatures:
    """A frozen VGG-19 prefix ending at the deepest of ``layers``.

    ``random_weights`` uses torchvision's initialisation under the current torch seed (for tests
    and benchmarks: the result is not artistic). Otherwise the ImageNet weights are loaded from
    ``weights`` or the torch cache (see ``resolve_weights_file``).
    """
    layers = check_layer_names(layers, "layers")
    depth = max(layer_index(name) for name in layers) + 1
    features = _build_features(depth)
    if random_weights:
        _init_random(features)
    else:
        path = resolve_weights_file(weights)
        state = _load_state(path, depth)
        try:
            features.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise SegtoolError(f"{path}: does not hold VGG-19 feature weights ({first})") from None
    return VGGFeatures(features, layers).to(device)
