"""`segtool train` configuration: recipe defaults, demo preset, YAML files, overrides, bad options."""

from __future__ import annotations

import pytest
import yaml

from segtool.engine import config as config_module

pytestmark = pytest.mark.usefixtures("one_thread")


def _print_config(cli, tmp_path, monkeypatch, *args):
    monkeypatch.setenv("SEGTOOL_DATA", str(tmp_path / "no-data"))  # no VOC at the default location
    monkeypatch.setenv("SEGTOOL_CACHE", str(tmp_path / "cache"))
    return cli("train", "fcn8", "--print-config", *args)


def test_print_config_shows_recipe_and_what_the_demo_preset_changed(cli, tmp_path, monkeypatch):
    result = _print_config(cli, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.stderr
    values = yaml.safe_load(result.stdout)
    # Every option is printed, and the output is a valid --config file.
    assert set(values) == set(config_module.FIELDS)
    # fcn8 recipe: SGD wd 5e-4, OneCycle peak 0.1 (shown as lr, so --lr sets it), div 25 / final div 1e4 /
    # pct 0.3, no normalisation.
    assert values["optimizer"] == "sgd" and values["lr"] == 0.1 and values["weight_decay"] == 5e-4
    assert values["schedule_options"].get("max_lr") is None
    assert values["schedule"] == "onecycle" and values["normalize"] is None
    options = values["schedule_options"]
    assert options["div_factor"] == 25 and options["final_div_factor"] == 1e4 and options["pct_start"] == 0.3
    # The demo preset is applied and says so, with the recipe value it replaced.
    assert values["format"] == "demo"
    assert values["crop"] == config_module.DEMO_PRESET["crop"]
    assert "demo preset (demo data: built-in or from make-demo-data) changed: crop [224, 224] -> " in result.stdout
    assert "# demo preset (was [224, 224] from the recipe)" in result.stdout
    # --print-config writes nothing and generates no data.
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()


def test_config_file_then_command_line(cli, tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 3\nbatch-size: 2\nlr: 0.5\nschedule_options: {max_lr: 0.05}\n")
    result = _print_config(cli, tmp_path, monkeypatch, "--config", config, "--lr", "0.25", "--crop", "32x64")
    assert result.exit_code == 0, result.stderr
    values = yaml.safe_load(result.stdout)
    assert values["epochs"] == 3 and values["batch_size"] == 2  # from the file (dashes accepted)
    assert values["lr"] == 0.25 and values["crop"] == [32, 64]  # the command line wins
    assert values["schedule_options"]["max_lr"] == 0.05 and values["schedule_options"]["div_factor"] == 25
    assert "lr: 0.25  # command line" in result.stdout and "epochs: 3  # config file" in result.stdout

    # Round trip: the printed config fed back as --config gives the same configuration.
    printed = tmp_path / "printed.yaml"
    printed.write_text(result.stdout)
    again = _print_config(cli, tmp_path, monkeypatch, "--config", printed)
    assert yaml.safe_load(again.stdout) == values


def test_changing_the_schedule_drops_the_recipe_options(cli, tmp_path, monkeypatch):
    result = _print_config(cli, tmp_path, monkeypatch, "--schedule", "poly", "--schedule-option", "power=2")
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout)["schedule_options"] == {"power": 2}


def test_bad_configurations(cli, tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nlearning_rate: 0.1\n")
    result = _print_config(cli, tmp_path, monkeypatch, "--config", bad)
    assert result.exit_code == 1 and "unknown option 'learning_rate'" in result.stderr

    other = tmp_path / "other.yaml"
    other.write_text("model: bisenetv2\n")
    result = _print_config(cli, tmp_path, monkeypatch, "--config", other)
    assert result.exit_code == 1 and "'bisenetv2'" in result.stderr and "'fcn8'" in result.stderr

    result = _print_config(cli, tmp_path, monkeypatch, "--config", tmp_path / "missing.yaml")
    assert result.exit_code == 1 and "missing.yaml: config file not found" in result.stderr

    result = _print_config(cli, tmp_path, monkeypatch, "--crop", "12xq")
    assert result.exit_code == 1 and "crop" in result.stderr

    result = _print_config(cli, tmp_path, monkeypatch, "--optimizer", "lbfgs")
    assert result.exit_code == 1 and "optimizer 'lbfgs'" in result.stderr

    # An explicit --data that does not exist is an error, never a fallback to the demo set.
    result = cli("train", "fcn8", "--data", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert result.exit_code == 1 and "nowhere: dataset not found (--data)" in result.stderr
    assert not (tmp_path / "run").exists()

    result = cli("train", "no-such-model", "--print-config")
    assert result.exit_code != 0 and "no-such-model" in result.stderr


def test_example_configs_load(cli, tmp_path, monkeypatch):
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    models = {"voc_fcn8.yaml": "fcn8", "voc_fcn_resnet18.yaml": "fcn-resnet18", "bag_fcns_binary.yaml": "fcns",
              "camvid_bisenetv2.yaml": "bisenetv2"}
    for name, model in models.items():
        result = cli("train", model, "--config", examples / name, "--print-config")
        assert result.exit_code == 0, (name, result.stderr)
        values = yaml.safe_load(result.stdout)
        assert values["model"] == model and values["data"].startswith("data/")
    assert "loss: bce" in cli("train", "fcns", "--config", examples / "bag_fcns_binary.yaml",
                              "--print-config").stdout


def test_every_field_is_one_train_option_with_its_declared_help():
    import dataclasses
    import typing

    import typer.main

    from segtool.cli import train as train_module
    from segtool.cli.app import app

    command = typer.main.get_command(app).commands["train"]
    params = {p.name: p for p in command.params}
    for f in dataclasses.fields(config_module.TrainConfig):
        param = params.pop(f.name)
        meta = f.metadata
        if meta["shared"]:  # --device / --threads: the option every command has
            help_text = typing.get_args(train_module.SHARED[f.name])[1].help
        else:
            help_text = meta["help"]
        assert param.help == help_text, f.name
        if not meta["argument"]:
            assert config_module.cli_flag(f) in param.opts, f.name
    # What is left is the command's own options, none of them a config field under another name.
    assert set(params) == {"npu_transfer", "out", "force", "resume", "config", "print_config", "quiet"}


def test_options_of_every_kind_reach_the_config(cli, tmp_path, monkeypatch):
    result = _print_config(cli, tmp_path, monkeypatch, "--no-hflip", "--scale", "0.5,1.5", "--normalize",
                           "imagenet", "--model-option", "width=2", "--device", "cpu", "--threads", "1",
                           "--val-split", "check", "--save-every", "2")
    assert result.exit_code == 0, result.stderr
    values = yaml.safe_load(result.stdout)
    assert values["hflip"] is False and values["scale"] == [0.5, 1.5] and values["normalize"] == "imagenet"
    assert values["model_options"] == {"width": 2} and values["device"] == "cpu" and values["threads"] == 1
    assert values["val_split"] == "check" and values["save_every"] == 2
    for key in ("hflip", "scale", "normalize", "model_options", "device", "threads", "val_split", "save_every"):
        assert f"{key}: " in result.stdout and any(line.startswith(f"{key}: ") and line.endswith("# command line")
                                                    for line in result.stdout.splitlines()), key


def test_a_demo_preset_with_another_schedule_drops_the_recipes_schedule_options():
    from types import SimpleNamespace

    from segtool.engine.config_layers import resolve_config

    info = SimpleNamespace(recipe={"schedule": "poly", "schedule_options": {"power": 0.9},
                                   "demo": {"schedule": "onecycle"}}, normalization=None)
    resolved = resolve_config("fcn8", info, use_demo=True)
    assert resolved.config.schedule == "onecycle" and "power" not in resolved.config.schedule_options
    kept = resolve_config("fcn8", SimpleNamespace(recipe={"schedule": "poly", "schedule_options": {"power": 0.9}},
                                                  normalization=None), use_demo=True)
    assert kept.config.schedule_options == {"power": 0.9}


def test_fcn32s_demo_preset_augments_and_the_command_line_still_wins(cli, tmp_path, monkeypatch):
    # fcn32s upsamples from 2x2 features of a 64-px demo image; without flips and rescaling it overfits the
    # 240 demo images (val mIoU 0.52), with them it learns (0.60): its demo preset turns them on.
    monkeypatch.setenv("SEGTOOL_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("SEGTOOL_CACHE", str(tmp_path / "cache"))
    result = cli("train", "fcn32s", "--print-config")
    assert result.exit_code == 0, result.stderr
    values = yaml.safe_load(result.stdout)
    assert values["hflip"] is True and values["scale"] == [0.75, 1.25]
    assert values["batch_size"] == 8 and values["epochs"] == 32
    assert "hflip: true  # demo preset (was false from the recipe)" in result.stdout
    # The shared VGG demo values stay (AdamW one-cycle, clipped), and fcn8s does not get fcn32s's overrides.
    assert values["optimizer"] == "adamw" and values["clip_grad"] == 1.0
    other = yaml.safe_load(cli("train", "fcn8s", "--print-config").stdout)
    assert other["hflip"] is False and other["epochs"] == 8
    overridden = yaml.safe_load(cli("train", "fcn32s", "--print-config", "--no-hflip", "--epochs", "3").stdout)
    assert overridden["hflip"] is False and overridden["epochs"] == 3 and overridden["scale"] == [0.75, 1.25]
