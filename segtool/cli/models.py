"""`segtool models`: the available models, their input rules, backbone weights and recipes."""

from __future__ import annotations

from typing import Annotated

import typer

from segtool.cli.options import Json, Quiet

app = typer.Typer()


@app.command("models")
def models(
    names: Annotated[list[str] | None, typer.Argument(
        help="Only these models (e.g. fcn8 tv:fcn_resnet50); default: all, torchvision's included.",
        show_default=False)] = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """List models: parameters for 21 classes, input-size rule, normalisation, backbone weights
    (and whether they are in the torch cache), default crop and training recipe."""
    from segtool.core.console import emit_json
    from segtool.models.listing import describe_models, render_models_table

    rows = describe_models(names or None)
    if json_out:
        emit_json(rows)
    elif not quiet:
        render_models_table(rows)
