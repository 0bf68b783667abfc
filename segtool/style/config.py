"""The recipe of a style transfer as one dataclass; defaults are the d2l recipe (SPEC section 7)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from segtool.core.errors import SegtoolError
from segtool.style.images import Size
from segtool.style.vgg import check_layer_names

__all__ = ["D2L_CONTENT_LAYERS", "D2L_STYLE_LAYERS", "OPTIMIZERS", "StyleConfig", "parse_blend",
           "parse_names", "parse_scales"]

D2L_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")  # features 0, 5, 10, 19, 28
D2L_CONTENT_LAYERS = ("conv4_4",)  # features 25
OPTIMIZERS = ("adam", "lbfgs")
DEFAULT_LR = {"adam": 0.3, "lbfgs": 1.0}  # L-BFGS: neural-style's (optim.lbfgs) step size
# Charbonnier epsilon of the TV term that L-BFGS descends (in normalised-image units, ~2.8/255 of a
# pixel): smooth enough for its curvature estimates, close enough to d2l's |d| that the reported
# (exact) loss falls as fast as possible; chosen with benchmarks/stylize.py --lbfgs-smoothing 0.05,0.01,0.1.
DEFAULT_TV_SMOOTHING = {"adam": 0.0, "lbfgs": 0.05}


@dataclass
class StyleConfig:
    """Everything that decides the result, apart from the images and the weights.

    ``size`` is ``(H, W)`` or an int (longest side, content aspect kept). ``scales`` lists the
    longest side of each coarse-to-fine stage before the final ``size``; every stage runs
    ``steps`` steps. ``init`` is ``"content"``, ``"random"`` or an image path. ``lr=None`` means
    0.3 for Adam, 1.0 for L-BFGS. ``tv_smoothing=None`` means 0 (d2l's exact TV) for Adam and 0.05
    for L-BFGS, which needs a smooth loss; reported losses always use the exact TV.
    """

    size: int | Size = (300, 450)
    steps: int = 500
    optimizer: str = "adam"
    lr: float | None = None
    lr_step: int = 50
    lr_gamma: float = 0.8
    content_weight: float = 1.0
    style_weight: float = 1e4
    tv_weight: float = 10.0
    tv_smoothing: float | None = None
    content_layers: tuple[str, ...] = D2L_CONTENT_LAYERS
    style_layers: tuple[str, ...] = D2L_STYLE_LAYERS
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    init: str = "content"
    preserve_colors: bool = False
    scales: tuple[int, ...] = field(default_factory=tuple)
    seed: int | None = None
    lbfgs_history: int = 100

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    @property
    def tv_epsilon(self) -> float:
        return DEFAULT_TV_SMOOTHING[self.optimizer] if self.tv_smoothing is None else self.tv_smoothing

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    def blend_weights(self, styles: int) -> tuple[float, ...]:
        """Style blend weights normalised to sum to 1 (equal when not given)."""
        weights = self.style_blend or (1.0,) * styles
        if len(weights) != styles:
            raise SegtoolError(f"--style-blend: {len(weights)} weight(s) for {styles} style image(s); "
                               "give one weight per style image")
        total = sum(weights)
        return tuple(w / total for w in weights)

    def validate(self, styles: int = 1) -> StyleConfig:
        """Raise a SegtoolError naming the option for any value that cannot work."""
        if self.optimizer not in OPTIMIZERS:
            raise SegtoolError(f"--optimizer: unknown {self.optimizer!r}; use {' or '.join(OPTIMIZERS)}")
        if self.steps < 1:
            raise SegtoolError(f"--steps must be at least 1, got {self.steps}")
        # `not x > 0` rather than `x <= 0`: nan compares false both ways and must fail too.
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise SegtoolError(f"--lr must be a positive finite number, got {self.learning_rate}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise SegtoolError(f"--{name.replace('_', '-')} must be a non-negative finite number")
        if not (math.isfinite(self.tv_epsilon) and self.tv_epsilon >= 0):
            raise SegtoolError(f"--tv-smoothing must be a non-negative finite number, got {self.tv_epsilon}")
        if not (math.isfinite(self.style_scale) and self.style_scale > 0):
            raise SegtoolError(f"--style-scale must be a positive finite number, got {self.style_scale}")
        if styles < 1:
            raise SegtoolError("give at least one style image")
        if self.style_blend is not None and (not all(math.isfinite(w) and w >= 0 for w in self.style_blend)
                                             or sum(self.style_blend) <= 0):
            raise SegtoolError("--style-blend: weights must be non-negative and not all zero")
        self.blend_weights(styles)
        self.content_layers = check_layer_names(self.content_layers, "--content-layers")
        self.style_layers = check_layer_names(self.style_layers, "--style-layers")
        if any(s < 16 for s in self.scales):
            raise SegtoolError("--scales: every scale must be at least 16 pixels")
        if list(self.scales) != sorted(set(self.scales)):
            raise SegtoolError("--scales: give increasing sizes, e.g. 256,512")
        return self

    def to_dict(self) -> dict:
        data = asdict(self)
        data["lr"] = self.learning_rate
        data["tv_smoothing"] = self.tv_epsilon
        return data


def parse_names(text: str) -> tuple[str, ...]:
    """``"conv4_2, relu1_1"`` -> ("conv4_2", "relu1_1")."""
    return tuple(part.strip() for part in str(text).split(",") if part.strip())


def parse_blend(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in parse_names(text))
    except ValueError:
        raise ValueError(f"{text!r}: expected comma-separated numbers such as 0.7,0.3") from None


def parse_scales(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in parse_names(text))
    except ValueError:
        raise ValueError(f"{text!r}: expected comma-separated sizes such as 256,512") from None
