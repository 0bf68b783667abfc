"""`segtool stylize`: neural style transfer (d2l recipe by default) around ``segtool.style.stylize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import Device, Force, Json, NpuTransfer, Quiet, Threads

app = typer.Typer()

RECIPE = "Recipe"
REGIONS = "Regions (--mask)"
WEIGHTS = "Weights"


def _parsed(parser, value, hint: str):
    """Run a pure parser; its ValueError becomes a bad-option error (exit 2)."""
    try:
        return parser(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None


def _snapshot_path(output: Path, stage: int, stages: int, step: int) -> Path:
    """out.png -> out.step0100.png (or out.stage2.step0100.png with several --scales stages)."""
    tag = f".stage{stage}" if stages > 1 else ""
    return output.with_name(f"{output.stem}{tag}.step{step:04d}.png")


@app.command("stylize")
def stylize(
    content: Annotated[Path, typer.Argument(help="Content image (any format PIL reads).", show_default=False)],
    styles: Annotated[list[Path] | None, typer.Argument(
        help="One or more style images (with --mask: none; use --style CLASS=STYLE).", show_default=False)] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Output image; '-' = PNG on stdout. Default: <content>-stylized.png.",
        show_default=False)] = None,
    size: Annotated[str | None, typer.Option(
        "--size", help="H (longest side, aspect kept) or HxW. Default 300x450 (d2l), or the last "
        "--scales entry.", show_default=False, rich_help_panel=RECIPE)] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimisation steps (per --scales stage).",
                                       rich_help_panel=RECIPE)] = 500,
    optimizer: Annotated[str, typer.Option(
        "--optimizer", help="adam (d2l: lr 0.3, StepLR 50/0.8) or lbfgs (history 100, strong-Wolfe "
        "line search, smoothed TV).", rich_help_panel=RECIPE)] = "adam",
    lr: Annotated[float | None, typer.Option(
        "--lr", help="Learning rate (default: 0.3 adam, 1.0 lbfgs).", show_default=False,
        rich_help_panel=RECIPE)] = None,
    content_weight: Annotated[float, typer.Option("--content-weight", rich_help_panel=RECIPE)] = 1.0,
    style_weight: Annotated[float, typer.Option("--style-weight", rich_help_panel=RECIPE)] = 1e4,
    tv_weight: Annotated[float, typer.Option("--tv-weight", help="Total-variation weight.",
                                             rich_help_panel=RECIPE)] = 10.0,
    tv_smoothing: Annotated[float | None, typer.Option(
        "--tv-smoothing", min=0.0, help="Charbonnier epsilon of the TV term the optimiser descends "
        "(default: 0 = exact for adam, 0.05 for lbfgs, which needs a smooth loss). Reported losses use the "
        "exact TV.", show_default=False, rich_help_panel=RECIPE)] = None,
    content_layers: Annotated[str, typer.Option(
        "--content-layers", help="Comma-separated VGG-19 layer names.", rich_help_panel=RECIPE)] = "conv4_4",
    style_layers: Annotated[str, typer.Option(
        "--style-layers", help="Comma-separated VGG-19 layer names (conv1_1 .. pool5, relu*_*).",
        rich_help_panel=RECIPE)] = "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
    init: Annotated[str, typer.Option(
        "--init", help="Start image: content, random or an image PATH.", rich_help_panel=RECIPE)] = "content",
    style_blend: Annotated[str | None, typer.Option(
        "--style-blend", help="Weights of the style images, e.g. 0.7,0.3 (default: equal).",
        show_default=False, rich_help_panel=RECIPE)] = None,
    style_scale: Annotated[float, typer.Option(
        "--style-scale", help="Style image size relative to the output's longest side.",
        rich_help_panel=RECIPE)] = 1.0,
    preserve_colors: Annotated[bool, typer.Option(
        "--preserve-colors", help="Keep the content's colours; transfer luminance only.",
        rich_help_panel=RECIPE)] = False,
    scales: Annotated[str | None, typer.Option(
        "--scales", help="Coarse-to-fine longest sides, e.g. 256,512: optimise at each, upsample as the "
        "next start.", show_default=False, rich_help_panel=RECIPE)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for random init / random weights.",
                                             rich_help_panel=RECIPE)] = None,
    mask: Annotated[str | None, typer.Option(
        "--mask", help="Label mask of CONTENT (palette / index / colour PNG; '-' = stdin): each region gets "
        "its own --style.", show_default=False, rich_help_panel=REGIONS)] = None,
    style_specs: Annotated[list[str] | None, typer.Option(
        "--style", help="CLASS=STYLE.jpg or CLASS=none (keep the content); CLASS is a palette name or an "
        "index. Repeat per class.", show_default=False, rich_help_panel=REGIONS)] = None,
    style_default: Annotated[str, typer.Option(
        "--style-default", help="STYLE.jpg or none, for the mask's classes no --style names.",
        rich_help_panel=REGIONS)] = "none",
    palette: Annotated[str, typer.Option(
        "--palette", "-p", help="Class names (and colours of RGB masks): voc, camvid32, camvid11, "
        "cityscapes, or a CSV/YAML file.", rich_help_panel=REGIONS)] = "voc",
    style_mask: Annotated[str | None, typer.Option(
        "--style-mask", help="Label mask of the style image(s), same palette: each class takes its "
        "style from the same class there.", show_default=False, rich_help_panel=REGIONS)] = None,
    feather: Annotated[float, typer.Option(
        "--feather", help="Soft region borders: Gaussian sigma in output pixels (0 = hard).",
        rich_help_panel=REGIONS)] = 0.0,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse a mask whose size differs from its image instead of resizing it.",
        rich_help_panel=REGIONS)] = False,
    save_every: Annotated[int, typer.Option(
        "--save-every", min=0, help="Also save every N steps next to the output (out.step0100.png).")] = 0,
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="VGG-19 state dict (torchvision vgg19-dcbb9e9d.pth) (default: the torch cache).",
        show_default=False, rich_help_panel=WEIGHTS)] = None,
    random_weights: Annotated[bool, typer.Option(
        "--random-weights", help="Random VGG weights, for tests only (not artistic).",
        rich_help_panel=WEIGHTS)] = False,
    device: Device = "auto",
    npu_transfer: NpuTransfer = False,
    threads: Threads = None,
    json_out: Json = False,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Paint CONTENT in the style of STYLES by optimising the image through a frozen VGG-19.

    Examples: segtool stylize photo.jpg starry.jpg -o out.png;
    segtool stylize photo.jpg a.jpg b.jpg --style-blend 0.7,0.3 --preserve-colors -o out.png;
    segtool predict best.pt photo.jpg -o - | segtool stylize photo.jpg --mask - --style person=none
    --style background=starry.jpg -o out.png
    """

    _check_numbers({"--lr": (lr, True), "--style-scale": (style_scale, True), "--content-weight": (content_weight, False),
                    "--style-weight": (style_weight, False), "--tv-weight": (tv_weight, False),
                    "--tv-smoothing": (tv_smoothing, False), "--feather": (feather, False)})
    from segtool.style.config import parse_blend, parse_names, parse_scales
    from segtool.style.images import parse_size

    scale_list = _parsed(parse_scales, scales, "--scales") if scales else ()
    if size is not None:
        size_spec = _parsed(parse_size, size, "--size")
    else:
        size_spec = scale_list[-1] if scale_list else (300, 450)
    if weights is not None and random_weights:
        raise typer.BadParameter("--weights and --random-weights exclude each other", param_hint="--weights")
    assignments = _check_region_options(styles or [], mask, style_specs or [], style_default, style_mask,
                                        feather, strict, style_blend)
    out = _resolve_output(output, content, json_out, save_every, force)

    from segtool.cli.options import device_from_options
    from segtool.core.console import emit_json, notice, warn
    from segtool.core.io import check_output, is_stdio, save_image
    from segtool.style import StyleConfig
    from segtool.style import stylize as run_stylize

    config = StyleConfig(
        size=size_spec, steps=steps, optimizer=optimizer.lower(), lr=lr, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight, tv_smoothing=tv_smoothing,
        content_layers=parse_names(content_layers), style_layers=parse_names(style_layers),
        style_blend=_parsed(parse_blend, style_blend, "--style-blend") if style_blend else None,
        style_scale=style_scale, init=init, preserve_colors=preserve_colors, scales=scale_list, seed=seed,
    ).validate(len(styles) if styles else 1)
    from segtool.style import plan_sizes
    from segtool.style.images import load_rgb

    # Every input is read before the device is announced, so a bad file is the only line printed.
    content_rgb = load_rgb(content)
    if mask is None:
        style_rgbs = [load_rgb(style) for style in styles]
    else:
        plan = _region_plan(mask, palette, assignments, style_default, style_mask, strict, content_rgb)
    if init not in ("content", "random"):
        load_rgb(init)
    # Snapshot names depend on the number of stages, known once the content size is.
    stages = len(plan_sizes(config, (content_rgb.height, content_rgb.width)))
    if out is not None and save_every:
        for step in range(save_every, steps + 1, save_every):
            for stage in range(1, stages + 1):
                check_output(_snapshot_path(out, stage, stages, step), force)

    torch_device = device_from_options(device, npu_transfer, threads)
    if random_weights:
        warn("--random-weights: VGG-19 is randomly initialised; the result is not artistic (tests only)")

    def on_snapshot(stage: int, step: int, image) -> None:
        path = _snapshot_path(out, stage, stages, step)
        save_image(image, path, force=True)  # checked above, before any work
        notice(f"saved {path}")

    with _Progress(steps, stages, quiet) as progress:
        options = {"device": torch_device, "weights": weights, "random_weights": random_weights,
                   "on_step": progress.update, "snapshot_every": save_every,
                   "on_snapshot": on_snapshot if save_every else None}
        if mask is None:
            result = run_stylize(content_rgb, style_rgbs, config, **options)
        else:
            from segtool.style import stylize_regions

            result = stylize_regions(content_rgb, plan, config, feather=feather, **options)

    target = "-" if out is None else out
    save_image(result.image, target, force=force)
    if not is_stdio(target):
        notice(f"wrote {target} ({result.image.width}x{result.image.height}); total loss "
               f"{result.losses['total']:.4g} in {result.seconds['total']:.1f} s")
    if json_out:
        emit_json({"output": str(target), "size": [result.image.height, result.image.width],
                   "device": str(torch_device), "random_weights": random_weights,
                   "losses": result.losses, "seconds": result.seconds, "stages": result.stages,
                   "memory_estimate_bytes": result.memory_estimate, "config": config.to_dict(),
                   **({"regions": plan.to_dict(), "feather": feather} if mask is not None else {})})


def _check_numbers(values: dict[str, tuple[float | None, bool]]) -> None:
    """Float options: finite, and positive (True) or non-negative (False); nan passes a plain ``<= 0``."""
    import math

    for name, (value, positive) in values.items():
        if value is None:
            continue
        if not math.isfinite(value) or (value <= 0 if positive else value < 0):
            need = "a positive" if positive else "a non-negative"
            raise typer.BadParameter(f"must be {need} finite number, got {value:g}", param_hint=name)


def _check_region_options(styles: list[Path], mask: str | None, specs: list[str], default: str,
                          style_mask: str | None, feather: float, strict: bool,
                          style_blend: str | None) -> list[tuple[str, str]]:
    """Positional styles and --mask exclude each other; returns the parsed --style CLASS=STYLE pairs."""
    from segtool.core.errors import SegtoolError
    from segtool.core.io import is_stdio
    from segtool.style.regions import parse_assignment

    if mask is None:
        given = [name for name, value in (("--style", specs), ("--style-mask", style_mask),
                                          ("--feather", feather), ("--strict", strict)) if value]
        if given:
            raise typer.BadParameter(f"{', '.join(given)} need(s) --mask LABELS.png", param_hint=given[0])
        if not styles:
            raise typer.BadParameter("give at least one style image (or --mask with --style CLASS=STYLE)",
                                     param_hint="STYLES")
        return []
    if styles:
        raise typer.BadParameter("with --mask, give the styles as --style CLASS=STYLE, not as arguments",
                                 param_hint="STYLES")
    if style_blend:
        raise typer.BadParameter("with --mask each region has one style; drop --style-blend",
                                 param_hint="--style-blend")
    if is_stdio(mask) and is_stdio(style_mask):
        raise typer.BadParameter("only one of --mask and --style-mask can read stdin", param_hint="--style-mask")
    if feather < 0:
        raise SegtoolError(f"--feather must not be negative, got {feather:g}")
    return [_parsed(parse_assignment, spec, "--style") for spec in specs]


def _region_plan(mask: str, palette: str, assignments, default: str, style_mask: str | None, strict: bool,
                 content_rgb):
    from segtool.core.console import warn
    from segtool.data.palettes import get_palette
    from segtool.style.regions import load_region_plan

    plan, warnings = load_region_plan(mask, get_palette(palette), assignments, default,
                                      (content_rgb.height, content_rgb.width), style_mask=style_mask,
                                      strict=strict)
    for line in warnings:
        warn(line)
    return plan


def _resolve_output(output: str | None, content: Path, json_out: bool, save_every: int,
                    force: bool) -> Path | None:
    """The output file (None = stdout); refuses clashes before any work is done."""
    from segtool.core.io import check_output, is_stdio

    if output is None:
        output = f"{content.stem}-stylized.png"
    if is_stdio(output):
        if json_out:
            raise typer.BadParameter("--json and -o - both write to stdout; pick one", param_hint="--json")
        if save_every:
            raise typer.BadParameter("needs -o FILE (snapshots are saved next to it)", param_hint="--save-every")
        return None
    return check_output(output, force)


class _Progress:
    """A rich bar with the loss terms on a terminal; otherwise about ten plain lines per stage."""

    def __init__(self, steps: int, stages: int, quiet: bool):
        self.steps, self.stages, self.quiet = steps, stages, quiet
        self.every = max(1, steps // 10)
        self.task = None

    def __enter__(self) -> _Progress:
        from rich.progress import TextColumn

        from segtool.core.console import progress, stderr_is_terminal

        self.live = stderr_is_terminal() and not self.quiet
        self._context = progress(TextColumn("{task.fields[losses]}"), transient=False)
        self.bar = self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)

    def update(self, report) -> None:
        losses = report.losses
        rate = report.step / report.seconds if report.seconds > 0 else 0.0
        text = (f"content {losses['content']:.3g}  style {losses['style']:.3g}  tv {losses['tv']:.3g}  "
                f"total {losses['total']:.4g}  {rate:.2f} steps/s")
        stage = f"{report.size[0]}x{report.size[1]}"
        if report.stages > 1:
            stage = f"stage {report.stage}/{report.stages} {stage}"
        if self.live:
            if report.step == 1:
                self.task = self.bar.add_task(stage, total=report.steps, losses="")
            self.bar.update(self.task, completed=report.step, losses=text)
        elif report.step % self.every == 0 or report.step in (1, report.steps):
            from segtool.core.console import notice

            notice(f"{stage} step {report.step}/{report.steps}  {text}")
