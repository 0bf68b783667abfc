"""Pretrained backbones: torch cache, explicit files, and the fast clear error when offline."""

from __future__ import annotations

import io
import socket
import time

import pytest
import torch
import torchvision

from segtool.core.errors import SegtoolError
from segtool.core.weights import reachable
from segtool.models import create_model
from segtool.models.fcn_vgg import vgg16_features


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch cache and no network: every connection and download attempt fails."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (forced offline by the test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return home / "hub" / "checkpoints"


@pytest.mark.parametrize("name,filename", [
    ("fcn-resnet18", "resnet18-f37072fd.pth"),
    ("fcns", "vgg16-397923af.pth"),
    ("tv:lraspp_mobilenet_v3_large", "mobilenet_v3_large-8738ca79.pth"),
])
def test_offline_without_cache_fails_fast_with_a_clear_message(offline, name, filename):
    start = time.perf_counter()
    with pytest.raises(SegtoolError) as err:
        create_model(name, 21, pretrained=True)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert filename in message and str(offline) in message
    assert "--backbone-weights PATH" in message and "--no-pretrained" in message
    assert "\n" not in message


def test_models_honour_segtool_offline_without_touching_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SEGTOOL_OFFLINE", "1")
    attempts = []

    def record(*args, **kwargs):
        attempts.append(args)
        raise OSError("the test refuses connections")

    monkeypatch.setattr(socket, "create_connection", record)
    monkeypatch.setattr(torch.hub, "download_url_to_file", record)
    for name in ("fcn-resnet18", "tv:lraspp_mobilenet_v3_large"):
        start = time.perf_counter()
        with pytest.raises(SegtoolError, match=r"SEGTOOL_OFFLINE.*--backbone-weights PATH.*--no-pretrained"):
            create_model(name, 21, pretrained=True)
        assert time.perf_counter() - start < 1
    assert attempts == []


def test_reach_probe_gives_up_when_name_resolution_hangs(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(5)  # like a resolver that never answers (socket timeouts do not cover DNS)
        raise OSError("resolver gave up")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    ok, reason = reachable("https://download.pytorch.org/models/x.pth", timeout=0.5)
    assert not ok and "no answer" in reason
    assert time.perf_counter() - start < 3


def test_pretrained_loads_from_the_torch_cache(offline):
    offline.mkdir(parents=True)
    reference = torchvision.models.resnet18().state_dict()
    torch.save(reference, offline / "resnet18-f37072fd.pth")
    model = create_model("fcn-resnet18", 5, pretrained=True)
    assert torch.equal(model.backbone.layer3[0].conv1.weight, reference["layer3.0.conv1.weight"])
    assert torch.equal(model.backbone.bn1.running_var, reference["bn1.running_var"])


def test_missing_file_is_downloaded_into_the_torch_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SEGTOOL_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: io.BytesIO())  # the probe succeeds
    reference = torchvision.models.resnet18().state_dict()
    calls = []

    def download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        torch.save(reference, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    model = create_model("fcn-resnet18", 5, pretrained=True)
    assert calls == [("https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd")]
    assert (tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth").is_file()
    assert torch.equal(model.backbone.conv1.weight, reference["conv1.weight"])


def test_backbone_weights_file_for_vgg(tmp_path):
    features = vgg16_features().state_dict()
    state = {f"features.{k}": v for k, v in features.items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # torchvision's file also holds a classifier
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = create_model("fcn16s", 2, backbone_weights=path)
    assert torch.equal(model.backbone["28"].weight, features["28.weight"])


def test_bad_backbone_weight_files_are_user_errors(tmp_path):
    with pytest.raises(SegtoolError, match="no such weights file"):
        create_model("fcn-resnet18", 2, backbone_weights=tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SegtoolError, match="garbage.pth: not a readable weights file"):
        create_model("fcn-resnet18", 2, backbone_weights=garbage)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(SegtoolError, match="wrong.pth: does not fit this backbone"):
        create_model("fcn8s", 2, backbone_weights=wrong)
