"""`segtool show-augment`: the training samples `segtool train` would feed the model, as a picture.

It takes every `segtool train` option (declared once, in engine/config.py), so a train command line
works after swapping the command name; the dataset root is the positional DATA and the model (whose
recipe decides crop, scale and normalisation) is --model.
"""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

from segtool.cli.options import Force, Quiet, keyword_parameters, with_parameters

app = typer.Typer()

SHOW = "Show"


def _opt(*names: str, help: str, **kwargs):
    return typer.Option(*names, help=help, rich_help_panel=SHOW, **kwargs)


def _with_train_options(command):
    """The command's own parameters, then every train option except MODEL (-> --model) and --data (-> DATA)."""
    from segtool.cli.train import config_parameters

    keyword = inspect.Parameter.KEYWORD_ONLY
    data = inspect.Parameter("data", keyword, default=None, annotation=Annotated[str | None, typer.Argument(
        help="Dataset root (as train's --data). Default: VOC at ./data, else the built-in demo set.",
        show_default=False)])
    model = inspect.Parameter("model", keyword, default="fcn8", annotation=Annotated[str, _opt(
        "--model", "-m", help="Model whose recipe (crop, scale, normalisation...) to apply.")])
    train = [p for p in config_parameters() if p.name not in ("model", "data")]
    return with_parameters(command, [data, model, *keyword_parameters(command), *train])


@app.command("show-augment")
@_with_train_options
def show_augment(
    *,
    count: Annotated[int, _opt("-n", "--count", min=1, max=256, help="Samples to draw.")] = 8,
    output: Annotated[str | None, _opt("--output", "-o", metavar="GRID.png|-", help="Grid picture to write "
                                       "(- = PNG on stdout).", show_default=False)] = None,
    epoch: Annotated[int, _opt("--epoch", min=1, help="Training epoch whose draw to show (from 1).")] = 1,
    index: Annotated[str | None, _opt("--index", metavar="I,J,...", help="These dataset indices instead of "
                                      "the epoch's first N in training order.", show_default=False)] = None,
    config: Annotated[str | None, _opt("--config", metavar="RECIPE.yaml", help="YAML file of train options "
                                       "(command line wins).", show_default=False)] = None,
    term: Annotated[bool, _opt("--term", help="Print the samples in the terminal (half blocks).")] = False,
    columns: Annotated[int, _opt("--columns", min=1, max=16, help="Cells per grid row.")] = 4,
    alpha: Annotated[float, _opt("--alpha", min=0.0, max=1.0, help="Mask opacity over the image.")] = 0.5,
    json_out: Annotated[bool, _opt("--json", help="Write the samples' parameters as JSON on stdout.")] = False,
    force: Force = False,
    quiet: Quiet = False,
    **options,
) -> None:
    """Draw N training samples exactly as `segtool train` feeds them (same transforms, same seeds):
    image | mask overlay (ignore pixels magenta), titled with the sample id and the parameters drawn.

    Example: segtool show-augment data/VOCdevkit --model fcn8 --scale 0.5,2.0 --rotation 10 -n 8 -o aug.png
    """

    indices = _parse_indices(index)
    if output is None and not term:
        raise typer.BadParameter("give an output file (- for stdout) or use --term", param_hint="--output")
    from segtool.core.io import is_stdio

    if json_out and output is not None and is_stdio(output):
        raise typer.BadParameter("--json and -o - both write to stdout; pick one", param_hint="--json")
    if json_out and term:
        raise typer.BadParameter("--json and --term both write to stdout; pick one", param_hint="--json")
    if output is not None and not is_stdio(output):
        from segtool.core.io import check_output

        check_output(output, force)

    from segtool.core.console import emit_json, notice
    from segtool.engine.augment_samples import TrainingSamples
    from segtool.engine.config import command_line_values
    from segtool.engine.launch import plan_training

    model = options.pop("model")
    plan = plan_training(model, command_line_values(options), config_file=config, create_dir=False)
    if plan.source.note:
        notice(plan.source.note)
    _check_data(plan)
    samples_source = TrainingSamples(plan.resolved.config, plan.source)
    if indices:
        samples = [samples_source.sample(i, epoch) for i in indices]
    else:
        samples = samples_source.first(count, epoch)
    cells = _cells(samples, plan.resolved.config.normalize)
    palette = samples_source.palette
    if output is not None:
        from segtool.core.io import save_image
        from segtool.viz.augment_grid import render_augment_grid

        save_image(render_augment_grid(cells, palette, columns=columns, alpha=alpha), output, force=force)
        if not is_stdio(output):
            notice(f"wrote {output} ({len(cells)} samples of epoch {epoch}, {samples_source.dataset.name})")
    if term:
        _print_cells(cells, palette, alpha)
    if json_out:
        emit_json({"epoch": epoch, "dataset": samples_source.dataset.name, "samples": [s.to_dict() for s in samples]})


def _parse_indices(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected comma-separated indices such as 0,5,9",
                                 param_hint="--index") from None
    if any(v < 0 for v in values):
        raise typer.BadParameter("indices start at 0", param_hint="--index")
    return values


def _check_data(plan) -> None:
    """plan_training(create_dir=False) accepts a --data that is not there (for --print-config); here it must be."""
    from segtool.core.errors import SegtoolError

    root = plan.source.root
    if root is not None and not root.exists():
        raise SegtoolError(f"{root}: dataset not found (DATA)")


def _cells(samples, normalize):
    from segtool.engine.augment_samples import to_uint8
    from segtool.viz.augment_grid import AugmentCell

    return [AugmentCell(to_uint8(s.image, normalize), s.mask.numpy(), s.title()) for s in samples]


def _print_cells(cells, palette, alpha: float) -> None:
    from rich.console import Console

    from segtool.viz.augment_grid import cell_picture
    from segtool.viz.terminal import half_block_preview

    out = Console(force_terminal=True, highlight=False)  # --term asks for colours, even into a pipe
    for cell in cells:
        out.print(" · ".join(cell.title))
        out.print(half_block_preview(cell_picture(cell, palette, alpha), max_columns=min(out.width, 100),
                                     max_lines=20))
