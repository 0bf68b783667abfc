"""Training options: one dataclass, ``TrainConfig``, whose fields are the options of `segtool train`.

Each field declares its help text, flag, metavar and help panel (``option()``), and the command is
built from them, so an option is added in one place. Also here: turning YAML and command-line values
into field values. Layering (defaults < recipe < demo < file < command line), validation and printing
with where each value came from are in ``config_layers.py``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segtool.core.conventions import DATASET_FORMATS, DEMO_SET, parse_hw
from segtool.core.errors import SegtoolError
from segtool.core.io import read_text_file

FORMATS = ("auto", *DATASET_FORMATS)
OPTIMIZERS = ("sgd", "adamw")
SMALL_IMAGES = ("pad", "drop")
MAX_CROP = 8192  # a larger crop is a typo (100000x100000 would try to allocate 120 GB per image)

# The built-in demo set (fallback when no --data is given and no VOC is found) and the preset that
# makes `segtool train fcn8` on it finish in minutes on 2 CPU cores. Measured: benchmarks/train.py.
DEMO_DATA = dict(DEMO_SET)  # the set make-demo-data writes by default (core.conventions)
DEMO_PRESET: dict[str, Any] = {
    "crop": [64, 64],
    "batch_size": 16,
    "val_batch_size": 20,
    "epochs": 4,  # 60 steps: the recipe's OneCycle (max lr 0.1) over the short run
    "pretrained": False,  # no weight downloads in a demo
}


# Help panels of `segtool train --help`, in the order they are shown.
DATA = "Data"
OPTIM = "Optimisation (default: the model's recipe; see --print-config)"
SPEED = "Speed and reproducibility"
DEVICE = "Device"
VALIDATION = "Validation and early stop"
OUTPUT = "Output"
PANELS = (DATA, OPTIM, VALIDATION, SPEED, DEVICE, OUTPUT)


def option(default: Any = dataclasses.MISSING, *, help: str | None = None, panel: str | None = None,
           flag: str | None = None, metavar: str | None = None, factory: Any = dataclasses.MISSING,
           shared: bool = False, argument: bool = False) -> Any:
    """A TrainConfig field and its `segtool train` option, declared together so they cannot drift.

    ``flag`` defaults to ``--<name-with-dashes>``; bool fields become ``--x/--no-x``; dict fields a
    repeatable ``KEY=VALUE`` option. ``shared``: the option every command has (segtool.cli.options)
    is used as it is. ``argument``: the command's positional argument.
    """
    metadata = {"help": help, "panel": panel, "flag": flag, "metavar": metavar, "shared": shared,
                "argument": argument}
    return field(default=default, default_factory=factory, metadata=metadata)


@dataclass
class TrainConfig:
    """Every option of `segtool train`; YAML keys are these names (dashes also accepted)."""

    model: str = option("fcn8", argument=True, help="Model name (see `segtool models`), e.g. fcn8, bisenetv2.")
    # -- data
    data: str | None = option(None, panel=DATA, help="Dataset root. Default: VOC at ./data (or $SEGTOOL_DATA), "
                              "else the built-in demo set.")
    format: str = option("auto", panel=DATA, help="voc | camvid | folder | demo (default: detected).")
    split: str = option("train", panel=DATA, help="Training split (default train).")
    val_split: str = option("val", panel=DATA, help="Validation split (default val).")
    num_classes: int | None = option(None, panel=DATA, help="Class count (default: from the dataset's palette; "
                                     "must match it).")
    palette: str | None = option(None, panel=DATA, help="Palette name or CSV/YAML file for colour masks.")
    images: str | None = option(None, panel=DATA, metavar="DIR", help="Image folder (folder format, with "
                                "--masks; default: detected under --data).")
    masks: str | None = option(None, panel=DATA, metavar="DIR", help="Mask folder (folder format, with --images).")
    binary: bool = option(False, panel=DATA, help="Binary masks: grey values >= 128 are class 1 (0/255 PNG "
                          "or JPEG masks); implied by --loss bce.")
    val_fraction: float | None = option(None, panel=DATA, help="Hold out this fraction of the images for "
                                        "validation when the dataset has no split lists (e.g. 0.1).")
    split_seed: int = option(0, panel=DATA, help="Seed of the --val-fraction split (default 0).")
    input_scale: float = option(1.0, panel=DATA, help="Resize images by this factor before the model, in "
                                "training and evaluation (scored at full label resolution), e.g. 0.5.")
    crop: list[int] = option(factory=lambda: [224, 224], panel=DATA, metavar="N|HxW", help="Random crop, N or HxW.")
    small_images: str = option("pad", panel=DATA, help="pad (default) or drop images smaller than the crop.")
    normalize: str | None = option(None, panel=DATA, help="Input normalisation: imagenet or none "
                                   "(default: the model's).")
    hflip: bool = option(True, panel=DATA, help="Random horizontal flips.")
    vflip: bool = option(False, panel=DATA, help="Random vertical flips.")
    scale: list[float] | None = option(None, panel=DATA, metavar="LOW,HIGH", help="Random rescale range LOW,HIGH (e.g. 0.5,2.0).")
    rotation: float = option(0.0, panel=DATA, help="Random rotation up to DEGREES.")
    color_jitter: float = option(0.0, panel=DATA, help="Colour jitter strength (0.5 typical).")
    workers: int | None = option(None, panel=DATA, help="DataLoader workers (default: 0 on <= 2 cores, "
                                 "else up to 8).")
    val_batch_size: int | None = option(None, panel=DATA, help="Validation batch size.")
    # -- optimisation
    epochs: int = option(10, panel=OPTIM, help="Epochs.")
    max_steps: int | None = option(None, panel=OPTIM, help="Stop after N optimizer steps (quick runs; the "
                                   "schedule spans them).")
    batch_size: int = option(8, panel=OPTIM, help="Batch size (per process).")
    optimizer: str = option("sgd", panel=OPTIM, help="sgd | adamw.")
    lr: float = option(0.01, panel=OPTIM, help="Learning rate (onecycle: its peak, unless --schedule-option "
                       "max_lr is given).")
    momentum: float = option(0.9, panel=OPTIM, help="SGD momentum.")
    weight_decay: float = option(1e-4, panel=OPTIM, help="Weight decay.")
    schedule: str = option("poly", panel=OPTIM, help="onecycle | poly | step | linear | none "
                           "(stepped per iteration).")
    schedule_options: dict = option(factory=dict, panel=OPTIM, flag="--schedule-option", metavar="KEY=VALUE",
                                    help="KEY=VALUE for the schedule, e.g. max_lr=0.05 (repeatable).")
    loss: str = option("ce", panel=OPTIM, help="ce | bce | dice | focal | lovasz | ohem, or a weighted sum: "
                       "ce+dice, ce:1,dice:0.5 (bce: binary masks, one output channel).")
    loss_options: dict = option(factory=dict, panel=OPTIM, flag="--loss-option", metavar="KEY=VALUE",
                                help="KEY=VALUE for the loss: gamma, alpha (focal), thresh, min_kept (ohem, "
                                "per image), smooth (dice) (repeatable).")
    warmup_steps: int = option(0, panel=OPTIM, help="Warm-up: the first N optimizer steps scale the lr up from "
                               "0.001x, in front of any schedule.")
    warmup_ratio: float = option(0.0, panel=OPTIM, help="Warm-up over this fraction of the run's steps "
                                 "(instead of --warmup-steps), e.g. 0.05.")
    warmup: str = option("linear", panel=OPTIM, help="Warm-up shape: linear | exp.")
    accumulate: int = option(1, panel=OPTIM, metavar="K", help="Gradient accumulation: one optimizer step "
                             "every K batches (schedules and --max-steps count optimizer steps).")
    clip_grad: float | None = option(None, panel=OPTIM, metavar="NORM", help="Clip the gradient norm to NORM.")
    ema: float | None = option(None, panel=OPTIM, metavar="DECAY", help="Keep an exponential moving average of "
                               "the weights (e.g. 0.999): validation, best.pt, evaluate and predict use it.")
    class_weights: str = option("none", panel=OPTIM, help="none | median | enet | FILE.")
    aux_weight: float = option(0.2, panel=OPTIM, help="Weight of auxiliary heads' losses.")
    head_lr_mult: float = option(1.0, panel=OPTIM, help="LR multiplier for layers outside the backbone.")
    pretrained: bool = option(False, panel=OPTIM, help="ImageNet backbone weights from the torch cache.")
    backbone_weights: str | None = option(None, panel=OPTIM, help="Backbone weights file.")
    model_options: dict = option(factory=dict, panel=OPTIM, flag="--model-option", metavar="KEY=VALUE",
                                 help="KEY=VALUE passed to the model (repeatable).")
    # -- speed and reproducibility
    device: str = option("auto", panel=DEVICE, shared=True)
    threads: int | None = option(None, panel=DEVICE, shared=True)
    amp: bool = option(False, panel=SPEED, help="Mixed precision: bf16 on CPU, fp16 + GradScaler on CUDA/NPU.")
    channels_last: bool = option(False, panel=SPEED, help="NHWC memory format.")
    compile: bool = option(False, panel=SPEED, help="torch.compile where it works.")
    seed: int = option(0, panel=SPEED, help="Random seed (default 0).")
    deterministic: bool = option(False, panel=SPEED, help="Deterministic kernels (exact resume on CPU).")
    sync_bn: bool = option(False, panel=SPEED, help="SyncBatchNorm under torchrun (CUDA/NPU).")
    dist_timeout: int = option(600, panel=SPEED, help="Seconds a rank waits for the others before giving up "
                               "(default 600).")
    # -- validation and early stop
    val_every: str = option("1e", panel=VALIDATION, metavar="N|Ne|0", help="Validate every N optimizer steps, "
                            "every N epochs (Ne, default 1e) or never (0); always after the last step.")
    best_metric: str = option("miou", panel=VALIDATION, help="Score that picks best.pt: miou | mdice | "
                              "pixel_acc | loss | iou:<class name>.")
    early_stop: int = option(0, panel=VALIDATION, metavar="PATIENCE", help="Stop after PATIENCE validations "
                             "without a better --best-metric (0 = off).")
    min_delta: float = option(0.0, panel=VALIDATION, help="Smallest change of --best-metric that counts as "
                              "better (early stop, best.pt).")
    # -- output
    tensorboard: bool = option(False, panel=OUTPUT, help="Also log to TensorBoard (<run dir>/tensorboard; "
                               "needs segtool[tensorboard]).")
    save_every: int = option(0, panel=OUTPUT, help="Also keep epoch-NNN.pt every N epochs.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


# -- value parsing ----------------------------------------------------------------------------------

def parse_crop(value: Any) -> list[int]:
    """224, "224", "320x480", [320, 480] -> [h, w]."""
    return list(parse_hw(value, what="crop"))


def coerce_value(name: str, value: Any) -> Any:
    """Turn a YAML / CLI value into the field's type; None keeps optional fields unset."""
    if name == "crop":
        return parse_crop(value)
    if name == "normalize" and str(value).lower() in ("none", "null"):
        return None  # --normalize none
    default = FIELDS[name].default
    annotation = str(FIELDS[name].type)
    if value is None:
        if "None" in annotation:
            return None
        raise SegtoolError(f"{name}: a value is required")
    try:
        if name == "scale":
            parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
            if any(isinstance(v, bool) for v in parts):
                raise TypeError
            low, high = (float(v) for v in parts)
            if not (math.isfinite(low) and math.isfinite(high)):
                raise SegtoolError(f"scale: must be finite numbers, got {value!r}")
            return [low, high]
        if annotation.startswith("dict"):
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
        # Strict types: YAML `hflip: 1` is not a bool and `max_steps: true` is not an int.
        if annotation.startswith("bool") or isinstance(default, bool):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                return lowered in ("true", "yes", "on")
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(value, bool):
            raise TypeError
        if annotation.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if annotation.startswith("float"):
            number = float(value)
            if not math.isfinite(number):  # nan / inf would train to NaN weights
                raise SegtoolError(f"{name}: must be a finite number, got {value!r}")
            return number
        if annotation.startswith("str"):
            return str(value)
    except (TypeError, ValueError):
        raise SegtoolError(f"{name}: invalid value {value!r} (expected {annotation})") from None
    return value


def normalise_keys(values: dict, source: str) -> dict:
    """Accept dashes for underscores; unknown keys are an error naming the valid ones."""
    out = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            raise SegtoolError(f"{source}: unknown option {key!r}; valid keys: {', '.join(FIELDS)}")
        out[name] = coerce_value(name, value)
    return out


def cli_flag(f: dataclasses.Field) -> str:
    """The command-line flag of a TrainConfig field (``--val-split``, ``--schedule-option``)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def command_line_values(options: dict) -> dict:
    """`segtool train`'s option values as config values; None (and a shared option at its default,
    e.g. ``--device auto``) means not given, so it does not override a --config file."""
    values = {}
    for name, value in options.items():
        f = FIELDS[name]
        if value is None or (f.metadata.get("shared") and value == f.default):
            continue
        values[name] = parse_key_values(value, cli_flag(f)) if str(f.type).startswith("dict") else value
    return normalise_keys(values, "command line")


def parse_key_values(items: list[str] | None, option: str) -> dict:
    """``KEY=VALUE`` pairs (VALUE read as YAML: 0.1, true, [1, 2]) into a dict."""
    import yaml

    out = {}
    for item in items or []:
        if "=" not in item:
            raise SegtoolError(f"{option} {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError):
            raise SegtoolError(f"{option} {item!r}: value is not valid YAML") from None
    return out


def load_yaml_config(path: str | Path) -> dict:
    """A --config file: a YAML mapping of option names to values."""
    import yaml

    path = Path(path)
    text = read_text_file(path, "config file")
    try:
        values = yaml.safe_load(text)
    except RecursionError:
        raise SegtoolError(f"{path}: not valid YAML (nested too deeply)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SegtoolError(f"{path}: not valid YAML{where}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise SegtoolError(f"{path}: expected a mapping of option: value")
    return normalise_keys(values, str(path))
