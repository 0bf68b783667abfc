"""`segtool anchors`, `iou`, `box-convert`, `nms`: boxes from files, stdin or the command line.

Thin layer: parse options, call segtool.ops.boxes, print. Data goes to stdout (text, CSV, JSON
or JSON lines), so the commands compose in shell pipelines; notices go to stderr.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import Device, Force, Json, NpuTransfer, Quiet, Threads, device_from_options
from segtool.core.errors import SegtoolError

app = typer.Typer()

MAX_MATRIX_VALUES = 10**8  # a printed matrix beyond this is never useful: --best / --min-iou answer big inputs
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

def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace("*", "x").split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"expected HxW like 561x728, got {text!r}") from None
    if height < 1 or width < 1:
        raise typer.BadParameter(f"height and width must be at least 1, got {text!r}")
    return height, width


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


def _image_size(path: Path) -> tuple[int, int]:
    from segtool.data.images import image_size

    width, height = image_size(path)
    return height, width


def _load_image(path: Path):
    from segtool.data.images import open_image, to_rgb

    return to_rgb(open_image(path), path)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _num(value: float) -> str:
    from segtool.ops.boxes.files import format_number

    return format_number(float(value))


# ---- anchors -----------------------------------------------------------------------------------

@app.command("anchors")
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
    device: Device = "auto",
    npu_transfer: NpuTransfer = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Anchor boxes of d2l's multibox_prior: count and layout, the anchors at a pixel, or all of them.

    Every pixel gets n + m - 1 anchors: (size_i, ratio_1) for each size, then (size_1, ratio_j).
    """
    from segtool.core.console import set_quiet

    set_quiet(quiet)
    if (image is None) == (size is None):
        raise typer.BadParameter("give exactly one of --image or --size")
    size_list, ratio_list = _parse_numbers(sizes, "--sizes"), _parse_numbers(ratios, "--ratios")
    point = _parse_at(at)
    style = _style(json_out, csv_out)
    if draw is not None and point is None:
        raise typer.BadParameter("--draw needs --at Y,X (the pixel whose anchors to draw)")
    if all_anchors and point is not None:
        raise typer.BadParameter("give --all or --at, not both")
    height, width = _image_size(image) if image is not None else _parse_size(size)

    from segtool.ops.boxes import anchors as anc

    anc.check_anchor_args(height, width, size_list, ratio_list)
    if point is not None:
        anc.check_pixel(height, width, *point)
    if draw is not None:
        from segtool.core.io import check_output

        check_output(draw, force)
        background = _load_image(image) if image is not None else None
    dev = device_from_options(device, npu_transfer, threads)

    if all_anchors:
        _stream_all_anchors(height, width, size_list, ratio_list, pixels, "csv" if style == "text" else style, dev)
    elif point is not None:
        boxes = anc.anchors_at(height, width, size_list, ratio_list, *point, pixels=pixels, device=dev).cpu()
        _print_anchors_at(height, width, size_list, ratio_list, point, boxes, pixels, style)
        if draw is not None:
            _draw_anchors(background, height, width, size_list, ratio_list, point, draw, force, dev)
    else:
        _print_anchor_layout(height, width, size_list, ratio_list, style)


def _print_anchor_layout(height, width, sizes, ratios, style) -> None:
    from segtool.core.console import emit_json, emit_line
    from segtool.ops.boxes import anchors as anc
    from segtool.ops.boxes.tables import TableWriter

    shapes = anc.anchor_shapes(height, width, sizes, ratios)
    count = anc.anchor_count(height, width, sizes, ratios)
    if style == "jsonl":
        emit_json({"height": height, "width": width, "sizes": sizes, "ratios": ratios,
                   "per_pixel": len(shapes), "count": count, "shape": [1, count, 4],
                   "order": ["row", "column", "anchor"], "layout": [vars(s) for s in shapes]})
        return
    if style == "text":
        emit_line(f"image {height}x{width} (HxW), sizes {', '.join(map(_num, sizes))}, "
                  f"ratios {', '.join(map(_num, ratios))}")
        emit_line(f"{len(shapes)} anchors per pixel (n + m - 1), {count} in all: tensor (1, {count}, 4), "
                  "normalised xyxy, pixel-major (row, column, anchor)")
    table = TableWriter(sys.stdout, ["k", "size", "ratio", "width", "height", "width_px", "height_px"], style)
    table.write([[str(s.k), _num(s.size), _num(s.ratio), f"{s.width:.6g}", f"{s.height:.6g}",
                  f"{s.width_px:.6g}", f"{s.height_px:.6g}"] for s in shapes])
    table.close()


def _print_anchors_at(height, width, sizes, ratios, point, boxes, pixels, style) -> None:
    from segtool.core.console import emit_json
    from segtool.ops.boxes import anchors as anc
    from segtool.ops.boxes.tables import TableWriter, format_float32

    shapes = anc.anchor_shapes(height, width, sizes, ratios)
    coords = format_float32(boxes.numpy()).tolist()
    if style == "jsonl":
        emit_json({"height": height, "width": width, "at": {"y": point[0], "x": point[1]},
                   "units": "pixels" if pixels else "normalized",
                   "anchors": [{"k": s.k, "size": s.size, "ratio": s.ratio,
                                **{k: float(v) for k, v in zip(("x1", "y1", "x2", "y2"), c, strict=True)}}
                               for s, c in zip(shapes, coords, strict=True)]})
        return
    table = TableWriter(sys.stdout, ["k", "size", "ratio", "x1", "y1", "x2", "y2"], style)
    table.write([[str(s.k), _num(s.size), _num(s.ratio), *c] for s, c in zip(shapes, coords, strict=True)])
    table.close()


def _stream_all_anchors(height, width, sizes, ratios, pixels, style, dev) -> None:
    import numpy as np

    from segtool.ops.boxes import anchors as anc
    from segtool.ops.boxes.tables import TableWriter, format_float32

    per_pixel = anc.anchors_per_pixel(sizes, ratios)
    table = TableWriter(sys.stdout, ["row", "col", "k", "x1", "y1", "x2", "y2"], style)
    scale = anc.pixel_scale(height, width, dev) if pixels else None
    band = max(1, 65536 // (width * per_pixel))  # image rows per chunk: ~64k anchors of text at a time
    row_cells = width * per_pixel
    col_k = np.stack((np.repeat(np.arange(width), per_pixel), np.tile(np.arange(per_pixel), width)), 1).astype(str)
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        grid = anc.anchor_grid(height, width, sizes, ratios, rows=(r0, r1), device=dev)
        if scale is not None:
            grid = grid * scale
        rows = np.repeat(np.arange(r0, r1), row_cells).astype(str)[:, None]
        cells = np.concatenate((rows, np.tile(col_k, (r1 - r0, 1)), format_float32(grid.reshape(-1, 4).cpu())), 1)
        table.write(cells.tolist())
    table.close()


def _draw_anchors(background, height, width, sizes, ratios, point, out, force, dev) -> None:
    from PIL import Image

    from segtool.core.console import notice
    from segtool.core.io import save_image
    from segtool.ops.boxes import anchors as anc
    from segtool.viz.draw_boxes import draw_boxes

    canvas = background if background is not None else Image.new("RGB", (width, height), "white")
    boxes = anc.anchors_at(height, width, sizes, ratios, *point, pixels=True, device=dev).cpu().tolist()
    labels = [f"s={_num(s.size)}, r={_num(s.ratio)}" for s in anc.anchor_shapes(height, width, sizes, ratios)]
    save_image(draw_boxes(canvas, boxes, labels), out, force=force)
    notice(f"wrote {out}")


# ---- iou ---------------------------------------------------------------------------------------

def _read_box_sets(sources: list[str], inline: list[str], in_format: BoxFormat | None, fix: bool):
    """The box sets (1 or 2) as validated float64 xyxy tensors, with their BoxSets."""
    from segtool.ops.boxes.files import boxes_from_text, read_boxes
    from segtool.ops.boxes.formats import validate_boxes

    fmt = in_format.value if in_format else None
    if sum(s == "-" for s in sources) > 1:
        raise typer.BadParameter("only one input can be - (stdin)")
    sets = [read_boxes(s, fmt) for s in sources]
    if inline:
        sets.append(boxes_from_text(inline, fmt))
    if not sets:
        raise typer.BadParameter("give a box file (or - for stdin) or --box x1,y1,x2,y2")
    if len(sets) > 2:
        raise typer.BadParameter("at most two box sets: A and B (files or --box)")
    tensors = [validate_boxes(s.tensor(), s.fmt, source=s.source, names=[r.where for r in s.records],
                              fix=fix) for s in sets]
    return sets, tensors


def _to_device(tensor, dev):
    """float64 where the device has it (MPS does not)."""
    import torch

    return tensor.to(dev, dtype=torch.float32 if dev.type == "mps" else torch.float64)


@app.command("iou")
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
    fix: Annotated[bool, typer.Option("--fix", help="Swap inverted corners instead of failing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON (JSON lines for --best / --min-iou).")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV.")] = False,
    draw: Annotated[Path | None, typer.Option("--draw", help="Image to draw A and B on (with -o).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="PNG written by --draw.")] = None,
    force: Force = False,
    device: Device = "auto",
    npu_transfer: NpuTransfer = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Pairwise IoU / GIoU / DIoU / CIoU of box sets A and B: the matrix, best matches, or pairs above T.

    Memory stays bounded (rows of A are compared with B in blocks), so --best and --min-iou work
    for 100,000 x 100,000 boxes.
    """
    from segtool.core.console import set_quiet

    set_quiet(quiet)
    style = _style(json_out, csv_out)
    if (draw is None) != (output is None):
        raise typer.BadParameter("--draw IMG and -o OUT.png go together")
    canvas = None
    if output is not None:
        from segtool.core.io import check_output

        check_output(output, force)
        canvas = _load_image(draw)
    sets, tensors = _read_box_sets([s for s in (a, b) if s is not None], box or [], in_format, fix)
    dev = device_from_options(device, npu_transfer, threads)
    boxes_a, boxes_b = _to_device(tensors[0], dev), _to_device(tensors[-1], dev)
    if best or min_iou is not None:
        _print_matches(boxes_a, boxes_b, kind.value, best, min_iou, style)
    else:
        _print_matrix(boxes_a, boxes_b, kind.value, style)
    if canvas is not None:
        _draw_sets(canvas, output, tensors, force)


def _print_matrix(boxes_a, boxes_b, kind: str, style: str) -> None:
    from segtool.ops.boxes.iou import iter_iou_blocks

    n, m = boxes_a.shape[0], boxes_b.shape[0]
    if n * m > MAX_MATRIX_VALUES:
        raise SegtoolError(f"{n} x {m} = {n * m} values is too many to print as a matrix; "
                           "use --best or --min-iou T")
    out = sys.stdout
    if style == "jsonl":
        out.write(f'{{"kind": "{kind}", "shape": [{n}, {m}], "matrix": [')
    first = True
    for _, block in iter_iou_blocks(boxes_a, boxes_b, kind):
        rows = block.cpu().tolist()
        if style == "text":
            out.write("".join(" ".join(f"{v:7.4f}" for v in row) + "\n" for row in rows))
        elif style == "csv":
            out.write("".join(",".join(_num(v) for v in row) + "\n" for row in rows))
        else:
            for row in rows:
                out.write(("\n  " if first else ",\n  ") + "[" + ", ".join(_num(v) for v in row) + "]")
                first = False
    if style == "jsonl":
        out.write("\n]}\n")
    out.flush()


def _print_matches(boxes_a, boxes_b, kind: str, best: bool, min_iou: float | None, style: str) -> None:
    import torch

    from segtool.ops.boxes.iou import best_match, iter_pairs_above
    from segtool.ops.boxes.tables import TableWriter

    table = TableWriter(sys.stdout, ["a", "b", kind], style)

    def rows(ia, ib, values):
        return [[str(i), str(j), f"{v:.4f}" if style == "text" else _num(v)]
                for i, j, v in zip(ia.tolist(), ib.tolist(), values.tolist(), strict=True)]

    if best:
        values, indices = best_match(boxes_a, boxes_b, kind)
        ia = torch.arange(values.shape[0], device=values.device)
        if min_iou is not None:
            keep = values >= min_iou
            ia, indices, values = ia[keep], indices[keep], values[keep]
        table.write(rows(ia, indices, values))
    else:
        for ia, ib, values in iter_pairs_above(boxes_a, boxes_b, min_iou, kind):
            table.write(rows(ia, ib, values))
    table.close()


def _draw_sets(canvas, output: Path, tensors, force: bool) -> None:
    from segtool.core.console import notice
    from segtool.core.io import save_image
    from segtool.viz.draw_boxes import draw_boxes

    boxes, labels = [], []
    for name, t in zip("AB", tensors, strict=False):
        boxes += t.cpu().tolist()
        labels += [f"{name}{i}" for i in range(t.shape[0])]
    save_image(draw_boxes(canvas, boxes, labels), output, force=force)
    notice(f"wrote {output}")


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
    from segtool.core.console import notice, set_quiet
    from segtool.core.io import atomic_open, is_stdio
    from segtool.ops.boxes.stream import convert_box_file

    set_quiet(quiet)
    if normalize and denormalize:
        raise typer.BadParameter("give --normalize or --denormalize, not both")
    image_size = _parse_size(size)
    if (normalize or denormalize or clip) and image_size is None:
        raise typer.BadParameter("--normalize, --denormalize and --clip need --size HxW")
    scale = "normalize" if normalize else "denormalize" if denormalize else None
    kwargs = dict(in_fmt=from_fmt.value if from_fmt else None, size=image_size, scale=scale, clip=clip, fix=fix)
    if is_stdio(output):
        convert_box_file(source, sys.stdout, to_fmt.value, **kwargs)
        return
    with atomic_open(output, "w", force=force) as handle:
        count = convert_box_file(source, handle, to_fmt.value, **kwargs)
    notice(f"wrote {count} boxes to {output}")


# ---- nms ---------------------------------------------------------------------------------------

@app.command("nms")
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
    fix: Annotated[bool, typer.Option("--fix", help="Swap inverted corners instead of failing.")] = False,
    json_out: Json = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV with a header.")] = False,
    device: Device = "auto",
    npu_transfer: NpuTransfer = False,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Non-maximum suppression: the indices (0-based, best score first) of the boxes that survive."""
    import torch

    from segtool.core.console import emit_json, set_quiet
    from segtool.ops.boxes.files import column_values
    from segtool.ops.boxes.formats import FIELDS
    from segtool.ops.boxes.nms import suppress
    from segtool.ops.boxes.tables import TableWriter

    set_quiet(quiet)
    style = _style(json_out, csv_out)
    (box_set,), (xyxy,) = _read_box_sets([boxes], [], in_format, fix)
    score_values = torch.tensor(column_values(box_set, scores, "--scores"), dtype=torch.float64)
    class_values = class_ids = None
    if classes is not None:
        class_values = column_values(box_set, classes, "--classes", numeric=False)
        ids = {}
        class_ids = torch.tensor([ids.setdefault(str(c), len(ids)) for c in class_values])
    dev = device_from_options(device, npu_transfer, threads)
    keep = suppress(_to_device(xyxy, dev), _to_device(score_values, dev), iou_threshold, classes=class_ids,
                    min_score=min_score)
    keep = keep.cpu().tolist()
    if not rows:
        if style == "jsonl":
            emit_json({"kept": keep, "count": len(keep), "of": len(box_set)})
        else:
            sys.stdout.write("".join(f"{i}\n" for i in (["index"] if style == "csv" else []) + keep))
        return
    columns = ["index", "score"] + (["class"] if classes is not None else []) + list(FIELDS[box_set.fmt])
    textual = class_values is not None and not all(_is_number(c) for c in class_values)
    table = TableWriter(sys.stdout, columns, style, quoted=["class"] if textual else ())
    table.write([[str(i), _num(score_values[i])] + ([str(class_values[i])] if classes is not None else [])
                 + [_num(v) for v in box_set.records[i].box] for i in keep])
    table.close()
