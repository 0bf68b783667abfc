"""`segtool profile`: what a model costs at an input size, counted and measured, in one report.

Counted (``costs``): parameters, MACs and FLOPs, activation memory. Measured (``timing``), per batch
size of the sweep: latency, images/s and peak memory in eval, then one training step. fcn8 is
profiled twice, with its fused head and with the layer-by-layer head, so the two sit side by side.
"""

from __future__ import annotations

import torch

from segtool.core.errors import SegtoolError
from segtool.deploy.costs import CONVENTIONS, count_costs
from segtool.deploy.source import ModelSource
from segtool.deploy.timing import Speed, measure_eval, measure_train_step

FCN8_HEADS = (("fused head", {"fused": True}), ("layer-by-layer head", {"fused": False}))


def default_size(source: ModelSource) -> tuple[int, int]:
    """The crop it was trained at (checkpoint), else the model's default crop."""
    from segtool.models import get_model_info

    crop = ((source.checkpoint or {}).get("config") or {}).get("crop")
    return tuple(crop) if crop else tuple(get_model_info(source.name).default_crop)


def checked_size(source: ModelSource, size: tuple[int, int], pad: bool) -> tuple[int, int]:
    """``size``, or with ``pad`` rounded up to the model's size multiple; otherwise a bad size is an error."""
    from segtool.engine.inference import round_up
    from segtool.models import size_multiple

    multiple = size_multiple(source.name)
    if pad:
        return round_up(size[0], multiple), round_up(size[1], multiple)
    if size[0] % multiple or size[1] % multiple:
        h, w = round_up(size[0], multiple), round_up(size[1], multiple)
        raise SegtoolError(f"model {source.name}: size {size[0]}x{size[1]} is not a multiple of {multiple} "
                           f"(use --size {h}x{w}, or --pad to profile the padded input)")
    return size


def variants(source: ModelSource) -> list[tuple[str | None, dict]]:
    """fcn8 without a forced head: both heads; every other model: itself."""
    if source.name == "fcn8" and source.options.get("fused") is None:
        return list(FCN8_HEADS)
    return [(None, {})]


def profile_model(source: ModelSource, size: tuple[int, int], device: torch.device, *,
                  batches: tuple[int, ...] = (1,), runs: int = 10, warmup: int = 3, speed: Speed = Speed(),
                  timing: bool = True, train_step: bool = True, on_step=None) -> dict:
    """The whole report as plain types (what ``--json`` prints)."""
    report = {"model": source.name, "source": source.label, "size": list(size), "device": str(device),
              "out_channels": source.out_channels, "checkpoint_bytes": source.file_bytes(),
              "speed": vars(speed), "runs": runs, "warmup": warmup, "conventions": CONVENTIONS, "variants": []}
    for label, options in variants(source):
        row = {"variant": label, **count_costs(source.name, source.out_channels, size, {**source.options, **options})}
        row.pop("conventions")
        if timing:
            row.update(_measure(source, options, size, device, batches, runs, warmup, speed, train_step, on_step))
        report["variants"].append(row)
    return report


def _measure(source, options, size, device, batches, runs, warmup, speed, train_step, on_step) -> dict:
    from segtool.engine.speed import channels_last, maybe_compile

    model = channels_last(source.build(device, **options), speed.channels_last)
    runner = maybe_compile(model, speed.compile)
    out = {"eval": []}
    for batch in batches:
        out["eval"].append(measure_eval(runner, device, size, batch, speed, runs, warmup))
        if on_step:
            on_step()
    if train_step:
        batch = max(batches[0], 2) if source.name == "bisenetv2" else batches[0]  # BN after global pooling
        out["train_step"] = measure_train_step(runner, device, size, batch, speed, runs, warmup,
                                               source.out_channels)
        if on_step:
            on_step()
    return out


def render_profile(report: dict) -> None:
    """Two tables on stderr: the counts, then the measurements."""
    from rich.table import Table

    from segtool.core.console import console

    h, w = report["size"]
    counts = Table(title=f"{report['model']} at {h}x{w} ({report['out_channels']} outputs), per image",
                   title_justify="left")
    for column in ("variant", "params", "GMACs", "GFLOPs", "GMACs train", "activations", "weights"):
        counts.add_column(column, justify="left" if column == "variant" else "right")
    for row in report["variants"]:
        counts.add_row(row["variant"] or report["model"], f"{row['params'] / 1e6:.3f}M",
                       f"{row['eval_macs'] / 1e9:.3f}", f"{row['eval_flops'] / 1e9:.3f}",
                       f"{row['train_macs'] / 1e9:.3f}", _mb(row["activation_bytes"]), _mb(row["weights_bytes"]))
    console.print(counts)
    notes = [f"{key}: {text}" for key, text in report["conventions"].items()]
    notes.append("GMACs / GFLOPs: eval forward; GMACs train: training forward (aux heads run; torchvision's "
                 "published figures count these)")
    frozen = [row for row in report["variants"] if row["trainable_params"] != row["params"]]
    notes += [f"trainable parameters: {row['trainable_params']:,} of {row['params']:,}" for row in frozen]
    if report["checkpoint_bytes"] is not None:
        notes.append(f"checkpoint file: {_mb(report['checkpoint_bytes'])} on disk (last.pt adds optimizer state)")
    console.print("\n".join(notes), markup=False, highlight=False)
    if not any("eval" in row for row in report["variants"]):
        return
    switches = [name for name, on in report["speed"].items() if on]
    timing = Table(title=f"measured on {report['device']}" + (f" with {', '.join(switches)}" if switches else "")
                   + f": median / p90 of {report['runs']} runs after {report['warmup']} warm-up",
                   title_justify="left")
    for column in ("variant", "mode", "batch", "median ms", "p90 ms", "images/s", "peak memory"):
        timing.add_column(column, justify="left" if column in ("variant", "mode") else "right")
    for row in report["variants"]:
        measured = [("eval", m) for m in row["eval"]] + ([("train step", row["train_step"])]
                                                        if "train_step" in row else [])
        for mode, m in measured:
            timing.add_row(row["variant"] or report["model"], mode, str(m["batch"]), f"{m['median_ms']:.1f}",
                           f"{m['p90_ms']:.1f}", f"{m['images_per_s']:.2f}", _mb(m["peak_bytes"]))
    console.print(timing)
    if report["device"] == "cpu":
        console.print("peak memory on the CPU: growth of the process's peak resident memory; memory freed "
                      "by an earlier row is reused, so later rows can read low", markup=False, highlight=False)


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f} MB"
