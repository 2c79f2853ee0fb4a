"""The segments under a brush stroke: what painting on the slide labels.

A stroke is a polyline in slide base pixels with a brush radius ``r``; a single point is a dab. On the store's
segment raster (analysis pixels; pixel ``(column i, row j)`` is the square ``[i, i+1) × [j, j+1)``) it covers

- every pixel the polyline passes through, so a dab of radius 0 covers the pixel under the pointer. A point on a
  pixel edge or corner belongs to the pixel right of and below it (the one ``floor`` names), so a dab at integer
  coordinates covers exactly one pixel and a line along a pixel edge covers the row or column below or right of it;
- every pixel whose centre ``(i + ½, j + ½)`` lies within ``r`` of the polyline (distance ≤ ``r``: a centre
  exactly at ``r`` is covered). This is the round brush dragged along the line, without the polygonal
  approximation a buffered outline would make.

The segments covered are read from the store's segment raster, so the answer is exact whatever the viewer draws.

How, and why so: the stroke is rasterised rather than hit-tested pixel by pixel over its bounding box (a thin
diagonal stroke across the slide has a bounding box of millions of pixels and an area of a few thousand; testing
every pixel of the box took seconds and hundreds of megabytes). For each piece of the polyline, each raster row
within reach gets, in closed form, the run of columns the brush covers there, whose two end pixels alone get the
exact distance test; the pixels the line passes through come from its crossings of the pixel grid. Overlapping
runs are joined, so a pixel painted over twice is read once. The runs are then cut at the raster's chunk
boundaries and read chunk by chunk, only the part of each chunk they cover, so time goes with the stroke's area
and memory with one chunk's worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from ..errors import ConfigurationError
from ..io.store import SlideStore

MAX_STROKE_PIXELS = 4096 * 4096
"""Most candidate pixels (analysis pixels, about the stroke's area) one stroke may test: a larger stroke is sent
as several requests."""
MAX_COORDINATE = 2.0 ** 31
"""Largest coordinate magnitude (base pixels) a stroke point may have; far beyond any slide, and small enough
that the stroke's geometry never overflows."""
GRID_SNAP = 1e-9
"""A coordinate this close (analysis pixels) to a pixel edge counts as on it: base pixels divided by the analysis
scale, or a crossing computed along a line, land on an edge that floating point would otherwise miss by an ulp."""
SECTION_SLACK = 1e-6
"""How far (pixels) a run's closed-form ends are widened before its end pixels are checked exactly: far more than
the closed form's rounding, far less than a pixel."""
DEFAULT_CHUNK = (256, 256)
"""Rows and columns handled at once when the label raster is not chunked."""


@dataclass(frozen=True)
class _Runs:
    """Runs of covered pixels: columns ``lo..hi`` (inclusive) of ``row``."""

    row: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def pixels(self) -> int:
        return int((self.hi - self.lo + 1).sum())


def segments_under_stroke(store: SlideStore, points: Sequence[Sequence[float]], radius: float = 0.0) -> np.ndarray:
    """Sorted ids of the segments a stroke through ``points`` (base pixels) with brush ``radius`` (base pixels)
    covers (see the module for which pixels that is); a single point is a dab. Points outside the slide are
    allowed (the brush may leave it)."""
    path = _validated_path(points)
    if not np.isfinite(radius) or radius < 0:
        raise ConfigurationError(f'The brush radius must be zero or positive, not {radius}')
    scale = store.slide_info.scale
    path = path / scale
    reach = float(radius) / scale
    raster = store.label_raster
    height, width = raster.shape
    runs = _merged(_concat(_crossed_runs(*_clipped_pieces(path, 0.0, height, width), height, width),
                           _reach_runs(*_clipped_pieces(path, reach, height, width), reach, height, width)), width)
    if runs.pixels > MAX_STROKE_PIXELS:
        raise ConfigurationError('The stroke covers too much of the slide at once; send it in shorter pieces')
    return _segments_in_runs(raster, runs)


def _validated_path(points: Sequence[Sequence[float]]) -> np.ndarray:
    """``points`` as an (N, 2) float array, or a ConfigurationError saying what a stroke is."""
    try:
        path = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        path = np.zeros((0, 0))
    if path.ndim != 2 or path.shape[1] != 2 or len(path) == 0 or not np.isfinite(path).all():
        raise ConfigurationError('A stroke is a list of [x, y] points in base pixels')
    if np.abs(path).max() > MAX_COORDINATE:
        raise ConfigurationError(f'A stroke point lies more than {MAX_COORDINATE:.0f} pixels off the slide')
    return path


def _clipped_pieces(path: np.ndarray, reach: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The polyline's pieces (start and end points; a dab is one piece of length 0), each cut to the part within
    ``reach`` + 1 pixel of the raster; pieces that never come that close are dropped. Every covered pixel's
    nearest point on the line lies in that part, so the cut changes nothing covered."""
    starts, ends = (path, path) if len(path) == 1 else (path[:-1], path[1:])
    margin = reach + 1
    delta = ends - starts
    t0, t1 = np.zeros(len(starts)), np.ones(len(starts))
    keep = np.ones(len(starts), bool)
    for axis, size in enumerate((width, height)):
        origin, step = starts[:, axis], delta[:, axis]
        flat = step == 0
        keep &= ~flat | ((origin >= -margin) & (origin <= size + margin))
        with np.errstate(divide='ignore', invalid='ignore'):
            enter, leave = (-margin - origin) / step, (size + margin - origin) / step
        t0 = np.maximum(t0, np.where(flat, 0.0, np.minimum(enter, leave)))
        t1 = np.minimum(t1, np.where(flat, 1.0, np.maximum(enter, leave)))
    keep &= t0 <= t1
    starts, ends, delta, t0, t1 = starts[keep], ends[keep], delta[keep], t0[keep, None], t1[keep, None]
    # endpoints not cut stay bit-identical, so ties at the brush's edge are decided on the points as sent
    return np.where(t0 > 0, starts + t0 * delta, starts), np.where(t1 < 1, starts + t1 * delta, ends)


def _crossed_runs(starts: np.ndarray, ends: np.ndarray, height: int, width: int) -> _Runs:
    """One-pixel runs for the pixels the pieces pass through: the pixels of the pieces' end points, of every
    crossing with a pixel edge, and of the midpoints between consecutive crossings."""
    delta = ends - starts
    params = [np.zeros(len(starts)), np.ones(len(starts))]
    owners = [np.arange(len(starts)), np.arange(len(starts))]
    for axis in (0, 1):
        low = np.minimum(starts[:, axis], ends[:, axis])
        high = np.maximum(starts[:, axis], ends[:, axis])
        first = np.floor(low) + 1
        counts = np.maximum(np.ceil(high) - first, 0).astype(np.int64)  # the integers strictly between
        owner, offset = _expand(counts)
        edge = first[owner] + offset
        params.append((edge - starts[owner, axis]) / delta[owner, axis])
        owners.append(owner)
    t, owner = np.concatenate(params), np.concatenate(owners)
    order = np.lexsort((t, owner))
    t, owner = t[order], owner[order]
    between = np.flatnonzero(owner[1:] == owner[:-1])
    t = np.concatenate([t, (t[between] + t[between + 1]) / 2])
    owner = np.concatenate([owner, owner[between]])
    points = _snapped(starts[owner] + t[:, None] * delta[owner])
    cols, rows = np.floor(points[:, 0]), np.floor(points[:, 1])
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    cols, rows = cols[inside].astype(np.int64), rows[inside].astype(np.int64)
    return _Runs(rows, cols, cols)


def _reach_runs(starts: np.ndarray, ends: np.ndarray, reach: float, height: int, width: int) -> _Runs:
    """For each piece and each row within ``reach`` of it, the run of columns whose centres lie within ``reach``
    of the piece. The run's ends come in closed form (a round brush dragged along a segment is convex, so each
    row meets it in one interval: that of its two end disks and its body together); the two end pixels are then
    checked with the exact distance, which settles ties the closed form may round either way."""
    if reach <= 0 or not len(starts):
        return _Runs(*(np.zeros(0, np.int64),) * 3)
    low = np.minimum(starts[:, 1], ends[:, 1]) - reach
    high = np.maximum(starts[:, 1], ends[:, 1]) + reach
    first = np.clip(np.ceil(low - 0.5) - 1, 0, height).astype(np.int64)  # a spare row each side for rounding
    stop = np.clip(np.floor(high - 0.5) + 2, 0, height).astype(np.int64)
    piece, offset = _expand(np.maximum(stop - first, 0))
    row = first[piece] + offset
    centre = row + 0.5
    origin, end = starts[piece], ends[piece]
    sections = [_disk_section(origin, centre, reach), _disk_section(end, centre, reach),
                _body_section(origin, end, centre, reach)]
    left = np.fmin.reduce([a for a, _ in sections])
    right = np.fmax.reduce([b for _, b in sections])
    with np.errstate(invalid='ignore'):
        lo = np.clip(np.ceil(left - 0.5 - SECTION_SLACK), 0, width)
        hi = np.clip(np.floor(right - 0.5 + SECTION_SLACK), -1, width - 1)
    keep = ~np.isnan(left) & (lo <= hi)
    row, lo, hi, centre = row[keep], lo[keep].astype(np.int64), hi[keep].astype(np.int64), centre[keep]
    origin, delta = origin[keep], (end - origin)[keep]
    lo = lo + ~_within(lo + 0.5, centre, origin, delta, reach)
    hi = hi - ~_within(hi + 0.5, centre, origin, delta, reach)
    keep = lo <= hi
    return _Runs(row[keep], lo[keep], hi[keep])


def _disk_section(centre: np.ndarray, y: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The x interval where the row ``y`` meets the disk of ``radius`` about each ``centre`` (NaN: it misses)."""
    half = np.sqrt(np.where(np.abs(y - centre[:, 1]) <= radius, radius ** 2 - (y - centre[:, 1]) ** 2, np.nan))
    return centre[:, 0] - half, centre[:, 0] + half


def _body_section(start: np.ndarray, end: np.ndarray, y: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The x interval where the row ``y`` meets the rectangle of half-width ``radius`` about each piece
    ``start``–``end`` (NaN: it misses, or the piece is a point)."""
    delta = end - start
    length = np.hypot(delta[:, 0], delta[:, 1])
    with np.errstate(divide='ignore', invalid='ignore'):
        normal = np.stack([-delta[:, 1], delta[:, 0]], axis=1) * (radius / length)[:, None]
    corners = [start + normal, end + normal, end - normal, start - normal]
    left = right = np.full(len(y), np.nan)
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        with np.errstate(divide='ignore', invalid='ignore'):
            t = (y - a[:, 1]) / (b[:, 1] - a[:, 1])
        crossing = a[:, 0] + t * (b[:, 0] - a[:, 0])
        spans = (np.minimum(a[:, 1], b[:, 1]) <= y) & (y <= np.maximum(a[:, 1], b[:, 1]))
        flat = spans & (a[:, 1] == b[:, 1])  # an edge lying on the row: both its ends
        for x in (np.where(flat, a[:, 0], crossing), np.where(flat, b[:, 0], crossing)):
            x = np.where(spans, x, np.nan)
            left, right = np.fmin(left, x), np.fmax(right, x)
    return left, right


def _within(x: np.ndarray, y: np.ndarray, origin: np.ndarray, delta: np.ndarray, reach: float) -> np.ndarray:
    """Whether each point ``(x, y)`` lies within ``reach`` of its piece ``origin`` + t ``delta``, t in [0, 1]."""
    offset_x, offset_y = x - origin[:, 0], y - origin[:, 1]
    length = delta[:, 0] ** 2 + delta[:, 1] ** 2
    with np.errstate(divide='ignore', invalid='ignore'):
        t = np.where(length > 0, (offset_x * delta[:, 0] + offset_y * delta[:, 1]) / length, 0.0)
    t = np.clip(t, 0, 1)
    return np.hypot(offset_x - t * delta[:, 0], offset_y - t * delta[:, 1]) <= reach


def _merged(runs: _Runs, width: int) -> _Runs:
    """``runs`` with those that overlap or touch in a row joined, so each covered pixel is in one run."""
    if not len(runs.row):
        return runs
    stride = width + 2  # runs of different rows never touch
    start, stop = runs.row * stride + runs.lo, runs.row * stride + runs.hi
    order = np.argsort(start, kind='stable')
    start, stop = start[order], stop[order]
    fresh = np.ones(len(start), bool)
    fresh[1:] = start[1:] > np.maximum.accumulate(stop)[:-1] + 1
    firsts = np.flatnonzero(fresh)
    start, stop = start[firsts], np.maximum.reduceat(stop, firsts)
    row = start // stride
    return _Runs(row, start - row * stride, stop - row * stride)


def _segments_in_runs(raster: h5py.Dataset, runs: _Runs) -> np.ndarray:
    """The segment ids of the pixels of ``runs``, reading the raster one chunk at a time (only the part of each
    chunk the runs cover)."""
    chunk_rows, chunk_cols = raster.chunks or DEFAULT_CHUNK
    first, last = runs.lo // chunk_cols, runs.hi // chunk_cols
    run, offset = _expand(last - first + 1)
    chunk_col = first[run] + offset
    lo = np.maximum(runs.lo[run], chunk_col * chunk_cols)
    hi = np.minimum(runs.hi[run], chunk_col * chunk_cols + chunk_cols - 1)
    row = runs.row[run]
    key = (row // chunk_rows) * (raster.shape[1] // chunk_cols + 1) + chunk_col
    order = np.argsort(key, kind='stable')
    found = [np.zeros(0, np.uint32)]
    for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        if not len(group):
            continue
        top, left = row[group].min(), lo[group].min()
        block = raster[top:row[group].max() + 1, left:hi[group].max() + 1]
        owner, offset = _expand(hi[group] - lo[group] + 1)
        found.append(np.unique(block[row[group][owner] - top, lo[group][owner] + offset - left]))
    ids = np.unique(np.concatenate(found))
    return ids[ids > 0].astype(np.int64)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``counts[k]`` items of each owner ``k``: every item's owner and its index among its owner's items."""
    counts = np.asarray(counts, np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)


def _snapped(values: np.ndarray) -> np.ndarray:
    """``values`` with those within ``GRID_SNAP`` of an integer set to it."""
    nearest = np.round(values)
    return np.where(np.abs(values - nearest) <= GRID_SNAP, nearest, values)


def _concat(*parts: _Runs) -> _Runs:
    return _Runs(*(np.concatenate([getattr(p, name) for p in parts]).astype(np.int64) for name in ('row', 'lo', 'hi')))
