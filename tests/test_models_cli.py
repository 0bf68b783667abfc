"""`segtool models [--json]`."""

from __future__ import annotations

import json

import torch
import torchvision


def test_models_json_lists_everything(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cache / "resnet18-f37072fd.pth")
    result = cli("models", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows)[:7] == ["fcn8", "fcn-resnet18", "fcn32s", "fcn16s", "fcn8s", "fcns", "bisenetv2"]
    assert "tv:fcn_resnet50" in rows
    fcn8 = rows["fcn8"]
    assert fcn8["params_21_classes"] == 31_899_372
    assert fcn8["size_multiple"] == 32 and fcn8["normalization"] is None and fcn8["default_crop"] == [224, 224]
    assert fcn8["recipe"]["schedule"] == "onecycle"
    assert rows["fcn-resnet18"]["backbone_cached"] is True
    assert rows["fcns"]["backbone_cached"] is False and rows["fcns"]["backbone_file"] == "vgg16-397923af.pth"
    assert rows["bisenetv2"]["aux_heads"] == 4


def test_models_table_goes_to_stderr(cli):
    result = cli("models", "fcn8", "bisenetv2")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "fcn8" in result.stderr and "bisenetv2" in result.stderr and "fcns" not in result.stderr


def test_unknown_model_is_one_line_error(cli):
    result = cli("models", "fcn9")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown model 'fcn9'") and result.stderr.count("\n") == 1


def test_published_torchvision_counts_match_the_built_models():
    from segtool.models import create_model
    from segtool.models.torchvision_models import published_param_count

    for name in ("tv:fcn_resnet50", "tv:lraspp_mobilenet_v3_large"):
        with torch.device("meta"):
            model = create_model(name, 21)
        assert published_param_count(name) == sum(p.numel() for p in model.parameters())
