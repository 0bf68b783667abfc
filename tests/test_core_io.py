"""Atomic output conventions: no overwrite without --force, no partial file, devices untouched."""

from __future__ import annotations

import os
import stat

import pytest

from segtool.core.errors import SegtoolError
from segtool.core.io import atomic_write, iter_input_paths


def test_refuses_existing_without_force(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(SegtoolError, match="--force"):
        atomic_write(out, lambda h: h.write(b"new"))
    assert out.read_text() == "old"
    atomic_write(out, lambda h: h.write(b"new"), force=True)
    assert out.read_text() == "new"


def test_failed_writer_leaves_nothing(tmp_path):
    out = tmp_path / "b.bin"

    def writer(handle):
        handle.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(out, writer)
    assert list(tmp_path.iterdir()) == []


def test_fifo_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # reader end
        with open(fifo, "rb") as handle:
            handle.read()
        os._exit(0)
    atomic_write(fifo, lambda h: h.write(b"data"))
    os.waitpid(pid, 0)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_iter_input_paths_expands_dirs_and_stdin(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("b.png", "a.png", "c.txt"):
        (tmp_path / "d" / name).write_text("x")
    found = list(iter_input_paths([str(tmp_path / "d")], extensions=[".png"]))
    assert [p.name for p in found] == ["a.png", "b.png"]
    import io

    stdin = io.StringIO("x.png\n\n y.png \n")
    assert [str(p) for p in iter_input_paths(["-"], stdin=stdin)] == ["x.png", "y.png"]
    with pytest.raises(SegtoolError, match="no such file"):
        list(iter_input_paths([str(tmp_path / "missing.png")]))
