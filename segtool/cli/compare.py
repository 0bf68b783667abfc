"""`segtool compare-runs A.pt B.pt`: a thin wrapper over segtool.engine.compare_runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.infer import Tta, tta_option
from segtool.cli.options import DataFormat, DataRoot, Json, Runtime, ScoreSplit, with_runtime

app = typer.Typer()

@app.command("compare-runs")
@with_runtime
def compare_runs(
    a: Annotated[Path, typer.Argument(help="Checkpoint A (the baseline).")],
    b: Annotated[Path, typer.Argument(help="Checkpoint B.")],
    data: DataRoot = None,
    fmt: DataFormat = None,
    split: ScoreSplit = "val",
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Paired bootstrap resamples for the 95% "
                                           "CI of the mIoU difference (0 = none).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch (padded).")] = 1,
    workers: Annotated[int, typer.Option("--workers", min=0, help="DataLoader workers.")] = 0,
    tta: Tta = None,
    json_out: Json = False,
    *,
    runtime: Runtime,
) -> None:
    """Score A and B on the same images: per-class IoU of each, B - A, and a paired bootstrap 95% CI
    of the mIoU difference. Table on stderr; --json writes the result on stdout."""
    from segtool.core.console import emit_json, is_quiet
    from segtool.engine.checkpoint import load_checkpoint, source_for_checkpoint
    from segtool.engine.compare_runs import check_comparable, compare_checkpoints, render_comparison

    parsed_tta = tta_option(tta)
    ckpt_a, ckpt_b = load_checkpoint(a), load_checkpoint(b)
    check_comparable(ckpt_a, ckpt_b)
    source = source_for_checkpoint(ckpt_a, data, fmt)
    result = compare_checkpoints(ckpt_a, ckpt_b, source, split, runtime.device(), bootstrap=bootstrap, seed=seed,
                                 batch_size=batch_size, workers=workers, tta=parsed_tta, show_progress=not json_out)
    if not is_quiet():
        render_comparison(result)
    if json_out:
        emit_json(result)
