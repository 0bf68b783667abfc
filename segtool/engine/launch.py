"""What `segtool train` does before the loop: config layers, data source, resume target, run dir.

Nothing is created here: every check runs first, and ``engine.train`` makes the run directory only
once the data, model and loss are built (a mistake leaves no empty or half-made run behind).

Kept out of the CLI module so it can be tested and reused without Typer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from segtool.core.console import notice
from segtool.data.sources import DataSource, find_data_source, should_use_demo
from segtool.engine.checkpoint import check_compatible, check_resumable, load_checkpoint, position
from segtool.engine.config import DEMO_DATA, load_yaml_config
from segtool.engine.config_layers import ResolvedConfig, resolve_config, to_yaml
from segtool.engine.run_dir import check_run_dir, default_run_dir, find_latest_run


@dataclass
class TrainPlan:
    resolved: ResolvedConfig
    source: DataSource
    run_dir: Path
    checkpoint: dict | None  # the checkpoint to resume from
    force: bool = False  # --force: start over in an existing run dir


def find_resume_checkpoint(resume: str, model: str, out: Path | None) -> dict | None:
    """``--resume PATH`` (a checkpoint file or run dir) or ``auto`` (latest run of this model, if any)."""
    if resume != "auto":
        checkpoint = load_checkpoint(resume)
        check_resumable(checkpoint)  # best.pt holds weights only
        return checkpoint
    if out is not None:
        candidate = out / "last.pt"
        return load_checkpoint(candidate) if candidate.is_file() else None
    latest = find_latest_run(model)
    return load_checkpoint(latest / "last.pt") if latest is not None else None


def plan_training(model: str, cli_values: dict, *, config_file: str | None = None, resume: str | None = None,
                  out: str | None = None, force: bool = False, create_dir: bool = True) -> TrainPlan:
    """Resolve and check everything `segtool train MODEL` needs; ``create_dir=False`` (--print-config)
    also skips the checks of things that must exist (--data, the run dir)."""
    from segtool.models import get_model_info

    file_values = load_yaml_config(config_file) if config_file else {}
    out_path = Path(out) if out else None
    checkpoint = find_resume_checkpoint(resume, model, out_path) if resume else None
    data_given = any(v.get(k) is not None for v in (cli_values, file_values) for k in ("data", "images"))
    format_given = cli_values.get("format") or file_values.get("format")

    if checkpoint is not None:
        check_compatible(checkpoint, model, checkpoint["num_classes"])
        resolved = resolve_config(model, None, file_values, cli_values, base=checkpoint["config"])
        if data_given or format_given:
            source = find_data_source(resolved.config.data, resolved.config.format, DEMO_DATA, check=create_dir)
        else:
            source = DataSource.from_dict(checkpoint["data"])
        run_dir = out_path or Path(checkpoint["path"]).parent
        if create_dir:
            where = position(checkpoint["epoch"], checkpoint.get("epoch_step", 0))
            notice(f"resuming {checkpoint['path']} at step {checkpoint['step']} ({where})")
    else:
        if resume == "auto":
            notice("--resume auto: no earlier run found; starting a new one")
        info = get_model_info(model)
        fmt = cli_values.get("format") or file_values.get("format") or "auto"
        use_demo = not data_given and should_use_demo(None, fmt)
        resolved = resolve_config(model, info, file_values, cli_values, use_demo=use_demo)
        source = find_data_source(resolved.config.data, resolved.config.format, DEMO_DATA, check=create_dir)
        if source.format == "demo" and not use_demo:
            # A set from `make-demo-data DIR`: the demo preset, as for the built-in set, not the full
            # recipe (fcn8's is 150 epochs); options given still win.
            resolved = resolve_config(model, info, file_values, cli_values, use_demo=True)
            source.note = (f"{source.root} is a segtool demo set: training with the demo preset "
                           "(see --print-config)")
        run_dir = out_path or default_run_dir(model)
    if create_dir and is_main_rank():
        if source.note:
            notice(source.note)
        check_run_dir(run_dir, force=force, resuming=checkpoint is not None)
    return TrainPlan(resolved, source, run_dir, checkpoint, force)


def is_main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def config_text(plan: TrainPlan) -> str:
    config = plan.resolved.config
    header = f"segtool train {config.model} -- effective configuration (a valid --config file)"
    if plan.source.format == "demo" and plan.source.root is None:
        header += "\ndata: the built-in demo set " + ", ".join(f"{k}={v}" for k, v in DEMO_DATA.items())
    elif plan.source.format == "demo":
        header += f"\ndata: a demo set (make-demo-data) at {plan.source.root}"
    elif plan.source.root is not None:
        header += f"\ndata: {plan.source.format} at {plan.source.root}"
    return to_yaml(plan.resolved, header=header)

