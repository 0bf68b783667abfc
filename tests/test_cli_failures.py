"""The choke points of failure: usage errors, OS errors and written files' permissions."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from segtool.cli.app import os_error_message

SEGTOOL = [sys.executable, "-m", "segtool"]


def _run(*args, stdout=subprocess.PIPE, **kwargs):
    return subprocess.run([*SEGTOOL, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=120, **kwargs)


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("args, expected", [
    (["info", "--no-such-option"], "No such option: --no-such-option"),
    (["train"], "Missing argument"),
    (["palette", "voc", "--bogus"], "--bogus"),
])
def test_usage_errors_are_one_line_with_exit_2(cli, args, expected):
    result = cli(*args)
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert expected in line and "--help" in line


def test_a_bad_option_value_names_the_option(cli):
    result = cli("anchors", "--size", "10by10")
    assert result.exit_code == 2
    assert _one_error_line(result.stderr).startswith("error: --size: ")


def test_help_is_unchanged(cli):
    result = cli("palette", "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_on_stdout_is_one_line():
    with open("/dev/full", "w") as full:
        proc = _run("palette", "voc", stdout=full)
    assert proc.returncode == 1
    assert _one_error_line(proc.stderr) == "error: stdout: No space left on device"


def test_broken_pipe_is_one_line():
    # `anchors --all` streams far more than a pipe buffer; the reader leaves after one byte.
    proc = subprocess.Popen([*SEGTOOL, "anchors", "--size", "300x300", "--all"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.read(1)
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "broken pipe" in errors[0] and stderr.rstrip().endswith(errors[0])


def test_os_errors_from_a_command_name_the_file(cli, monkeypatch, tmp_path):
    import segtool.core.io as io

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "labels.png"))

    monkeypatch.setattr(io.tempfile, "mkstemp", no_space)
    result = cli("label2color", _index_mask(tmp_path), "-o", tmp_path / "labels.png")
    assert result.exit_code == 1
    assert _one_error_line(result.stderr) == f"error: {tmp_path / 'labels.png'}: No space left on device"
    assert not (tmp_path / "labels.png").exists()


def test_os_error_message_forms():
    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", "/x/y")) == "/x/y: Permission denied"
    assert os_error_message(OSError(errno.EROFS, "Read-only file system", "out")) == "out: Read-only file system"
    assert "broken pipe" in os_error_message(BrokenPipeError(errno.EPIPE, "Broken pipe"))


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_permissions_the_umask_gives(tmp_path, umask):
    code = ("import os, sys; os.umask(int(sys.argv[2], 8)); from segtool.core.io import atomic_write; "
            "atomic_write(sys.argv[1], lambda f: f.write(b'x'))")
    target = tmp_path / "out.bin"
    subprocess.run([sys.executable, "-c", code, str(target), oct(umask)[2:]], check=True, timeout=60)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def _index_mask(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "mask.png"
    Image.new("L", (8, 8), 1).save(path)
    return path
