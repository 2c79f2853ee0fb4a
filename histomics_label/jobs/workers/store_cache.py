"""The slide stores a worker has fetched for rounds, kept between tasks.

A round of a CNN reads every patch of every slide of the project: gigabytes for a large slide, the same bytes every
round until the slide's segments are made again. The server gives each version of a store a Girder file of its own
(``jobs.remote_rounds``), so a file id names one version: a worker downloads it once and serves the next rounds
from its disk. Files least recently used go first once the cache passes its size (``CACHE_GB_ENV``, default
``DEFAULT_CACHE_GB``). Nothing here imports girder or the engine.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

CACHE_DIR_ENV = 'HISTOMICS_LABEL_WORKER_CACHE'
"""Where a worker keeps stores (default: ``histomics-label-stores`` in the temporary folder)."""
CACHE_GB_ENV = 'HISTOMICS_LABEL_WORKER_CACHE_GB'
DEFAULT_CACHE_GB = 50.0


def cache_dir() -> Path:
    folder = Path(os.environ.get(CACHE_DIR_ENV) or Path(tempfile.gettempdir()) / 'histomics-label-stores')
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def place_store(source: dict, download: Callable[[str], None], target: Path) -> bool:
    """Put the store ``source`` names at ``target`` (in a task's folder under ``cache_dir``): a link to the path
    where this worker sees Girder's files, else a hard link to the cached copy, which a cache that evicts it
    meanwhile cannot take from the task; whether it was fetched now."""
    path, fetched = cached_store(source, download)
    if path == source.get('path'):
        target.symlink_to(path)
    else:
        os.link(path, target)
    return fetched


def cached_store(source: dict, download: Callable[[str], None]) -> tuple[str, bool]:
    """A path on this machine to the store file ``source`` names (``file`` id, ``size``, and ``path`` where the
    worker may see Girder's files): that path when it is readable here, else the cached copy, fetched with
    ``download(target path)`` when missing; and whether it was fetched now."""
    path = source.get('path')
    if path and os.path.isfile(path) and os.access(path, os.R_OK):
        return path, False
    target = cache_dir() / f'{source["file"]}.h5'
    if target.is_file() and target.stat().st_size == source['size']:
        os.utime(target)  # recently used
        return str(target), False
    partial = target.with_name(f'.{uuid.uuid4().hex[:12]}.part')
    try:
        download(str(partial))
        if partial.stat().st_size != source['size']:
            raise OSError(f'The download of {source["name"]} has {partial.stat().st_size} bytes, not {source["size"]}')
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _evict(keep=target)
    return str(target), True


def _evict(keep: Path) -> None:
    """Remove the least recently used stores until the cache fits its size (never ``keep``, just fetched)."""
    budget = float(os.environ.get(CACHE_GB_ENV) or DEFAULT_CACHE_GB) * (1 << 30)
    entries = []
    for entry in keep.parent.glob('*.h5'):
        try:
            stat = entry.stat()
        except FileNotFoundError:  # removed by another task meanwhile
            continue
        entries.append((stat.st_mtime, stat.st_size, entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):
        if total <= budget:
            break
        if entry != keep:
            entry.unlink(missing_ok=True)  # a task reading it keeps its open file
            total -= size
