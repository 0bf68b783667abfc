"""Layering a training config: built-in defaults < the model's recipe < the demo preset < ``--config
FILE.yaml`` < command-line options; then validation, and YAML with where each value came from.

The options themselves (``TrainConfig``, one field per option) and value parsing are in ``config.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segtool.core.device import default_threads
from segtool.core.errors import SegtoolError
from segtool.engine.config import (
    DEMO_PRESET,
    FIELDS,
    FORMATS,
    MAX_CROP,
    OPTIMIZERS,
    SMALL_IMAGES,
    TrainConfig,
    coerce_value,
)

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
    return {k: coerce_value(k, v) for k, v in values.items()}


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
        if default_threads() is not None:
            # On 2 cores, 2 OpenMP threads run 2-4x slower as soon as anything else takes a core;
            # one thread keeps the demo at ~3.5 min whatever else runs (benchmarks/README.md).
            preset["threads"] = default_threads()
        before = {k: (values[k], sources[k]) for k in preset}
        recipe_schedule = values["schedule"]
        overlay({k: coerce_value(k, v) for k, v in preset.items()}, "demo preset")
        if values["schedule"] != recipe_schedule:  # the recipe's schedule options are for its own schedule
            values["schedule_options"] = dict(preset.get("schedule_options") or {})
            sources["schedule_options"] = "demo preset"
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

