"""The run directory: where a training run writes config.yaml, metrics and checkpoints.

Default ``runs/<model>-<timestamp>``. An existing directory is refused unless ``--force`` (start
over in it) or ``--resume`` (continue it). Metrics go to ``metrics.jsonl`` (one JSON object per
epoch, read by ``segtool plot-log``) and ``metrics.csv`` with the same columns.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

from segtool.core.errors import SegtoolError
from segtool.core.io import atomic_write

METRIC_KEYS = ("epoch", "step", "train_loss", "val_loss", "pixel_acc", "mean_acc", "miou", "lr",
               "img_per_s", "elapsed")
RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "last.pt", "best.pt")


def default_run_dir(model: str, root: str | Path = "runs") -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", model).strip("-")
    return Path(root) / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(out: Path, *, force: bool, resuming: bool) -> Path:
    """Create ``out``; an existing non-empty one needs --force or --resume."""
    if out.exists() and not out.is_dir():
        raise SegtoolError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (force or resuming):
        raise SegtoolError(f"{out}: run directory already exists (use --force to start over in it, "
                           "or --resume auto to continue it)")
    out.mkdir(parents=True, exist_ok=True)
    if force and not resuming:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for old in out.glob("epoch-*.pt"):
            old.unlink()
    return out


def find_latest_run(model: str, root: str | Path = "runs") -> Path | None:
    """The newest ``runs/<model>-*`` directory that holds last.pt (for ``--resume auto``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", model).strip("-")
    candidates = [p for p in Path(root).glob(f"{safe}-*") if (p / "last.pt").is_file()]
    return max(candidates, key=lambda p: (p / "last.pt").stat().st_mtime) if candidates else None


class MetricsLog:
    """Per-epoch rows in metrics.jsonl (appended) and metrics.csv (rewritten from the rows)."""

    def __init__(self, run_dir: Path):
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self.rows: list[dict] = []
        if self.jsonl.is_file():
            for line in self.jsonl.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.rows.append(json.loads(line))

    def truncate_after(self, epoch: int, step: int) -> None:
        """Drop rows written after a checkpoint (a run killed between logging and saving)."""
        kept = [r for r in self.rows if r["epoch"] <= epoch and r["step"] <= step]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite_jsonl()
            self._rewrite_csv()

    def append(self, row: dict) -> None:
        row = {key: row.get(key) for key in METRIC_KEYS}
        self.rows.append(row)
        with open(self.jsonl, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        self._rewrite_csv()

    def _rewrite_jsonl(self) -> None:
        text = "".join(json.dumps(r) + "\n" for r in self.rows)
        atomic_write(self.jsonl, lambda h: h.write(text), force=True, binary=False)

    def _rewrite_csv(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_KEYS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in METRIC_KEYS})
        text = buffer.getvalue()
        atomic_write(self.csv, lambda h: h.write(text), force=True, binary=False)
