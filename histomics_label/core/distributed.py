"""A dask.distributed client for the heavy, parallel steps.

Mirrors HistomicsTK's CLI ``--scheduler`` convention: with no scheduler address the work runs on a local cluster of
worker processes started for the task and stopped after it; with an address (``tcp://host:8786``) it runs on that
existing scheduler's workers. Distribution is dask's, nothing home-made.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import ConfigurationError, SchedulerError

if TYPE_CHECKING:
    import distributed

CONNECT_TIMEOUT_S = 10
"""How long to wait for a remote scheduler before giving up."""

WORKER_TILE_CACHE_TILES = 256
"""Most decoded tiles large_image keeps in a local worker's memory (about 64 MB of 256-pixel RGBA tiles).

The heavy steps read each region of a slide once, so a worker's tile cache saves almost nothing, yet large_image's
default lets it grow to 1/32 of the machine's memory per process: on a large slide every worker ends up holding
that much (benchmarked in bench/bench_segments.py). An admin's own ``LARGE_IMAGE_CACHE_TILECACHE_MAXIMUM`` wins."""

TILE_CACHE_VARIABLE = 'LARGE_IMAGE_CACHE_TILECACHE_MAXIMUM'


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                timeout: float = CONNECT_TIMEOUT_S) -> Iterator[distributed.Client]:
    """Yield a ``distributed.Client``; close it (and any local cluster it started) on exit.

    ``scheduler`` None or '' starts a ``LocalCluster`` of ``workers`` single-threaded worker processes (default:
    one per CPU core), without dashboard, with quiet logs and a bounded tile cache (``WORKER_TILE_CACHE_TILES``).
    Otherwise connects to the scheduler at that address,
    raising ``SchedulerError`` when it cannot be reached within ``timeout`` seconds.
    """
    import distributed

    if workers is not None and workers < 1:
        raise ConfigurationError(f'The number of dask workers must be at least 1, not {workers}')
    if not scheduler:
        cluster = distributed.LocalCluster(
            n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR,
            env={TILE_CACHE_VARIABLE: os.environ.get(TILE_CACHE_VARIABLE, str(WORKER_TILE_CACHE_TILES))},
            # the scheduler still serves its health routes over HTTP: on a free local port, not the usual 8787
            scheduler_kwargs={'dashboard_address': '127.0.0.1:0'})
        try:
            client = distributed.Client(cluster)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(scheduler, timeout=f'{timeout}s')
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(
            f'Cannot reach the dask scheduler at {scheduler!r} within {timeout:g} s ({exc}). Check the address '
            'and that the scheduler is running, or leave the scheduler empty to use local worker processes.'
        ) from None
    try:
        yield client
    finally:
        client.close()
