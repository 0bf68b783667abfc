"""Options shared by many commands, declared once so they read and behave the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

from segtool.core.device import DEVICE_HELP, parse_device_spec


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
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No notices on stderr (errors still show).")]
Json = Annotated[bool, typer.Option("--json", help="Write the result as JSON on stdout.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]


def device_from_options(device: str, npu_transfer: bool = False, threads: int | None = None):
    """Resolve the device options of a command (imports torch)."""
    from segtool.core.device import resolve_device

    return resolve_device(device, npu_transfer=npu_transfer, threads=threads)
