"""The pieces a training run is made of, each built from the config: data, model, optimizer, loss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segtool.core.errors import SegtoolError
from segtool.data.folder import FolderLayout
from segtool.data.sources import DataSource
from segtool.engine.config import TrainConfig
from segtool.engine.distributed import DistInfo
from segtool.engine.loaders import (
    DatasetInfo,
    SeededSampler,
    dataset_info,
    eval_loader,
    open_dataset,
    train_loader,
    worker_count,
)
from segtool.ops.losses import SegmentationLoss, is_binary_loss, load_class_weights


def out_channels(config: TrainConfig, num_classes: int) -> int:
    """BCE trains one logit per pixel; CE one per class."""
    return 1 if is_binary_loss(config.loss) else num_classes


@dataclass
class Data:
    train: torch.utils.data.DataLoader
    sampler: SeededSampler
    val: torch.utils.data.DataLoader
    info: DatasetInfo
    train_dataset: object
    workers: int


def scale_range(config: TrainConfig) -> tuple[float, float] | None:
    """--scale times --input-scale: the input scale is a fixed resize applied before the random one."""
    factor = config.input_scale
    if config.scale:
        return (config.scale[0] * factor, config.scale[1] * factor)
    return (factor, factor) if factor != 1.0 else None


def build_data(config: TrainConfig, source: DataSource, dist: DistInfo, device: torch.device,
               multiple: int, *, demo_preset: bool = False) -> Data:
    """Label check, datasets and loaders; ``demo_preset``: the config came with the demo preset."""
    from segtool.data.transforms import eval_transforms, train_transforms

    # Any crop size: PadCollate pads each batch to the model's multiple with label 255 (never trained on).
    binary = is_binary_loss(config.loss) or config.binary
    train_tf = train_transforms(tuple(config.crop), normalize=config.normalize, hflip=config.hflip,
                                vflip=config.vflip, scale=scale_range(config),
                                rotation=config.rotation, color_jitter=config.color_jitter)
    layout = FolderLayout.from_config(config.to_dict())
    if source.format != "demo":  # before anything is built or written: the label check (one line per finding)
        from segtool.data.label_check import check_dataset

        check_dataset(source.format, source.root, config.split, config.val_split, palette=config.palette,
                      binary=binary, layout=layout).report()
    common = {"palette": config.palette, "binary": binary, "small_images": config.small_images,
              "crop": config.crop, "layout": layout}
    train_set = open_dataset(source, config.split, transforms=train_tf, **common)
    val_set = open_dataset(source, config.val_split, transforms=eval_transforms(config.normalize),
                           **{**common, "small_images": "pad"})
    info = dataset_info(train_set)
    if dist.is_main:
        from segtool.engine.estimate import recipe_warnings

        recipe_warnings(config, source, train_set.samples, demo_preset=demo_preset)
    if config.num_classes is not None and config.num_classes != info.num_classes:
        raise SegtoolError(f"--num-classes {config.num_classes} but the dataset's palette has "
                           f"{info.num_classes} classes ({', '.join(info.class_names[:6])}...); "
                           "give a matching --palette or drop --num-classes")
    if binary and info.num_classes != 2:
        raise SegtoolError(f"--loss bce needs binary masks (2 classes), the dataset has {info.num_classes}")
    if len(train_set) == 0:
        raise SegtoolError(f"{source.root}: the {config.split} split is empty")
    if len(val_set) == 0:
        raise SegtoolError(f"{source.root}: the {config.val_split} split is empty")
    workers = worker_count(config.workers, dist.world_size)
    loader, sampler = train_loader(train_set, batch_size=config.batch_size, seed=config.seed, info=dist,
                                   workers=workers, multiple=multiple, device=device)
    # multiple=1: model_logits pads each batch itself (after --input-scale, so no padded band is rescaled).
    val = eval_loader(val_set, batch_size=config.val_batch_size or config.batch_size, info=dist, workers=workers,
                      multiple=1, device=device)
    return Data(loader, sampler, val, info, train_set, workers)


def build_model(config: TrainConfig, num_classes: int) -> torch.nn.Module:
    from segtool.models import create_model

    return create_model(config.model, out_channels(config, num_classes), pretrained=config.pretrained,
                        backbone_weights=config.backbone_weights, **config.model_options)


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW; parameters outside ``backbone.*`` get lr * head_lr_mult (new layers on a backbone)."""
    backbone, head = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (backbone if name.startswith("backbone.") else head).append(param)
    if backbone and head and config.head_lr_mult != 1.0:
        groups = [{"params": backbone, "lr": config.lr}, {"params": head, "lr": config.lr * config.head_lr_mult}]
    else:
        groups = [{"params": backbone + head, "lr": config.lr}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def build_loss(config: TrainConfig, data: Data, device: torch.device) -> SegmentationLoss:
    num_classes = data.info.num_classes
    weights = None
    spec = config.class_weights
    if spec and spec != "none":
        if spec in ("median", "enet"):
            from segtool.data.stats import class_weights, count_class_pixels

            dataset = data.train_dataset
            masks = (dataset.decoder(dataset.sample_paths(i)[1]) for i in range(len(dataset)))
            median, enet = class_weights(*count_class_pixels(masks, num_classes))
            values = np.array([w or 0.0 for w in (median if spec == "median" else enet)])
            if not values.any():
                raise SegtoolError("--class-weights: the training masks hold no labelled pixels")
        else:
            values = load_class_weights(Path(spec), num_classes)
        weights = torch.tensor(values, dtype=torch.float32, device=device)
    return SegmentationLoss(config.loss, weights, config.aux_weight, options=config.loss_options).to(device)
