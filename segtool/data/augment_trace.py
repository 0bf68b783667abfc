"""What a ``train_transforms`` pipeline drew for one sample: crop box, scale, rotation, flips, jitter.

``trace_transforms`` records each random transform's ``make_params`` result while it runs. It
wraps the method without changing what it draws, so a traced sample is bit-identical to the
untraced one (tests/test_show_augment.py checks this against the training dataset).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torchvision.transforms import v2

from segtool.data.transforms import RandomScale

__all__ = ["describe_params", "format_params", "trace_transforms"]

_TRACED = (RandomScale, v2.RandomRotation, v2.RandomCrop, v2.RandomHorizontalFlip, v2.RandomVerticalFlip,
           v2.ColorJitter)
# (transform, input (H, W), params drawn), in the order the pipeline ran them.
Record = tuple[v2.Transform, tuple[int, int], dict[str, Any]]


@contextmanager
def trace_transforms(pipeline: v2.Compose) -> Iterator[list[Record]]:
    """Record the parameters the random transforms of ``pipeline`` draw inside the block.

    Flips call ``make_params`` only when they fire, so a flip without a record did not flip.
    """
    records: list[Record] = []
    traced = [t for t in pipeline.transforms if isinstance(t, _TRACED)]
    for transform in traced:
        draw = transform.make_params

        def recording(flat_inputs, transform=transform, draw=draw):
            size = tuple(v2.query_size(flat_inputs))
            params = draw(flat_inputs)
            records.append((transform, size, params))
            return params

        transform.make_params = recording  # an instance attribute shadows the method
    try:
        yield records
    finally:
        for transform in traced:
            del transform.make_params


def describe_params(pipeline: v2.Compose, records: list[Record]) -> dict[str, Any]:
    """Plain values of one traced sample: ``scale``, ``rotation``, ``crop`` [top, left, h, w] in the
    (scaled, rotated) image (negative = padding), ``pad`` [left, top, right, bottom], flips, ``jitter``."""
    out: dict[str, Any] = {}
    for transform in pipeline.transforms:
        if isinstance(transform, v2.RandomHorizontalFlip):
            out["hflip"] = False
        elif isinstance(transform, v2.RandomVerticalFlip):
            out["vflip"] = False
    for transform, (height, width), params in records:
        if isinstance(transform, RandomScale):
            out["scale"] = round(params["size"][0] / height, 4)
            out["scaled_size"] = list(params["size"])
        elif isinstance(transform, v2.RandomRotation):
            out["rotation"] = round(float(params["angle"]), 2)
        elif isinstance(transform, v2.RandomCrop):
            left, top = params["padding"][0], params["padding"][1]
            out["crop"] = [params["top"] - top, params["left"] - left, params["height"], params["width"]]
            out["crop_input"] = [height, width]
            out["pad"] = list(params["padding"]) if params["needs_pad"] else None
        elif isinstance(transform, v2.RandomHorizontalFlip):
            out["hflip"] = True
        elif isinstance(transform, v2.RandomVerticalFlip):
            out["vflip"] = True
        elif isinstance(transform, v2.ColorJitter):
            names = ("brightness", "contrast", "saturation", "hue")
            factors = {n: params[f"{n}_factor"] for n in names if params[f"{n}_factor"] is not None}
            order = [names[i] for i in params["fn_idx"].tolist() if names[i] in factors]
            out["jitter"] = {**{n: round(float(v), 3) for n, v in factors.items()}, "order": order}
    return out


def format_params(params: dict[str, Any]) -> list[str]:
    """Three short lines for a title: geometry, crop and flips, colour."""
    geometry = []
    if "scale" in params:
        geometry.append(f"scale {params['scale']:.2f}")
    if "rotation" in params:
        geometry.append(f"rot {params['rotation']:+.1f}°")
    crop = []
    if "crop" in params:
        top, left, height, width = params["crop"]
        crop.append(f"crop y{top} x{left} {height}x{width}" + (" +pad" if params.get("pad") else ""))
    crop += [name for name in ("hflip", "vflip") if params.get(name)]
    jitter = params.get("jitter")
    color = ("jitter " + " ".join(f"{n[0]}{v:.2f}" for n, v in jitter.items() if n != "order")
             if jitter else "no colour jitter")
    return [" · ".join(geometry) or "no scale/rotation", " · ".join(crop) or "no crop", color]
