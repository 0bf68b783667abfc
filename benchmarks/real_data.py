"""Real data end to end: the CamVid and bag recipes, their data pipeline and the label check.

Parts (pick with --only; the data is never copied into the project):
  pipeline  on real CamVid at examples/camvid_cpu.yaml's settings, in ONE process: images/s of the
            training loader alone (decode + augment + collate, the recipe's --workers) and of the
            training step alone (forward, loss, backward, SGD on batches already loaded; the
            recipe's --amp and --channels-last). Goal: the
            loader delivers >= 3x what the step consumes. Also the bag recipe's loader.
  check     seconds of the label check on the bag set (600 grey JPEG masks; goal: seconds).
  train     the full recipes (`segtool train ... --config examples/*_cpu.yaml`), then `segtool evaluate`
            on val, and once, at the end, on CamVid's test split with the chosen (best-on-val) checkpoint.

    .venv/bin/python benchmarks/real_data.py --camvid data/CamVid --bag data/bag [--only pipeline,check]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECIPES = {"camvid": ROOT / "examples" / "camvid_cpu.yaml", "bag": ROOT / "examples" / "bag_cpu.yaml"}


def recipe_data(name: str, data: Path):
    """The recipe's TrainConfig and its built Data (label check included), as `segtool train` builds them."""
    import torch

    from segtool.data.sources import find_data_source
    from segtool.engine.builders import build_data
    from segtool.engine.config import DEMO_DATA, load_yaml_config
    from segtool.engine.config_layers import resolve_config
    from segtool.engine.distributed import DistInfo
    from segtool.models import get_model_info, size_multiple

    values = load_yaml_config(RECIPES[name])
    config = resolve_config(values["model"], get_model_info(values["model"]), values, {"data": str(data)}).config
    torch.set_num_threads(config.threads or 1)
    source = find_data_source(config.data, config.format, DEMO_DATA)
    data_ = build_data(config, source, DistInfo(), torch.device("cpu"), size_multiple(config.model))
    return config, data_


def loader_rate(loader, batches: int) -> float:
    """Images/s of ``batches`` batches from a fresh iterator (the first batch, with worker start-up, untimed)."""
    iterator = iter(loader)
    next(iterator)
    tic, images = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(iterator)
        images += int(batch[0].shape[0])
    return images / (time.perf_counter() - tic)


def step_rate(config, data_, steps: int) -> float:
    """Images/s of the training step alone, on batches loaded beforehand (median of ``steps``)."""
    import torch

    from segtool.engine.builders import build_loss, build_model, build_optimizer
    from segtool.engine.speed import autocast, channels_last, to_device

    cpu = torch.device("cpu")
    # The recipe's --amp / --channels-last, as training applies them.
    model = channels_last(build_model(config, data_.info.num_classes).train(), config.channels_last)
    optimizer = build_optimizer(model, config)
    loss_fn = build_loss(config, data_, cpu)
    iterator = iter(data_.train)
    batches = [next(iterator)[:2] for _ in range(steps + 1)]
    times = []
    for images, masks in batches:
        tic = time.perf_counter()
        with autocast(cpu, config.amp):
            loss = loss_fn(model(to_device(images, cpu, config.channels_last)), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - tic)
    timed = sorted(times[1:])
    return int(batches[0][0].shape[0]) / timed[len(timed) // 2]


def bench_pipeline(camvid: Path | None, bag: Path | None, batches: int) -> dict:
    results = {}
    for name, data in (("camvid", camvid), ("bag", bag)):
        if data is None:
            continue
        config, data_ = recipe_data(name, data)
        load = loader_rate(data_.train, batches)
        step = step_rate(config, data_, max(3, batches // 3)) if name == "camvid" else None
        results[name] = {"loader_img_s": round(load, 2), "workers": data_.workers,
                         "step_img_s": round(step, 2) if step else None,
                         "ratio": round(load / step, 2) if step else None}
        ratio = f"  step {step:.2f} img/s  loader/step {load / step:.1f}x (goal >= 3x)" if step else ""
        print(f"{name}: loader {load:.2f} img/s with --workers {data_.workers}{ratio}", flush=True)
    return results


def bench_check(bag: Path) -> dict:
    from segtool.data.folder import FolderLayout
    from segtool.data.label_check import check_dataset

    for binary in (False, True):
        tic = time.perf_counter()
        check = check_dataset("folder", bag, "train", "val", binary=binary, layout=FolderLayout(val_fraction=0.1),
                              command="segtool train ...")
        seconds = time.perf_counter() - tic
        print(f"label check on {bag} (binary={binary}): {seconds:.2f} s, {check.masks_checked} masks read, "
              f"{len(check.findings)} findings", flush=True)
        for finding in check.findings:
            print(f"  {finding.level}: {finding.message}")
    return {"seconds": round(seconds, 2)}


def run(*args: str) -> tuple[int, float, str]:
    tic = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "segtool", *args], capture_output=True, text=True,
                          env={**os.environ, "SEGTOOL_PROGRESS_INTERVAL": "60"})
    return proc.returncode, time.perf_counter() - tic, proc.stdout + proc.stderr


def bench_train(camvid: Path | None, bag: Path | None, out: Path) -> dict:
    results = {}
    for name, data, test in (("bag", bag, None), ("camvid", camvid, "test")):
        if data is None:
            continue
        run_dir = out / f"{name}_cpu"
        code, seconds, text = run("train", "bisenetv2", "--config", str(RECIPES[name]), "--data", str(data),
                                  "--out", str(run_dir), "--force")
        print(text.strip().splitlines()[-2] if code == 0 else text, flush=True)
        scores = {"train_minutes": round(seconds / 60, 1)}
        for split in ("val", test):
            if split is None:
                continue
            code, _, text = run("evaluate", str(run_dir / "best.pt"), "--split", split, "--json", "--quiet")
            report = json.loads(text[text.index("{"):]) if code == 0 else {}
            scores[split] = {"miou": report.get("miou"),
                             "iou": {r["name"]: r["iou"] for r in report.get("per_class", [])}}
            print(f"{name} {split}: mIoU {report.get('miou')}", flush=True)
        results[name] = scores
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camvid", type=Path, help="SegNet's CamVid folder (segtool download camvid DIR)")
    parser.add_argument("--bag", type=Path, help="the bag set folder (segtool download bag DIR)")
    parser.add_argument("--only", default="pipeline,check,train")
    parser.add_argument("--batches", type=int, default=12, help="loader batches timed (pipeline)")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="run directories (train)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    results = {}
    if "pipeline" in parts:
        results["pipeline"] = bench_pipeline(args.camvid, args.bag, args.batches)
    if "check" in parts and args.bag:
        results["check"] = bench_check(args.bag)
    if "train" in parts:
        results["train"] = bench_train(args.camvid, args.bag, args.out)
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
