"""Training curves from a run's ``metrics.jsonl``: a PNG through matplotlib, or a terminal table.

matplotlib is an optional extra (``segtool[plot]``) imported only when a picture is drawn, and
through its object API with the Agg canvas, so no GUI backend or global pyplot state is touched.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image
from rich.table import Table

from segtool.core.console import warn
from segtool.core.errors import SegtoolError
from segtool.core.io import save_image
from segtool.viz.terminal import sparkline

METRICS_FILE = "metrics.jsonl"
MISSING_MATPLOTLIB = "plot-log needs matplotlib: pip install 'segtool[plot]' (or use --term)"

# (panel title, metric keys drawn in it, y scale)
PANELS = (
    ("loss", ("train_loss", "val_loss"), "linear"),
    ("accuracy", ("pixel_acc", "mean_acc"), "linear"),
    ("mIoU", ("miou",), "linear"),
    ("learning rate", ("lr",), "log"),
)
# For the terminal table: which direction is better.
LOWER_IS_BETTER = {"train_loss", "val_loss"}
TABLE_KEYS = ("train_loss", "val_loss", "pixel_acc", "mean_acc", "miou", "lr", "img_per_s")


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl``, one dict per line.

    A truncated last line (a run still writing, or killed mid-write) is skipped with a warning;
    any other malformed line is an error naming the line.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SegtoolError(f"{run_dir}: no such run directory")
    path = run_dir / METRICS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SegtoolError(f"{path}: not found ({run_dir} is not a training run directory)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SegtoolError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    records = []
    for pos, (lineno, line) in enumerate(numbered):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if pos == len(numbered) - 1:
                warn(f"{path}: line {lineno} is incomplete and was skipped")
                continue
            raise SegtoolError(f"{path}: line {lineno} is not valid JSON") from None
        if not isinstance(record, dict):
            raise SegtoolError(f"{path}: line {lineno} is not a JSON object")
        records.append(record)
    if not records:
        raise SegtoolError(f"{path}: holds no records yet")
    return records


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def x_axis(records: list[dict]) -> tuple[str, list[float]]:
    """The x axis: epoch when records have one, else step, else the record number."""
    for key in ("epoch", "step"):
        values = [_number(r.get(key)) for r in records]
        if any(v is not None for v in values):
            return key, [math.nan if v is None else v for v in values]
    return "record", [float(i + 1) for i in range(len(records))]


def series(records: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(x, y) of the records that hold a number for ``key``."""
    _, xs = x_axis(records)
    points = [(x, _number(r.get(key))) for x, r in zip(xs, records, strict=True)]
    points = [(x, y) for x, y in points if y is not None and not math.isnan(x)]
    return [x for x, _ in points], [y for _, y in points]


def _matplotlib():
    """(Figure, FigureCanvasAgg), or the one-line install hint when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise SegtoolError(MISSING_MATPLOTLIB) from None
    return Figure, FigureCanvasAgg


def render_curves(records: list[dict], size: tuple[int, int] = (1200, 800), title: str = "") -> Image.Image:
    """Loss, accuracy, mIoU and learning rate against epoch, as an RGB image of exactly ``size``."""
    Figure, FigureCanvasAgg = _matplotlib()
    width, height = size
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    x_name, _ = x_axis(records)
    axes = fig.subplots(2, 2).ravel()
    for ax, (panel, keys, scale) in zip(axes, PANELS, strict=True):
        drawn = False
        for key in keys:
            xs, ys = series(records, key)
            if ys:
                ax.plot(xs, ys, marker="o" if len(ys) < 30 else None, markersize=3, label=key)
                drawn = True
        ax.set_title(panel)
        ax.set_xlabel(x_name)
        ax.grid(True, alpha=0.3)
        if drawn:
            if scale == "log" and all(y > 0 for k in keys for y in series(records, k)[1]):
                ax.set_yscale("log")
            ax.legend(loc="best", fontsize="small")
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
    if title:
        fig.suptitle(title)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    img = Image.fromarray(rgba[..., :3].copy())
    # Figure size in inches x dpi can round a pixel off; the caller asked for an exact size.
    if img.size != (width, height):
        fixed = Image.new("RGB", (width, height), (255, 255, 255))
        fixed.paste(img, (0, 0))
        img = fixed
    return img


def plot_curves(records: list[dict], out_path: str | os.PathLike, size: tuple[int, int] = (1200, 800), *,
                force: bool = False, title: str = "") -> None:
    """Write the curves picture as a PNG of exactly ``size`` pixels (``-`` = stdout)."""
    save_image(render_curves(records, size, title), out_path, force=force, format="PNG")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def curves_table(records: list[dict], spark_width: int = 40) -> Table:
    """A rich table: one row per logged metric with first, last, best (and where) and a sparkline."""
    x_name, _ = x_axis(records)
    table = Table(title=f"{len(records)} records", title_justify="left")
    for column in ("metric", "first", "last", "best", f"at {x_name}", "curve"):
        table.add_column(column, justify="left" if column in ("metric", "curve") else "right")
    for key in TABLE_KEYS:
        xs, ys = series(records, key)
        if not ys:
            continue
        finite = [i for i, y in enumerate(ys) if math.isfinite(y)]
        best, best_x = "", ""
        if key != "lr" and finite:  # a learning rate has no "best"
            i = (min if key in LOWER_IS_BETTER else max)(finite, key=ys.__getitem__)
            best, best_x = _fmt(ys[i]), _fmt(xs[i])
        table.add_row(key, _fmt(ys[0]), _fmt(ys[-1]), best, best_x, sparkline(ys, spark_width))
    return table
