"""The module that gets exported: images in, logits out, with fcn8's head folded into constants.

``ExportableModel`` returns the main logits only (aux heads never run in eval). For fcn8 with its
fused head, the three head layers are composed once here and stored as constants, so the exported
graph holds the single stride-8 transposed convolution (plus its thin border corrections and the
size-dependent bias map) instead of the layer chain, and none of the eval cache's bookkeeping.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segtool.ops.outputs import split_outputs


class FusedHeadConstants(nn.Module):
    """fcn8's ``upsample_81 -> upsample_82 -> final`` as the composed kernels, held as buffers."""

    def __init__(self, model: nn.Module):
        from segtool.models.fcn8_fused_head import compose_head

        super().__init__()
        up81, up82, final = model.upsample_81, model.upsample_82, model.final
        with torch.no_grad():
            composed = compose_head(up81.weight, up82.weight, final.weight)
        self._names = ("kernel", "top", "bottom", "left", "right", "c0", "c1", "c2", "c3")
        tensors = (composed.kernel, composed.top, composed.bottom, composed.left, composed.right, *composed.corners)
        for name, tensor in zip(self._names, tensors, strict=True):
            self.register_buffer(name, tensor.detach().clone())
        for name, tensor in (("b1", up81.bias), ("b2", up82.bias), ("b3", final.bias), ("w2", up82.weight),
                             ("w3", final.weight)):
            self.register_buffer(name, tensor.detach().clone())

    def forward(self, features: Tensor) -> Tensor:
        from segtool.models.fcn8_fused_head import ComposedHead, bias_response, fused_head_forward

        b = dict(self.named_buffers())
        composed = ComposedHead(b["kernel"], b["top"], b["bottom"], b["left"], b["right"],
                                corners=(b["c0"], b["c1"], b["c2"], b["c3"]))
        h, w = features.shape[-2:]
        bias_map = bias_response(self.b1, self.b2, self.b3, self.w2, self.w3, h, w)
        return fused_head_forward(features, composed, bias_map)


class ExportableModel(nn.Module):
    """N x 3 x H x W (normalised as in training) -> N x C x H x W logits."""

    def __init__(self, model: nn.Module, name: str):
        super().__init__()
        self.model = model.eval()
        fused = name == "fcn8" and getattr(model, "fused", None) is not False
        self.fused_head = FusedHeadConstants(model) if fused else None

    def forward(self, images: Tensor) -> Tensor:
        if self.fused_head is None:
            return split_outputs(self.model(images))[0]
        m = self.model  # FCN8.forward up to its head (see segtool.models.fcn8)
        pool3 = m.stage3(m.stage2(m.stage1(images)))
        pool4 = m.stage4(pool3)
        features = torch.cat([pool3, m.upsample_2(pool4), m.upsample_4(m.stage5(pool4))], dim=1)
        return self.fused_head(features)
