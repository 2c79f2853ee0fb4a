"""A store writer killed mid-write (``kill -9``, as when a Girder server dies with its segment job's child) leaves
the store as it was, and the next writer of that store deletes the temporary file the killed one left behind, and
no other store's."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments import SegmentTable

WRITE = textwrap.dedent('''
    import sys, time
    import numpy as np
    from histomics_label.core.io.slide import SlideInfo
    from histomics_label.core.io.store import SlideStore
    with SlideStore.create(sys.argv[1], SlideInfo('/data/s.tiff', 64, 32, 20.0, 10.0, 1.0, 64, 32), {}) as writer:
        writer.create_label_raster(32, 64)[:] = np.arange(1, 65, dtype=np.uint32)[None, :]
        print('writing', flush=True)
        time.sleep(60)
''')


def halves() -> tuple[np.ndarray, SegmentTable]:
    """A 32 x 64 raster of two segments, its left and right halves, and their table."""
    raster = np.ones((32, 64), np.uint32)
    raster[:, 32:] = 2
    table = SegmentTable(bbox=np.array([[0, 0, 32, 32], [32, 0, 64, 32]], np.int64),
                         centroid=np.array([[15.5, 15.5], [47.5, 15.5]]), area=np.array([1024, 1024], np.int64))
    return raster, table


def write(path, raster: np.ndarray, table: SegmentTable) -> None:
    info = SlideInfo('/data/s.tiff', raster.shape[1], raster.shape[0], 20.0, 10.0, 1.0, *raster.shape[::-1])
    with SlideStore.create(path, info, {'source': 'test'}) as writer:
        writer.create_label_raster(*raster.shape)[:] = raster
        writer.write_segments(table)


def test_the_next_writer_removes_what_a_killed_writer_left(tmp_path):
    raster, table = halves()
    path = tmp_path / 'slide.h5'
    write(path, raster, table)
    before = path.read_bytes()
    sibling = tmp_path / '.slide.h5.pending.h5.0123456789ab.tmp'  # another store's writer at work
    sibling.write_bytes(b'another store')

    child = subprocess.Popen([sys.executable, '-c', WRITE, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == 'writing\n'
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    left = [name for name in os.listdir(tmp_path) if name.startswith('.slide.h5.') and name != sibling.name]
    assert len(left) == 1 and left[0].endswith('.tmp')
    assert path.read_bytes() == before  # the killed write changed nothing

    raster[:, 48:] = 3
    table = SegmentTable(bbox=np.array([[0, 0, 32, 32], [32, 0, 48, 32], [48, 0, 64, 32]], np.int64),
                         centroid=np.array([[15.5, 15.5], [39.5, 15.5], [55.5, 15.5]]),
                         area=np.array([1024, 512, 512], np.int64))
    write(path, raster, table)
    assert sorted(os.listdir(tmp_path)) == [sibling.name, 'slide.h5', 'slide.h5.lock']
    assert sibling.read_bytes() == b'another store'
    with SlideStore(path) as store:
        assert store.n_segments == 3
        assert np.array_equal(store.label_raster[...], raster)
