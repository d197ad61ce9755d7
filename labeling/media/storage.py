"""Where media lives: Django's default storage, read and written as local paths for ffmpeg.

With a storage on the file system (a local disk or a mounted volume) the pipeline reads and
writes the stored files themselves; with one that has no paths (an S3-compatible store) a
worker copies a movie once into its cache (``MEDIA_CACHE_DIR``), writes outputs to a temporary
folder and saves them when all are complete. Names never change: a re-run overwrites."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

from labeling.models import Movie
from pipeline import media


def media_local_path(name: str) -> Path | None:
    """The stored file's path on this machine, for a storage on the file system (a local disk
    or a mounted volume); None for any other (S3), which is read and written as files.

    Raises SuspiciousFileOperation for a name outside the storage's folder."""
    if not isinstance(default_storage, FileSystemStorage):
        return None
    return Path(default_storage.path(name))


def _download(name: str, dest: Path) -> None:
    """Copies the stored file ``name`` to ``dest`` whole or not at all: written under a
    temporary name beside it, then moved into place."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with default_storage.open(name, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def media_local_copy(name: str) -> Iterator[Path]:
    """A local path to read the stored file ``name`` from (ffmpeg and PIL read paths): the
    storage's own when it has paths; otherwise a copy in a temporary folder, removed when the
    block ends (unlike ``movie_local_source``'s cache: an export reads each file once)."""
    local = media_local_path(name)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="dfer-media-") as tmp:
        copy = Path(tmp) / Path(name).name
        _download(name, copy)
        yield copy


def movie_local_source(movie: Movie) -> Path:
    """A local path to the movie's file, for ffmpeg: the storage's own when it has paths;
    otherwise this machine's copy in ``MEDIA_CACHE_DIR`` (named by the content hash, copied on
    first use, then kept while recent: a movie's clips are extracted together)."""
    local = media_local_path(movie.source.name)
    if local is not None:
        return local
    cache = Path(settings.MEDIA_CACHE_DIR)
    cache.mkdir(parents=True, exist_ok=True)
    copy = cache / f"{movie.content_hash}{Path(movie.source.name).suffix.lower()}"
    if copy.exists():
        os.utime(copy)  # recently used: the trim keeps it
        return copy
    _download(movie.source.name, copy)
    _cache_trim(cache, keep=copy)
    return copy


def _cache_trim(cache: Path, keep: Path) -> None:
    """Removes the least recently used copies while the cache holds more than
    ``MEDIA_CACHE_GB``; a copy used in the last hour stays (another process may be reading
    it)."""
    limit = settings.MEDIA_CACHE_GB * 1024**3
    copies = []
    for path in cache.iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:  # another worker's trim removed it meanwhile
            continue
        if not path.name.startswith("."):
            copies.append((stat.st_mtime, stat.st_size, path))
    copies.sort()
    total = sum(size for _, size, _ in copies)
    recent = time.time() - 3600
    for used, size, path in copies:
        if total <= limit or used > recent:
            break
        if path != keep:
            total -= size
            path.unlink(missing_ok=True)


@contextmanager
def media_outputs(names: Sequence[str]) -> Iterator[list[Path]]:
    """Local paths to write the stored files ``names`` to: the storage's own when it has paths
    (the pipeline writes each to a temporary name and moves it into place); otherwise files in
    a temporary folder, saved to the storage under the same names once the block succeeded
    (nothing is saved when it raises)."""
    local = [media_local_path(name) for name in names]
    if all(path is not None for path in local):
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="dfer-media-") as tmp:
        paths = [Path(tmp) / f"{i}-{Path(name).name}" for i, name in enumerate(names)]
        yield paths
        for name, path in zip(names, paths, strict=True):
            default_storage.delete(name)  # the name never changes: replace, never rename
            with open(path, "rb") as handle:
                saved = default_storage.save(name, File(handle, name=path.name))
            if saved != name:
                raise media.MediaError(f"the storage saved {name} as {saved}")
