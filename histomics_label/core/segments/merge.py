"""A minimum segment size: segments smaller than it join the neighbour they share the longest border with.

Superpixels far below the size asked for (slivers along tile seams and tissue edges, fragments SLIC leaves between
its clusters) are not worth an expert's look and carry too few pixels for a feature. ``merge_small_segments``
runs once over a finished segment-id raster, a window at a time, so it works on a slide of any size:

1. one pass counts, for every pair of touching segments, the 4-neighbour pixel pairs between them (their shared
   border), windows overlapping by one row and column so that no pair is lost or counted twice;
2. in memory, on that adjacency graph only, the smallest segment under ``min_area`` joins the neighbour it shares
   the longest border with (ties: the lower id), the pair's borders and areas are added up, and this repeats until
   no segment under ``min_area`` has a neighbour. A piece merged into a real neighbour touches it, so every
   segment stays one 4-connected piece. What is then still under ``min_area`` touches no other segment: a tissue
   island smaller than the minimum, a speck of debris or dust on the glass (on the sample slide at 5× all eleven
   segments under a quarter superpixel were such specks, 2 to 76 pixels). It becomes glass (0): merging it would
   join pixels that do not touch, and keeping it would suggest a speck to an expert;
3. a second pass rewrites the raster through a lookup table to contiguous ids ``1..M`` in the order of each
   group's lowest old id, and the per-segment sums (area, centroid sums, bounding box) are combined per group.

scikit-image has no such operation for a label image: ``morphology.remove_small_objects`` removes small objects
instead of merging them, ``segmentation.slic(min_size_factor=...)`` enforces connectivity inside the one image SLIC
sees (a tile here, never across a seam), and ``graph.merge_hierarchical`` merges by edge weights on a graph built
from an image held whole in memory. Only ``segmentation.relabel_sequential``'s idea (a lookup table) is reused.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np

from ..errors import SlideError
from .base import SegmentTable

WINDOW = 2048
"""Side in pixels of the raster windows read and written by the two passes."""


def merge_small_segments(raster, table: SegmentTable, min_area: float, window: int = WINDOW) -> SegmentTable:
    """Merge every segment of ``raster`` (ids ``1..N`` described by ``table``) smaller than ``min_area`` pixels
    into the neighbour it shares the longest border with, in place, and make islands still smaller than that glass;
    returns the table of the new ids ``1..M``."""
    count = len(table.area)
    if count == 0 or not (table.area < min_area).any():
        return table
    borders = shared_borders(raster, window)
    parent = merge_order(table.area, borders, min_area)
    roots = np.unique(parent[parent > 0])  # each group's root is its lowest id
    lookup = np.zeros(count + 1, np.uint32)
    kept = parent > 0
    lookup[kept] = np.searchsorted(roots, parent[kept]) + 1
    if len(roots) == 0:
        raise SlideError(f'Every segment is a tissue speck smaller than the minimum segment size ({min_area:g} px)')
    _rewrite(raster, lookup, window)
    return _combined(table, lookup[1:].astype(np.int64) - 1, len(roots))


def shared_borders(raster, window: int = WINDOW) -> dict[tuple[int, int], int]:
    """``{(a, b): pixel pairs}`` with ``a < b``: how many 4-neighbour pixel pairs separate each two touching
    segments (0 is glass and never counted)."""
    height, width = raster.shape
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for y0 in range(0, height, window):
        for x0 in range(0, width, window):
            # one extra row and column below and right: a pair belongs to the window holding its first pixel
            ids = np.asarray(raster[y0:min(height, y0 + window + 1), x0:min(width, x0 + window + 1)], np.int64)
            rows, cols = min(window, height - y0), min(window, width - x0)
            across = min(cols, ids.shape[1] - 1)
            down = min(rows, ids.shape[0] - 1)
            base = int(ids.max()) + 1
            for a, b in ((ids[:rows, :across], ids[:rows, 1:across + 1]), (ids[:down, :cols], ids[1:down + 1, :cols])):
                touching = (a != b) & (a > 0) & (b > 0)
                low, high = np.minimum(a[touching], b[touching]), np.maximum(a[touching], b[touching])
                codes, found = np.unique(low * base + high, return_counts=True)
                for code, number in zip(codes.tolist(), found.tolist(), strict=True):
                    counts[(code // base, code % base)] += number
    return dict(counts)


def merge_order(area: np.ndarray, borders: dict[tuple[int, int], int], min_area: float) -> np.ndarray:
    """``parent[i]``: the lowest id of the group segment ``i`` ends in, merging the smallest segment under
    ``min_area`` into its longest-border neighbour until none under it has a neighbour; 0 for glass (index 0) and
    for the groups still under ``min_area`` then (islands, which become glass)."""
    count = len(area)
    size = np.concatenate([[0], np.asarray(area, np.int64)])
    neighbours: list[dict[int, int]] = [{} for _ in range(count + 1)]
    for (a, b), length in borders.items():
        neighbours[a][b] = length
        neighbours[b][a] = length
    owner = np.arange(count + 1)  # union-find; a group is named by its current representative
    queue = [(int(size[i]), i) for i in range(1, count + 1) if size[i] < min_area and neighbours[i]]
    heapq.heapify(queue)
    while queue:
        seen, small = heapq.heappop(queue)
        if owner[small] != small or seen != size[small] or size[small] >= min_area or not neighbours[small]:
            continue  # merged away, grown since queued, or an island
        target = min(neighbours[small].items(), key=lambda item: (-item[1], item[0]))[0]
        owner[small] = target
        size[target] += size[small]
        for other, length in neighbours[small].items():
            del neighbours[other][small]
            if other != target:
                neighbours[target][other] = neighbours[target].get(other, 0) + length
                neighbours[other][target] = neighbours[other].get(target, 0) + length
        neighbours[small] = {}
        if size[target] < min_area and neighbours[target]:
            heapq.heappush(queue, (int(size[target]), target))
    parent = np.array([_find(owner, i) for i in range(count + 1)])
    lowest = np.full(count + 1, count + 1)
    np.minimum.at(lowest, parent, np.arange(count + 1))
    lowest[size < min_area] = 0  # sizes are final on the groups' representatives
    return lowest[parent]


def _find(owner: np.ndarray, i: int) -> int:
    while owner[i] != i:
        owner[i] = owner[owner[i]]
        i = owner[i]
    return i


def _rewrite(raster, lookup: np.ndarray, window: int) -> None:
    height, width = raster.shape
    for y0 in range(0, height, window):
        for x0 in range(0, width, window):
            block = (slice(y0, min(height, y0 + window)), slice(x0, min(width, x0 + window)))
            ids = np.asarray(raster[block])
            if ids.any():
                raster[block] = lookup[ids].astype(ids.dtype)


def _combined(table: SegmentTable, group: np.ndarray, n_groups: int) -> SegmentTable:
    """The table of the groups (``group`` −1: dropped): areas and centroid sums added, bounding boxes joined."""
    kept = group >= 0
    group, table = group[kept], SegmentTable(table.bbox[kept], table.centroid[kept], table.area[kept])
    area = np.bincount(group, weights=table.area, minlength=n_groups).astype(np.int64)
    sums = np.stack([np.bincount(group, weights=table.centroid[:, axis] * table.area, minlength=n_groups)
                     for axis in (0, 1)], axis=1)
    bbox = np.empty((n_groups, 4), np.int64)
    bbox[:, :2] = np.iinfo(np.int64).max
    bbox[:, 2:] = np.iinfo(np.int64).min
    np.minimum.at(bbox[:, 0], group, table.bbox[:, 0])
    np.minimum.at(bbox[:, 1], group, table.bbox[:, 1])
    np.maximum.at(bbox[:, 2], group, table.bbox[:, 2])
    np.maximum.at(bbox[:, 3], group, table.bbox[:, 3])
    return SegmentTable(bbox=bbox, centroid=sums / np.maximum(area, 1)[:, None], area=area)
