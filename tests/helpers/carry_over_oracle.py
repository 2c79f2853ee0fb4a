"""The carry-over rule by brute force, the oracle that the carry-over table (``core/segments/carry_over.py``) and the
server's re-segmentation reports are checked against: each old segment's fate from whole-raster masks on the same
grid, one segment at a time."""

from pathlib import Path

import numpy as np

from histomics_label.core.io.store import SlideStore


def fates(old: np.ndarray, new: np.ndarray) -> dict[int, tuple[str, int | None]]:
    """``{old id: (fate, new id or None)}``: moved to the new segment covering the majority of its pixels when that
    segment also lies mostly in it, dropped when no new segment covers it, else ambiguous."""
    assert old.shape == new.shape, (old.shape, new.shape)
    new_area = np.bincount(new.ravel())
    found = {}
    for k in range(1, int(old.max()) + 1):
        under = new[old == k]
        ids, counts = np.unique(under[under > 0], return_counts=True)
        if not len(ids):
            found[k] = ('dropped', None)
            continue
        j = int(ids[np.argmax(counts)])
        mutual = counts.max() / len(under) > 0.5 and counts.max() / new_area[j] > 0.5
        found[k] = ('moved', j) if mutual else ('ambiguous', None)
    return found


def store_raster(path: Path) -> np.ndarray:
    """A slide store's whole segment raster (ids from 1, 0 outside every segment)."""
    with SlideStore(path) as store:
        return store.label_raster[()].astype(np.int64)
