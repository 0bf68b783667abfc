"""File conventions: ``-`` for stdin/stdout, no overwrite without --force, atomic writes.

Every output goes to a temporary file in the target directory and is moved into place with
``os.replace``, so an interrupted or failed command never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from segtool.core.errors import SegtoolError

STDIO = "-"


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


_CREATE_MODE = 0o666 & ~_umask()  # what open() would give a new file


def is_stdio(path: str | os.PathLike | None) -> bool:
    return path is not None and str(path) == STDIO


def is_special_file(path: Path) -> bool:
    """Devices and FIFOs (/dev/null, /dev/stdout, named pipes): written in place, never replaced."""
    return path.exists() and not path.is_file() and not path.is_dir()


def check_output(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite an existing file unless --force; make sure the folder can take it."""
    out = Path(path)
    if out.is_dir():
        raise SegtoolError(f"{out}: is a directory, expected an output file path")
    if is_special_file(out):
        return out
    if out.exists() and not force:
        raise SegtoolError(f"{out}: already exists (use --force to overwrite)")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise SegtoolError(f"{parent}: is not a directory")
    return out


def plan_outputs(inputs: Iterable[Path], output: str | None, out_dir: str | None, force: bool,
                 suffix: str = ".png") -> list[tuple[Path, str]]:
    """(input, output) pairs: ``-o OUT`` for one input, or ``out_dir/<stem><suffix>`` for each.

    Everything that would fail is refused before the first file is written: existing outputs
    (without --force), two inputs sharing an output name, and an output that is its own input.
    """
    paths = list(inputs)
    if not paths:
        raise SegtoolError("no input files given")
    if output is not None:
        if len(paths) != 1:
            raise SegtoolError(f"-o {output}: takes exactly one input, got {len(paths)}; use --out-dir for several")
        if not is_stdio(output):
            check_output(output, force)
            _refuse_input_overwrite(paths[0], Path(output), "-o")
        return [(paths[0], output)]
    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise SegtoolError(f"{directory}: exists and is not a directory")
    plan, seen = [], {}
    for path in paths:
        target = directory / f"{path.stem}{suffix}"
        if target in seen:
            raise SegtoolError(f"{path} and {seen[target]} would both be written to {target}")
        _refuse_input_overwrite(path, target, "--out-dir")
        seen[target] = path
        check_output(target, force)
        plan.append((path, str(target)))
    return plan


def _refuse_input_overwrite(source: Path, target: Path, option: str) -> None:
    if target.exists() and source.resolve() == target.resolve():
        raise SegtoolError(f"{source}: output would overwrite the input; choose another {option}")


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", force: bool = False) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success move it over ``path``, on failure delete it."""
    out = check_output(path, force)
    if is_special_file(out):
        # os.replace would swap a device node for a regular file (as root, even /dev/null).
        with open(out, mode) as handle:
            yield handle
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        os.fchmod(fd, _CREATE_MODE)  # mkstemp makes 0600; a written file gets what the umask gives
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[IO], None], *, force: bool = False,
                 binary: bool = True) -> None:
    """Call ``writer(handle)`` into a temp file, then replace ``path`` (``-`` writes to stdout)."""
    if is_stdio(path):
        stream = sys.stdout.buffer if binary else sys.stdout
        writer(stream)
        stream.flush()
        return
    with atomic_open(path, "wb" if binary else "w", force=force) as handle:
        writer(handle)


def save_image(image, path: str | os.PathLike, *, force: bool = False, format: str | None = None) -> None:
    """Save a PIL image atomically (``-`` = PNG on stdout)."""
    fmt = format or ("PNG" if is_stdio(path) else None)
    if fmt is None:
        ext = Path(path).suffix.lower()
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
               ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, "PNG")
    atomic_write(path, lambda handle: image.save(handle, format=fmt), force=force)


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """A small text input (palette, config, weights list); errors name the file and what it is."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SegtoolError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SegtoolError(f"{path}: cannot read {what} ({exc.__class__.__name__})") from None


_JSON = json.JSONDecoder()


def parse_json_text(text: str, start: int | None = None):
    """``json.loads(text)``, or with ``start`` the value there and its end (``JSONDecoder.raw_decode``).

    JSON nested deeper than the parser's recursion limit raises json.JSONDecodeError (a ValueError,
    like any other bad JSON) instead of RecursionError, so every reader's bad-JSON handler gives its
    one-line error.
    """
    try:
        return json.loads(text) if start is None else _JSON.raw_decode(text, start)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, start or 0) from None


def iter_input_paths(inputs: Iterable[str], extensions: Iterable[str] | None = None,
                     stdin: IO[str] | None = None) -> Iterator[Path]:
    """Expand inputs: files as given, directories to their (sorted) files, ``-`` to stdin lines."""
    exts = {e.lower() for e in extensions} if extensions else None
    for item in inputs:
        if is_stdio(item):
            for line in (stdin or sys.stdin):
                line = line.strip()
                if line:
                    yield Path(line)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and (exts is None or p.suffix.lower() in exts))
            if not found:
                raise SegtoolError(f"{path}: directory holds no input files")
            yield from found
        elif path.exists():
            yield path
        else:
            raise SegtoolError(f"{path}: no such file or directory")
