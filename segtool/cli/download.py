"""`segtool download camvid|bag|voc DIR`: the real datasets, installed atomically (segtool.data.download)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segtool.cli.options import Force, Quiet

app = typer.Typer()

NOTES = {
    "camvid": "SegNet's 11-class CamVid: 367 train / 101 val / 233 test frames at 360x480, lists included",
    "bag": "the bag set: bag_data/ + bag_data_msk/, 600 photos and grey JPEG masks (train with --binary)",
    "voc": "Pascal VOC 2012 trainval (about 2 GB) through torchvision's downloader",
}


@app.command("download")
def download(
    name: Annotated[str, typer.Argument(metavar="camvid|bag|voc", help="Which dataset.")],
    dest: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to install it as (created; then "
                                         "`segtool train MODEL --data DIR`).")],
    source: Annotated[str | None, typer.Option(
        "--from", metavar="PATH", help="Install from a local copy instead: a downloaded .zip/.tar.gz, an unpacked "
        "repository checkout, or a folder already in the published layout.", show_default=False)] = None,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Download a real dataset, check its file counts and lists, and only then put it at DIR."""
    from segtool.core.console import notice, progress
    from segtool.data.download import NAMES, install

    if name not in NAMES:
        raise typer.BadParameter(f"expected one of {', '.join(NAMES)}, got {name!r}", param_hint="NAME")
    with progress() as bar:
        installed = install(name, dest, source=source, force=force, progress=bar)
    if installed:
        notice(f"installed {dest}: {NOTES[name]}")
    else:
        notice(f"{dest}: a complete {name} set is already there (use --force to install it again)")
