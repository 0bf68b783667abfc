"""fcn-resnet18: the Dive-into-Deep-Learning FCN on a ResNet-18 trunk (SPEC section 3).

The trunk is read out at ``layer4`` by name (torchvision's IntermediateLayerGetter), a 1x1 conv maps
its 512 channels to the classes, and one transposed conv (k64, s32, p16) upsamples 32x. That
transposed conv starts as bilinear interpolation, so the untrained head already gives smooth maps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models import resnet18
from torchvision.models._utils import IntermediateLayerGetter

from segtool.models._registry import check_input_size, model_card, register_model
from segtool.models._weights import init_backbone

__all__ = ["FCNResNet18", "bilinear_kernel", "fcn_resnet18"]


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> Tensor:
    """ConvTranspose2d weight that performs bilinear upsampling channel by channel (d2l's recipe)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    taps = torch.arange(kernel_size, dtype=torch.float32)
    line = 1 - (taps - center).abs() / factor
    filt = line[:, None] * line[None, :]
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    channels = torch.arange(min(in_channels, out_channels))
    weight[channels, channels] = filt
    return weight


class FCNResNet18(nn.Module):
    """ResNet-18 trunk (``backbone``), ``final_conv`` 1x1 512 -> n, ``transpose_conv`` 32x up."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.backbone = IntermediateLayerGetter(resnet18(weights=None), return_layers={"layer4": "out"})
        self.final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.transpose_conv = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=64, stride=32, padding=16)
        nn.init.xavier_uniform_(self.final_conv.weight)
        nn.init.zeros_(self.final_conv.bias)
        with torch.no_grad():
            self.transpose_conv.weight.copy_(bilinear_kernel(num_classes, num_classes, 64))
            self.transpose_conv.bias.zero_()  # so the layer starts as exactly bilinear upsampling

    def forward(self, x: Tensor) -> Tensor:
        check_input_size("fcn-resnet18", x.shape[-2], x.shape[-1], 32)
        features = self.backbone(x)["out"]
        return self.transpose_conv(self.final_conv(features))


_INFO = model_card(
    "fcn-resnet18", "fcn-resnet18", "d2l FCN: ResNet-18 trunk, 1x1 conv, bilinear-initialised 32x transposed conv",
    size_multiple=32, normalization="imagenet", crop=(320, 480), backbone="resnet18",
    recipe={"optimizer": "sgd", "lr": 1e-3, "weight_decay": 1e-3, "batch_size": 32, "epochs": 5,
            "head_lr_mult": 10.0, "pretrained": True,
            # The demo trains from scratch (no download): d2l's fine-tuning lr 1e-3 learns only background
            # there (mIoU 0.18); AdamW one-cycle 5e-3 over 16 epochs reaches 0.62 in 3 min (3e-3 / 8: 0.53,
            # 5e-3 / 12: 0.59; 1 thread on a busy 2-core machine).
            "demo": {"optimizer": "adamw", "lr": 5e-3, "weight_decay": 1e-4, "head_lr_mult": 1.0,
                     "schedule": "onecycle", "epochs": 16}},
)


@register_model(_INFO)
def fcn_resnet18(num_classes: int, *, pretrained: bool = False, backbone_weights=None) -> FCNResNet18:
    model = FCNResNet18(num_classes)
    # ResNet-18's own keys (conv1, bn1, layer1..4) match the getter's; fc.* is ignored.
    init_backbone(model.backbone, "resnet18", pretrained=pretrained, backbone_weights=backbone_weights)
    return model
