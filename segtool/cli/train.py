"""`segtool train`, `segtool evaluate`, `segtool predict`: thin wrappers over segtool.engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import Device, Force, Json, NpuTransfer, Quiet, Threads

app = typer.Typer()

DATA = "Data"
OPTIM = "Optimisation (default: the model's recipe; see --print-config)"
SPEED = "Speed and reproducibility"
OUTPUT = "Output"


def _opt(*names: str, help: str, panel: str, **kwargs):
    return typer.Option(*names, help=help, rich_help_panel=panel, show_default=False, **kwargs)


@app.command("train")
def train(
    model: Annotated[str, typer.Argument(help="Model name (see `segtool models`), e.g. fcn8, bisenetv2.")],
    # -- data
    data: Annotated[str | None, _opt("--data", help="Dataset root. Default: VOC at ./data (or $SEGTOOL_DATA), "
                                     "else the built-in demo set.", panel=DATA)] = None,
    fmt: Annotated[str | None, _opt("--format", help="voc | camvid | folder | demo (default: detected).",
                                    panel=DATA)] = None,
    split: Annotated[str | None, _opt("--split", help="Training split (default train).", panel=DATA)] = None,
    val_split: Annotated[str | None, _opt("--val-split", help="Validation split (default val).", panel=DATA)] = None,
    num_classes: Annotated[int | None, _opt("--num-classes", help="Class count (default: from the dataset's "
                                            "palette; must match it).", panel=DATA)] = None,
    palette: Annotated[str | None, _opt("--palette", help="Palette name or CSV/YAML file for colour masks.",
                                        panel=DATA)] = None,
    crop: Annotated[str | None, _opt("--crop", help="Random crop, N or HxW.", panel=DATA)] = None,
    small_images: Annotated[str | None, _opt("--small-images", help="pad (default) or drop images smaller "
                                             "than the crop.", panel=DATA)] = None,
    hflip: Annotated[bool | None, _opt("--hflip/--no-hflip", help="Random horizontal flips.", panel=DATA)] = None,
    vflip: Annotated[bool | None, _opt("--vflip/--no-vflip", help="Random vertical flips.", panel=DATA)] = None,
    scale: Annotated[str | None, _opt("--scale", help="Random rescale range LOW,HIGH (e.g. 0.5,2.0).",
                                      panel=DATA)] = None,
    rotation: Annotated[float | None, _opt("--rotation", help="Random rotation up to DEGREES.", panel=DATA)] = None,
    color_jitter: Annotated[float | None, _opt("--color-jitter", help="Colour jitter strength (0.5 typical).",
                                               panel=DATA)] = None,
    workers: Annotated[int | None, _opt("--workers", help="DataLoader workers (default: 0 on <= 2 cores, "
                                        "else up to 8).", panel=DATA)] = None,
    val_batch_size: Annotated[int | None, _opt("--val-batch-size", help="Validation batch size.",
                                               panel=DATA)] = None,
    # -- optimisation
    epochs: Annotated[int | None, _opt("--epochs", help="Epochs.", panel=OPTIM)] = None,
    max_steps: Annotated[int | None, _opt("--max-steps", help="Stop after N optimizer steps (quick runs; the "
                                          "schedule spans them).", panel=OPTIM)] = None,
    batch_size: Annotated[int | None, _opt("--batch-size", help="Batch size (per process).", panel=OPTIM)] = None,
    optimizer: Annotated[str | None, _opt("--optimizer", help="sgd | adamw.", panel=OPTIM)] = None,
    lr: Annotated[float | None, _opt("--lr", help="Learning rate.", panel=OPTIM)] = None,
    momentum: Annotated[float | None, _opt("--momentum", help="SGD momentum.", panel=OPTIM)] = None,
    weight_decay: Annotated[float | None, _opt("--weight-decay", help="Weight decay.", panel=OPTIM)] = None,
    schedule: Annotated[str | None, _opt("--schedule", help="onecycle | poly | step | linear | none "
                                         "(stepped per iteration).", panel=OPTIM)] = None,
    schedule_option: Annotated[list[str] | None, _opt("--schedule-option", help="KEY=VALUE for the schedule, "
                                                      "e.g. max_lr=0.05 (repeatable).", panel=OPTIM)] = None,
    loss: Annotated[str | None, _opt("--loss", help="ce | bce (bce: binary masks, one output channel).",
                                     panel=OPTIM)] = None,
    class_weights: Annotated[str | None, _opt("--class-weights", help="none | median | enet | FILE.",
                                              panel=OPTIM)] = None,
    aux_weight: Annotated[float | None, _opt("--aux-weight", help="Weight of auxiliary heads' losses.",
                                             panel=OPTIM)] = None,
    head_lr_mult: Annotated[float | None, _opt("--head-lr-mult", help="LR multiplier for layers outside the "
                                               "backbone.", panel=OPTIM)] = None,
    pretrained: Annotated[bool | None, _opt("--pretrained/--no-pretrained", help="ImageNet backbone weights "
                                            "from the torch cache.", panel=OPTIM)] = None,
    backbone_weights: Annotated[str | None, _opt("--backbone-weights", help="Backbone weights file.",
                                                 panel=OPTIM)] = None,
    model_option: Annotated[list[str] | None, _opt("--model-option", help="KEY=VALUE passed to the model "
                                                   "(repeatable).", panel=OPTIM)] = None,
    # -- speed
    amp: Annotated[bool | None, _opt("--amp/--no-amp", help="Mixed precision: bf16 on CPU, fp16 + GradScaler "
                                     "on CUDA/NPU.", panel=SPEED)] = None,
    channels_last: Annotated[bool | None, _opt("--channels-last/--no-channels-last", help="NHWC memory format.",
                                               panel=SPEED)] = None,
    compile_: Annotated[bool | None, _opt("--compile/--no-compile", help="torch.compile where it works.",
                                          panel=SPEED)] = None,
    seed: Annotated[int | None, _opt("--seed", help="Random seed (default 0).", panel=SPEED)] = None,
    deterministic: Annotated[bool | None, _opt("--deterministic/--no-deterministic", help="Deterministic "
                                               "kernels (exact resume on CPU).", panel=SPEED)] = None,
    sync_bn: Annotated[bool | None, _opt("--sync-bn/--no-sync-bn", help="SyncBatchNorm under torchrun "
                                         "(CUDA/NPU).", panel=SPEED)] = None,
    dist_timeout: Annotated[int | None, _opt("--dist-timeout", help="Seconds a rank waits for the others "
                                             "before giving up (default 600).", panel=SPEED)] = None,
    device: Device = "auto",
    npu_transfer: NpuTransfer = False,
    threads: Threads = None,
    # -- output
    out: Annotated[str | None, _opt("--out", "-o", help="Run directory (default runs/<model>-<timestamp>).",
                                    panel=OUTPUT)] = None,
    force: Force = False,
    resume: Annotated[str | None, _opt("--resume", help="PATH (checkpoint or run dir) or auto.",
                                       panel=OUTPUT)] = None,
    save_every: Annotated[int | None, _opt("--save-every", help="Also keep epoch-NNN.pt every N epochs.",
                                           panel=OUTPUT)] = None,
    config: Annotated[str | None, _opt("--config", help="YAML file of options (command line wins).",
                                       panel=OUTPUT)] = None,
    print_config: Annotated[bool, _opt("--print-config", help="Print the effective configuration as YAML "
                                       "and exit.", panel=OUTPUT)] = False,
    quiet: Quiet = False,
) -> None:
    """Train MODEL. Defaults reproduce the model's original recipe; with no --data and no VOC found,
    trains on the built-in demo set (one notice says so). Run under torchrun for DDP."""
    from segtool.core.console import emit_line, set_quiet
    from segtool.engine.launch import config_text, is_main_rank, parse_key_values, plan_training

    set_quiet(quiet or not is_main_rank())
    cli_values = {
        "data": data, "format": fmt, "split": split, "val_split": val_split, "num_classes": num_classes,
        "palette": palette, "crop": crop, "small_images": small_images, "hflip": hflip, "vflip": vflip,
        "scale": scale, "rotation": rotation, "color_jitter": color_jitter, "workers": workers,
        "val_batch_size": val_batch_size, "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
        "optimizer": optimizer, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
        "schedule": schedule, "loss": loss, "class_weights": class_weights, "aux_weight": aux_weight,
        "head_lr_mult": head_lr_mult, "pretrained": pretrained, "backbone_weights": backbone_weights,
        "amp": amp, "channels_last": channels_last, "compile": compile_, "seed": seed,
        "deterministic": deterministic, "sync_bn": sync_bn, "dist_timeout": dist_timeout,
        "save_every": save_every, "threads": threads, "device": None if device == "auto" else device,
    }
    if schedule_option:
        cli_values["schedule_options"] = parse_key_values(schedule_option, "--schedule-option")
    if model_option:
        cli_values["model_options"] = parse_key_values(model_option, "--model-option")
    from segtool.engine.config import normalise_keys

    cli_values = normalise_keys({k: v for k, v in cli_values.items() if v is not None}, "command line")
    plan = plan_training(model, cli_values, config_file=config, resume=resume, out=out, force=force,
                         create_dir=not print_config)
    if print_config:
        emit_line(config_text(plan).rstrip("\n"))
        return
    _run_training(plan, npu_transfer)


def _run_training(plan, npu_transfer: bool) -> None:
    from segtool.core.device import resolve_device
    from segtool.engine.launch import is_main_rank
    from segtool.engine.signals import graceful_stop
    from segtool.engine.train import train as run

    config = plan.resolved.config
    device = resolve_device(config.device, npu_transfer=npu_transfer, threads=config.threads,
                            announce=is_main_rank())
    with graceful_stop() as stop:
        run(plan.resolved, plan.source, device, plan.run_dir, resume=plan.checkpoint, stop=stop)


def _parse_hw(value: str | None, option: str):
    if value is None:
        return None
    from segtool.engine.config import parse_crop

    try:
        return tuple(parse_crop(value))
    except Exception as exc:  # noqa: BLE001 - SegtoolError -> bad parameter
        raise typer.BadParameter(f"{option}: {exc}") from None


@app.command("evaluate")
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `segtool train` (last.pt / best.pt).")],
    data: Annotated[str | None, typer.Option("--data", help="Dataset root (default: the one it was trained on).",
                                             show_default=False)] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="voc | camvid | folder | demo (default: detected).",
                                            show_default=False)] = None,
    split: Annotated[str, typer.Option("--split", help="Split to score.")] = "val",
    palette: Annotated[str | None, typer.Option("--palette", help="Palette for colour masks.",
                                                show_default=False)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch (padded).")] = 1,
    workers: Annotated[int, typer.Option("--workers", min=0, help="DataLoader workers.")] = 0,
    sliding_window: Annotated[bool, typer.Option("--sliding-window", help="Average overlapping windows "
                                                 "instead of one whole-image pass.")] = False,
    window: Annotated[str | None, typer.Option("--window", help="Window HxW (default: the training crop).",
                                               show_default=False)] = None,
    stride: Annotated[str | None, typer.Option("--stride", help="Window stride HxW (default 2/3 window).",
                                               show_default=False)] = None,
    confusion: Annotated[str | None, typer.Option("--confusion", help="Write the confusion matrix: FILE.png "
                                                  "(heat map) or FILE.csv.", show_default=False)] = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed-precision inference.")] = False,
    json_out: Json = False,
    force: Force = False,
    device: Device = "auto",
    npu_transfer: NpuTransfer = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Score CHECKPOINT on a split: pixel acc, mean acc, mIoU, fwIoU and per-class IoU/acc/Dice."""
    from segtool.core.console import emit_json, set_quiet
    from segtool.engine.checkpoint import load_checkpoint
    from segtool.engine.evaluate import evaluate_checkpoint, render_report, write_confusion
    from segtool.engine.loaders import DataSource, find_data_source

    set_quiet(quiet)
    win, step = _parse_hw(window, "--window"), _parse_hw(stride, "--stride")
    if confusion is not None:
        _check_confusion_target(confusion, force)
    ckpt = load_checkpoint(checkpoint)
    if data is not None or fmt is not None:
        source = find_data_source(data, fmt or "auto", (ckpt.get("data") or {}).get("demo") or {})
    else:
        source = DataSource.from_dict(ckpt["data"])
    win, step = _window(ckpt, sliding_window, win, step)
    torch_device = _device(device, npu_transfer, threads)
    result, names = evaluate_checkpoint(ckpt, source, split, torch_device, batch_size=batch_size,
                                        workers=workers, palette=palette, amp=amp,
                                        window=win, stride=step,
                                        show_progress=not json_out)
    if confusion is not None:
        write_confusion(result.matrix, names, confusion, force=force)
    if not quiet:
        render_report(result.scores, title=f"{ckpt['model_name']} on {source.format} {split} "
                                           f"({result.images} images)")
    if json_out:
        emit_json({"checkpoint": str(checkpoint), "model": ckpt["model_name"], "split": split,
                   "data": str(source.root) if source.root else None, "images": result.images, **result.scores})


def _window(ckpt: dict, sliding: bool, window, stride):
    """--sliding-window defaults: the training crop, stride 2/3 of it; (None, None) without it."""
    if not sliding:
        return None, None
    window = window or tuple(ckpt["config"].get("crop") or (512, 512))
    stride = stride or (max(1, window[0] * 2 // 3), max(1, window[1] * 2 // 3))
    return window, stride


def _check_confusion_target(path: str, force: bool) -> None:
    from segtool.core.io import check_output

    if Path(path).suffix.lower() not in (".png", ".csv"):
        raise typer.BadParameter(f"--confusion {path}: expected a .png or .csv file name")
    check_output(path, force)


def _device(device: str, npu_transfer: bool, threads: int | None):
    from segtool.cli.options import device_from_options

    return device_from_options(device, npu_transfer, threads)


@app.command("predict")
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint from `segtool train`.")],
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
    sliding_window: Annotated[bool, typer.Option("--sliding-window", help="Average overlapping windows.")] = False,
    window: Annotated[str | None, typer.Option("--window", help="Window HxW (default: the training crop).",
                                               show_default=False)] = None,
    stride: Annotated[str | None, typer.Option("--stride", help="Window stride HxW (default 2/3 window).",
                                               show_default=False)] = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed-precision inference.")] = False,
    force: Force = False,
    device: Device = "auto",
    npu_transfer: NpuTransfer = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Label images with CHECKPOINT; each output has its input's original size."""
    from segtool.core.console import notice, progress, set_quiet, warn
    from segtool.core.errors import SegtoolError
    from segtool.core.io import is_stdio, iter_input_paths
    from segtool.data.images import IMAGE_EXTENSIONS
    from segtool.engine.checkpoint import load_checkpoint, model_from_checkpoint, palette_from_checkpoint
    from segtool.engine.predict import OUTPUT_FORMATS, Predictor, predict_files
    from segtool.models import get_model_info

    set_quiet(quiet)
    if out_format not in OUTPUT_FORMATS:
        raise typer.BadParameter(f"--format {out_format!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    if (output is None) == (out_dir is None):
        raise typer.BadParameter("give exactly one of -o FILE (one image) or --out-dir DIR")
    win, step = _parse_hw(window, "--window"), _parse_hw(stride, "--stride")
    paths = list(iter_input_paths(inputs, IMAGE_EXTENSIONS))
    if output is not None and len(paths) != 1:
        raise SegtoolError(f"-o {output}: takes exactly one input image, got {len(paths)}; use --out-dir")
    targets = _targets(paths, output, out_dir, force)
    ckpt = load_checkpoint(checkpoint)
    torch_device = _device(device, npu_transfer, threads)
    win, step = _window(ckpt, sliding_window, win, step)
    predictor = Predictor(model_from_checkpoint(ckpt, torch_device), torch_device,
                          int(get_model_info(ckpt["model_name"]).size_multiple or 1),
                          ckpt["config"].get("normalize"), amp, win, step)
    with progress() as bar:
        task = bar.add_task("predict", total=len(paths))
        report = predict_files(predictor, paths, targets.__getitem__, palette=palette_from_checkpoint(ckpt),
                               fmt=out_format, alpha=alpha, batch_size=batch_size, skip_bad=skip_bad, force=force,
                               on_image=lambda: bar.advance(task))
    for path, reason in report.skipped:
        warn(f"skipped {path}: {reason}")
    if report.skipped and not report.written:
        raise SegtoolError(f"no image could be read ({len(report.skipped)} skipped)")
    if not (output is not None and is_stdio(output)):
        where = output if output is not None else out_dir
        notice(f"wrote {len(report.written)} {out_format} PNG(s) to {where}"
               + (f"; skipped {len(report.skipped)} unreadable" if report.skipped else ""))


def _targets(paths: list[Path], output: str | None, out_dir: str | None, force: bool) -> dict:
    """Output path per input; refuses existing files (without --force) and name clashes up front."""
    from segtool.core.errors import SegtoolError
    from segtool.core.io import check_output, is_stdio

    if output is not None:
        if not is_stdio(output):
            check_output(output, force)
        return {paths[0]: output}
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise SegtoolError(f"{folder}: exists and is not a directory")
    targets, seen = {}, {}
    for path in paths:
        target = folder / f"{path.stem}.png"
        if target in seen:
            raise SegtoolError(f"{path} and {seen[target]} would both be written to {target}")
        seen[target] = path
        check_output(target, force)
        targets[path] = target
    folder.mkdir(parents=True, exist_ok=True)
    return targets
