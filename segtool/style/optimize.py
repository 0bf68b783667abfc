"""The optimisation loops: only the image is a parameter; the network and targets are fixed.

``Objective`` evaluates the weighted loss of an image against precomputed targets.
``run_adam`` is the d2l loop (Adam + StepLR); ``run_lbfgs`` is neural-style's L-BFGS (history
100, step size 1, no early stop) plus a strong-Wolfe line search, run one iteration per
``step()`` call so progress and snapshots can be taken between iterations. Both descend
``LossTerms.minimized`` (the loss with a smoothed TV term when the objective asks for one) and
report the recipe's exact losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from segtool.core.errors import SegtoolError
from segtool.style.losses import content_loss, gram, style_loss, tv_loss
from segtool.style.vgg import VGGFeatures

__all__ = ["LossTerms", "Objective", "StepCallback", "run_adam", "run_lbfgs"]


@dataclass
class LossTerms:
    """The weighted terms of one evaluation (tensors while optimising).

    ``total`` is the recipe's loss (what is reported); ``minimized`` is what the optimiser descends:
    the same, except that it uses the smoothed TV term when the objective has ``tv_smoothing``.
    """

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor
    total: torch.Tensor
    minimized: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.minimized is None:
            self.minimized = self.total

    def values(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in ("content", "style", "tv", "total")}


# callback(step, terms, image): step counts from 1; terms are the losses of the image before that
# step's update; image is the current (updated) optimisation variable.
StepCallback = Callable[[int, LossTerms, torch.Tensor], None]


class Objective:
    """Weighted content + style + TV loss against fixed targets.

    With ``tv_smoothing`` > 0 the optimiser descends the loss with a Charbonnier-smoothed TV term
    (see ``tv_loss``) while the reported losses stay the recipe's own.
    """

    def __init__(self, extractor: VGGFeatures, content_targets: Mapping[str, torch.Tensor],
                 style_grams: Mapping[str, torch.Tensor], *, content_weight: float,
                 style_weight: float, tv_weight: float, tv_smoothing: float = 0.0):
        self.extractor = extractor
        self.content_targets = dict(content_targets)
        self.style_grams = dict(style_grams)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.tv_smoothing = tv_smoothing
        self.evaluations = 0

    @classmethod
    def from_images(cls, extractor: VGGFeatures, content: torch.Tensor, styles: list[torch.Tensor],
                    blend: tuple[float, ...], content_layers: tuple[str, ...],
                    style_layers: tuple[str, ...], **weights: float) -> Objective:
        """Compute the targets once: content activations and the blended style Gram matrices."""
        with torch.no_grad():
            content_targets = {name: act for name, act in extractor(content).items() if name in content_layers}
            style_grams: dict[str, torch.Tensor] = {}
            for style, share in zip(styles, blend, strict=True):
                activations = extractor(style)
                for name in style_layers:
                    contribution = share * gram(activations[name])
                    style_grams[name] = style_grams[name] + contribution if name in style_grams else contribution
        return cls(extractor, content_targets, style_grams, **weights)

    def compose(self, image: torch.Tensor) -> torch.Tensor:
        """The image the loss sees, from the optimisation variable (a hook: regions keep some content)."""
        return image

    def style_term(self, activations: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Unweighted style loss of one evaluation's activations."""
        zero = next(iter(activations.values())).new_zeros(())
        return sum((style_loss(activations[n], g) for n, g in self.style_grams.items()), zero)

    def __call__(self, image: torch.Tensor) -> LossTerms:
        self.evaluations += 1
        image = self.compose(image)
        activations = self.extractor(image)
        zero = image.new_zeros(())
        content = sum((content_loss(activations[n], t) for n, t in self.content_targets.items()), zero)
        content, style = content * self.content_weight, self.style_term(activations) * self.style_weight
        tv = tv_loss(image) * self.tv_weight
        total = content + style + tv
        minimized = (content + style + tv_loss(image, self.tv_smoothing) * self.tv_weight
                     if self.tv_smoothing > 0 else total)
        return LossTerms(content, style, tv, total, minimized)


def _check_finite(terms: LossTerms, step: int, optimizer: str) -> None:
    if not math.isfinite(float(terms.total.detach())):
        raise SegtoolError(f"--optimizer {optimizer}: the loss diverged (not finite) at step {step}; "
                           "lower --lr")


def run_adam(image: torch.Tensor, objective: Objective, steps: int, *, lr: float = 0.3,
             lr_step: int = 50, lr_gamma: float = 0.8, callback: StepCallback | None = None) -> torch.Tensor:
    """d2l's loop: Adam(lr) with StepLR(lr_step, lr_gamma), ``steps`` updates of ``image``."""
    image = image.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, lr_step, lr_gamma)
    for step in range(1, steps + 1):
        optimizer.zero_grad(set_to_none=True)
        terms = objective(image)
        _check_finite(terms, step, "adam")
        terms.minimized.backward()
        optimizer.step()
        scheduler.step()
        if callback is not None:
            callback(step, terms, image)
    return image.detach()


def run_lbfgs(image: torch.Tensor, objective: Objective, steps: int, *, lr: float = 1.0,
              history: int = 100, max_line_search: int = 25,
              callback: StepCallback | None = None) -> torch.Tensor:
    """L-BFGS (history 100, step size 1, as neural-style) with a strong-Wolfe line search.

    L-BFGS assumes a smooth loss. neural-style's TV term is smooth; d2l's L1 total variation is not,
    and plain L-BFGS on it stalls or diverges, so ``StyleConfig`` gives L-BFGS a Charbonnier-smoothed
    TV (``Objective.tv_smoothing``) and the line search stays on as a safeguard. One ``step()`` call
    per iteration lets progress and snapshots happen between iterations; the evaluation that
    ``step()`` makes at its start is the line search's accepted point, served from a cache so no
    iteration pays for an evaluation twice.
    """
    image = image.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    # tolerance_grad < 0: never stop early on a small gradient; every step is taken.
    optimizer = torch.optim.LBFGS([image], lr=lr, max_iter=1, max_eval=1 + max_line_search,
                                  history_size=history, tolerance_grad=-1.0, line_search_fn="strong_wolfe")
    evaluated: list[tuple[torch.Tensor, LossTerms, torch.Tensor]] = []  # (point, terms, grad)

    def closure() -> torch.Tensor:
        for point, terms, grad in evaluated:
            if torch.equal(point, image):
                image.grad = grad.clone()
                return terms.minimized
        optimizer.zero_grad(set_to_none=True)
        terms = objective(image)
        terms.minimized.backward()
        evaluated.append((image.detach().clone(), terms, image.grad.detach().clone()))
        return terms.minimized

    for step in range(1, steps + 1):
        optimizer.step(closure)
        start_terms = evaluated[0][1]  # this iteration's starting point
        # The next step() starts by asking for the point the line search accepted.
        evaluated[:] = [entry for entry in evaluated if torch.equal(entry[0], image.detach())][-1:]
        if not evaluated:  # the line search gave up without accepting any evaluated point
            closure()
        _check_finite(evaluated[0][1], step, "lbfgs")
        if callback is not None:
            callback(step, start_terms, image)
    return image.detach()
