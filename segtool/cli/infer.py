"""`segtool evaluate` and `segtool predict`: thin wrappers over segtool.engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import (
    DataFormat,
    DataRoot,
    Force,
    Json,
    Runtime,
    ScoreSplit,
    hw_option,
    with_runtime,
)

app = typer.Typer()

# How both commands run the model.
SlidingWindow = Annotated[bool, typer.Option("--sliding-window", help="Average overlapping windows instead of "
                                             "one whole-image pass.")]
Window = Annotated[str | None, typer.Option("--window", help="Window HxW (default: the training crop).",
                                            show_default=False)]
Stride = Annotated[str | None, typer.Option("--stride", help="Window stride HxW (default 2/3 window).",
                                            show_default=False)]
Amp = Annotated[bool, typer.Option("--amp", help="Mixed-precision inference.")]
Tta = Annotated[str | None, typer.Option("--tta", metavar="flip[,scales=S,...]", show_default=False,
                                         help="Test-time augmentation: horizontal flip and/or scales, "
                                         "probabilities averaged, e.g. flip or flip,scales=0.75,1.0,1.25.")]


def tta_option(text: str | None):
    """--tta parsed (engine.inference.parse_tta); a malformed one is a usage error (exit 2)."""
    if text is None:
        return None
    from segtool.core.errors import SegtoolError
    from segtool.engine.inference import parse_tta

    try:
        return parse_tta(text)
    except SegtoolError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--tta "), param_hint="--tta") from None


@app.command("evaluate")
@with_runtime
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `segtool train` (last.pt / best.pt).")],
    data: DataRoot = None,
    fmt: DataFormat = None,
    split: ScoreSplit = "val",
    palette: Annotated[str | None, typer.Option("--palette", help="Palette for colour masks.",
                                                show_default=False)] = None,
    binary: Annotated[bool, typer.Option("--binary", help="Binary masks: grey values >= 128 are class 1 "
                                         "(default: as trained).")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch (images of one size "
                                            "only, so batching never changes a score).")] = 1,
    workers: Annotated[int, typer.Option("--workers", min=0, help="DataLoader workers.")] = 0,
    sliding_window: SlidingWindow = False,
    window: Window = None,
    stride: Stride = None,
    confusion: Annotated[str | None, typer.Option("--confusion", help="Write the confusion matrix: FILE.png "
                                                  "(heat map) or FILE.csv.", show_default=False)] = None,
    per_image: Annotated[str | None, typer.Option("--per-image", metavar="FILE.csv|FILE.jsonl", help="Write "
                                                  "each image's pixel acc, mIoU and per-class IoU.",
                                                  show_default=False)] = None,
    worst: Annotated[tuple[int, str] | None, typer.Option("--worst", metavar="K GRID.png", help="Draw the K "
                                                          "images of lowest mIoU: image | prediction | ground "
                                                          "truth.", show_default=False)] = None,
    tta: Tta = None,
    amp: Amp = False,
    json_out: Json = False,
    force: Force = False,
    *,
    runtime: Runtime,
) -> None:
    """Score CHECKPOINT on a split: pixel acc, mean acc, mIoU, fwIoU and per-class IoU/acc/Dice."""
    from segtool.core.console import emit_json, is_quiet
    from segtool.engine.checkpoint import load_checkpoint, source_for_checkpoint, window_for_checkpoint
    from segtool.engine.evaluate import evaluate_checkpoint, render_report, write_confusion

    win, step = hw_option(window, "--window"), hw_option(stride, "--stride")
    parsed_tta = tta_option(tta)
    if confusion is not None:
        _check_confusion_target(confusion, force)
    from segtool.engine.per_image import PerImage, check_targets, write_outputs

    worst_k, grid = worst if worst is not None else (None, None)
    check_targets(per_image, worst_k, grid, force)
    images = PerImage() if (per_image or grid) else None
    ckpt = load_checkpoint(checkpoint)
    source = source_for_checkpoint(ckpt, data, fmt)
    win, step = window_for_checkpoint(ckpt, sliding_window, win, step)
    torch_device = runtime.device()
    result, names = evaluate_checkpoint(ckpt, source, split, torch_device, batch_size=batch_size,
                                        workers=workers, palette=palette, amp=amp,
                                        window=win, stride=step, tta=parsed_tta, per_image=images,
                                        show_progress=not json_out, binary=binary)
    if confusion is not None:
        write_confusion(result.matrix, names, confusion, force=force)
    if images is not None:
        write_outputs(ckpt, images, names, torch_device, rows_path=per_image, worst_k=worst_k or 0, grid_path=grid,
                      force=force, tta=parsed_tta, window=win, stride=step, amp=amp)
    if not is_quiet():
        render_report(result.scores, title=f"{ckpt['model_name']} on {source.format} {split} "
                                           f"({result.images} images)")
    if json_out:
        emit_json({"checkpoint": str(checkpoint), "model": ckpt["model_name"], "split": split,
                   "data": str(source.root) if source.root else None, "images": result.images, **result.scores})


def _check_confusion_target(path: str, force: bool) -> None:
    from segtool.core.io import check_output

    if Path(path).suffix.lower() not in (".png", ".csv"):
        raise typer.BadParameter(f"--confusion {path}: expected a .png or .csv file name")
    check_output(path, force)


@app.command("predict")
@with_runtime
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `segtool train`, or a model.onnx from "
                                               "`segtool export` (run with onnxruntime).")],
    inputs: Annotated[list[str], typer.Argument(help="Image files, directories, or - (paths on stdin).")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Output file for a single image "
                                               "(- = PNG on stdout).", show_default=False)] = None,
    out_dir: Annotated[str | None, typer.Option("--out-dir", help="Folder for <name>.png outputs.",
                                                show_default=False)] = None,
    out_format: Annotated[str, typer.Option("--format", help="index (palette PNG of class indices) | color | "
                                            "overlay.")] = "index",
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Overlay opacity.")] = 0.5,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch (same-size "
                                            "images are batched).")] = 4,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images (listed at the end) "
                                           "instead of stopping.")] = False,
    sliding_window: SlidingWindow = False,
    window: Window = None,
    stride: Stride = None,
    tta: Tta = None,
    amp: Amp = False,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Threads decoding images ahead of the model "
                                         "(0: decode in the main thread).")] = 1,
    classes: Annotated[str | None, typer.Option("--classes", help="For an ONNX file without segtool metadata: "
                                                "N or comma-separated class names.", show_default=False)] = None,
    json_out: Json = False,
    force: Force = False,
    *,
    runtime: Runtime,
) -> None:
    """Label images with CHECKPOINT; each output has its input's original size."""
    import dataclasses

    from segtool.core.console import emit_json, notice, plural, progress, warn
    from segtool.core.errors import SegtoolError
    from segtool.core.io import is_stdio, iter_input_paths, plan_outputs
    from segtool.data.images import IMAGE_EXTENSIONS
    from segtool.deploy.predictors import is_onnx, load_predictor
    from segtool.engine.batch_predict import predict_many
    from segtool.engine.predict import OUTPUT_FORMATS

    if out_format not in OUTPUT_FORMATS:
        raise typer.BadParameter(f"--format {out_format!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    if (output is None) == (out_dir is None):
        raise typer.BadParameter("give exactly one of -o FILE (one image) or --out-dir DIR")
    if json_out and output is not None and is_stdio(output):
        raise typer.BadParameter("--json and -o - both write to stdout; give -o FILE")
    win, step = hw_option(window, "--window"), hw_option(stride, "--stride")
    plan = plan_outputs(iter_input_paths(inputs, IMAGE_EXTENSIONS), output, out_dir, force)
    paths, targets = [source for source, _ in plan], dict(plan)
    if is_onnx(checkpoint) and runtime.device_spec == "auto":  # onnxruntime runs on the CPU here
        runtime = dataclasses.replace(runtime, device_spec="cpu")
    predictor, palette, model = load_predictor(checkpoint, runtime.device(), amp=amp, sliding=sliding_window,
                                               window=win, stride=step, tta=tta_option(tta), classes=classes)
    with progress(show=not json_out) as bar:
        task = bar.add_task("predict", total=len(paths))
        report = predict_many(predictor, paths, targets.__getitem__, palette=palette, fmt=out_format, alpha=alpha,
                              batch_size=batch_size, skip_bad=skip_bad, force=force, workers=workers,
                              on_image=lambda: bar.advance(task))
    if json_out:
        emit_json({"model": str(checkpoint), **model, **report.to_dict()})
    for path, reason in report.skipped:
        warn(f"skipped {path}: {reason}")
    if report.skipped and not report.written:
        raise SegtoolError(f"no image could be read ({len(report.skipped)} skipped)")
    if not (output is not None and is_stdio(output)):
        where = output if output is not None else out_dir
        notice(f"wrote {plural(len(report.written), out_format + ' PNG')} to {where}"
               + (f"; skipped {len(report.skipped)} unreadable" if report.skipped else ""))

