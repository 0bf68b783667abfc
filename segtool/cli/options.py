"""Options shared by many commands, declared once so they read and behave the same everywhere."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Annotated

import typer

from segtool.core.device import DEVICE_HELP, parse_device_spec
from segtool.core.errors import SegtoolError


def _validate_device(value: str) -> str:
    try:
        parse_device_spec(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


DEVICE_PANEL = "Device"

Device = Annotated[str, typer.Option(
    "--device", help=f"Where to run: {DEVICE_HELP}. auto = CUDA, else NPU, else MPS, else CPU.",
    callback=_validate_device, rich_help_panel=DEVICE_PANEL)]
NpuTransfer = Annotated[bool, typer.Option(
    "--npu-transfer", help="Apply torch_npu.contrib.transfer_to_npu (maps torch.cuda calls to the NPU).",
    rich_help_panel=DEVICE_PANEL)]
Threads = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads for torch (default: torch's choice).", rich_help_panel=DEVICE_PANEL)]
def _apply_quiet(value: bool) -> bool:
    # Applied while the options are parsed, so no command body has to remember it.
    from segtool.core.console import set_quiet

    set_quiet(bool(value))
    return value


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No notices on stderr (errors still show).",
                                     callback=_apply_quiet)]
Json = Annotated[bool, typer.Option("--json", help="Write the result as JSON on stdout.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]


def device_from_options(device: str, npu_transfer: bool = False, threads: int | None = None):
    """Resolve the device options of a command (imports torch)."""
    from segtool.core.device import resolve_device

    return resolve_device(device, npu_transfer=npu_transfer, threads=threads)


def hw_option(value: str | None, option: str, **rules) -> tuple[int, int] | None:
    """Parse an ``HxW`` option with ``core.conventions.parse_hw``; a malformed one is a usage error (exit 2)."""
    if value is None:
        return None
    from segtool.core.conventions import parse_hw

    try:
        return parse_hw(value, what="size", **rules)
    except SegtoolError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@dataclass(frozen=True)
class Runtime:
    """A command's --device, --npu-transfer and --threads as given; ``device()`` resolves them (imports torch)."""

    device_spec: str = "auto"
    npu_transfer: bool = False
    threads: int | None = None

    def device(self):
        from segtool.core.device import default_threads

        threads = self.threads if self.threads is not None else default_threads()
        return device_from_options(self.device_spec, self.npu_transfer, threads)


_RUNTIME_PARAMETERS = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
                       for name, kind, default in (("device", Device, "auto"), ("npu_transfer", NpuTransfer, False),
                                                   ("threads", Threads, None), ("quiet", Quiet, False))]


def with_runtime(command):
    """Give a command --device, --npu-transfer, --threads and --quiet, declared here once.

    The command takes ``runtime: Runtime`` instead of the four parameters; --quiet is applied
    before its body runs. Register it as usual: ``@app.command("nms")`` above ``@with_runtime``.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "runtime"]

    @functools.wraps(command)
    def run(*args, device: str = "auto", npu_transfer: bool = False, threads: int | None = None,
            quiet: bool = False, **kwargs):
        from segtool.core.console import set_quiet

        set_quiet(quiet)
        return command(*args, runtime=Runtime(device, npu_transfer, threads), **kwargs)

    run.__signature__ = signature.replace(parameters=own + _RUNTIME_PARAMETERS)
    run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
    if signature.return_annotation is not inspect.Signature.empty:
        run.__annotations__["return"] = signature.return_annotation
    return run


def keyword_parameters(command) -> list:
    """A command function's keyword-only parameters (its own options, declared after ``*``)."""
    import inspect

    return [p for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY]


def with_parameters(command, params: list):
    """Give ``command`` the signature ``params`` (built programmatically, e.g. from TrainConfig fields)."""
    import inspect

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


# Shared by the commands that score checkpoints on a dataset (evaluate, compare-runs).
DataRoot = Annotated[str | None, typer.Option(
    "--data", help="Dataset root (default: the one the checkpoint was trained on).", show_default=False)]
DataFormat = Annotated[str | None, typer.Option(
    "--format", help="voc | camvid | folder | demo (default: detected).", show_default=False)]
ScoreSplit = Annotated[str, typer.Option("--split", help="Split to score.")]
