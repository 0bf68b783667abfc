"""The model-output contract: what a segmentation model's forward may return.

In eval mode a logits tensor (N x C x H x W). In training mode, segtool's models with auxiliary heads
return ``(main, [aux, ...])`` (BiSeNetV2's boosters, the tv: wrappers' aux classifier); an unwrapped
torchvision model's ``{"out": main, "aux": aux}`` is read too. Losses, validation and prediction all
read outputs through ``split_outputs``.
"""

from __future__ import annotations

import torch


def split_outputs(output) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main, [aux...]) from a model output: a tensor, a (main, aux) tuple/list, or torchvision's dict."""
    if isinstance(output, torch.Tensor):
        return output, []
    if isinstance(output, dict):
        return output["out"], [v for k, v in output.items() if k != "out"]
    main, aux = output[0], output[1] if len(output) > 1 else []
    if isinstance(aux, torch.Tensor):
        aux = [aux]
    return main, list(aux)
