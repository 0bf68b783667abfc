"""Training configuration: one dataclass, filled in layers, each value remembering where it came from.

Layers, later ones win: built-in defaults < the model's original recipe < the demo preset (only
when training falls back to the built-in demo set) < ``--config FILE.yaml`` < command-line options.
``to_yaml`` prints the result with the source of every value that is not a plain default, so
``--print-config`` shows exactly what the recipe and the demo preset changed, and its output is a
valid ``--config`` file.
"""

from __future__ import annotations

import dataclasses
import math
import os
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


def _coerce(name: str, value: Any) -> Any:
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
        out[name] = _coerce(name, value)
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


# -- layering ---------------------------------------------------------------------------------------

@dataclass
class ResolvedConfig:
    """The final config, where each value came from, and what the demo preset replaced."""

    config: TrainConfig
    sources: dict[str, str]
    demo: bool = False
    demo_changes: dict[str, tuple[Any, Any, str]] = field(default_factory=dict)  # key: (old, new, old source)


def recipe_values(model_info) -> dict:
    """The recipe fields of a model (``ModelInfo.recipe``) that are TrainConfig options."""
    recipe = dict(getattr(model_info, "recipe", None) or {})
    values = {k: v for k, v in recipe.items() if k in FIELDS}
    normalization = getattr(model_info, "normalization", None)
    values["normalize"] = normalization
    options = dict(values.get("schedule_options") or {})
    if values.get("schedule") == "onecycle" and options.get("max_lr") is not None:
        # One-cycle's peak is the lr (OneCycleLR ignores the optimizer's): --lr then sets it.
        values["lr"] = options.pop("max_lr")
        values["schedule_options"] = options
    return {k: _coerce(k, v) for k, v in values.items()}


def resolve_config(model: str, model_info, file_values: dict | None = None, cli_values: dict | None = None,
                   *, use_demo: bool = False, base: dict | None = None) -> ResolvedConfig:
    """Layer defaults < recipe (or ``base``, e.g. a resumed run's config) < demo < file < command line."""
    values = TrainConfig().to_dict()
    sources = dict.fromkeys(values, "default")
    values["model"], sources["model"] = model, "command line"

    def overlay(layer: dict, source: str) -> None:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                value = {**values[key], **value}  # option dicts merge: --schedule-option max_lr=0.05
            values[key] = value
            sources[key] = source

    if base is not None:
        overlay({k: v for k, v in base.items() if k in FIELDS and k != "model"}, "resumed run")
    else:
        overlay(recipe_values(model_info), "recipe")
    demo_changes = {}
    if use_demo:
        # The model's own demo values (recipe["demo"], e.g. a higher lr without pretraining) win.
        preset = {**DEMO_PRESET, **dict((getattr(model_info, "recipe", None) or {}).get("demo") or {})}
        if (os.cpu_count() or 1) <= 2:
            # On 2 cores, 2 OpenMP threads run 2-4x slower as soon as anything else takes a core;
            # one thread keeps the demo at ~3.5 min whatever else runs (benchmarks/README.md).
            preset["threads"] = 1
        before = {k: (values[k], sources[k]) for k in preset}
        overlay({k: _coerce(k, v) for k, v in preset.items()}, "demo preset")
        demo_changes = {k: (old, values[k], source) for k, (old, source) in before.items() if old != values[k]}
        overlay({"format": "demo"}, "demo preset")
    file_model = (file_values or {}).get("model")
    if file_model is not None and file_model != model:
        raise SegtoolError(f"the config file is for model {file_model!r} but the command line trains {model!r}")
    schedule_before = values["schedule"]
    user_layers = [(file_values or {}, "config file"),
                   ({k: v for k, v in (cli_values or {}).items() if v is not None}, "command line")]
    for layer, source in user_layers:
        overlay(layer, source)
    if values["schedule"] != schedule_before:
        # Another schedule than the recipe's: its options (e.g. onecycle's max_lr) no longer apply.
        values["schedule_options"] = {}
        for layer, source in user_layers:
            if "schedule_options" in layer:
                values["schedule_options"].update(layer["schedule_options"])
                sources["schedule_options"] = source
        if not any("schedule_options" in layer for layer, _ in user_layers):
            sources["schedule_options"] = sources["schedule"]
    if values["images"] and not values["data"]:
        # --images/--masks without --data: the dataset root is the image folder's parent.
        values["data"], sources["data"] = str(Path(values["images"]).resolve().parent), sources["images"]
        if values["format"] == "auto":
            values["format"] = "folder"
    config = TrainConfig(**values)
    validate(config)
    return ResolvedConfig(config, sources, use_demo, demo_changes)


def validate(config: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise SegtoolError(message)

    need(config.format in FORMATS, f"format {config.format!r}: expected one of {', '.join(FORMATS)}")
    need(config.optimizer in OPTIMIZERS, f"optimizer {config.optimizer!r}: expected sgd or adamw")
    need(config.small_images in SMALL_IMAGES, f"small_images {config.small_images!r}: expected pad or drop")
    need(config.epochs >= 1, f"epochs must be at least 1, got {config.epochs}")
    need(config.max_steps is None or config.max_steps >= 1, "max_steps must be at least 1")
    need(config.batch_size >= 1, f"batch_size must be at least 1, got {config.batch_size}")
    need(config.lr > 0, f"lr must be positive, got {config.lr}")
    need(config.weight_decay >= 0, "weight_decay must be >= 0")
    need(config.aux_weight >= 0, "aux_weight must be >= 0")
    need(config.head_lr_mult > 0, "head_lr_mult must be positive")
    need(config.save_every >= 0, "save_every must be >= 0")
    need(config.workers is None or config.workers >= 0, "workers must be >= 0")
    need(config.val_batch_size is None or config.val_batch_size >= 1,
         f"val_batch_size must be at least 1, got {config.val_batch_size}")
    need(config.dist_timeout >= 1, f"dist_timeout must be at least 1 second, got {config.dist_timeout}")
    need(max(config.crop) <= MAX_CROP, f"crop {config.crop[0]}x{config.crop[1]}: sides must be at most "
         f"{MAX_CROP} px")
    if config.scale is not None:
        low, high = config.scale
        need(0 < low <= high, f"scale {low},{high}: expected LOW,HIGH with 0 < LOW <= HIGH (e.g. 0.5,2.0)")
    need(config.num_classes is None or config.num_classes >= 1, "num_classes must be at least 1")
    need(config.val_fraction is None or 0 < config.val_fraction < 1,
         f"--val-fraction must be between 0 and 1 (exclusive), got {config.val_fraction}")
    need(0 < config.input_scale <= 4, f"--input-scale must be in (0, 4], got {config.input_scale}")
    need((config.images is None) == (config.masks is None), "--images and --masks go together")
    need(config.normalize in (None, "imagenet"), f"normalize {config.normalize!r}: expected imagenet or null")
    from segtool.engine.schedules import schedule_options

    schedule_options(config.schedule, config.schedule_options)
    from segtool.engine.run_control import check_run_options

    check_run_options(config)


# -- printing ---------------------------------------------------------------------------------------

def _yaml_value(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def to_yaml(resolved: ResolvedConfig, header: str | None = None) -> str:
    """The config as YAML, one key per line, with where each non-default value came from."""
    lines = [f"# {line}" if line else "#" for line in (header or "").splitlines()]
    if resolved.demo and resolved.demo_changes:
        lines.append("# demo preset (demo data: built-in or from make-demo-data) changed: " + ", ".join(
            f"{k} {_yaml_value(old)} -> {_yaml_value(new)}" for k, (old, new, _) in resolved.demo_changes.items()))
    for key, value in resolved.config.to_dict().items():
        source = resolved.sources.get(key, "default")
        note = f"  # {source}" if source != "default" else ""
        if key in resolved.demo_changes and source == "demo preset":
            old, _, old_source = resolved.demo_changes[key]
            note = f"  # demo preset (was {_yaml_value(old)} from the {old_source})"
        lines.append(f"{key}: {_yaml_value(value)}{note}")
    return "\n".join(lines) + "\n"

