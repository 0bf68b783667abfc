"""`segtool train`: a thin wrapper over segtool.engine.launch and segtool.engine.train.

Its config options are not written here: each TrainConfig field (segtool/engine/config.py) declares
its help, flag and panel, and `_with_config_options` turns every field into a Typer parameter.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Annotated

import typer

from segtool.cli.options import (
    Device,
    Force,
    NpuTransfer,
    Quiet,
    Threads,
    keyword_parameters,
    with_parameters,
)
from segtool.engine.config import OUTPUT, PANELS, TrainConfig, cli_flag

app = typer.Typer()

SHARED = {"device": Device, "threads": Threads}  # fields whose option every command shares


def _opt(*names: str, help: str, panel: str | None, **kwargs):
    return typer.Option(*names, help=help, rich_help_panel=panel, show_default=False, **kwargs)


def _option_type(hint) -> type:
    """What the command line reads for a field: lists as text (320x480, 0.5,2.0; engine.config parses
    them), dicts as repeated KEY=VALUE strings."""
    if isinstance(hint, types.UnionType):  # X | None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    kind = typing.get_origin(hint) or hint
    if kind is dict:
        return list[str]
    return kind if kind in (bool, int, float) else str


def config_parameters() -> list[inspect.Parameter]:
    """One Typer parameter per TrainConfig field: the model argument, then options by help panel."""
    hints = typing.get_type_hints(TrainConfig)
    keyword = inspect.Parameter.KEYWORD_ONLY
    fields = dataclasses.fields(TrainConfig)
    params = []
    for f in sorted(fields, key=lambda f: -1 if f.metadata["argument"] else PANELS.index(f.metadata["panel"])):
        meta = f.metadata
        if meta["argument"]:
            params.append(inspect.Parameter(f.name, keyword, annotation=Annotated[
                hints[f.name], typer.Argument(help=meta["help"])]))
        elif meta["shared"]:
            params.append(inspect.Parameter(f.name, keyword, default=f.default, annotation=SHARED[f.name]))
        else:
            kind = _option_type(hints[f.name])
            flag = cli_flag(f)
            if kind is bool:
                flag = f"{flag}/--no-{flag[2:]}"
            option = _opt(flag, help=meta["help"], panel=meta["panel"], metavar=meta["metavar"])
            params.append(inspect.Parameter(f.name, keyword, default=None, annotation=Annotated[kind | None, option]))
    return params


def _with_config_options(command):
    """Give ``command`` the config options ahead of its own, and pass them in as ``**options``."""
    return with_parameters(command, config_parameters() + keyword_parameters(command))


@app.command("train")
@_with_config_options
def train(
    model: str,
    *,
    npu_transfer: NpuTransfer = False,
    out: Annotated[str | None, _opt("--out", "-o", help="Run directory (default runs/<model>-<timestamp>).",
                                    panel=OUTPUT)] = None,
    force: Force = False,
    resume: Annotated[str | None, _opt("--resume", help="PATH (checkpoint or run dir) or auto.",
                                       panel=OUTPUT)] = None,
    config: Annotated[str | None, _opt("--config", help="YAML file of options (command line wins).",
                                       panel=OUTPUT)] = None,
    print_config: Annotated[bool, _opt("--print-config", help="Print the effective configuration as YAML "
                                       "and exit.", panel=OUTPUT)] = False,
    quiet: Quiet = False,
    **options,
) -> None:
    """Train MODEL. Defaults reproduce the model's original recipe; with no --data and no VOC found,
    trains on the built-in demo set (one notice says so). Run under torchrun for DDP."""
    from segtool.core.console import emit_line, set_quiet
    from segtool.engine.config import command_line_values
    from segtool.engine.launch import config_text, is_main_rank, plan_training

    set_quiet(quiet or not is_main_rank())
    plan = plan_training(model, command_line_values(options), config_file=config, resume=resume, out=out,
                         force=force, create_dir=not print_config)
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
        run(plan.resolved, plan.source, device, plan.run_dir, resume=plan.checkpoint, stop=stop, force=plan.force)
