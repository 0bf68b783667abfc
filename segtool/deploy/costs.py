"""Static costs of a model at an input size: parameters, multiply-accumulates, FLOPs, activation memory.

Counted with ``torch.utils.flop_counter.FlopCounterMode`` on fake tensors (shapes only: no memory,
no arithmetic, a ResNet-50 FCN at 520x520 in about a second). Conventions, stated in every report:

* ``macs``: multiply-accumulates. torchvision's published "GFLOPS" (weights meta ``_ops``) are these.
* ``flops``: flop_counter's FLOPs, 2 per multiply-accumulate (``macs * 2``).

torchvision's own segmentation models run their auxiliary head in eval too, so its published figure
matches segtool's *training* forward (``train_macs``); segtool's eval forward skips the aux head.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch

from segtool.core.errors import SegtoolError

CONVENTIONS = {
    "macs": "multiply-accumulates (torchvision's published 'GFLOPS' = weights meta _ops)",
    "flops": "torch.utils.flop_counter FLOPs = 2 x MACs",
    "activation_bytes": "tensors saved for backward by one training forward, per image (float32)",
}


@contextmanager
def _fake_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode  # shape-only tensors, as torch.export uses

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fcn8's eval cache reads data_ptr, harmless on fake tensors
        with FakeTensorMode(allow_non_fake_inputs=True):
            yield


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                         _output_padding, _groups, output_mask, out_shape=None, **_):
    """Each of grad-input and grad-weight costs one forward. flop_counter's own formula ignores
    ``groups`` and counts a depthwise conv's backward ``groups`` times too high."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def _count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


def _saved_bytes(fn, parameters) -> int:
    """Bytes of distinct non-parameter tensors autograd keeps for backward while ``fn`` runs."""
    params = {id(p) for p in parameters}
    seen: dict[int, torch.Tensor] = {}

    def pack(tensor):
        if id(tensor) not in params:
            seen.setdefault(id(tensor), tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(t.numel() * t.element_size() for t in seen.values())


def _train_forward(model, height: int, width: int):
    """One training forward at batch 1, or 2 for models that refuse 1 (BatchNorm after global pooling)."""
    for batch in (1, 2):
        try:
            images = torch.randn(batch, 3, height, width)
            return batch, images, model(images)
        except SegtoolError:
            if batch == 2:
                raise
    raise AssertionError("unreachable")


def count_costs(name: str, out_channels: int, size: tuple[int, int], options: dict | None = None) -> dict:
    """Parameters, eval and training MACs/FLOPs and activation memory per image at ``size`` (H, W)."""
    from segtool.engine.inference import model_logits
    from segtool.models import create_model
    from segtool.ops.losses import SegmentationLoss
    from segtool.ops.outputs import split_outputs

    height, width = size
    with _fake_mode():
        model = create_model(name, out_channels, pretrained=False, **dict(options or {})).eval()
        params = list(model.parameters())
        state = model.state_dict()
        images = torch.randn(1, 3, height, width)
        with torch.no_grad():
            model_logits(model, images, 1)  # fills eval caches (fcn8's composed head): count the steady state
            eval_flops = _count_flops(lambda: model_logits(model, images, 1))
        model.train()
        box: dict = {}

        def forward():
            box["batch"], box["images"], box["output"] = _train_forward(model, height, width)

        train_flops = _count_flops(forward)
        activation = _saved_bytes(forward, params)
        batch = box["batch"]
        target = torch.zeros(batch, height, width, dtype=torch.long)
        loss_fn = SegmentationLoss("bce" if out_channels == 1 else "ce", aux_weight=0.4)

        def step():
            loss_fn(model(box["images"]), target).backward()

        step_flops = _count_flops(step)
        aux = split_outputs(box["output"])[1]
    return {
        "params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "weights_bytes": sum(t.numel() * t.element_size() for t in state.values()),
        "eval_macs": eval_flops // 2,
        "eval_flops": eval_flops,
        "train_macs": train_flops // (2 * batch),
        "train_flops": train_flops // batch,
        "train_step_flops": step_flops // batch,
        "aux_heads": len(aux),
        "activation_bytes": activation // batch,
        "count_batch": batch,
        "conventions": CONVENTIONS,
    }
