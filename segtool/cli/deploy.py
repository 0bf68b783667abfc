"""`segtool profile` and `segtool export`: thin wrappers over segtool.deploy."""

from __future__ import annotations

from typing import Annotated

import typer

from segtool.cli.options import Force, Json, Quiet, Runtime, hw_option, with_runtime

app = typer.Typer()

ModelOption = Annotated[list[str] | None, typer.Option(
    "--model-option", metavar="KEY=VALUE", help="Extra create_model option (e.g. width_mult=0.5); repeatable.",
    show_default=False)]


def _batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{text!r}: expected batch sizes like 1,2,4", param_hint="--batch")
    return values


@app.command("profile")
@with_runtime
def profile(
    target: Annotated[str, typer.Argument(help="A model name (fcn8, tv:fcn_resnet50, ...) or a checkpoint.")],
    size: Annotated[str | None, typer.Option("--size", help="Input HxW (default: the training crop).",
                                             show_default=False)] = None,
    batch: Annotated[str, typer.Option("--batch", help="Batch sizes to time, e.g. 1,2,4.")] = "1",
    classes: Annotated[int, typer.Option("--classes", min=1, help="Output classes for a model name.")] = 21,
    model_option: ModelOption = None,
    runs: Annotated[int, typer.Option("--runs", min=1, help="Timed runs per measurement.")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs before them.")] = 3,
    pad: Annotated[bool, typer.Option("--pad", help="Round --size up to the model's size multiple.")] = False,
    no_timing: Annotated[bool, typer.Option("--no-timing", help="Counts only (parameters, MACs, memory); "
                                            "nothing is run.")] = False,
    no_train: Annotated[bool, typer.Option("--no-train-step", help="Skip timing a training step.")] = False,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision, as in train.")] = False,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="NHWC memory format.")] = False,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    json_out: Json = False,
    *,
    runtime: Runtime,
) -> None:
    """Parameters, MACs/FLOPs, activation memory, latency, images/s and peak memory of a model."""
    from segtool.core.console import emit_json, is_quiet, progress
    from segtool.deploy.profile import checked_size, default_size, profile_model, render_profile, variants
    from segtool.deploy.source import resolve_source
    from segtool.deploy.timing import Speed
    from segtool.engine.config import parse_key_values

    batches = _batches(batch)
    hw = hw_option(size, "--size")
    source = resolve_source(target, classes, parse_key_values(model_option, "--model-option"))
    hw = checked_size(source, hw or default_size(source), pad)
    device = runtime.device()
    steps = 0 if no_timing else len(variants(source)) * (len(batches) + (0 if no_train else 1))
    with progress(show=not json_out and steps > 0) as bar:
        task = bar.add_task("profile", total=steps)
        report = profile_model(source, hw, device, batches=batches, runs=runs, warmup=warmup,
                               speed=Speed(amp, channels_last, compile_model), timing=not no_timing,
                               train_step=not no_train, on_step=lambda: bar.advance(task))
    if json_out:
        emit_json(report)
    elif not is_quiet():
        render_profile(report)


@app.command("export")
def export(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint from `segtool train` (last.pt / best.pt).")],
    output: Annotated[str, typer.Option("--output", "-o", help="model.onnx | model.pt2 | model.pt (TorchScript).")],
    fmt: Annotated[str | None, typer.Option("--format", help="onnx | exported-program | torchscript "
                                            "(default: from the suffix).", show_default=False)] = None,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Dynamic batch, height and width (what export "
                                          "does without --static).")] = False,
    static: Annotated[str | None, typer.Option("--static", help="Fixed input HxW (batch stays dynamic).",
                                               show_default=False)] = None,
    model_option: ModelOption = None,
    json_out: Json = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Export CHECKPOINT for deployment, verified against the eager model before it is written."""
    from segtool.core.console import emit_json, notice
    from segtool.deploy.export import export_checkpoint
    from segtool.deploy.source import resolve_source
    from segtool.engine.config import parse_key_values

    hw = hw_option(static, "--static")
    if dynamic and hw is not None:
        raise typer.BadParameter("give --dynamic or --static HxW, not both", param_hint="--dynamic")
    source = resolve_source(checkpoint, options=parse_key_values(model_option, "--model-option"))
    report = export_checkpoint(source, output, fmt=fmt, static=hw, force=force)
    if json_out:
        emit_json(report.to_dict())
    sides = [side for side, on in report.dynamic.items() if on]
    diffs = ", ".join(f"{'x'.join(map(str, c['shape']))}: {c['max_abs_diff']:.2g}" for c in report.checks)
    notice(f"wrote {report.path} ({report.format} via {report.exporter}"
           + (f", opset {report.opset}" if report.opset else "") + f"; dynamic: {', '.join(sides) or 'none'}); "
           f"max abs difference to the eager model: {diffs}")
