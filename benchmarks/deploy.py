"""Deployment benchmarks (issue 16), every ratio measured within one run.

1. `profile`'s eval latency against a hand-timed loop over the same model and input (goal: within 5%).
2. `predict` throughput: the one-image-at-a-time loop and today's loop (consecutive equal sizes, batch
   4) against the batched pipeline, on synthetic VOC-sized JPEGs (mostly 375x500, some 500x375, as
   in VOC); the masks must be identical bit for bit.
3. onnxruntime against eager PyTorch on the CPU for fcn-resnet18 and bisenetv2 (random weights).

    nice .venv/bin/python benchmarks/deploy.py [--images 500] [--runs 10] [--skip predict,onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segtool.data.palettes import Palette, voc_colormap  # noqa: E402
from segtool.engine.predict import Predictor  # noqa: E402
from segtool.models import create_model  # noqa: E402


def checkpoint_for(name: str, seed: int = 0) -> dict:
    """A checkpoint dict of a randomly initialised model, as `segtool train` would write it."""
    from segtool.data.demo import demo_palette
    from segtool.engine.checkpoint import build_checkpoint

    torch.manual_seed(seed)
    palette = demo_palette(20)
    model = create_model(name, 21)
    return build_checkpoint(model_state=model.state_dict(), model_name=name, num_classes=21,
                            class_names=palette.names, palette_colors=palette.colors,
                            config={"normalize": "imagenet", "crop": [384, 512]}, epoch=0, step=0)


def hand_timed(model, images, runs: int) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(3):
            model(images)
        for _ in range(runs):
            start = time.perf_counter()
            model(images)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_profile(runs: int) -> None:
    from segtool.deploy.timing import Speed, measure_eval

    model = create_model("fcn-resnet18", 21).eval()
    images = torch.randn(1, 3, 384, 512)
    ratios, profiled, hand = [], [], []
    for _ in range(5):  # interleaved rounds; a shared machine drifts between them
        profiled.append(measure_eval(model, torch.device("cpu"), (384, 512), 1, Speed(), runs, 3)["median_ms"] / 1e3)
        hand.append(hand_timed(model, images, runs))
        ratios.append(profiled[-1] / hand[-1])
    print(f"1) fcn-resnet18 384x512 batch 1, median of {runs} runs per round, 5 interleaved rounds")
    print(f"   segtool profile   {statistics.median(profiled) * 1e3:8.1f} ms (median round)")
    print(f"   hand-timed loop   {statistics.median(hand) * 1e3:8.1f} ms (median round)")
    print(f"   profile / hand per round: {' '.join(f'{r:.3f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.3f} (goal within 5%)")
    # On a shared machine the least disturbed round of each is the fairest pair.
    print(f"   best round: profile {min(profiled) * 1e3:.1f} ms, hand {min(hand) * 1e3:.1f} ms, "
          f"ratio {min(profiled) / min(hand):.3f}")


def write_images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        size = (500, 375) if i % 5 == 3 else (375, 500)  # (w, h) for PIL; one in five portrait
        coarse = rng.integers(0, 256, size=(12, 16, 3) if size[0] == 375 else (16, 12, 3), dtype=np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(coarse).resize(size, Image.BILINEAR).save(path, quality=90)
        paths.append(path)
    return paths


def bench_predict(count: int, root: Path) -> None:
    from segtool.engine.batch_predict import predict_many
    from segtool.engine.predict import predict_files

    paths = write_images(root / "images", count)
    predictor = Predictor.from_checkpoint(checkpoint_for("fcn-resnet18"), torch.device("cpu"))
    palette = Palette("voc", tuple(map(str, range(21))), voc_colormap(21))
    methods = {
        "one image at a time (predict_files, batch 1)": lambda out: predict_files(
            predictor, paths, out, palette=palette, batch_size=1, force=True),
        "today's loop (predict_files, batch 4)": lambda out: predict_files(
            predictor, paths, out, palette=palette, batch_size=4, force=True),
        "batched pipeline (batch 8, 1 decode thread)": lambda out: predict_many(
            predictor, paths, out, palette=palette, batch_size=8, workers=1, force=True),
        "batched pipeline (batch 8, 1 decode process)": lambda out: predict_many(
            predictor, paths, out, palette=palette, batch_size=8, workers=1, decoder="process", force=True),
    }
    print(f"2) predict, fcn-resnet18 (random weights), {count} synthetic JPEGs (4/5 375x500, 1/5 500x375)")
    rates, folders = {}, {}
    for i, (label, run) in enumerate(methods.items()):
        folder = root / f"out{i}"
        folder.mkdir(exist_ok=True)
        start = time.perf_counter()
        run(lambda p, folder=folder: folder / f"{p.stem}.png")
        rates[label], folders[label] = count / (time.perf_counter() - start), folder
    base = rates[next(iter(methods))]
    today = list(rates.values())[1]
    for label, rate in rates.items():
        print(f"   {label:46s} {rate:6.2f} images/s   {rate / base:5.2f}x one-at-a-time   "
              f"{rate / today:5.2f}x today")
    reference = folders[next(iter(methods))]
    same = all(np.array_equal(np.asarray(Image.open(reference / f"{p.stem}.png")),
                              np.asarray(Image.open(folder / f"{p.stem}.png")))
               for folder in folders.values() for p in paths)
    print(f"   masks identical bit for bit across all methods and {count} images: {same}")


def bench_onnx(runs: int, root: Path) -> None:
    import onnxruntime

    from segtool.deploy.export import export_checkpoint
    from segtool.deploy.graph import ExportableModel
    from segtool.deploy.source import ModelSource

    print(f"3) onnxruntime vs eager PyTorch, CPU, {torch.get_num_threads()} threads, batch 1, 384x512, "
          f"median of {runs} runs, interleaved")
    for name in ("fcn-resnet18", "bisenetv2"):
        ckpt = checkpoint_for(name)
        source = ModelSource(name, 21, {}, ckpt, None)
        out = root / f"{name}.onnx"
        started = time.perf_counter()
        report = export_checkpoint(source, out, force=True)
        exported_in = time.perf_counter() - started
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
        model = ExportableModel(source.build("cpu"), name).eval()
        images = torch.randn(1, 3, 384, 512)
        feed = {"images": images.numpy()}
        eager, ort = [], []
        with torch.inference_mode():
            for _ in range(2):
                model(images), session.run(None, feed)
            for _ in range(runs):
                start = time.perf_counter()
                model(images)
                eager.append(time.perf_counter() - start)
                start = time.perf_counter()
                session.run(None, feed)
                ort.append(time.perf_counter() - start)
        e, o = statistics.median(eager), statistics.median(ort)
        diff = max(c["max_abs_diff"] for c in report.checks)
        print(f"   {name:13s} eager {e * 1e3:7.1f} ms   onnxruntime {o * 1e3:7.1f} ms   eager / ort = {e / o:.2f}x"
              f"   (export + verify {exported_in:.0f} s, max abs diff {diff:.1e}, opset {report.opset})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip", default="", help="comma-separated: profile, predict, onnx")
    parser.add_argument("--threads", type=int, default=None, help="torch / onnxruntime threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        if "profile" not in skip:
            bench_profile(args.runs)
        if "predict" not in skip:
            bench_predict(args.images, Path(tmp))
        if "onnx" not in skip:
            bench_onnx(args.runs, Path(tmp))
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
