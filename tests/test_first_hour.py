"""A new user's first hour (issue 14): one demo set, honest --print-config, examples that run."""

from __future__ import annotations

import inspect

import yaml

from segtool.cli.data import make_demo_data
from segtool.data.demo import DEFAULTS
from segtool.engine.config import DEMO_DATA


def test_make_demo_data_defaults_are_the_set_train_uses():
    options = {name: p.default for name, p in inspect.signature(make_demo_data).parameters.items()}
    assert {key: options[key] for key in DEMO_DATA} == DEMO_DATA == DEFAULTS


def test_a_folder_from_make_demo_data_is_named_as_such_and_gets_the_demo_preset(cli, tiny_demo):
    result = cli("train", "fcn8", "--data", tiny_demo, "--print-config")
    assert result.exit_code == 0, result.stderr
    assert f"# data: a demo set (make-demo-data) at {tiny_demo}" in result.stdout
    assert "built-in" not in result.stdout.split("\n")[1]
    config = yaml.safe_load(result.stdout)
    assert config["epochs"] == 4 and config["crop"] == [64, 64]  # the demo preset, not 150 epochs


def test_the_built_in_demo_set_is_named_built_in(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGTOOL_DATA", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)
    result = cli("train", "fcn8", "--print-config")
    assert result.exit_code == 0, result.stderr
    assert "# data: the built-in demo set train=240" in result.stdout
