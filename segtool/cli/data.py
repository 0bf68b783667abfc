"""`segtool palette | colormap2label | label2color | voc-stats | make-demo-data`: datasets and labels.

No tensors here (numpy and PIL, multiprocessing for voc-stats), so no device options.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import Force, Json, Quiet, hw_option
from segtool.cli.viz import VoidValueOpt
from segtool.core.conventions import DEMO_SET

app = typer.Typer()

PaletteOpt = Annotated[str, typer.Option(
    "--palette", "-p", help="Class names and colours: voc, camvid32, camvid11, cityscapes, or a CSV/YAML file.")]
InputsArg = Annotated[list[str], typer.Argument(
    help="Mask files, directories (every image inside), or - to read paths from stdin, one per line.",
    show_default=False)]
OutputOpt = Annotated[str | None, typer.Option(
    "--output", "-o", metavar="OUT.png|-", help="Output file for a single input (- = PNG on stdout).")]
OutDirOpt = Annotated[str | None, typer.Option(
    "--out-dir", "-d", metavar="DIR", help="Write <stem>.png for every input into DIR.")]
UNKNOWN_CHOICES = ("ignore", "error")
FORMATS = ("voc", "camvid", "folder")


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"expected one of {', '.join(choices)}, got {value!r}", param_hint=option)
    return value


def _convert_masks(command: str, what: str, convert, inputs: list[str], output: str | None, out_dir: str | None,
                   palette: str, force: bool, json_out: bool, quiet: bool) -> None:
    """colormap2label and label2color: plan every output up front, ``convert(plan, palette, on_done=)``
    with a progress bar, then report pixels whose ``what`` (colours / labels) the palette lacks."""
    if (output is None) == (out_dir is None):
        raise typer.BadParameter("give exactly one of -o/--output or --out-dir", param_hint="--output")
    from segtool.core.console import progress
    from segtool.core.io import iter_input_paths, plan_outputs
    from segtool.data.images import IMAGE_EXTENSIONS
    from segtool.data.palettes import get_palette

    pal = get_palette(palette)
    plan = plan_outputs(iter_input_paths(inputs, IMAGE_EXTENSIONS), output, out_dir, force)
    with progress() as bar:
        task = bar.add_task(command, total=len(plan))
        reports = convert(plan, pal, on_done=lambda: bar.advance(task))
    _report(reports, pal.name, json_out, what)


def _report(reports, palette_name: str, json_out: bool, what: str) -> None:
    from segtool.core.console import emit_json, notice, plural, warn

    pixels = sum(r.pixels for r in reports)
    unknown = sum(r.unknown_pixels for r in reports)
    snapped = sum(r.snapped_pixels for r in reports)
    for r in reports:
        if r.unknown_pixels:
            warn(f"{r.input}: {r.unknown_pixels} of {r.pixels} pixels have {what} not in palette "
                 f"{palette_name}")
    notice(f"{plural(len(reports), 'file')}, {plural(pixels, 'pixel')}, {unknown} with {what} not in palette {palette_name}"
           + (f", {snapped} snapped by --tolerance" if snapped else ""))
    if json_out:
        emit_json({"palette": palette_name, "files": [r.to_dict() for r in reports],
                   "total": {"files": len(reports), "pixels": pixels, "unknown_pixels": unknown,
                             "snapped_pixels": snapped}})


@app.command("palette")
def palette_cmd(
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME|FILE]", help="voc, camvid32, camvid11, cityscapes or a CSV/YAML palette file; "
        "omitted: list the built-in palettes.")] = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Print a palette: index, name and colour of every class (with swatches on a terminal)."""
    from segtool.core.console import emit_json, emit_line
    from segtool.data.palettes import get_palette, list_palettes

    if name is None:
        summary = [{"name": n, "num_classes": get_palette(n).num_classes} for n in list_palettes()]
        if json_out:
            emit_json({"palettes": summary})
        else:
            for item in summary:
                emit_line(f"{item['name']}\t{item['num_classes']} classes")
        return
    pal = get_palette(name)
    if json_out:
        emit_json(pal.to_dict())
        return
    rows = [(i, n, tuple(int(v) for v in pal.colors[i])) for i, n in enumerate(pal.names)]
    if pal.ignore_color is not None:
        rows.append((pal.ignore_index, "(ignore)", tuple(pal.ignore_color)))
    from rich.console import Console

    out = Console(highlight=False)
    if out.is_terminal:
        from rich.table import Table

        table = Table(title=f"palette {pal.name}: {pal.num_classes} classes")
        for column in ("index", "name", "colour", "rgb"):
            table.add_column(column, justify="right" if column == "index" else "left")
        for index, label, (r, g, b) in rows:
            table.add_row(str(index), label, f"[on rgb({r},{g},{b})]      [/]", f"{r},{g},{b}")
        out.print(table)
    else:
        for index, label, (r, g, b) in rows:
            emit_line(f"{index}\t{label}\t{r},{g},{b}")


@app.command("colormap2label")
def colormap2label(
    inputs: InputsArg,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    palette: PaletteOpt = "voc",
    unknown: Annotated[str, typer.Option(
        "--unknown", metavar="ignore|error",
        help="Colours not in the palette: ignore = label 255 and count them; error = stop at the first.")] = "ignore",
    tolerance: Annotated[float, typer.Option(
        "--tolerance", "-t", min=0.0, metavar="T",
        help="Snap colours within Euclidean RGB distance T to the nearest palette colour (JPEG-saved masks).")] = 0.0,
    gray: Annotated[bool, typer.Option(
        "--gray", help="Write plain 8-bit grey (L) PNGs instead of palette-mode PNGs.")] = False,
    json_out: Json = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Convert RGB colour masks to label masks (palette-mode PNGs holding class indices)."""
    from segtool.data.convert import colormap_to_label

    _choice(unknown, UNKNOWN_CHOICES, "--unknown")
    convert = partial(colormap_to_label, unknown=unknown, tolerance=tolerance, gray=gray, force=force)
    _convert_masks("colormap2label", "colours", convert, inputs, output, out_dir, palette, force, json_out, quiet)


@app.command("label2color")
def label2color(
    inputs: InputsArg,
    output: OutputOpt = None,
    out_dir: OutDirOpt = None,
    palette: PaletteOpt = "voc",
    void_value: VoidValueOpt = 255,
    json_out: Json = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Render label masks (P or L PNGs of class indices) as RGB colour PNGs; the inverse of colormap2label."""
    from segtool.data.convert import label_to_color

    convert = partial(label_to_color, force=force, void_value=void_value)
    _convert_masks("label2color", "labels", convert, inputs, output, out_dir, palette, force, json_out, quiet)


@app.command("make-demo-data")
def make_demo_data(
    out_dir: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to create (VOC layout).")],
    # Defaults: the set `segtool train` generates when it finds no data (core.conventions.DEMO_SET).
    train: Annotated[int, typer.Option("--train", min=1, help="Training images.")] = DEMO_SET["train"],
    val: Annotated[int, typer.Option("--val", min=0, help="Validation images.")] = DEMO_SET["val"],
    size: Annotated[int, typer.Option("--size", min=32, max=1024, help="Image side in pixels.")] = DEMO_SET["size"],
    classes: Annotated[int, typer.Option(
        "--classes", min=1, max=8, help="Object classes (VOC indices 1..K), besides background.")] = DEMO_SET["classes"],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same files.")] = DEMO_SET["seed"],
    json_out: Json = False,
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Replace DIR if it holds a previous demo set.")] = False,
    quiet: Quiet = False,
) -> None:
    """Write a small synthetic dataset in the VOC layout (shapes on a textured background)."""
    from segtool.core.console import emit_json, notice
    from segtool.data.demo import make_demo_dataset, read_manifest

    root = make_demo_dataset(out_dir, train=train, val=val, size=size, classes=classes, seed=seed, force=force)
    manifest = read_manifest(root)
    notice(f"wrote {root}: {train} train + {val} val images, {size}x{size}, classes "
           + ", ".join(manifest["class_names"]))
    if json_out:
        emit_json({"root": str(root), **manifest})


def _folder_layout(fmt: str, images: str | None, masks: str | None, val_fraction: float | None, split_seed: int):
    """The folder format's layout options (the ones train records), refused for other formats."""
    from segtool.data.folder import FolderLayout

    if fmt != "folder" and (images or masks or val_fraction is not None):
        raise typer.BadParameter("--images, --masks and --val-fraction need --format folder",
                                 param_hint="--format")
    if bool(images) != bool(masks):
        raise typer.BadParameter("--images and --masks go together", param_hint="--images")
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise typer.BadParameter(f"must be between 0 and 1 (exclusive), got {val_fraction}",
                                 param_hint="--val-fraction")
    return FolderLayout(images, masks, val_fraction, split_seed)


@app.command("voc-stats")
def voc_stats(
    root: Annotated[Path | None, typer.Argument(
        metavar="[ROOT]", help="VOC2012 folder, VOCdevkit or its parent (default: $SEGTOOL_DATA/VOCdevkit/"
        "VOC2012, else ./data/VOCdevkit/VOC2012); a CamVid or images/+masks/ folder with --format.")] = None,
    split: Annotated[str, typer.Option(
        "--split", "-s", metavar="train|val|trainval|all", help="Which images; all = every split, each once.")] = "train",
    crop: Annotated[str | None, typer.Option(
        "--crop", metavar="HxW", help="Also count the images at least this size (e.g. 320x480), per split.")] = None,
    mean_std: Annotated[bool, typer.Option(
        "--mean-std", help="Also compute the per-channel RGB mean and std (decodes every image: slower).")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=1, help="Worker processes (default: CPU cores, at most 4).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", metavar="voc|camvid|folder", help="Dataset layout under ROOT.")] = "voc",
    palette: Annotated[str | None, typer.Option(
        "--palette", "-p", help="Palette for class names / RGB masks (default: the format's own).")] = None,
    download: Annotated[bool, typer.Option(
        "--download", help="Fetch VOC2012 (about 2 GB) with torchvision's downloader if ROOT lacks it.")] = False,
    binary: Annotated[bool, typer.Option(
        "--binary", help="Binary masks: grey values >= 128 are class 1 (0/255 PNG or JPEG masks).")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit with status 1 when any problem (missing, unreadable, bad labels) is found.")] = False,
    images: Annotated[str | None, typer.Option(
        "--images", metavar="DIR", help="Image folder (folder format, with --masks; default: detected).")] = None,
    masks: Annotated[str | None, typer.Option(
        "--masks", metavar="DIR", help="Mask folder (folder format, with --images).")] = None,
    val_fraction: Annotated[float | None, typer.Option(
        "--val-fraction", metavar="F", help="The seeded train/val split train uses (folder format without "
        "split lists): --split train|val|all then means its parts.")] = None,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the --val-fraction split.")] = 0,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Statistics of a segmentation dataset: sizes, class pixels and images, void share, class weights."""
    from segtool.core.console import emit_json, plural, progress
    from segtool.core.paths import default_voc_root
    from segtool.data.stats import SPLIT_CHOICES, dataset_stats, default_workers
    from segtool.data.stats_report import render_stats

    _choice(fmt, FORMATS, "--format")
    _choice(split, SPLIT_CHOICES, "--split")
    crop_hw = hw_option(crop, "--crop")
    layout = _folder_layout(fmt, images, masks, val_fraction, split_seed)
    if root is None:
        if fmt != "voc":
            raise typer.BadParameter(f"--format {fmt} needs a ROOT folder", param_hint="ROOT")
        root = default_voc_root()
    if not (download and fmt == "voc"):
        from segtool.data.label_check import check_dataset

        check_dataset(fmt, root, "train" if split == "all" else split, None, palette=palette,
                      binary=binary, layout=layout).report(strict=False)
    with progress() as bar:
        task = bar.add_task("voc-stats", total=None)
        report = dataset_stats(fmt, root, split, crop=crop_hw, mean_std=mean_std,
                               workers=workers or default_workers(), palette=palette, binary=binary,
                               download=download, on_sample=lambda: bar.advance(task), layout=layout)
    render_stats(report)
    if json_out:
        emit_json(report)
    if strict and report["problems"]:
        from segtool.core.errors import SegtoolError

        raise SegtoolError(f"{report['root']}: {plural(len(report['problems']), 'problem')} found (--strict)")
