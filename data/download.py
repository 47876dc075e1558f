"""Downloading public datasets (Imagenette) into a cache, and resolving a trainer's ``--data``.

Downloads go to ``<dest>.part`` and are renamed only after the size / SHA-256 checks pass, so an
interrupted download is never mistaken for a complete one.  Archives are extracted into a
temporary folder that is renamed when extraction has finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from nn import atomic_write

IMAGENETTE_URLS = {
    "160": "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
    "320": "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz",
    "full": "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz",
}
DEFAULT_TIMEOUT = 10.0


class DownloadError(RuntimeError):
    """A download failed (offline, HTTP error, or a size / checksum mismatch)."""


def cache_dir(cache=None) -> Path:
    """The cache folder: ``cache``, else ``$ALEXNET_CACHE``, else ``~/.cache/alexnet-from-scratch``."""
    if cache is None:
        cache = os.environ.get("ALEXNET_CACHE") or Path.home() / ".cache" / "alexnet-from-scratch"
    return Path(cache).expanduser()


def sha256_of(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline_message(url, exc):
    return (
        f"cannot download {url}: {exc}. If this machine is offline, download the archive "
        "elsewhere, extract it, and point --data at the local folder (e.g. "
        "--data /path/to/imagenette2-320, a folder with train/<wnid>/ and val/<wnid>/), or "
        "prepare it with `python -m data prepare SRC OUT` and pass --data OUT."
    )


def fetch(
    url: str, dest, sha256=None, size=None, timeout: float = DEFAULT_TIMEOUT, quiet: bool = False
) -> Path:
    """Download ``url`` to ``dest`` (once) and return ``dest``.

    An existing ``dest`` (of the right ``size``/``sha256`` when given) is reused.  The data goes
    to ``dest.part`` first (a leftover ``.part`` from an interrupted run is discarded) and is
    renamed after the checks; a mismatch raises :class:`DownloadError` and leaves no ``dest``.
    Network errors fail after ``timeout`` seconds with a message on using a local copy.
    """
    dest = Path(dest).expanduser()
    if dest.is_file():
        ok = (size is None or dest.stat().st_size == size) and (sha256 is None or sha256_of(dest) == sha256)
        if ok:
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.exists():
        part.unlink()
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        raise DownloadError(_offline_message(url, exc)) from exc
    digest = hashlib.sha256()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        expected = size if size is not None else (int(length) if length else None)
        from tqdm import tqdm

        # atomic_write renames the .part to dest only when the block below succeeds, and removes it
        # when a check fails or the transfer breaks off.
        with (
            atomic_write(dest, "wb", tmp_path=part) as fh,
            tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                desc=f"download {dest.name}",
                disable=quiet,
                file=sys.stderr,
            ) as bar,
        ):
            try:
                while True:
                    block = response.read(1 << 20)
                    if not block:
                        break
                    fh.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            except (socket.timeout, OSError) as exc:
                raise DownloadError(
                    f"download of {url} interrupted after {received} bytes: {exc} "
                    f"(the partial file was removed; run again to retry)"
                ) from exc
            if expected is not None and received != expected:
                raise DownloadError(
                    f"download of {url} is incomplete: {received} of {expected} bytes "
                    f"(the partial file was removed)"
                )
            if sha256 is not None and digest.hexdigest() != sha256.lower():
                raise DownloadError(
                    f"checksum mismatch for {url}: got sha256 {digest.hexdigest()}, expected {sha256}"
                )
    return dest


def extract_archive(archive, dest) -> Path:
    """Extract a .tar/.tgz ``archive`` into ``dest`` atomically (temp folder, then rename).

    If ``dest`` already exists it is assumed complete and returned as it is.
    """
    dest = Path(dest)
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                for member in tar.getmembers():
                    target = (tmp / member.name).resolve()
                    if not str(target).startswith(str(tmp.resolve())):
                        raise ValueError(f"unsafe path in archive: {member.name}")
                tar.extractall(tmp)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _single_top_folder(folder: Path) -> Path:
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def download_imagenette(
    variant: str = "320",
    cache=None,
    url=None,
    sha256=None,
    size=None,
    timeout: float = DEFAULT_TIMEOUT,
    quiet: bool = False,
) -> Path:
    """Download and extract Imagenette (``variant`` 160, 320 or full) into the cache; returns the
    folder holding ``train/`` and ``val/``.  ``url`` overrides the public address (tests)."""
    variant = str(variant)
    if url is None:
        if variant not in IMAGENETTE_URLS:
            raise ValueError(f"variant must be one of {sorted(IMAGENETTE_URLS)}, not {variant!r}")
        url = IMAGENETTE_URLS[variant]
    root = cache_dir(cache)
    archive_name = url.rstrip("/").rsplit("/", 1)[-1]
    stem = archive_name.split(".")[0]
    extracted = root / "extracted" / stem
    if not extracted.is_dir():
        archive = fetch(
            url, root / "downloads" / archive_name, sha256=sha256, size=size, timeout=timeout, quiet=quiet
        )
        extract_archive(archive, extracted)
    return _single_top_folder(extracted)


def resolve(
    spec,
    cache=None,
    size: int = 256,
    per_class=None,
    val_per_class=None,
    num_classes=None,
    workers=None,
    quiet: bool = False,
    **prepare_kwargs,
) -> Path:
    """Turn a trainer's ``--data`` into a prepared subset folder.

    * a prepared subset folder -> itself;
    * a raw ImageNet-style folder -> prepared on first use into ``<cache>/prepared/<key>``
      (the key encodes the folder and the arguments; later calls reuse it);
    * ``imagenette`` (or ``imagenette-160`` / ``-320`` / ``-full``) -> downloaded, then prepared.
    """
    from .dataset import is_prepared
    from .prepare import prepare_subset

    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        if is_prepared(path):
            return path
        source = path
        label = path.resolve().name
    elif text.lower().startswith("imagenette"):
        variant = text.lower().partition("-")[2] or "320"
        source = download_imagenette(variant, cache=cache, quiet=quiet)
        label = f"imagenette-{variant}"
    else:
        raise FileNotFoundError(
            f"--data {text!r}: no such folder (expected a prepared subset, a raw "
            "ImageNet-style folder, or the word 'imagenette')"
        )
    key_text = repr(
        (str(source.resolve()), size, per_class, val_per_class, num_classes, sorted(prepare_kwargs.items()))
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:10]
    out = cache_dir(cache) / "prepared" / f"{label}-S{size}-{key}"
    return prepare_subset(
        source,
        out,
        size=size,
        per_class=per_class,
        val_per_class=val_per_class,
        num_classes=num_classes,
        workers=workers,
        quiet=quiet,
        **prepare_kwargs,
    )
