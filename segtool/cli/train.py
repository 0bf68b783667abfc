"""`segtool train`: a thin wrapper over segtool.engine.launch and segtool.engine.train."""

from __future__ import annotations

from typing import Annotated

import typer

from segtool.cli.options import Device, Force, NpuTransfer, Quiet, Threads

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
