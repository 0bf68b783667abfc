"""The root ``segtool`` command: registers every command group and turns user errors into one line.

Command modules import only typer/rich at top level; torch is imported inside command bodies so
``segtool --help`` stays fast.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from typer.core import TyperGroup

from segtool import __version__
from segtool.core.console import print_error, set_quiet
from segtool.core.errors import SegtoolError


class _SegtoolGroup(TyperGroup):
    """Root group: a SegtoolError from any command becomes `error: ...` and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SegtoolError as exc:
            if os.environ.get("SEGTOOL_DEBUG"):
                raise
            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    name="segtool",
    cls=_SegtoolGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    help="Semantic-segmentation toolbox: datasets, models, training, evaluation, boxes, style transfer, masks.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    set_quiet(False)  # each invocation starts loud; a command's --quiet switches it off


def _register() -> None:
    from segtool.cli import boxes, data, infer, info, models, style, train, viz

    for module in (info, data, models, train, infer, boxes, style, viz):
        app.add_typer(module.app)


_register()


def main() -> None:
    app(prog_name="segtool")
