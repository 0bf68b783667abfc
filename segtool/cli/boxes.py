"""`segtool anchors`, `iou`, `box-convert`, `nms`: boxes from files, stdin or the command line.

Thin layer: parse options, call segtool.ops.boxes, print. Data goes to stdout (text, CSV, JSON
or JSON lines), so the commands compose in shell pipelines; notices go to stderr.
"""

from __future__ import annotations

import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import Force, Json, Quiet, Runtime, hw_option, with_runtime

app = typer.Typer()

BOX_HELP = ("Boxes: a CSV file (4 numbers per line, or a header naming x1,y1,x2,y2 / x,y,w,h / cx,cy,w,h), "
            "JSON (list of 4-lists or objects), JSON lines, or - for stdin.")


class BoxFormat(str, Enum):
    xyxy = "xyxy"
    xywh = "xywh"
    cxcywh = "cxcywh"


class IouKind(str, Enum):
    iou = "iou"
    giou = "giou"
    diou = "diou"
    ciou = "ciou"


# ---- option parsing (pure strings, no torch) ---------------------------------------------------

def _parse_numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise typer.BadParameter(f"{option}: expected positive numbers, got {text!r}")
    return values


def _parse_at(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--at: expected Y,X (row, column) like 250,250, got {text!r}") from None
    return y, x


def _style(json_out: bool, csv_out: bool, default: str = "text") -> str:
    if json_out and csv_out:
        raise typer.BadParameter("give --json or --csv, not both")
    return "jsonl" if json_out else "csv" if csv_out else default


def _device(runtime: Runtime):
    """The torch device, named on stderr only where it matters: another device than the CPU, or
    --device / --threads given (box work is small; a line on every CPU run is noise)."""
    from segtool.core.console import notice
    from segtool.core.device import default_threads, resolve_device

    threads = runtime.threads if runtime.threads is not None else default_threads()
    dev = resolve_device(runtime.device_spec, npu_transfer=runtime.npu_transfer, threads=threads, announce=False)
    if dev.type != "cpu" or runtime.device_spec != "auto" or runtime.threads is not None:
        import torch

        threads = torch.get_num_threads()
        notice(f"device: {dev}" + (f", {threads} thread{'s' * (threads != 1)}" if dev.type == "cpu" else ""))
    return dev


def _image_size(path: Path) -> tuple[int, int]:
    from segtool.data.images import image_size

    width, height = image_size(path)
    return height, width


def _load_image(path: Path):
    from segtool.data.images import open_image, to_rgb

    return to_rgb(open_image(path), path)


# ---- anchors -----------------------------------------------------------------------------------

@app.command("anchors")
@with_runtime
def anchors(
    image: Annotated[Path | None, typer.Option("--image", help="Image whose size the anchors cover.")] = None,
    size: Annotated[str | None, typer.Option("--size", help="Image size HxW instead of --image, e.g. 561x728.")] = None,
    sizes: Annotated[str, typer.Option("--sizes", help="Anchor sizes (fractions of the image height).")] = "0.75,0.5,0.25",
    ratios: Annotated[str, typer.Option("--ratios", help="Aspect ratios w/h.")] = "1,2,0.5",
    at: Annotated[str | None, typer.Option("--at", help="List the anchors centred on pixel Y,X (row, column).")] = None,
    pixels: Annotated[bool, typer.Option("--pixels", help="Coordinates in pixels instead of 0..1.")] = False,
    all_anchors: Annotated[bool, typer.Option("--all", help="Stream every anchor (row,col,k,x1,y1,x2,y2).")] = False,
    draw: Annotated[Path | None, typer.Option("--draw", help="Draw the anchors at --at on the image into this PNG.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON (JSON lines with --all).")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV with a header.")] = False,
    force: Force = False,
    *,
    runtime: Runtime,
) -> None:
    """Anchor boxes of d2l's multibox_prior: count and layout, the anchors at a pixel, or all of them.

    Every pixel gets n + m - 1 anchors: (size_i, ratio_1) for each size, then (size_1, ratio_j).
    """
    if (image is None) == (size is None):
        raise typer.BadParameter("give exactly one of --image or --size")
    size_list, ratio_list = _parse_numbers(sizes, "--sizes"), _parse_numbers(ratios, "--ratios")
    point = _parse_at(at)
    style = _style(json_out, csv_out)
    if draw is not None and point is None:
        raise typer.BadParameter("--draw needs --at Y,X (the pixel whose anchors to draw)")
    if all_anchors and point is not None:
        raise typer.BadParameter("give --all or --at, not both")
    height, width = _image_size(image) if image is not None else hw_option(size, "--size", square=False)

    from segtool.ops.boxes import anchors as anc
    from segtool.ops.boxes import output

    anc.check_anchor_args(height, width, size_list, ratio_list)
    if point is not None:
        anc.check_pixel(height, width, *point)
    if draw is not None:
        from segtool.core.io import check_output

        check_output(draw, force)
        background = _load_image(image) if image is not None else None
    dev = _device(runtime) if all_anchors or point is not None else None

    if all_anchors:
        output.write_all_anchors(sys.stdout, height, width, size_list, ratio_list, pixels,
                                 "csv" if style == "text" else style, dev)
    elif point is not None:
        boxes = anc.anchors_at(height, width, size_list, ratio_list, *point, pixels=pixels, device=dev)
        output.write_anchors_at(sys.stdout, height, width, size_list, ratio_list, point, boxes, pixels, style)
        if draw is not None:
            _draw_anchors(background, height, width, size_list, ratio_list, point, draw, force, dev)
    else:
        output.write_anchor_layout(sys.stdout, height, width, size_list, ratio_list, style)


def _draw_anchors(background, height, width, sizes, ratios, point, out, force, dev) -> None:
    from PIL import Image

    from segtool.ops.boxes import anchors as anc
    from segtool.ops.boxes.write import format_number

    canvas = background if background is not None else Image.new("RGB", (width, height), "white")
    boxes = anc.anchors_at(height, width, sizes, ratios, *point, pixels=True, device=dev).cpu().tolist()
    labels = [f"s={format_number(s.size)}, r={format_number(s.ratio)}"
              for s in anc.anchor_shapes(height, width, sizes, ratios)]
    _save_drawing(canvas, boxes, labels, out, force)


def _save_drawing(canvas, boxes, labels, out: Path, force: bool) -> None:
    from segtool.core.console import notice
    from segtool.core.io import save_image
    from segtool.viz.draw_boxes import draw_boxes

    save_image(draw_boxes(canvas, boxes, labels), out, force=force)
    notice(f"wrote {out}")


# ---- iou ---------------------------------------------------------------------------------------

def _read_box_sets(sources: list[str], inline: list[str], in_format: BoxFormat | None, fix: bool,
                   group: str | None = None, keep=()):
    """The box sets (1 or 2): BoxTables (files) or a BoxSet (--box), and their validated float64 xyxy arrays."""
    from segtool.ops.boxes.read import boxes_from_text
    from segtool.ops.boxes.read_table import read_box_table

    fmt = in_format.value if in_format else None
    if sum(s == "-" for s in sources) > 1:
        raise typer.BadParameter("only one input can be - (stdin)")
    if group is not None and inline:
        raise typer.BadParameter("--group needs box files for A and B, not --box")
    sets = [read_box_table(s, fmt, group=group, keep=keep) for s in sources]
    arrays = [t.xyxy(fix) for t in sets]
    if inline:
        from segtool.ops.boxes.formats import validate_boxes

        inline_set = boxes_from_text(inline, fmt)
        sets.append(inline_set)
        arrays.append(validate_boxes(inline_set.tensor(), inline_set.fmt, source=inline_set.source,
                                     names=[r.where for r in inline_set.records], fix=fix).numpy())
    if not sets:
        raise typer.BadParameter("give a box file (or - for stdin) or --box x1,y1,x2,y2")
    if len(sets) > 2:
        raise typer.BadParameter("at most two box sets: A and B (files or --box)")
    return sets, arrays


Group = Annotated[str | None, typer.Option("--group", help="Compare boxes only within a group (e.g. an image id): "
                                           "a CSV header name, a JSON key, or a 0-based column index.",
                                           show_default=False)]


@app.command("iou")
@with_runtime
def iou(
    a: Annotated[str | None, typer.Argument(help=f"Set A. {BOX_HELP}", show_default=False)] = None,
    b: Annotated[str | None, typer.Argument(help="Set B (same forms); default: A against itself.",
                                            show_default=False)] = None,
    box: Annotated[list[str] | None, typer.Option("--box", help="An inline box x1,y1,x2,y2 (repeatable); "
                                                  "forms set A, or B when a file gives A.")] = None,
    kind: Annotated[IouKind, typer.Option("--kind", help="iou, giou, diou or ciou.")] = IouKind.iou,
    in_format: Annotated[BoxFormat | None, typer.Option(
        "--in-format", help="Format of plain 4-number boxes (named fields decide otherwise). [default: xyxy]")] = None,
    best: Annotated[bool, typer.Option("--best", help="For each box in A, the best match in B.")] = False,
    min_iou: Annotated[float | None, typer.Option("--min-iou", help="Only pairs with a value >= T.")] = None,
    group: Group = None,
    fix: Annotated[bool, typer.Option("--fix", help="Swap inverted corners instead of failing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON (JSON lines for --best / --min-iou).")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV.")] = False,
    draw: Annotated[Path | None, typer.Option("--draw", help="Image to draw A and B on (with -o).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="PNG written by --draw.")] = None,
    force: Force = False,
    *,
    runtime: Runtime,
) -> None:
    """Pairwise IoU / GIoU / DIoU / CIoU of box sets A and B: the matrix, best matches, or pairs above T.

    --best and --min-iou never build the full matrix: IoU uses a spatial index (exact values) and
    the other kinds compare rows of A with B in blocks. --group compares boxes within a group only
    and writes the group key first; without --best / --min-iou it lists every same-group pair.
    """
    style = _style(json_out, csv_out)
    if min_iou is not None and not math.isfinite(min_iou):
        raise typer.BadParameter(f"--min-iou: expected a finite number, got {min_iou}")
    if (draw is None) != (output is None):
        raise typer.BadParameter("--draw IMG and -o OUT.png go together")
    canvas = None
    if output is not None:
        from segtool.core.io import check_output

        check_output(output, force)
        canvas = _load_image(draw)
    sets, arrays = _read_box_sets([s for s in (a, b) if s is not None], box or [], in_format, fix, group)
    boxes_a, boxes_b = arrays[0], arrays[-1]
    if group is not None or best or min_iou is not None:
        from segtool.core.console import notice
        from segtool.ops.boxes.groups import align_groups, matches
        from segtool.ops.boxes.output import write_matches

        grouping = align_groups(sets[0], sets[-1]) if group is not None else None
        threshold = min_iou if min_iou is not None or best else float("-inf")
        chunks = matches(boxes_a, boxes_b, kind.value, best=best, min_iou=threshold, grouping=grouping,
                         device=None if group is not None else _device(runtime))
        write_matches(sys.stdout, chunks, kind.value, style, group=group,
                      groups=grouping.a if grouping else None, keys=grouping.keys if grouping else None)
        if grouping is not None:
            notice(grouping.summary.line(group))
    else:
        import torch

        from segtool.ops.boxes.formats import on_device
        from segtool.ops.boxes.output import write_matrix

        dev = _device(runtime)
        write_matrix(sys.stdout, on_device(torch.from_numpy(boxes_a), dev), on_device(torch.from_numpy(boxes_b), dev),
                     kind.value, style)
    if canvas is not None:
        boxes = [box for t in arrays for box in t.tolist()]
        labels = [f"{name}{i}" for name, t in zip("AB", arrays, strict=False) for i in range(len(t))]
        _save_drawing(canvas, boxes, labels, output, force)


# ---- box-convert -------------------------------------------------------------------------------

@app.command("box-convert")
def box_convert(
    source: Annotated[str, typer.Argument(help=f"{BOX_HELP} Default: stdin.")] = "-",
    from_fmt: Annotated[BoxFormat | None, typer.Option(
        "--from", help="Input format (named fields decide when omitted; plain numbers: xyxy).")] = None,
    to_fmt: Annotated[BoxFormat, typer.Option("--to", help="Output format.")] = ...,
    size: Annotated[str | None, typer.Option("--size", help="Image size HxW for --normalize/--denormalize/--clip.")] = None,
    normalize: Annotated[bool, typer.Option("--normalize", help="Pixels -> fractions of the image.")] = False,
    denormalize: Annotated[bool, typer.Option("--denormalize", help="Fractions of the image -> pixels.")] = False,
    clip: Annotated[bool, typer.Option("--clip", help="Clip to the image (0..1 when the output is normalised).")] = False,
    fix: Annotated[bool, typer.Option("--fix", help="Swap inverted corners instead of failing.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="Output file (- = stdout).")] = "-",
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Convert boxes between xyxy, xywh and cxcywh, streaming; output has the input's layout.

    CSV stays CSV (header renamed, other columns kept), JSON lines stay JSON lines, a JSON
    document stays a JSON document. Runs on the CPU: it is text in, text out.
    """
    from segtool.core.console import notice, plural
    from segtool.core.io import atomic_open, is_stdio
    from segtool.ops.boxes.stream import convert_box_file

    if normalize and denormalize:
        raise typer.BadParameter("give --normalize or --denormalize, not both")
    image_size = hw_option(size, "--size", square=False)
    if (normalize or denormalize or clip) and image_size is None:
        raise typer.BadParameter("--normalize, --denormalize and --clip need --size HxW")
    scale = "normalize" if normalize else "denormalize" if denormalize else None
    kwargs = dict(in_fmt=from_fmt.value if from_fmt else None, size=image_size, scale=scale, clip=clip, fix=fix)
    if is_stdio(output):
        convert_box_file(source, sys.stdout, to_fmt.value, **kwargs)
        return
    with atomic_open(output, "w", force=force) as handle:
        count = convert_box_file(source, handle, to_fmt.value, **kwargs)
    notice(f"wrote {plural(count, 'box', 'boxes')} to {output}")


# ---- nms ---------------------------------------------------------------------------------------

@app.command("nms")
@with_runtime
def nms(
    boxes: Annotated[str, typer.Argument(help=BOX_HELP)],
    scores: Annotated[str, typer.Option("--scores", help="Scores: a column of BOXES (e.g. score), a file "
                                        "(one per line or a JSON list), or a list like 0.9,0.8,0.3.")] = ...,
    iou_threshold: Annotated[float, typer.Option("--iou", min=0.0, max=1.0,
                                                 help="Suppress boxes overlapping a better one by more.")] = 0.5,
    classes: Annotated[str | None, typer.Option("--classes", help="Class per box (same forms as --scores); "
                                                "only boxes of one class suppress each other.")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Drop boxes scoring below this first.")] = None,
    in_format: Annotated[BoxFormat | None, typer.Option(
        "--in-format", help="Format of plain 4-number boxes. [default: xyxy]")] = None,
    rows: Annotated[bool, typer.Option("--rows", help="Print the kept boxes, not only their indices.")] = False,
    group: Group = None,
    fix: Annotated[bool, typer.Option("--fix", help="Swap inverted corners instead of failing.")] = False,
    json_out: Json = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV with a header.")] = False,
    *,
    runtime: Runtime,
) -> None:
    """Non-maximum suppression: the indices (0-based, best score first) of the boxes that survive.

    With --group only boxes of one group suppress each other; the output is a table (group, index, ...)
    group by group, best score first inside each.
    """
    import torch

    from segtool.ops.boxes.box_table import table_values
    from segtool.ops.boxes.formats import on_device
    from segtool.ops.boxes.nms import suppress
    from segtool.ops.boxes.output import write_kept

    style = _style(json_out, csv_out)
    stdin_uses = [name for name, spec in (("BOXES", boxes), ("--scores", scores), ("--classes", classes)) if spec == "-"]
    if len(stdin_uses) > 1:
        raise typer.BadParameter(f"only one input can be - (stdin), not {' and '.join(stdin_uses)}",
                                 param_hint=stdin_uses[-1])
    (table,), (xyxy,) = _read_box_sets([boxes], [], in_format, fix, group, keep=[scores, classes or ""])
    score_values = torch.from_numpy(table_values(table, scores, "--scores"))
    class_values = class_ids = None
    if classes is not None:
        class_values = table_values(table, classes, "--classes", numeric=False).tolist()
        ids = {}
        class_ids = torch.tensor([ids.setdefault(str(c), len(ids)) for c in class_values])
    if group is not None:  # one batch id per (group, class): batched_nms keeps the batches apart
        group_ids = torch.from_numpy(table.groups.astype("int64"))
        class_ids = group_ids if class_ids is None else group_ids * (int(class_ids.max()) + 1) + class_ids
    dev = _device(runtime)
    keep = suppress(on_device(torch.from_numpy(xyxy), dev), on_device(score_values, dev), iou_threshold,
                    classes=class_ids, min_score=min_score)
    write_kept(sys.stdout, table, keep.cpu().numpy(), score_values, class_values, rows=rows, style=style,
               group=group)
