"""Every ```bash example of README.md runs as written, in a temp workspace of small inputs.

How it works (and how a new README section opts in):
- Each ```bash block is split into commands (lines joined at a trailing backslash; ``# ...`` comments
  dropped; ``NAME=value`` lines set a variable for later ``$NAME``). A command is a pipeline of
  stages with ``|``, ``> FILE`` and ``< FILE``; ``segtool`` stages run in-process (the CLI app via
  click's runner, so torch is imported once and the test stays fast), other stages (python, jq,
  gzip, find) as subprocesses in the workspace.
- The workspace (``workspace`` fixture) holds what the examples name: ``data/VOCdevkit/VOC2012`` (the
  real ../shared/fixtures/voc2012-mini), ``../shared/fixtures``, a tiny trained-shape checkpoint
  ``best.pt`` and ``runs/fcn8-20250101-120000/``, small photos, masks, box files, palettes, configs.
  A new example that names a new input: add the file in ``_make_workspace``.
- Heavy commands run in a cheap form: ``CHEAP_RULES`` (regex on the command -> what is appended, and
  why), e.g. ``segtool train ...`` gets ``--print-config`` (the options and config are checked,
  nothing trains) and ``stylize`` gets ``--random-weights --size 32 --steps 1`` (no VGG download).
- ``SKIP`` lists, by the command's first words, what cannot run here, with the reason.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parent.parent / "README.md"

# Commands that cannot run in a test, by prefix, with why.
SKIP = {
    "make demo": "installs a venv and trains for minutes (make demo is what this README documents)",
    "make test": "runs the whole test suite",
    "pip install": "installs packages",
    "torchrun": "several processes and GPUs (tests/test_ddp.py runs DDP on CPU with gloo)",
    "segtool download": "fetches or unpacks the published datasets (CamVid ~180 MB, bag ~80 MB); "
                        "tests/test_download.py installs tiny copies in their layouts",
    "segtool evaluate runs/camvid_cpu": "needs the trained run of the block's train line (an hour on 2 cores)",
    "segtool evaluate runs/bag_cpu": "needs the trained run of the block's train line (about 18 minutes)",
    "segtool plot-log runs/camvid_cpu": "needs the trained run of the block's train line",
}
# (regex on the command, options appended, why): the checked-cheap forms of heavy commands.
CHEAP_RULES = [
    (r"^segtool train (?!.*--print-config)", "--print-config", "parse and resolve everything, train nothing"),
    (r"^segtool stylize (?!.*--random-weights)", "--random-weights --size 32 --steps 1",
     "no VGG-19 download; one step"),
    (r"^segtool stylize .*--random-weights", "--size 32 --steps 1", "seconds, not minutes"),
    (r"^segtool anchors .*--all", "--size 24x32", "2 million rows are the same code as 3840"),
]


def _commands(block: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def readme_commands() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    found = []
    for number, block in enumerate(re.findall(r"```bash\n(.*?)```", text, re.S)):
        found += [(number, command) for command in _commands(block)]
    return found


def cheap_form(argv: list[str]) -> list[str]:
    """A segtool stage with the options of the first CHEAP_RULES rule that matches appended."""
    text = " ".join(argv)
    for pattern, extra, _why in CHEAP_RULES:
        if re.search(pattern, text):
            return argv + extra.split()
    return argv


# -- a tiny shell: pipelines of segtool (in-process) and other programs ----------------------------

def run_command(command: str, cwd: Path, env: dict) -> None:
    from typer.testing import CliRunner

    from segtool.cli.app import app
    from segtool.core.console import set_quiet

    lexer = shlex.shlex(os.path.expandvars(command), posix=True, punctuation_chars="|<>")
    lexer.whitespace_split = True  # words split at blanks and at | < > only (0.5,2.0 stays one word)
    tokens = list(lexer)
    stages, current = [], []
    stdin_file = stdout_file = None
    items = iter(tokens)
    for token in items:
        if token == "|":
            stages.append(current)
            current = []
        elif token == ">":
            stdout_file = next(items)
        elif token == "<":
            stdin_file = next(items)
        else:
            current.append(token)
    stages.append(current)
    data = (cwd / stdin_file).read_bytes() if stdin_file else b""
    for argv in stages:
        if argv[0] == "segtool":
            argv = cheap_form(argv)
            set_quiet(False)
            result = CliRunner().invoke(app, argv[1:], input=data, env=env, catch_exceptions=True)
            assert result.exit_code == 0, f"{command}\n-> {argv}: exit {result.exit_code}\n{result.stderr}"
            data = result.stdout_bytes
        else:
            program = sys.executable if argv[0] == "python" else argv[0]
            proc = subprocess.run([program, *argv[1:]], input=data, cwd=cwd, capture_output=True, timeout=60,
                                  env={**os.environ, **env})
            assert proc.returncode == 0, f"{command}\n-> {argv}: exit {proc.returncode}\n{proc.stderr.decode()}"
            data = proc.stdout
    if stdout_file:
        (cwd / stdout_file).write_bytes(data)


# -- the workspace ----------------------------------------------------------------------------------

def _photo(path: Path, seed: int, size=(64, 48)) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _predict_background(path: Path) -> None:
    """A random model that labels every pixel background (the stylize --mask - example styles it)."""
    import torch

    checkpoint = torch.load(path, weights_only=True)
    last_bias = [k for k, v in checkpoint["model"].items() if k.endswith("bias") and v.shape == (21,)][-1]
    checkpoint["model"][last_bias][0] = 1e4
    torch.save(checkpoint, path)


def _make_workspace(root: Path, fixtures: Path) -> None:
    from _train_helpers import random_checkpoint

    from segtool.data.masks import write_label_png
    from segtool.data.palettes import get_palette

    (root.parent / "shared").mkdir(exist_ok=True)
    (root.parent / "shared" / "fixtures").symlink_to(fixtures)
    (root / "examples").symlink_to(README.parent / "examples")
    voc = root / "data" / "VOCdevkit" / "VOC2012"
    shutil.copytree(fixtures / "voc2012-mini", voc)
    lists = voc / "ImageSets" / "Segmentation"
    for split in ("train", "val", "trainval"):  # the mini set has one list; the examples name all three
        if not (lists / f"{split}.txt").exists():
            shutil.copy(next(lists.glob("*.txt")), lists / f"{split}.txt")
    ckpt_data = {"format": "voc", "root": str(voc), "demo": None}
    random_checkpoint(root / "best.pt", 21, data=ckpt_data)
    _predict_background(root / "best.pt")
    run = root / "runs" / "fcn8-20250101-120000"
    run.mkdir(parents=True)
    shutil.copy(root / "best.pt", run / "best.pt")
    rows = [{"epoch": e, "step": 2 * e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "pixel_acc": 0.5 + e / 10,
             "mean_acc": 0.4, "miou": 0.3 + e / 10, "lr": 0.01, "img_per_s": 10.0, "elapsed": float(e)}
            for e in (1, 2)]
    import json

    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for i, name in enumerate(["photos/a.jpg", "photos/b.jpg", "cat.jpg", "photo.jpg", "catdog.jpg", "street.jpg",
                              "starry-night.jpg", "starry.jpg", "a.jpg", "b.jpg", "style.jpg"]):
        _photo(root / name, i)
    _photo(root / "catdog.jpg", 0, size=(728, 561))  # anchors --at 250,250 (d2l's figure)
    labels = np.zeros((48, 64), np.uint8)
    labels[10:30, 10:40] = 1
    write_label_png(labels, root / "labels.png", palette=get_palette("voc"))
    write_label_png(np.minimum(labels * 11, 11), root / "label.png")
    (root / "my_classes.csv").write_text("name,r,g,b\nground,0,0,0\nthing,200,30,30\n")
    (root / "recipe.yaml").write_text("epochs: 2\n")
    rgb = root / "masks_rgb"
    rgb.mkdir()
    for mask in sorted((voc / "SegmentationClass").glob("*.png")):
        Image.open(mask).convert("RGB").save(rgb / mask.name)
    (root / "data" / "CamVid").symlink_to(fixtures / "camvid-segnet11-mini")  # SegNet's layout, a few frames
    bag = root / "data" / "bag"
    for sub in ("bag_data", "bag_data_msk"):  # the bag set's published layout, two tiny photos
        (bag / sub).mkdir(parents=True)
    for i in range(2):
        _photo(bag / "bag_data" / f"{i}.jpg", i)
        grey = np.zeros((48, 64), np.uint8)
        grey[10:30, 20:50] = 255
        Image.fromarray(grey).save(bag / "bag_data_msk" / f"{i}.jpg")
    camvid = root / "camvid"
    (camvid / "train_labels").mkdir(parents=True)
    shutil.copy(fixtures / "camvid32" / "class_dict.csv", camvid / "class_dict.csv")
    colours = [line.split(",")[1:] for line in (camvid / "class_dict.csv").read_text().splitlines()[1:4]]
    block = np.array([[int(v) for v in c] for c in colours], np.uint8)[np.arange(48 * 64).reshape(48, 64) % 3]
    Image.fromarray(block).save(camvid / "train_labels" / "0001_L.png")
    pred = root / "pred"
    pred.mkdir()
    for mask in (voc / "SegmentationClass").glob("*.png"):
        shutil.copy(mask, pred / mask.name)
    (root / "truth.csv").write_text("image,x,y,w,h,label\nimg1,10,20,100,80,cat\nimg2,150,40,60,120,dog\n")
    (root / "coco_boxes.csv").write_text("x,y,w,h\n10,20,100,80\n150,40,60,120\n")
    (root / "truth_normalised.csv").write_text("x1,y1,x2,y2\n0.03,0.08,0.34,0.42\n0.47,0.17,0.66,0.67\n")
    (root / "detections.jsonl").write_text(
        '{"cx": 62, "cy": 58, "w": 96, "h": 84, "score": 0.92, "label": "cat"}\n'
        '{"cx": 70, "cy": 64, "w": 110, "h": 90, "score": 0.61, "label": "cat"}\n'
        '{"cx": 178, "cy": 104, "w": 58, "h": 116, "score": 0.88, "label": "dog"}\n')
    (root / "detections.csv").write_text("x1,y1,x2,y2,score,label\n10,20,110,100,0.9,cat\n12,22,112,98,0.6,cat\n"
                                         "150,40,210,160,0.8,dog\n")
    (root / "pred.csv").write_text("image,x1,y1,x2,y2,score\nimg1,12,22,108,98,0.9\nimg1,150,40,210,160,0.3\n"
                                   "img2,150,42,208,158,0.8\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from conftest import _fixtures_root

    fixtures = _fixtures_root()
    if fixtures is None:
        pytest.skip("the README examples name ../shared/fixtures, which is not here")
    root = tmp_path_factory.mktemp("readme") / "work"
    root.mkdir()
    _make_workspace(root, fixtures)
    return root


COMMANDS = readme_commands()


def _skip_reason(command: str) -> str | None:
    for prefix, why in SKIP.items():
        if command.startswith(prefix):
            return why
    tools = {stage.split()[0] for stage in re.split(r"\s\|\s", command) if stage.split()}
    missing = [tool for tool in tools - {"segtool", "python"} if shutil.which(tool) is None]
    return f"{', '.join(missing)} not installed" if missing else None


def _remove_outputs(root: Path, inputs: set[Path]) -> None:
    for path in sorted(set(root.rglob("*")) - inputs, key=lambda p: -len(p.parts)):
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def test_the_readme_has_examples_and_every_skip_is_used():
    assert len(COMMANDS) > 50
    for prefix in SKIP:  # a stale entry would hide nothing but mislead
        assert any(command.startswith(prefix) for _, command in COMMANDS), prefix


def test_every_readme_example_runs(workspace, monkeypatch, one_thread):
    env = {"SEGTOOL_DATA": str(workspace / "data"), "SEGTOOL_CACHE": str(workspace / ".cache"),
           "SEGTOOL_OFFLINE": "1", "NO_COLOR": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(workspace)
    inputs = set(workspace.rglob("*"))
    failures, skipped, current = [], [], None
    for block, command in COMMANDS:
        if block != current:  # each block starts from the inputs alone, as on a fresh clone
            current = block
            _remove_outputs(workspace, inputs)
        assignment = re.fullmatch(r"([A-Z_]+)=(\S+)", command)
        if assignment:
            monkeypatch.setenv(assignment[1], assignment[2])
            continue
        why = _skip_reason(command)
        if why:
            skipped.append((command, why))
            continue
        try:
            run_command(command, workspace, env)
        except AssertionError as exc:
            failures.append(f"[block {block}] {exc}")
    assert not failures, "\n\n".join(failures)
