"""The local dask cluster the heavy steps run on."""

from histomics_label.core.distributed import TILE_CACHE_VARIABLE, WORKER_TILE_CACHE_TILES, dask_client


def test_local_workers_keep_a_bounded_tile_cache(sample_slide, monkeypatch):
    """A worker reading far more tiles than the bound (the whole sample slide at 20×, ~1,200 tiles of 256 px)
    holds at most ``WORKER_TILE_CACHE_TILES`` of them, whatever the machine's memory."""
    monkeypatch.delenv(TILE_CACHE_VARIABLE, raising=False)

    def read_everything(path: str) -> tuple[int, int, int]:
        from large_image.cache_util.cache import getTileCache

        from histomics_label.core.io.slide import SlideReader

        reader = SlideReader(path, magnification=20)
        for y in range(0, reader.height, 2048):
            reader.region(0, y, reader.width, min(reader.height, y + 2048))
        cache, _ = getTileCache()
        tiles = -(-reader.width // 256) * -(-reader.height // 256)
        return tiles, cache.maxsize, cache.currsize

    with dask_client(workers=1) as client:
        (tiles, maxsize, held), = client.run(read_everything, str(sample_slide)).values()
    assert tiles > 4 * WORKER_TILE_CACHE_TILES
    assert maxsize == WORKER_TILE_CACHE_TILES
    assert 0 < held <= WORKER_TILE_CACHE_TILES


def test_an_admins_tile_cache_setting_wins(monkeypatch):
    monkeypatch.setenv(TILE_CACHE_VARIABLE, '1000')

    def configured() -> int:
        import large_image

        return large_image.config.getConfig('cache_tileCache_maximum')

    with dask_client(workers=1) as client:
        assert list(client.run(configured).values()) == [1000]
