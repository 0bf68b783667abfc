"""Device resolution for every spec form, with fake torch_npu / unavailable CUDA and MPS."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import typer

from segtool.cli.app import app
from segtool.cli.options import Device
from segtool.core import device as devmod
from segtool.core.device import parse_device_spec, resolve_device
from segtool.core.errors import SegtoolError


@pytest.mark.parametrize("spec,kind,index", [
    ("auto", "auto", None), ("cpu", "cpu", None), ("cuda", "cuda", None), ("cuda:1", "cuda", 1),
    ("npu", "npu", None), ("npu:3", "npu", 3), ("mps", "mps", None), (" CUDA:0 ", "cuda", 0)])
def test_parse_valid(spec, kind, index):
    parsed = parse_device_spec(spec)
    assert (parsed.kind, parsed.index) == (kind, index)


@pytest.mark.parametrize("spec", ["gpu9", "cuda:", "cpu:0", "mps:1", "", "cuda:-1", "npu:x"])
def test_parse_invalid(spec):
    with pytest.raises(ValueError):
        parse_device_spec(spec)


@pytest.fixture
def no_cuda_no_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def _fake_torch_npu(monkeypatch, available=True, count=2):
    fake = types.ModuleType("torch_npu")
    contrib = types.ModuleType("torch_npu.contrib")
    transfer = types.ModuleType("torch_npu.contrib.transfer_to_npu")
    fake.contrib = contrib
    contrib.transfer_to_npu = transfer
    monkeypatch.setitem(sys.modules, "torch_npu", fake)
    monkeypatch.setitem(sys.modules, "torch_npu.contrib", contrib)
    monkeypatch.setitem(sys.modules, "torch_npu.contrib.transfer_to_npu", transfer)
    npu = types.SimpleNamespace(is_available=lambda: available, device_count=lambda: count)
    monkeypatch.setattr(torch, "npu", npu, raising=False)
    # torch.device("npu") needs the backend registered; record the request instead.
    real_device = torch.device
    monkeypatch.setattr(torch, "device", lambda s: ("fake-device", s) if str(s).startswith("npu") else real_device(s))


def test_auto_is_cpu_without_accelerators(no_cuda_no_mps, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_npu", None)  # import fails
    assert resolve_device("auto", announce=False).type == "cpu"


def test_auto_picks_npu_when_torch_npu_reports_one(no_cuda_no_mps, monkeypatch):
    _fake_torch_npu(monkeypatch)
    assert resolve_device("auto", announce=False) == ("fake-device", "npu")


def test_explicit_npu_index(no_cuda_no_mps, monkeypatch):
    _fake_torch_npu(monkeypatch, count=2)
    assert resolve_device("npu:1", announce=False) == ("fake-device", "npu:1")
    with pytest.raises(SegtoolError, match="only 2"):
        resolve_device("npu:5", announce=False)


def test_npu_transfer_imports_contrib(no_cuda_no_mps, monkeypatch):
    _fake_torch_npu(monkeypatch)
    imported = []
    real_import = devmod.importlib.import_module

    def record(name, *a, **k):
        imported.append(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(devmod.importlib, "import_module", record)
    assert resolve_device("npu", announce=False) == ("fake-device", "npu")
    assert "torch_npu.contrib.transfer_to_npu" not in imported  # only on request
    assert resolve_device("npu", npu_transfer=True, announce=False) == ("fake-device", "npu")
    assert imported.count("torch_npu.contrib.transfer_to_npu") == 1


def test_npu_transfer_needs_npu(no_cuda_no_mps, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_npu", None)
    with pytest.raises(SegtoolError, match="--npu-transfer"):
        resolve_device("cpu", npu_transfer=True, announce=False)


def test_explicit_npu_without_torch_npu_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_npu", None)
    with pytest.raises(SegtoolError, match=r"pip install 'segtool\[npu\]'"):
        resolve_device("npu", announce=False)


def test_broken_torch_npu_import_is_reported(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch_npu", raising=False)
    real_import = devmod.importlib.import_module

    def fake_import(name, *a, **k):
        if name == "torch_npu":
            raise RuntimeError("libascendcl.so: cannot open shared object")
        return real_import(name, *a, **k)

    monkeypatch.setattr(devmod.importlib, "import_module", fake_import)
    ok, _, reason = devmod.npu_status()
    assert not ok and "libascendcl" in reason


def test_unavailable_cuda_and_mps(no_cuda_no_mps):
    with pytest.raises(SegtoolError, match="CUDA is not available"):
        resolve_device("cuda", announce=False)
    with pytest.raises(SegtoolError, match="mps"):
        resolve_device("mps", announce=False)


def test_threads_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        resolve_device("cpu", threads=1, announce=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_device_announced_once_on_stderr(capsys, no_cuda_no_mps):
    resolve_device("cpu")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("device: cpu") == 1


def test_bad_device_option_exits_2(cli):
    """Every command with --device validates it at parse time; `info` has none, so build one."""
    sub = typer.Typer()

    @sub.command("devtest")
    def devtest(device: Device = "auto"):
        pass

    app.add_typer(sub)
    try:
        result = cli("devtest", "--device", "gpu9")
    finally:
        app.registered_groups.pop()
    assert result.exit_code == 2
    assert "gpu9" in result.stderr
