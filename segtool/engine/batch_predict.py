"""Fast prediction over many files: decode ahead in workers, batch equal sizes, write in the background.

Three stages overlap: worker threads (or processes) decode the next images while the model runs, the
main thread groups decoded images by size (not only neighbours: a folder of mixed sizes still fills
whole batches) and runs each full group (or the oldest one once 4 batches' worth wait, so a folder of
all-different sizes holds few images), and one writer thread renders and saves the PNGs. The
labels are the ``Predictor``'s own, so the masks are those of ``predict_files``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segtool.core.errors import SegtoolError
from segtool.engine.predict import OUTPUT_FORMATS, Predictor, PredictReport, render_output

DECODERS = ("thread", "process")


@dataclass
class BatchReport(PredictReport):
    """PredictReport plus, per written file, its input, output, size and milliseconds per stage."""

    files: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        done = len(self.written)
        return {"images": done, "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped],
                "seconds": self.seconds, "images_per_s": done / self.seconds if self.seconds else None,
                "files": self.files}


def _decode(path: Path) -> tuple[Path, np.ndarray | None, str | None, float]:
    from segtool.data.images import read_image

    start = time.perf_counter()
    try:
        return path, read_image(path), None, (time.perf_counter() - start) * 1e3
    except SegtoolError as exc:
        return path, None, str(exc), (time.perf_counter() - start) * 1e3


def _executor(decoder: str, workers: int) -> Executor | None:
    if workers <= 0:
        return None
    if decoder not in DECODERS:
        raise SegtoolError(f"decoder {decoder!r}: expected one of {', '.join(DECODERS)}")
    if decoder == "process":
        import multiprocessing

        # fork: the children only decode (PIL, numpy); spawn would re-import torch in each one.
        methods = multiprocessing.get_all_start_methods()
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(
            "fork" if "fork" in methods else "spawn"))
    return ThreadPoolExecutor(workers, thread_name_prefix="decode")


def decoded(paths: list[Path], executor: Executor | None, ahead: int) -> Iterator[tuple]:
    """``_decode`` results in input order, at most ``ahead`` images decoded but not yet taken."""
    if executor is None:
        yield from map(_decode, paths)
        return
    pending: queue.SimpleQueue = queue.SimpleQueue()
    submitted = 0
    for taken in range(len(paths)):
        while submitted < len(paths) and submitted - taken < ahead:
            pending.put(executor.submit(_decode, paths[submitted]))
            submitted += 1
        yield pending.get().result()


class BackgroundWriter:
    """One thread rendering and saving outputs; the first error is raised in the caller's thread."""

    def __init__(self, write: Callable[[Path, np.ndarray, np.ndarray], float], depth: int):
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="predict-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    item[3]["write_ms"] = self._write(*item[:3])
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self._error = exc

    def put(self, path: Path, image: np.ndarray, labels: np.ndarray, record: dict) -> None:
        self._raise()
        self._queue.put((path, image, labels, record))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def predict_many(predictor: Predictor, paths: Iterable[Path], destination: Callable[[Path], Path | str], *,
                 palette, fmt: str = "index", alpha: float = 0.5, batch_size: int = 8, skip_bad: bool = False,
                 force: bool = False, workers: int = 2, decoder: str = "thread",
                 on_image: Callable[[], None] | None = None) -> BatchReport:
    """Label every image and write ``destination(path)``; per-file timing in the report."""
    from segtool.core.io import save_image

    if fmt not in OUTPUT_FORMATS:
        raise SegtoolError(f"--format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    paths, batch_size = list(paths), max(1, batch_size)
    report, start = BatchReport(), time.perf_counter()

    def write(path: Path, image: np.ndarray, labels: np.ndarray) -> float:
        began = time.perf_counter()
        save_image(render_output(image, labels, palette, fmt, alpha), destination(path), force=force, format="PNG")
        return (time.perf_counter() - began) * 1e3

    groups: dict[tuple, list] = {}
    writer = BackgroundWriter(write, depth=2 * batch_size)
    executor = _executor(decoder, workers)
    try:
        def run(group: list) -> None:
            began = time.perf_counter()
            labels = predictor.labels([image for _, image, _ in group])
            per_image = (time.perf_counter() - began) * 1e3 / len(group)
            for (path, image, record), label_map in zip(group, labels, strict=True):
                record.update(infer_ms=per_image, batch=len(group))
                writer.put(path, image, label_map, record)
                report.written.append(destination(path))
                report.files.append(record)
                if on_image is not None:
                    on_image()

        for path, image, error, decode_ms in decoded(paths, executor, ahead=2 * batch_size):
            if error is not None:
                if not skip_bad:
                    raise SegtoolError(error)
                report.skipped.append((path, error))
                continue
            record = {"input": str(path), "output": str(destination(path)), "size": list(image.shape[:2]),
                      "decode_ms": decode_ms}
            group = groups.setdefault(image.shape, [])
            group.append((path, image, record))
            if len(group) >= batch_size:
                run(groups.pop(image.shape))
            elif sum(map(len, groups.values())) > 4 * batch_size:  # many sizes: bound the images held
                run(groups.pop(next(iter(groups))))
        for shape in list(groups):
            run(groups.pop(shape))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        writer.close()
    report.seconds = time.perf_counter() - start
    return report
