"""Pretrained weight files: the known files, the torch cache, and one offline policy.

Models and stylize both get their ImageNet weights here. A file is looked up in torch's cache
(``$TORCH_HOME/hub/checkpoints``, where torchvision puts it too); when it is missing, the download
is tried only if ``$SEGTOOL_OFFLINE`` is unset and a 3-second reach probe succeeds. Offline
machines are the common case, so otherwise the caller gets within seconds one ``SegtoolError``
line naming the file, the cache directory and the command's own ways out.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from segtool.core.errors import SegtoolError
from segtool.core.paths import torch_checkpoint_dir

__all__ = ["KNOWN_WEIGHTS", "WEIGHTS_URL", "cached_file", "downloads_off", "ensure_weights",
           "fetch_weights", "reachable", "weight_url"]

# torchvision's file names for the ImageNet weights segtool's models and stylize use.
KNOWN_WEIGHTS = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
    "resnet18": "resnet18-f37072fd.pth",
}
WEIGHTS_URL = "https://download.pytorch.org/models/"

_PROBE_SECONDS = 3.0
_STALL_SECONDS = 30.0  # a download that sends nothing for this long is given up


def weight_url(key: str) -> str:
    """torchvision's download URL for a ``KNOWN_WEIGHTS`` key."""
    return WEIGHTS_URL + KNOWN_WEIGHTS[key]


def cached_file(url_or_name: str) -> Path:
    """Where the torch cache keeps the file of this URL (or file name)."""
    return torch_checkpoint_dir() / Path(urlparse(url_or_name).path).name


def downloads_off() -> bool:
    """``$SEGTOOL_OFFLINE`` set to anything but "" or "0": never try the network."""
    return os.environ.get("SEGTOOL_OFFLINE", "") not in ("", "0")


def reachable(url: str, timeout: float = _PROBE_SECONDS) -> tuple[bool, str]:
    """Can we open a TCP connection to the URL's host within ``timeout`` seconds (DNS included)?"""
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: dict[str, object] = {}

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc

    # A thread, because name resolution ignores socket timeouts and can hang offline.
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if outcome.get("ok"):
        return True, ""
    return False, str(outcome.get("error") or f"no answer from {host} within {timeout:.0f} s")


def _missing(cached: Path, what: str, reason: str, ways_out: str) -> SegtoolError:
    return SegtoolError(f"pretrained {what} weights not available: {cached.name} is not in the torch cache "
                        f"{cached.parent} and cannot be downloaded ({reason}). Copy {cached.name} into "
                        f"{cached.parent} (or set $TORCH_HOME), {ways_out}")


def ensure_weights(url: str, what: str, ways_out: str) -> Path:
    """The cached file for ``url``; if absent, fail fast unless a download may start.

    ``ways_out`` ends the error line with the caller's options, e.g. "pass --weights PATH, or ...".
    """
    cached = cached_file(url)
    if cached.is_file():
        return cached
    if downloads_off():
        raise _missing(cached, what, "downloads are off: $SEGTOOL_OFFLINE is set", ways_out)
    ok, reason = reachable(url)
    if not ok:
        raise _missing(cached, what, reason, ways_out)
    return cached


def fetch_weights(url: str, what: str, ways_out: str) -> Path:
    """The cached file for ``url``, downloaded into the torch cache first when missing."""
    cached = ensure_weights(url, what, ways_out)
    if cached.is_file():
        return cached
    import torch.hub

    from segtool.core.console import notice

    notice(f"downloading {url} to {cached.parent}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    # torchvision names its files <name>-<sha256 prefix>.pth; torch checks that prefix.
    hash_prefix = cached.stem.rsplit("-", 1)[-1] if "-" in cached.stem else None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_STALL_SECONDS)  # urllib has no timeout of its own: a stalled server would hang us
    try:
        # Writes to a temp file and moves it into place only when complete and matching.
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=hash_prefix, progress=True)
    except Exception as exc:  # network errors come in many types (URLError, HTTPError, socket errors)
        raise _missing(cached, what, f"download failed: {exc}", ways_out) from None
    finally:
        socket.setdefaulttimeout(previous)
    return cached
