"""The CLI skeleton: help everywhere, version, error conventions, JSON output stays clean."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from segtool.cli.app import app
from segtool.core.errors import SegtoolError


def _command_names():
    from typer.main import get_command

    return sorted(get_command(app).commands)


def test_root_help_lists_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0
    assert "info" in result.stdout


def test_no_args_shows_help(cli):
    result = cli()
    assert "Usage" in result.stdout + result.stderr


@pytest.mark.parametrize("name", _command_names())
def test_every_command_has_help(cli, name):
    result = cli(name, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Usage" in result.stdout


def test_version(cli):
    from segtool import __version__

    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"segtool {__version__}"


def test_python_m_segtool_help_without_torch():
    code = ("import runpy, sys; sys.argv=['segtool','--help']\n"
            "try:\n runpy.run_module('segtool', run_name='__main__')\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
            "assert 'torchvision' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_info_json_is_valid_and_stdout_only(cli):
    result = cli("info", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["devices"]["cpu"]["available"] is True
    assert set(report["weights"]) == {"vgg16", "vgg19", "resnet18"}
    assert "voc_present" in report


def test_domain_error_is_one_line_exit_1(cli, monkeypatch):
    sub = typer.Typer()

    @sub.command("boom-test")
    def boom():
        raise SegtoolError("data/x.png: cannot read\nsecond line")

    app.add_typer(sub)
    try:
        result = cli("boom-test")
    finally:
        app.registered_groups.pop()
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: data/x.png: cannot read second line\n"


def test_debug_env_shows_traceback(cli):
    sub = typer.Typer()

    @sub.command("boom-debug")
    def boom():
        raise SegtoolError("kaboom")

    app.add_typer(sub)
    try:
        result = cli("boom-debug", env={"SEGTOOL_DEBUG": "1"})
    finally:
        app.registered_groups.pop()
    assert isinstance(result.exception, SegtoolError)


def test_bad_option_exits_2(cli):
    result = cli("info", "--no-such-option")
    assert result.exit_code == 2


def test_quiet_silences_notices_of_any_command(cli, tmp_path):
    loud = cli("make-demo-data", tmp_path / "a", "--train", "2", "--val", "1")
    assert loud.exit_code == 0 and "wrote" in loud.stderr
    quiet = cli("make-demo-data", tmp_path / "b", "--train", "2", "--val", "1", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    again = cli("make-demo-data", tmp_path / "c", "--train", "2", "--val", "1")  # the next command is loud again
    assert "wrote" in again.stderr
