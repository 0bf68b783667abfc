"""What `segtool info` reports, gathered as one plain dict."""

from __future__ import annotations

import platform
from importlib import metadata

from segtool import __version__
from segtool.core import paths
from segtool.core.weights import KNOWN_WEIGHTS, cached_file


def _version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def collect_info() -> dict:
    import torch

    from segtool.core.device import device_report

    voc_root = paths.default_voc_root()
    weights = {}
    for key, filename in KNOWN_WEIGHTS.items():
        path = cached_file(filename)
        weights[key] = {"file": filename, "present": path.is_file(), "path": str(path)}
    return {
        "segtool": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version_of("torchvision"),
        "typer": _version_of("typer"),
        "rich": _version_of("rich"),
        "torch_npu": _version_of("torch-npu") or _version_of("torch_npu"),
        "cpu_threads": torch.get_num_threads(),
        "devices": device_report(),
        "torch_weight_cache": str(paths.torch_checkpoint_dir()),
        "weights": weights,
        "data_home": str(paths.data_home()),
        "voc_root": str(voc_root),
        "voc_present": (voc_root / "ImageSets" / "Segmentation").is_dir(),
        "segtool_cache": str(paths.cache_home()),
    }


def render_info(report: dict) -> None:
    from rich.table import Table

    from segtool.core.console import console

    table = Table(title="segtool info", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for key in ("segtool", "python", "torch", "torchvision", "typer", "rich", "torch_npu", "cpu_threads"):
        table.add_row(key, str(report[key] if report[key] is not None else "not installed"))
    for name, dev in report["devices"].items():
        status = f"yes ({dev['count']})" if dev["available"] else f"no: {dev['reason']}"
        table.add_row(f"device {name}", status)
    table.add_row("weight cache", report["torch_weight_cache"])
    for key, weight in report["weights"].items():
        table.add_row(f"  {key}", f"{weight['file']} ({'present' if weight['present'] else 'missing'})")
    table.add_row("VOC root", f"{report['voc_root']} ({'present' if report['voc_present'] else 'missing'})")
    table.add_row("segtool cache", report["segtool_cache"])
    console.print(table)
