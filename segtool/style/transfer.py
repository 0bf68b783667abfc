"""``stylize``: content image + style image(s) + recipe -> stylized image, losses and timings.

The order matters and is numbered in ``stylize``: everything that can fail on user input (images,
layer names, blend weights, memory) fails before the first optimisation step.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image

from segtool.core.errors import SegtoolError
from segtool.style.color import preserve_colors
from segtool.style.config import StyleConfig
from segtool.style.images import (
    Size,
    fit_longest_side,
    from_tensor,
    load_rgb,
    resize,
    resolve_size,
    to_tensor,
)
from segtool.style.memory import check_memory, estimate_bytes
from segtool.style.optimize import LossTerms, Objective, run_adam, run_lbfgs
from segtool.style.vgg import VGG19_LAYERS, VGGFeatures, load_vgg19

__all__ = ["ObjectiveBuilder", "StepReport", "StyleResult", "objective_weights", "plan_sizes", "stylize",
           "transfer"]

ImageLike = str | os.PathLike | Image.Image


@dataclass
class StepReport:
    """What a progress display needs after each step."""

    stage: int          # 1-based
    stages: int
    size: Size
    step: int           # 1-based, within the stage
    steps: int
    losses: dict[str, float]
    seconds: float      # since the stage started
    evaluations: int    # loss/gradient evaluations so far in the stage (L-BFGS: more than steps)


@dataclass
class StyleResult:
    image: Image.Image
    losses: dict[str, float]                   # of the final image (one extra evaluation)
    stages: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    memory_estimate: int = 0


def _as_rgb(image: ImageLike) -> Image.Image:
    return image.convert("RGB") if isinstance(image, Image.Image) else load_rgb(image)


def plan_sizes(config: StyleConfig, content_hw: Size) -> list[Size]:
    """The (H, W) of every stage: each ``--scales`` entry (longest side) below the final size, then it."""
    final = resolve_size(config.size, content_hw)
    longest = max(final)
    stages = [fit_longest_side(s, final) for s in config.scales if s < longest]
    return [*stages, final]


def _style_size(style_hw: Size, stage: Size, scale: float, min_side: int) -> Size:
    # Aspect kept, longest side = style_scale x the stage's longest side (neural-style's rule),
    # but never so small that the deepest pooling layer would have nothing left to pool.
    size = fit_longest_side(round(max(stage) * scale), style_hw)
    if min(size) < min_side:
        size = fit_longest_side(math.ceil(max(size) * min_side / min(size)), style_hw)
    return size


def _min_side(extractor: VGGFeatures) -> int:
    """Smallest image side that survives every max-pool before the deepest layer used."""
    return 2 ** sum(isinstance(module, torch.nn.MaxPool2d) for module in extractor.features)


def _initial_image(config: StyleConfig, content: torch.Tensor, size: Size, device: torch.device) -> torch.Tensor:
    if config.init == "content":
        return content.clone()
    if config.init == "random":
        # Tiny noise around the ImageNet mean, as neural-style's -init random.
        return torch.randn(1, 3, *size, device=device) * 1e-3
    return to_tensor(resize(load_rgb(config.init), size), device)


# build(extractor, content, styles, size, final_size) -> the stage's Objective: content and style
# tensors are the stage-size, normalised images (styles in the order given to ``transfer``).
ObjectiveBuilder = Callable[[VGGFeatures, torch.Tensor, list[torch.Tensor], Size, Size], Objective]


def stylize(content: ImageLike, styles: Sequence[ImageLike], config: StyleConfig | None = None, *,
            device: torch.device | str = "cpu", extractor: VGGFeatures | None = None,
            weights: str | os.PathLike | None = None, random_weights: bool = False,
            on_step: Callable[[StepReport], None] | None = None,
            snapshot_every: int = 0, on_snapshot: Callable[[int, int, Image.Image], None] | None = None,
            ) -> StyleResult:
    """Optimise an image to match ``content``'s VGG activations and the ``styles``' Gram matrices.

    ``extractor`` reuses an already loaded VGG (it must cover the recipe's layers); otherwise one
    is loaded from ``weights`` / the torch cache, or randomly initialised. ``on_snapshot(stage,
    step, image)`` receives the current image every ``snapshot_every`` steps.
    """
    config = config or StyleConfig()
    if isinstance(styles, (str, os.PathLike, Image.Image)):
        styles = [styles]
    config.validate(len(styles))
    blend = config.blend_weights(len(styles))

    def build(extractor: VGGFeatures, content_t: torch.Tensor, style_ts: list[torch.Tensor], size: Size,
              final: Size) -> Objective:
        return Objective.from_images(extractor, content_t, style_ts, blend, config.content_layers,
                                     config.style_layers, **objective_weights(config))

    return transfer(content, styles, config, build, device=device, extractor=extractor, weights=weights,
                    random_weights=random_weights, on_step=on_step, snapshot_every=snapshot_every,
                    on_snapshot=on_snapshot)


def objective_weights(config: StyleConfig) -> dict[str, float]:
    return {"content_weight": config.content_weight, "style_weight": config.style_weight,
            "tv_weight": config.tv_weight, "tv_smoothing": config.tv_epsilon}


def transfer(content: ImageLike, styles: Sequence[ImageLike], config: StyleConfig, build: ObjectiveBuilder, *,
             device: torch.device | str = "cpu", extractor: VGGFeatures | None = None,
             weights: str | os.PathLike | None = None, random_weights: bool = False,
             on_step: Callable[[StepReport], None] | None = None,
             snapshot_every: int = 0, on_snapshot: Callable[[int, int, Image.Image], None] | None = None,
             ) -> StyleResult:
    """The coarse-to-fine optimisation shared by plain and region-guided stylize; ``build`` makes
    each stage's objective. ``config`` must be validated."""
    device = torch.device(device)
    started = time.perf_counter()
    # 1. Inputs: fail on anything the user can fix before any heavy work.
    content_image = _as_rgb(content)
    style_images = [_as_rgb(style) for style in styles]
    if config.init not in ("content", "random"):
        load_rgb(config.init)
    content_hw = (content_image.height, content_image.width)
    sizes = plan_sizes(config, content_hw)
    if config.seed is not None:
        torch.manual_seed(config.seed)

    # 2. The frozen network, cut after the deepest layer used.
    if extractor is None:
        extractor = load_vgg19(config.layers, weights=weights, random_weights=random_weights, device=device)
    missing = set(config.layers) - set(extractor.layers)
    if missing:
        raise ValueError(f"extractor lacks layers {sorted(missing)}")
    loaded = time.perf_counter()
    min_side = _min_side(extractor)
    for size in sizes:
        if min(size) < min_side:
            deepest = VGG19_LAYERS[len(extractor.features) - 1]
            raise SegtoolError(f"--size/--scales: {size[0]}x{size[1]} is too small for VGG-19 up to {deepest}; "
                               f"every side must be at least {min_side} px")

    # 3. Memory: refuse before starting when the largest stage cannot fit.
    largest = sizes[-1]
    style_sizes = tuple(_style_size((s.height, s.width), largest, config.style_scale, min_side) for s in style_images)
    estimate = estimate_bytes(extractor.features, largest, optimizer=config.optimizer,
                              lbfgs_history=config.lbfgs_history, style_sizes=style_sizes)
    check_memory(estimate, device, largest, optimizer=config.optimizer)

    # 4. Coarse to fine: each stage starts from the previous result, upsampled.
    image: torch.Tensor | None = None
    stages: list[dict] = []
    for stage, size in enumerate(sizes, start=1):
        content_t = to_tensor(resize(content_image, size), device)
        style_ts = [to_tensor(resize(s, _style_size((s.height, s.width), size, config.style_scale, min_side)), device)
                    for s in style_images]
        objective = build(extractor, content_t, style_ts, size, sizes[-1])
        start = (_initial_image(config, content_t, size, device) if image is None
                 else F.interpolate(image, size=size, mode="bilinear", align_corners=False))

        def report(step: int, seconds: float, terms: LossTerms, current: torch.Tensor, stage: int = stage,
                   size: Size = size, objective: Objective = objective) -> None:
            if on_step is not None:
                on_step(StepReport(stage, len(sizes), size, step, config.steps, terms.values(), seconds,
                                   objective.evaluations))
            if on_snapshot is not None and snapshot_every and step % snapshot_every == 0:
                on_snapshot(stage, step, _finish(objective.compose(current), content_image, config))

        image, seconds = _optimise(start, objective, config, device, report)
        stages.append({"size": list(size), "steps": config.steps, "seconds": round(seconds, 3),
                       "steps_per_s": round(config.steps / seconds, 3) if seconds > 0 else None,
                       "evaluations": objective.evaluations})

    assert image is not None
    with torch.no_grad():
        final_losses = objective(image).values()
        image = objective.compose(image)
    if not all(map(math.isfinite, final_losses.values())):
        raise SegtoolError("the loss is not finite at the end; lower --lr")
    result_image = _finish(image, content_image, config)
    finished = time.perf_counter()
    return StyleResult(
        image=result_image, losses=final_losses, stages=stages, memory_estimate=estimate,
        seconds={"load": round(loaded - started, 3), "optimize": round(sum(s["seconds"] for s in stages), 3),
                 "total": round(finished - started, 3)})


def _optimise(start: torch.Tensor, objective: Objective, config: StyleConfig, device: torch.device,
              report: Callable[..., None]) -> tuple[torch.Tensor, float]:
    """Run the configured optimiser for one stage; returns the image and the wall seconds."""
    started = time.perf_counter()

    def callback(step: int, terms: LossTerms, current: torch.Tensor) -> None:
        report(step, time.perf_counter() - started, terms, current)

    if config.optimizer == "lbfgs":
        image = run_lbfgs(start, objective, config.steps, lr=config.learning_rate,
                          history=config.lbfgs_history, callback=callback)
    else:
        image = run_adam(start, objective, config.steps, lr=config.learning_rate, lr_step=config.lr_step,
                         lr_gamma=config.lr_gamma, callback=callback)
    _synchronize(device)
    return image, time.perf_counter() - started


def _finish(image: torch.Tensor, content_image: Image.Image, config: StyleConfig) -> Image.Image:
    out = from_tensor(image)
    return preserve_colors(out, content_image) if config.preserve_colors else out


def _synchronize(device: torch.device) -> None:
    backend = getattr(torch, device.type, None)
    if device.type != "cpu" and hasattr(backend, "synchronize"):
        backend.synchronize(device)
