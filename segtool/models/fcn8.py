"""fcn8: the from-scratch FCN-8s of the Ascend NPU write-up (SPEC section 2).

Five conv stages (each 3x3 conv is followed by ReLU *then* BatchNorm, as in the original), skip
features at 1/8 (pool3, upsampled pool4 and upsampled class scores) concatenated to 768 + n channels,
and an 8x upsampling head ``upsample_81 -> upsample_82 -> final`` that holds ~95% of the compute.
That head is affine, so it can also run as one stride-8 transposed convolution composed from its
three weights (``fcn8_fused_head``); both forms share one state_dict and agree to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segtool.models._registry import check_input_size, model_card, register_model
from segtool.models._weights import reject_pretrained
from segtool.models.fcn8_fused_head import (
    FusedHeadCache,
    bias_response,
    compose_head,
    compose_macs,
    fused_head_forward,
    fused_head_macs,
    layered_head_macs,
)

__all__ = ["FCN8", "fcn8"]

# Output channels of the seven 3x3 convs of stages 1-4 (stage 5 maps to the class count).
_WIDTHS = (96, 256, 384, 384, 256, 512, 512)


def _stage(channels: list[tuple[int, int]]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in, c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(c_out)]
    layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class FCN8(nn.Module):
    """FCN-8s from scratch; 31,899,372 parameters for 21 classes.

    fused: True / False forces the fused / layer-by-layer head; None (default) picks the one with
    fewer multiply-adds for each call (the fused head composes its kernel once per training step,
    or once per weight change in inference, and then costs ~1/50 of the layer chain per image).
    width_mult scales the channel widths (1.0 is the SPEC model; smaller ones are for tests).
    """

    def __init__(self, num_classes: int, *, fused: bool | None = None, width_mult: float = 1.0):
        super().__init__()
        c1, c2, c3a, c3b, c3c, c4a, c4b = (max(1, round(c * width_mult)) for c in _WIDTHS)
        n = num_classes
        self.stage1 = _stage([(3, c1)])
        self.stage2 = _stage([(c1, c2)])
        self.stage3 = _stage([(c2, c3a), (c3a, c3b), (c3b, c3c)])
        self.stage4 = _stage([(c3c, c4a), (c4a, c4b)])
        self.stage5 = _stage([(c4b, n)])
        self.upsample_2 = nn.ConvTranspose2d(c4b, c4b, 4, stride=2, padding=1)
        self.upsample_4 = nn.ConvTranspose2d(n, n, 4, stride=4, padding=0)
        head = c3c + c4b + n
        self.upsample_81 = nn.ConvTranspose2d(head, head, 4, stride=4, padding=0)
        self.upsample_82 = nn.ConvTranspose2d(head, head, 4, stride=2, padding=1)
        self.final = nn.Conv2d(head, n, 7, padding=3)
        self.num_classes = n
        self.fused = fused
        self._head_cache = FusedHeadCache()

    def forward(self, x: Tensor) -> Tensor:
        check_input_size("fcn8", x.shape[-2], x.shape[-1], 32)
        pool3 = self.stage3(self.stage2(self.stage1(x)))
        pool4 = self.stage4(pool3)
        scores = self.stage5(pool4)
        features = torch.cat([pool3, self.upsample_2(pool4), self.upsample_4(scores)], dim=1)
        return self.head(features)

    # -- the 8x head -------------------------------------------------------------------------
    def head(self, features: Tensor) -> Tensor:
        """upsample_81 -> upsample_82 -> final, layer by layer or fused (same result)."""
        if self.use_fused_head(features):
            return self.fused_head(features)
        return self.layered_head(features)

    def layered_head(self, features: Tensor) -> Tensor:
        return self.final(self.upsample_82(self.upsample_81(features)))

    def fused_head(self, features: Tensor) -> Tensor:
        h, w = features.shape[-2:]
        with torch.autocast(features.device.type, enabled=False):  # compose in the weights' precision
            if self._may_cache():
                composed, bias_map = self._head_cache.get(self.upsample_81, self.upsample_82, self.final, h, w)
            else:
                self._head_cache.clear()  # weights are about to change; free the stale kernels
                composed = compose_head(self.upsample_81.weight, self.upsample_82.weight, self.final.weight)
                bias_map = bias_response(self.upsample_81.bias, self.upsample_82.bias, self.final.bias,
                                         self.upsample_82.weight, self.final.weight, h, w)
        return fused_head_forward(features, composed, bias_map)

    def use_fused_head(self, features: Tensor) -> bool:
        if self.fused is not None:
            return self.fused
        n, c, h, w = features.shape
        fused = fused_head_macs(n, c, self.num_classes, h, w)
        cached = self._may_cache() and self._head_cache.is_valid(self._head_params())
        if not cached:
            fused += compose_macs(c, self.num_classes)
        return fused < layered_head_macs(n, c, self.num_classes, h, w)

    def _may_cache(self) -> bool:
        # In eval the kernel is reused; but if gradients for the head weights are wanted, it must
        # be recomposed with autograd recording, exactly as in training.
        if self.training:
            return False
        return not (torch.is_grad_enabled() and any(p.requires_grad for p in self._head_params()))

    def _head_params(self) -> list[Tensor]:
        return [self.upsample_81.weight, self.upsample_81.bias, self.upsample_82.weight,
                self.upsample_82.bias, self.final.weight, self.final.bias]


_FCN8_INFO = model_card(
    "fcn8", "fcn8", "FCN-8s from scratch (NPU write-up), ReLU before BatchNorm, fused 8x head",
    size_multiple=32, normalization=None, crop=(224, 224),
    recipe={
        "optimizer": "sgd", "lr": 1.0, "weight_decay": 5e-4,
        # torch's OneCycleLR also cycles SGD's momentum 0.95 -> 0.85 -> 0.95 by default; the
        # original relied on that default, so the recipe spells it out.
        "schedule": "onecycle",
        "schedule_options": {"max_lr": 0.1, "div_factor": 25.0, "final_div_factor": 1e4, "pct_start": 0.3,
                             "cycle_momentum": True, "base_momentum": 0.85, "max_momentum": 0.95},
        "batch_size": 8, "val_batch_size": 4, "epochs": 150,
    },
    options=("fused", "width_mult"),
)


@register_model(_FCN8_INFO)
def fcn8(num_classes: int, *, pretrained: bool = False, backbone_weights=None,
         fused: bool | None = None, width_mult: float = 1.0) -> FCN8:
    reject_pretrained("fcn8", pretrained, backbone_weights)
    return FCN8(num_classes, fused=fused, width_mult=width_mult)
