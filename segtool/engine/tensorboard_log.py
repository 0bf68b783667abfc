"""``--tensorboard``: the run's scalars, per-class IoU and a few validation overlays in TensorBoard.

Written to ``<run dir>/tensorboard`` next to metrics.jsonl / metrics.csv (which stay as they are).
Needs the ``tensorboard`` package: ``pip install 'segtool[tensorboard]'``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from segtool.core.errors import SegtoolError

OVERLAY_IMAGES = 4  # validation images shown per validation: image | ground truth | prediction


def check_installed() -> None:
    if importlib.util.find_spec("tensorboard") is None:
        raise SegtoolError("--tensorboard needs the tensorboard package: pip install 'segtool[tensorboard]'")


class TensorBoardLog:
    def __init__(self, log_dir, info):
        check_installed()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))
        self.info = info

    def step(self, step: int, loss: float, lr: float) -> None:
        self.writer.add_scalar("train/loss_step", loss, step)
        self.writer.add_scalar("train/lr", lr, step)

    def row(self, row: dict, val, run) -> None:
        """A metrics row: losses, lr, img/s, scores, per-class IoU and overlays when validated."""
        step = row["step"]
        for key in ("train_loss", "val_loss", "pixel_acc", "mean_acc", "miou", "img_per_s"):
            if row.get(key) is not None:
                self.writer.add_scalar(f"{'train' if key in ('train_loss', 'img_per_s') else 'val'}/{key}",
                                       row[key], step)
        if val is not None:
            for entry in val.scores["per_class"]:
                if entry["iou"] is not None:
                    self.writer.add_scalar(f"iou/{entry['name']}", entry["iou"], step)
            model = run.ema.module if run.ema is not None else run.model
            grid = self.overlays(model, run)
            if grid is not None:
                self.writer.add_image("val/image_gt_prediction", grid, step, dataformats="HWC")
        self.writer.flush()

    @torch.no_grad()
    def overlays(self, model, run) -> np.ndarray | None:
        """The first validation images: image | ground truth | prediction rows (viz.grid)."""
        from segtool.data.palettes import Palette
        from segtool.engine.inference import labels_from_logits, model_logits
        from segtool.viz.grid import CompareSample, render_compare_grid

        batch = next(iter(run.data.val), None)
        if batch is None:
            return None
        images, masks, sizes = batch
        images, masks = images[:OVERLAY_IMAGES], masks[:OVERLAY_IMAGES]
        was_training = model.training
        model.eval()
        try:
            logits = model_logits(model, images.to(run.device), run.multiple).float()
        finally:
            model.train(was_training)
        preds = labels_from_logits(logits).cpu().numpy()
        info = self.info
        palette = Palette("run", tuple(info.class_names), np.array(info.colors, dtype=np.uint8).reshape(-1, 3),
                          tuple(info.ignore_color) if info.ignore_color is not None else None)
        samples = []
        for i in range(images.shape[0]):
            h, w = (int(v) for v in sizes[i])
            picture = display_image(images[i, :, :h, :w], run.config.normalize)
            samples.append(CompareSample(picture, preds[i, :h, :w], masks[i, :h, :w].numpy(), name=f"val {i}"))
        return np.asarray(render_compare_grid(samples, palette, titles=True))

    def close(self) -> None:
        self.writer.close()


def display_image(tensor: torch.Tensor, normalize: str | None) -> np.ndarray:
    """A C x H x W model input back to H x W x 3 uint8."""
    image = tensor.float().cpu()
    if normalize == "imagenet":
        from segtool.core.conventions import IMAGENET_MEAN, IMAGENET_STD

        image = image * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
