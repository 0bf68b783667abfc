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


def check_run_dir(out: Path, *, force: bool, resuming: bool) -> None:
    """Refuse a run directory that cannot be used; creates nothing (``create_run_dir`` does, later)."""
    if out.exists() and not out.is_dir():
        raise SegtoolError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (force or resuming):
        raise SegtoolError(f"{out}: run directory already exists (use --force to start over in it, "
                           "or --resume auto to continue it)")


def create_run_dir(out: Path, *, force: bool, resuming: bool) -> bool:
    """Make ``out`` once everything else is built and checked; True when this call created it.

    ``force`` clears an earlier run's files; any start clears temp files a killed save left behind.
    """
    check_run_dir(out, force=force, resuming=resuming)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    if force and not resuming:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for old in out.glob("epoch-*.pt"):
            old.unlink()
    remove_stale_temp_files(out)
    return created


def remove_stale_temp_files(out: Path) -> list[Path]:
    """Delete the temp files of this run's own outputs (``.last.pt.x1y2.tmp``, ``.epoch-001.pt.tmp``)
    that a kill during a save leaves; nothing else in the folder is touched."""
    own = (*RUN_FILES, "epoch-")
    stale = [p for p in out.glob(".*.tmp") if p.is_file() and p.name[1:].startswith(own)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def discard_failed_run(out: Path, created: bool) -> None:
    """A new run that failed before its first checkpoint: remove what it wrote (and the folder, if
    this run made it), so the corrected command needs no --force."""
    if (out / "last.pt").exists():
        return
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    remove_stale_temp_files(out)
    if created:
        try:
            out.rmdir()
        except OSError:  # something else was put there meanwhile: leave it
            pass


def find_latest_run(model: str, root: str | Path = "runs") -> Path | None:
    """The newest run of ``model`` that holds last.pt (for ``--resume auto``): ``runs/<model>-*`` and
    the runs started from this folder with a custom ``--out`` (see ``record_run``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", model).strip("-")
    candidates = {p.resolve() for p in Path(root).glob(f"{safe}-*")} | set(_recorded_runs(model))
    candidates = [p for p in candidates if (p / "last.pt").is_file()]
    return max(candidates, key=lambda p: (p / "last.pt").stat().st_mtime) if candidates else None


def _index_file() -> Path:
    from segtool.core.paths import cache_home

    return cache_home() / "runs.jsonl"


def record_run(model: str, run_dir: Path) -> None:
    """Remember a run dir with the folder it was started from, so ``--resume auto`` finds a custom
    ``--out`` later; best effort (an unwritable cache only costs that convenience)."""
    entry = {"model": model, "run_dir": str(run_dir.resolve()), "cwd": str(Path.cwd().resolve())}
    try:
        index = _index_file()
        index.parent.mkdir(parents=True, exist_ok=True)
        with open(index, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
    except OSError:
        pass


def _recorded_runs(model: str) -> list[Path]:
    try:
        lines = _index_file().read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    cwd, runs = str(Path.cwd().resolve()), []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut by a kill: skip it
            continue
        if isinstance(entry, dict) and entry.get("model") == model and entry.get("cwd") == cwd:
            runs.append(Path(str(entry.get("run_dir"))))
    return runs


class MetricsLog:
    """Per-epoch rows in metrics.jsonl (appended) and metrics.csv (rewritten from the rows)."""

    def __init__(self, run_dir: Path):
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self.rows: list[dict] = []
        if self.jsonl.is_file():
            for number, line in enumerate(self.jsonl.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError):
                    row = None
                if not isinstance(row, dict) or not {"epoch", "step"} <= row.keys():
                    raise SegtoolError(f"{self.jsonl}: line {number} is not a metrics row; fix or remove "
                                       "the file to resume")
                self.rows.append(row)

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
