"""`segtool info`: versions, devices, cached weights and dataset locations."""

from __future__ import annotations

import typer

from segtool.cli.options import Json, Quiet

app = typer.Typer()


@app.command("info")
def info(json_out: Json = False, quiet: Quiet = False) -> None:
    """Show versions, available devices, cached backbone weights and where datasets are looked for."""
    from segtool.core.console import emit_json
    from segtool.core.system_info import collect_info, render_info

    report = collect_info()
    if json_out:
        emit_json(report)
    else:
        render_info(report)
