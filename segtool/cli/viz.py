"""`segtool show-mask | compare | plot-log`: pictures of masks, predictions and training runs.

No tensors here: numpy and PIL only (matplotlib for plot-log), so no device options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import Force, Quiet, hw_option

app = typer.Typer()

PaletteOpt = Annotated[str, typer.Option(
    "--palette", "-p", help="Class names and colours: voc, camvid32, camvid11, cityscapes, or a CSV/YAML file.")]
VoidValueOpt = Annotated[int, typer.Option(
    "--void-value", min=0, max=255, metavar="N",
    help="Mask value that means void, shown as 255 (SegNet's CamVid masks use 11).")]
ResizeOpt = Annotated[bool, typer.Option(
    "--resize", help="Scale a mask whose size differs from its image to the image (nearest neighbour).")]


def _parse_rgb(value: str | None, option: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        rgb = tuple(int(v) for v in value.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise typer.BadParameter(f"expected R,G,B with values 0..255, got {value!r}", param_hint=option)
    return rgb


def _check_output(output: str, force: bool) -> None:
    """Fail on an existing output before any work is done (save_image checks again when writing)."""
    from segtool.core.io import check_output, is_stdio

    if not is_stdio(output):
        check_output(output, force)


def _wrote(output: str) -> None:
    from segtool.core.console import notice
    from segtool.core.io import is_stdio

    if not is_stdio(output):
        notice(f"wrote {output}")


@app.command("show-mask")
def show_mask(
    mask: Annotated[Path, typer.Argument(help="Index mask: palette (P) or grey (L) PNG of class indices.")],
    image: Annotated[Path | None, typer.Option(
        "--image", "-i", help="Blend the colours over this image (same size as the mask).")] = None,
    palette: PaletteOpt = "voc",
    alpha: Annotated[float, typer.Option(
        "--alpha", min=0.0, max=1.0, help="Opacity of the colours over the image: (1-a)*image + a*colour.")] = 0.5,
    legend: Annotated[bool, typer.Option(
        "--legend", help="Add a strip naming the classes present, with colour and pixel share.")] = False,
    outline: Annotated[bool, typer.Option("--outline", help="Draw class boundaries in white.")] = False,
    ignore_color: Annotated[str | None, typer.Option(
        "--ignore-color", metavar="R,G,B",
        help="Colour for void (255) pixels; over an image they are left untouched without it.")] = None,
    tint_background: Annotated[bool, typer.Option(
        "--tint-background",
        help="Over an image, blend the background class (VOC's 0) with its colour too (default: untouched).")] = False,
    resize: ResizeOpt = False,
    void_value: VoidValueOpt = 255,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="OUT.png|-", help="Picture to write (- = PNG on stdout).")] = None,
    term: Annotated[bool, typer.Option(
        "--term", help="Print a preview in the terminal (half-block characters) instead of a file.")] = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Colourise an index mask, optionally over its image, with outlines and a legend."""

    void_rgb = _parse_rgb(ignore_color, "--ignore-color")
    if output is None and not term:
        raise typer.BadParameter("give an output file (- for stdout) or use --term", param_hint="--output")
    if output is not None:
        _check_output(output, force)

    from segtool.core.console import warn
    from segtool.data.images import read_image
    from segtool.data.masks import read_index_mask
    from segtool.data.palettes import get_palette
    from segtool.viz.mask_view import compose_mask_picture, mark_void, match_mask_size

    pal = get_palette(palette)
    labels = mark_void(read_index_mask(mask), void_value, pal.ignore_index)
    pixels = None
    if image is not None:
        pixels = read_image(image)
        labels = match_mask_size(labels, pixels.shape, resize=resize, mask_name=str(mask), image_name=str(image))
    picture = compose_mask_picture(labels, pal, pixels, alpha=alpha, ignore_color=void_rgb,
                                   outline=outline, legend=legend, tint_background=tint_background)
    if picture.unknown:
        values = ", ".join(str(v) for v in sorted(picture.unknown)[:8]) + (", ..." if len(picture.unknown) > 8 else "")
        hint = (f" (if {pal.num_classes} marks void in these masks, add --void-value {pal.num_classes})"
                if pal.num_classes in picture.unknown else "")
        warn(f"{mask}: {picture.unknown_pixels} pixels hold values outside the {pal.name} palette "
             f"(0..{pal.num_classes - 1}, {pal.ignore_index} = void): {values}; shown in magenta{hint}")
    if output is not None:
        from segtool.core.io import save_image

        save_image(picture.image, output, force=force)
        _wrote(output)
    if term:
        _print_preview(picture, legend)


def _print_preview(picture, legend: bool) -> None:
    from rich.console import Console

    from segtool.viz.legend import legend_table
    from segtool.viz.terminal import half_block_preview

    # --term asks for terminal drawing, so keep the colours even when stdout is a pipe (less -R).
    out = Console(force_terminal=True, highlight=False)
    out.print(half_block_preview(picture.rgb, max_columns=min(out.width, 100), max_lines=40))
    if legend:
        out.print(legend_table(picture.entries))


@app.command("compare")
def compare(
    images: Annotated[list[Path], typer.Option(
        "--image", "-i", help="Image of one sample (repeat: one per row).")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="GRID.png|-", help="Grid picture to write.")],
    preds: Annotated[list[Path] | None, typer.Option(
        "--pred", help="Predicted index mask, one per --image, in the same order.")] = None,
    gts: Annotated[list[Path] | None, typer.Option(
        "--gt", help="Ground-truth index mask, one per --image, in the same order.")] = None,
    titles: Annotated[bool, typer.Option(
        "--titles", help="Column headers, and per row the name, pixel accuracy and mIoU.")] = False,
    palette: PaletteOpt = "voc",
    resize: ResizeOpt = False,
    void_value: VoidValueOpt = 255,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Grid of samples: rows = samples, columns = image / prediction / ground truth."""

    preds, gts = preds or [], gts or []
    if not preds and not gts:
        raise typer.BadParameter("give --pred and/or --gt masks to compare", param_hint="--pred/--gt")
    for name, given in (("--pred", preds), ("--gt", gts)):
        if given and len(given) != len(images):
            raise typer.BadParameter(f"{len(images)} --image but {len(given)} {name}: give one per --image",
                                     param_hint=name)
    _check_output(output, force)

    from segtool.core.io import save_image
    from segtool.data.images import read_image
    from segtool.data.masks import read_index_mask
    from segtool.data.palettes import get_palette
    from segtool.viz.grid import CompareSample, render_compare_grid
    from segtool.viz.mask_view import mark_void, match_mask_size

    pal = get_palette(palette)

    def load_mask(paths: list[Path], i: int, pixels, image_path: Path):
        if not paths:
            return None
        labels = mark_void(read_index_mask(paths[i]), void_value, pal.ignore_index)
        return match_mask_size(labels, pixels.shape, resize=resize,
                               mask_name=str(paths[i]), image_name=str(image_path))

    samples = []
    for i, image_path in enumerate(images):
        pixels = read_image(image_path)
        samples.append(CompareSample(pixels, load_mask(preds, i, pixels, image_path),
                                     load_mask(gts, i, pixels, image_path), image_path.stem))
    save_image(render_compare_grid(samples, pal, titles=titles), output, force=force)
    _wrote(output)


@app.command("plot-log")
def plot_log(
    run_dir: Annotated[Path, typer.Argument(help="Training run directory holding metrics.jsonl.")],
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="OUT.png|-", help="Picture to write (default RUN_DIR/curves.png).")] = None,
    size: Annotated[str, typer.Option("--size", metavar="WxH", help="Picture size in pixels.")] = "1200x800",
    term: Annotated[bool, typer.Option(
        "--term", help="Print a table with sparklines instead (no matplotlib needed).")] = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Loss, pixel accuracy, mIoU and learning rate against epoch from a run's metrics.jsonl."""

    width_height = hw_option(size, "--size", order="wh", square=False, minimum=64, maximum=10000)
    write = output is not None or not term
    output = output if output is not None else str(run_dir / "curves.png")
    if write:
        _check_output(output, force)

    from segtool.viz.curves import curves_table, plot_curves, read_metrics

    records = read_metrics(run_dir)
    if term:
        from rich.console import Console

        Console(highlight=False).print(curves_table(records))
    if write:
        plot_curves(records, output, width_height, force=force, title=run_dir.resolve().name)
        _wrote(output)
