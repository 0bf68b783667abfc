"""bisenetv2: BiSeNet V2 (Yu et al. 2021) as SPEC section 5 describes it: the paper's layout, the
CamVid write-up's recipe, without the write-up's bugs.

A wide shallow detail branch (1/8) and a narrow deep semantic branch (1/32) are merged by the
bilateral guided aggregation layer with *element-wise* sigmoid gates, as in the paper (the write-up
used ``torch.matmul``, which only runs for square inputs and computes something else). Four auxiliary
"booster" heads read the semantic stages in training mode only.

Not mmsegmentation's ``BiSeNetV2``, although the stem, detail branch, context embedding and
aggregation compute the same thing. The differences, so nobody expects its checkpoints to load:
- module names: ``detail.stage1..3`` and ``semantic.context`` here, ``detail.detail_branch.N`` and
  ``semantic.stage4_CEBlock`` there; conv + BN + ReLU are ``Sequential`` indices 0/1/2 here,
  ``ConvModule``'s ``conv``/``bn``/``activate`` there; heads ``decode_head``/``aux_heads``, not
  mmseg's ``FCNHead`` ``convs``/``conv_seg``;
- stride-2 GE layers: no ReLU after the second depthwise conv (SPEC: depthwise + BN, twice);
  mmseg and CoinCheung's BiSeNet both put a ReLU there;
- heads: one conv3x3 + BN + ReLU then 1x1, no dropout (mmseg's decode head drops out at 0.1); the
  four auxiliary heads are 128 channels wide with one conv each (mmseg: 16, 64, 256, 1024 channels,
  two convs each);
- initialisation: PyTorch's defaults (mmseg: Kaiming for convs, 1 for BatchNorm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segtool.core.errors import SegtoolError
from segtool.models._registry import model_card, register_model
from segtool.models._weights import reject_pretrained

__all__ = ["BiSeNetV2", "bisenetv2"]


def conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def dw_separable(c_in: int, c_out: int, stride: int = 1, pw_bn: bool = False) -> nn.Sequential:
    """Depthwise 3x3 + BN, then pointwise 1x1 (+ BN); no activations."""
    pointwise: list[nn.Module] = [nn.Conv2d(c_in, c_out, 1, bias=not pw_bn)]
    if pw_bn:
        pointwise.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(conv_bn(c_in, c_in, 3, stride, groups=c_in, relu=False), *pointwise)


class DetailBranch(nn.Module):
    """Channels 64, 64, 128; output 128 @ 1/8."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(conv_bn(3, 64, stride=2), conv_bn(64, 64))
        self.stage2 = nn.Sequential(conv_bn(64, 64, stride=2), conv_bn(64, 64), conv_bn(64, 64))
        self.stage3 = nn.Sequential(conv_bn(64, 128, stride=2), conv_bn(128, 128), conv_bn(128, 128))

    def forward(self, x: Tensor) -> Tensor:
        return self.stage3(self.stage2(self.stage1(x)))


class StemBlock(nn.Module):
    """3 -> 16 @ 1/4: a strided conv, then a conv path and a max-pool path side by side."""

    def __init__(self, c_out: int = 16) -> None:
        super().__init__()
        self.conv_first = conv_bn(3, c_out, stride=2)
        self.convs = nn.Sequential(conv_bn(c_out, c_out // 2, kernel=1), conv_bn(c_out // 2, c_out, stride=2))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.fuse_last = conv_bn(2 * c_out, c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_first(x)
        return self.fuse_last(torch.cat([self.convs(x), self.pool(x)], dim=1))


class GELayer(nn.Module):
    """Gather-and-Expansion layer (paper Fig. 5b/c): expansion 6, identity or strided shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, expansion: int = 6) -> None:
        super().__init__()
        mid = c_in * expansion
        self.conv1 = conv_bn(c_in, c_in)
        if stride == 1:
            self.dwconv = conv_bn(c_in, mid, groups=c_in)
            self.shortcut: nn.Module | None = None
        else:  # the strided depthwise conv expands; a second depthwise conv follows (no ReLU)
            self.dwconv = nn.Sequential(conv_bn(c_in, mid, stride=2, groups=c_in, relu=False),
                                        conv_bn(mid, mid, groups=mid, relu=False))
            self.shortcut = dw_separable(c_in, c_out, stride=2, pw_bn=True)
        self.conv2 = conv_bn(mid, c_out, kernel=1, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.relu(self.conv2(self.dwconv(self.conv1(x))) + shortcut)


class ContextEmbedding(nn.Module):
    """Global average pool + BN, 1x1 conv + BN + ReLU, broadcast-add, 3x3 conv + BN + ReLU."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(channels))
        self.conv_gap = conv_bn(channels, channels, kernel=1)
        self.conv_last = conv_bn(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            # BatchNorm over a 1x1 pooled map needs >= 2 values per channel in training.
            raise SegtoolError("bisenetv2 needs a batch size of at least 2 in training mode "
                               "(BatchNorm after global pooling); use --batch-size 2 or more")
        return self.conv_last(x + self.conv_gap(self.gap(x)))


class SemanticBranch(nn.Module):
    """Channels 16, 32, 64, 128 at 1/4 .. 1/32; returns every stage's output plus the context."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = StemBlock(16)
        self.stage2 = nn.Sequential(GELayer(16, 32, stride=2), GELayer(32, 32))
        self.stage3 = nn.Sequential(GELayer(32, 64, stride=2), GELayer(64, 64))
        self.stage4 = nn.Sequential(GELayer(64, 128, stride=2), GELayer(128, 128), GELayer(128, 128),
                                    GELayer(128, 128))
        self.context = ContextEmbedding(128)

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
            outs.append(x)
        outs.append(self.context(x))
        return outs


class BGALayer(nn.Module):
    """Bilateral guided aggregation: each branch gates the other with an element-wise sigmoid."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.detail_dwconv = dw_separable(channels, channels)
        self.detail_down = nn.Sequential(conv_bn(channels, channels, stride=2, relu=False),
                                         nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=False))
        self.semantic_conv = conv_bn(channels, channels, relu=False)
        self.semantic_dwconv = dw_separable(channels, channels)
        self.conv = conv_bn(channels, channels)

    def forward(self, detail: Tensor, semantic: Tensor) -> Tensor:
        detail_keep = self.detail_dwconv(detail)  # 1/8
        detail_down = self.detail_down(detail)  # 1/32
        semantic_up = _resize(self.semantic_conv(semantic), detail_keep.shape[-2:])  # 1/8
        semantic_keep = self.semantic_dwconv(semantic)  # 1/32
        fuse_1 = detail_keep * torch.sigmoid(semantic_up)
        fuse_2 = _resize(detail_down * torch.sigmoid(semantic_keep), fuse_1.shape[-2:])
        return self.conv(fuse_1 + fuse_2)


class SegmentHead(nn.Module):
    """conv3x3 + BN + ReLU, conv1x1 -> classes; resized to the input size by the caller."""

    def __init__(self, c_in: int, mid: int, num_classes: int) -> None:
        super().__init__()
        self.conv = conv_bn(c_in, mid)
        self.conv_out = nn.Conv2d(mid, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_out(self.conv(x))


def _resize(x: Tensor, size) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class BiSeNetV2(nn.Module):
    """BiSeNetV2; eval -> logits, training -> (logits, [4 auxiliary logits]), all at input size."""

    def __init__(self, num_classes: int, head_channels: int = 1024, aux_channels: int = 128):
        super().__init__()
        self.detail = DetailBranch()
        self.semantic = SemanticBranch()
        self.bga = BGALayer(128)
        self.decode_head = SegmentHead(128, head_channels, num_classes)
        self.aux_heads = nn.ModuleList(SegmentHead(c, aux_channels, num_classes) for c in (16, 32, 64, 128))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, list[Tensor]]:
        size = x.shape[-2:]
        *stages, context = self.semantic(x)
        logits = _resize(self.decode_head(self.bga(self.detail(x), context)), size)
        if not self.training:
            return logits
        return logits, [_resize(head(stage), size) for head, stage in zip(self.aux_heads, stages, strict=True)]


_INFO = model_card(
    "bisenetv2", "bisenetv2", "BiSeNetV2 (CamVid write-up, element-wise BGA), 4 auxiliary heads in training",
    size_multiple=32, normalization="imagenet", crop=(448, 448),
    recipe={"optimizer": "sgd", "lr": 0.1, "schedule": "linear",
            "schedule_options": {"end_lr": 0.05, "fraction": 0.75}, "batch_size": 16, "epochs": 100,
            "aux_weight": 0.2, "hflip": True, "vflip": True},
    aux_heads=4,
    options=("head_channels", "aux_channels"),
)


@register_model(_INFO)
def bisenetv2(num_classes: int, *, pretrained: bool = False, backbone_weights=None,
              head_channels: int = 1024, aux_channels: int = 128) -> BiSeNetV2:
    reject_pretrained("bisenetv2", pretrained, backbone_weights)
    return BiSeNetV2(num_classes, head_channels=head_channels, aux_channels=aux_channels)
