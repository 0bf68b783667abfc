"""Issue 14 polish: help shows real metavars, plurals agree with counts."""

from __future__ import annotations

import re

import pytest

from segtool.cli.app import app

TYPE_METAVARS = re.compile(r"<(bool|str|int|float|path|list\[|int range|float range)")


def _command_names():
    from typer.main import get_command

    return sorted(get_command(app).commands)


@pytest.mark.parametrize("name", ["train", "iou", "compare", "stylize", "label2color", "evaluate"])
def test_help_shows_words_not_python_types(cli, name):
    result = cli(name, "--help")
    assert result.exit_code == 0, result.stderr
    assert not TYPE_METAVARS.search(result.stdout), TYPE_METAVARS.search(result.stdout).group(0)


def test_every_command_help_is_free_of_type_metavars(cli):
    for name in _command_names():
        text = cli(name, "--help").stdout
        assert not TYPE_METAVARS.search(text), (name, TYPE_METAVARS.search(text).group(0))
    help_text = cli("train", "--help").stdout
    assert re.search(r"--threads\s+N \[x>=1\]", help_text)  # the range stays, after a word
    assert re.search(r"--force\s+-f\s+Overwrite", help_text)  # flags show no metavar
