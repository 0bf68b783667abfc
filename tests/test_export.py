"""`segtool export` and `segtool predict model.onnx`: verified exports, metadata, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _train_helpers import random_checkpoint
from PIL import Image

pytestmark = [pytest.mark.usefixtures("one_thread")]
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random.pt", num_classes=3, seed=2)


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    """One ONNX export for the module (the exporter takes seconds)."""
    from typer.testing import CliRunner

    from segtool.cli.app import app

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = CliRunner().invoke(app, ["export", str(checkpoint), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.stderr
    return out, json.loads(result.stdout)


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "images"
    folder.mkdir()
    for name, (h, w) in {"a.png": (70, 90), "b.png": (64, 64), "c.png": (45, 100)}.items():
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


@pytest.mark.slow
def test_onnx_export_is_dynamic_verified_and_carries_metadata(onnx_file):
    path, report = onnx_file
    assert report["format"] == "onnx" and report["opset"] >= 18
    assert report["dynamic"] == {"batch": True, "height": True, "width": True}
    assert len(report["checks"]) == 2 and all(c["max_abs_diff"] < 1e-4 for c in report["checks"])
    model = onnx.load(path)
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["segtool.format"] == "segtool-export" and meta["segtool.size_multiple"] == 32
    assert meta["segtool.class_names"][0] == "background" and len(meta["segtool.palette"]) == 3
    assert "segtool.normalize" in meta and meta["segtool.opset"] == report["opset"]
    # fcn8's fused head is one stride-8 transposed convolution, not the three-layer chain.
    strides = [list(a.ints) for n in model.graph.node if n.op_type == "ConvTranspose"
               for a in n.attribute if a.name == "strides"]
    assert [8, 8] in strides
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for i, d in enumerate(dims) if i != 1)


@pytest.mark.slow
def test_onnx_predict_matches_checkpoint_up_to_ties(cli, checkpoint, onnx_file, images, tmp_path):
    from segtool.engine.checkpoint import load_checkpoint
    from segtool.engine.predict import Predictor

    path, _ = onnx_file
    for model, out in ((checkpoint, "torch"), (path, "onnx")):
        result = cli("predict", model, images, "--out-dir", tmp_path / out, "--device", "cpu")
        assert result.exit_code == 0, result.stderr
    predictor = Predictor.from_checkpoint(load_checkpoint(checkpoint), torch.device("cpu"))
    for name in ("a", "b", "c"):
        eager = np.asarray(Image.open(tmp_path / "torch" / f"{name}.png"))
        exported = np.asarray(Image.open(tmp_path / "onnx" / f"{name}.png"))
        differ = eager != exported
        if differ.any():  # only where the two best classes tie to float rounding
            image = np.asarray(Image.open(images / f"{name}.png").convert("RGB"))
            from segtool.engine.inference import model_logits

            with torch.no_grad():
                logits = model_logits(predictor.model, predictor.to_tensor(image)[None], 32)[0]
            top2 = logits.topk(2, dim=0).values
            assert float((top2[0] - top2[1])[torch.from_numpy(differ)].max()) < 1e-4


@pytest.mark.slow
def test_exported_program_round_trip(cli, checkpoint, tmp_path):
    out = tmp_path / "model.pt2"
    result = cli("export", checkpoint, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "max abs difference" in result.stderr
    extra = {"segtool.json": ""}
    program = torch.export.load(out, extra_files=extra)
    meta = json.loads(extra["segtool.json"])
    assert meta["model"] == "fcn8" and meta["size_multiple"] == 32 and len(meta["class_names"]) == 3
    assert program.module()(torch.randn(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    again = cli("export", checkpoint, "-o", out)  # exists: refused, file untouched
    assert again.exit_code == 1 and "already exists (use --force" in again.stderr


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_refuses_the_fused_head_and_exports_the_layered_one(cli, checkpoint, tmp_path):
    out = tmp_path / "model.pt"
    result = cli("export", checkpoint, "-o", out)
    assert result.exit_code == 1 and "TorchScript cannot trace" in result.stderr and not out.exists()
    result = cli("export", checkpoint, "-o", out, "--model-option", "fused=false", "--static", "64x96")
    assert result.exit_code == 0, result.stderr
    extra = {"segtool.json": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    assert module(torch.randn(2, 3, 64, 96)).shape == (2, 3, 64, 96)
    assert json.loads(extra["segtool.json"])["dynamic"]["height"] is False


def test_a_fixed_side_names_the_line_and_offers_static():
    from segtool.core.errors import SegtoolError
    from segtool.deploy.trace import trace_program

    class FixedWidth(torch.nn.Module):
        def forward(self, images):
            return images.reshape(images.shape[0], 3, images.shape[2], 96)

    with pytest.raises(SegtoolError) as info:
        trace_program(FixedWidth(), torch.randn(2, 3, 64, 96), None, "toy")
    message = str(info.value)
    assert "cannot export with a dynamic width" in message and "test_export.py:" in message
    assert "--static 64x96" in message


def test_onnx_extra_missing_is_named(cli, checkpoint, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    result = cli("export", checkpoint, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 1 and "segtool[onnx]" in result.stderr and not (tmp_path / "m.onnx").exists()


def test_bad_export_input(cli, checkpoint, tmp_path):
    for args, message in (((checkpoint, "-o", tmp_path / "m.txt"), "cannot tell the format"),
                          (("fcn8", "-o", tmp_path / "m.onnx"), "export needs a checkpoint"),
                          ((tmp_path / "none.pt", "-o", tmp_path / "m.onnx"), "checkpoint not found"),
                          ((checkpoint, "-o", tmp_path / "m.pt2", "--static", "50x64"), "not a multiple of 32")):
        result = cli("export", *args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1


def _foreign_onnx(path):
    """A 1x1 conv 3 -> 2 classes, saved without segtool metadata."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((2, 3, 1, 1)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["images", "w"], ["logits"])], "foreign",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2, "h", "w"])],
                              [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_foreign_onnx_says_what_is_missing_or_takes_classes(cli, images, tmp_path):
    model = tmp_path / "foreign.onnx"
    _foreign_onnx(model)
    result = cli("predict", model, images, "--out-dir", tmp_path / "out")
    assert result.exit_code == 1 and "not a segtool export" in result.stderr
    assert "class names, palette, normalisation, size multiple" in result.stderr and "--classes" in result.stderr
    assert not (tmp_path / "out").exists()
    result = cli("predict", model, images, "--out-dir", tmp_path / "out", "--classes", "sky,ground")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "out" / "a.png").size == (90, 70)


def test_predict_onnx_without_onnxruntime_names_the_extra(cli, images, tmp_path, monkeypatch):
    import sys

    model = tmp_path / "foreign.onnx"
    _foreign_onnx(model)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = cli("predict", model, images, "--out-dir", tmp_path / "out")
    assert result.exit_code == 1 and "needs onnxruntime" in result.stderr and "segtool[onnx]" in result.stderr


@pytest.mark.slow
def test_onnx_predict_honours_the_trained_input_scale(cli, checkpoint, images, tmp_path):
    """A model trained with --input-scale 0.5 sees images at half size, from the .onnx as from the .pt."""
    from segtool.deploy.onnx_model import onnx_predictor
    from segtool.engine.checkpoint import load_checkpoint, save_checkpoint

    scaled = load_checkpoint(checkpoint)
    scaled["config"]["input_scale"] = 0.5
    save_checkpoint(scaled, tmp_path / "scaled.pt")
    out = tmp_path / "scaled.onnx"
    result = cli("export", tmp_path / "scaled.pt", "-o", out)
    assert result.exit_code == 0, result.stderr
    predictor, _palette, meta = onnx_predictor(out)
    assert meta["input_scale"] == 0.5 and predictor.input_scale == 0.5
    for model, name in ((tmp_path / "scaled.pt", "torch"), (out, "onnx")):
        result = cli("predict", model, images / "a.png", "-o", tmp_path / f"{name}.png", "--device", "cpu")
        assert result.exit_code == 0, result.stderr
    eager = np.asarray(Image.open(tmp_path / "torch.png"))
    exported = np.asarray(Image.open(tmp_path / "onnx.png"))
    assert eager.shape == (70, 90) and (eager == exported).mean() > 0.99
