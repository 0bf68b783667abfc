"""The human-readable ``voc-stats`` report: a rich summary and class table on stderr."""

from __future__ import annotations

from segtool.core.console import console, is_quiet, plural, warn

MAX_PROBLEMS_SHOWN = 20


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_stats(report: dict) -> None:
    """Print the summary, per-class table and problem list (problems show even with --quiet)."""
    problems = report["problems"]
    if not is_quiet():
        from rich.table import Table

        splits = ", ".join(f"{k} {v}" for k, v in report["splits"].items()) or "-"
        console.print(f"[bold]{report['root']}[/] ({report['format']}, split {report['split']}): "
                      f"{plural(report['images'], 'image')}, {report['measured']} measured; split lists: {splits}")
        size = report["image_size"]
        if size:
            console.print(f"image size: width {size['min_width']}..{size['max_width']}, height "
                          f"{size['min_height']}..{size['max_height']}, most common "
                          f"{size['most_common'][0]}x{size['most_common'][1]} ({plural(size['most_common_count'], 'image')}, "
                          f"{size['distinct']} distinct sizes)")
        crop = report.get("crop")
        if crop:
            counts = ", ".join(f"{k} {crop['at_least'].get(k, 0)} of {n}" for k, n in crop["of"].items())
            console.print(f"at least {crop['height']}x{crop['width']} (HxW): {counts}")
        if report.get("void_fraction") is not None:
            console.print(f"void (255): {report['void_fraction']:.2%} of {report['pixels']} pixels")
        if "mean" in report:
            console.print("RGB mean " + ", ".join(f"{v:.4f}" for v in report["mean"])
                          + "; std " + ", ".join(f"{v:.4f}" for v in report["std"]))
        table = Table(title=f"classes ({report['palette']})", title_justify="left")
        for name, justify in (("idx", "right"), ("class", "left"), ("pixels", "right"), ("share", "right"),
                              ("images", "right"), ("w median-freq", "right"), ("w ENet", "right")):
            table.add_column(name, justify=justify)
        for c in report["classes"]:
            table.add_row(str(c["index"]), c["name"], str(c["pixels"]), f"{c['fraction']:.2%}", str(c["images"]),
                          _fmt(c["weight_median_freq"]), _fmt(c["weight_enet"]))
        console.print(table)
        absent = [c["name"] for c in report["classes"] if c.get("weight_note")]
        if absent:
            console.print(f"weights '-': {', '.join(absent)} never occur in split {report['split']}, "
                          "and the weights are 1 / a class's frequency", markup=False, highlight=False, soft_wrap=True)
    if problems:
        warn(f"{plural(len(problems), 'problem')}:")
        for problem in problems[:MAX_PROBLEMS_SHOWN]:
            console.print(f"  {problem['file']}: {problem['problem']}", markup=False, highlight=False)
        if len(problems) > MAX_PROBLEMS_SHOWN:
            console.print(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more (all of them in --json)")
