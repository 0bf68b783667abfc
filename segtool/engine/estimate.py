"""How long a run will take, and recipes that obviously do not fit the data.

``RunEstimate`` watches the first training steps (after two warm-up steps) and prints one line such
as "estimate: ~9 h 40 min for 150 epochs (55,050 steps) at 0.6 img/s", with a warning when a CPU
run would last more than a day. ``recipe_warnings`` compares the crop with the image sizes and
notices a full recipe started on a demo set.
"""

from __future__ import annotations

import statistics
import time

from segtool.core.console import format_duration, notice, plural, warn

WARMUP_STEPS = 2
MEASURE_SECONDS = 20.0  # measure at least this long (or MEASURE_STEPS steps) before estimating
MEASURE_STEPS = 20
DAY = 24 * 3600


class RunEstimate:
    """An ``on_step`` hook: after the first steps, one line with the whole run's expected duration."""

    def __init__(self, chained=None, clock=time.perf_counter):
        self.chained = chained
        self.clock = clock
        self.first: int | None = None  # the first step seen (a resumed run starts late)
        self.start: float | None = None
        self.start_step = 0
        self.done = False

    def __call__(self, run) -> None:
        if self.chained is not None:
            self.chained(run)
        if self.done or not run.main:
            return
        step = run.state.step
        if self.first is None:
            self.first = step
        if self.start is None:
            if step - self.first >= WARMUP_STEPS:
                self.start, self.start_step = self.clock(), step
            return
        seconds, steps = self.clock() - self.start, step - self.start_step
        if seconds < MEASURE_SECONDS and steps < MEASURE_STEPS and step < run.total_steps:
            return
        self.done = True
        report(run, seconds / max(steps, 1))


def report(run, step_seconds: float) -> None:
    """Print the estimate for the steps left; warn when a CPU run would take more than a day."""
    config = run.config
    images_per_step = config.batch_size * getattr(config, "accumulate", 1) * run.dist.world_size
    left = max(run.total_steps - run.state.step, 0)
    val_images = len(run.data.val.dataset) if hasattr(run.data.val, "dataset") else 0
    validations = max(1, left // max(len(run.data.train), 1))
    # Validation: a forward pass only, about a third of a training step's cost per image.
    seconds = left * step_seconds + validations * val_images * step_seconds / images_per_step / 3
    rate = images_per_step / step_seconds
    span = (plural(config.max_steps, "step") if config.max_steps and config.max_steps < config.epochs * len(run.data.train)
            else plural(config.epochs, "epoch"))
    notice(f"estimate: ~{format_duration(seconds)} for {span} ({run.total_steps:,} steps, {left:,} to go) at "
           f"{rate:.1f} img/s, validation included")
    if run.device.type == "cpu" and seconds > DAY:
        warn(f"this run would take ~{format_duration(seconds)} on CPU: for a first result cap it with "
             f"--epochs N or --max-steps N, or train on a GPU (--device cuda)")


def recipe_warnings(config, source, samples, demo_preset: bool) -> None:
    """Warn about a crop much larger than the images, and a model's full recipe on a demo set."""
    from segtool.data.images import image_size
    from segtool.data.label_check import spread

    sizes = [image_size(image) for image, _ in spread(samples, 32) if image.is_file()]
    if sizes:
        scale = getattr(config, "input_scale", 1.0)
        height = statistics.median(h for _, h in sizes) * scale
        width = statistics.median(w for w, _ in sizes) * scale
        crop_h, crop_w = config.crop
        if crop_h > height * 1.05 or crop_w > width * 1.05:
            fit = f"{min(crop_h, int(height))}x{min(crop_w, int(width))}"
            warn(f"crop {crop_h}x{crop_w} is larger than most images ({int(height)}x{int(width)} median"
                 f"{' after --input-scale' if scale != 1 else ''}): they are padded with ignored pixels, "
                 f"which costs time and teaches nothing; try --crop {fit}")
    from segtool.engine.config import DEMO_PRESET

    preset = {k: DEMO_PRESET[k] for k in ("crop", "batch_size", "epochs")}
    if source.format != "demo" and all(getattr(config, k) == v for k, v in preset.items()):
        warn(f"these are the demo preset's settings (crop 64x64, batch 16, 4 epochs: made for the 64-px demo set) "
             f"on {source.root}; drop them to get {config.model}'s recipe (see --print-config)")
    if source.format == "demo" and not demo_preset and config.epochs > 20:
        notice(f"training {config.model}'s full recipe ({config.epochs} epochs) on a demo set; the quick demo "
               "preset is --crop 64 --batch-size 16 --epochs 4 (what `segtool train` uses without --data)")
