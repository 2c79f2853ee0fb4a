"""Bring-your-own segments: polygons from a GeoJSON or DSA annotation file, rasterised into the segment form.

Users who already have outlines (nuclei from HistomicsTK or HoVer-Net, regions drawn in HistomicsUI, QuPath
exports) use them as the segments to label instead of superpixels. Each usable polygon becomes one segment, with
ids 1..N in input order, and ``source_index`` maps every segment back to its feature or element in the file.

Coordinates are in the slide's base pixels with pixel (0, 0) covering [0, 1) × [0, 1), as in HistomicsUI and
QuPath. An analysis pixel belongs to a polygon when its centre lies inside it (pixel centres are sampled exactly;
no rounding of vertices), so outlines traced along pixel edges reproduce the mask they came from.

The raster is filled tile by tile: only the polygons whose bounding box meets a tile are drawn there, so memory
is bounded by a tile and the polygons' vertices, never by the slide. Where polygons overlap, a pixel goes to the
smaller polygon, so a nucleus inside a tissue region keeps its pixels.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from ..errors import SegmentsError
from ..progress import Progress, no_progress
from .base import SegmentSource, SegmentTable, segment_sources

logger = logging.getLogger(__name__)

LISTED_INDICES = 20
"""How many feature indices a warning lists before it says how many more there are."""


@segment_sources.register('polygons')
class PolygonSegments(SegmentSource):
    """Segments read from polygons (GeoJSON or DSA annotation JSON) instead of computed from the pixels.

    ``source`` is the path of a JSON file, or an already parsed document. After ``segment``, ``warnings`` lists
    what was repaired, skipped or dropped (each also logged) and ``source_index[i]`` is the 0-based position in
    the file of the feature (GeoJSON) or element (DSA; counted across all annotations in order) that became
    segment id ``i + 1``.
    """

    def __init__(self, source: str | os.PathLike | dict | list, tile_size: int = 1024) -> None:
        if tile_size < 1:
            raise SegmentsError(f'tile_size must be positive, not {tile_size}')
        self.tile_size = int(tile_size)
        self.label = source if isinstance(source, str | os.PathLike) else 'the polygon document'
        self.shapes = read_shapes(source)
        self.warnings: list[str] = []
        self.source_index = np.zeros(0, np.int64)

    def segment(self, slide, raster, progress: Progress | None = None) -> SegmentTable:
        """Fill ``raster`` (zero-initialised, slide.height × slide.width) with segment ids; return their table."""
        notes = _Notes(self.shapes.noun)
        for index, reason in self.shapes.skipped:
            notes.add(f'Skipped {{count}} {{items}}: {reason}', index)
        height, width = raster.shape
        polygons = prepare_polygons(self.shapes, float(slide.scale), width, height, notes)
        if not len(polygons.source_index):
            self._finish(notes)
            raise SegmentsError(f'No usable polygons in {self.label}. ' + ' '.join(self.warnings))
        table, keep = rasterise(polygons, raster, self.tile_size, notes, progress or no_progress)
        self.source_index = polygons.source_index[keep]
        self._finish(notes)
        if not len(table):
            raise SegmentsError(f'No polygon in {self.label} covers a pixel. ' + ' '.join(self.warnings))
        return table

    def _finish(self, notes: _Notes) -> None:
        self.warnings = notes.messages()
        for message in self.warnings:
            logger.warning('%s', message)


# -- reading the document -------------------------------------------------------------------------------------------

@dataclass
class Shapes:
    """The polygons of a document in base pixels, each with its position in the document, plus what was skipped."""

    noun: str  # 'feature' (GeoJSON) or 'element' (DSA annotation)
    index: list[int]
    geometry: list[BaseGeometry]
    skipped: list[tuple[int, str]]


def read_shapes(source: str | os.PathLike | dict | list) -> Shapes:
    """Parse a GeoJSON or DSA annotation document (or the JSON file holding it) into shapely geometries."""
    document = _load(source) if isinstance(source, str | os.PathLike) else source
    label = source if isinstance(source, str | os.PathLike) else 'The polygon document'
    kind, items = _items(document)
    if kind is None:
        raise SegmentsError(
            f'{label} is JSON but neither GeoJSON (a FeatureCollection, a Feature or a list of Features) nor a DSA '
            'annotation (a document with "elements", {"annotation": ...} as Girder returns it, or a list of those)')
    shapes = Shapes('feature' if kind == 'geojson' else 'element', [], [], [])
    to_shape = _feature_shape if kind == 'geojson' else _element_shape
    for index, item in enumerate(items):
        try:
            geometry = to_shape(item)
        except _Skip as skip:
            shapes.skipped.append((index, str(skip)))
            continue
        except (TypeError, ValueError, shapely.errors.ShapelyError):
            shapes.skipped.append((index, 'invalid coordinates'))
            continue
        shapes.index.append(index)
        shapes.geometry.append(geometry)
    if not shapes.geometry:
        found = f'{len(items)} {shapes.noun}s' if items else f'no {shapes.noun}s'
        raise SegmentsError(f'{label} has no polygons (it has {found}; segments need Polygon or MultiPolygon '
                            'features, or closed polyline, rectangle, ellipse or circle elements)')
    return shapes


def _load(path: str | os.PathLike):
    """The parsed JSON of a polygon file, or a SegmentsError saying why it cannot be read."""
    if not os.path.isfile(path):
        raise SegmentsError(f'Polygon file not found: {path}')
    try:
        with open(path, 'rb') as stream:
            return json.load(stream)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SegmentsError(f'{path} is not a JSON file of polygons (GeoJSON or DSA annotation): {exc}') from None
    except OSError as exc:
        raise SegmentsError(f'Cannot read the polygon file {path}: {exc}') from None


def _items(document) -> tuple[str | None, list]:
    """('geojson', features) or ('dsa', elements), or (None, []) for a document of another shape."""
    if isinstance(document, dict):
        if document.get('type') == 'FeatureCollection' and isinstance(document.get('features'), list):
            return 'geojson', document['features']
        if document.get('type') == 'Feature':
            return 'geojson', [document]
        if isinstance(document.get('annotation'), dict):
            document = document['annotation']
        if isinstance(document.get('elements'), list):
            return 'dsa', document['elements']
        return None, []
    if isinstance(document, list) and document and all(isinstance(d, dict) for d in document):
        if all(d.get('type') == 'Feature' for d in document):
            return 'geojson', document
        elements = []
        for annotation in document:
            annotation = annotation.get('annotation', annotation)
            if not isinstance(annotation, dict) or not isinstance(annotation.get('elements'), list):
                return None, []
            elements.extend(annotation['elements'])
        return 'dsa', elements
    return None, []


class _Skip(Exception):
    """An item of the document that is not a usable polygon; the message says why."""


def _feature_shape(feature) -> BaseGeometry:
    if not isinstance(feature, dict) or feature.get('type') != 'Feature':
        raise _Skip('not a GeoJSON Feature')
    geometry = feature.get('geometry')
    if not isinstance(geometry, dict):
        raise _Skip('no geometry')
    kind, coordinates = geometry.get('type'), geometry.get('coordinates')
    if kind == 'Polygon':
        return _polygon(coordinates)
    if kind == 'MultiPolygon':
        if not isinstance(coordinates, list):
            raise _Skip('invalid coordinates')
        return shapely.MultiPolygon([_polygon(part) for part in coordinates])
    raise _Skip(f'{kind} geometry, not a Polygon or MultiPolygon')


def _polygon(rings) -> shapely.Polygon:
    if not isinstance(rings, list) or not rings:
        raise _Skip('invalid coordinates')
    return shapely.Polygon(_ring(rings[0]), [_ring(hole) for hole in rings[1:]])


def _ring(points) -> np.ndarray:
    """The (x, y) vertices of a ring (z dropped; closed or not), which must hold at least 3 distinct points."""
    try:
        array = np.asarray(points, np.float64)
    except (TypeError, ValueError):
        raise _Skip('invalid coordinates') from None
    if array.ndim != 2 or array.shape[1] < 2 or not np.isfinite(array[:, :2]).all():
        raise _Skip('invalid coordinates')
    array = array[:, :2]
    if not _three_distinct(array):
        raise _Skip('fewer than 3 distinct points')
    return array


def _three_distinct(points: np.ndarray) -> bool:
    """Whether ``points`` holds at least three different points (in linear time, unlike ``np.unique``)."""
    not_first = (points != points[0]).any(axis=1)
    if not not_first.any():
        return False
    second = points[np.argmax(not_first)]
    return bool((not_first & (points != second).any(axis=1)).any())


def _element_shape(element) -> BaseGeometry:
    if not isinstance(element, dict):
        raise _Skip('not an annotation element')
    kind = element.get('type')
    if kind in ('polyline', 'polygon'):
        if not element.get('closed', kind == 'polygon'):
            raise _Skip('open polyline (not closed), so no area')
        return shapely.Polygon(_ring(element.get('points')), [_ring(hole) for hole in element.get('holes') or []])
    if kind in ('rectangle', 'ellipse', 'circle'):
        try:
            cx, cy = (float(v) for v in element['center'][:2])
            if kind == 'circle':
                width = height = 2 * float(element['radius'])
                rotation = 0.0
            else:
                width, height = float(element['width']), float(element['height'])
                rotation = float(element.get('rotation') or 0)
        except (KeyError, TypeError, ValueError, IndexError):
            raise _Skip(f'{kind} without a valid center and size') from None
        if not all(math.isfinite(v) for v in (cx, cy, width, height, rotation)):
            raise _Skip('invalid coordinates')
        return _box_shape(kind, cx, cy, width, height, rotation)
    raise _Skip(f'{kind!r} element, which has no area')


def _box_shape(kind: str, cx: float, cy: float, width: float, height: float, rotation: float) -> BaseGeometry:
    """A rectangle or ellipse centred on (cx, cy); ``rotation`` (radians) turns its width axis from +x toward +y."""
    if kind == 'rectangle':
        u = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) / 2
    else:
        angle = np.linspace(0, 2 * np.pi, 65)[:-1]
        u = np.stack([np.cos(angle), np.sin(angle)], 1) / 2
    local = u * [width, height]
    cos, sin = math.cos(rotation), math.sin(rotation)
    points = np.stack([cx + local[:, 0] * cos - local[:, 1] * sin, cy + local[:, 0] * sin + local[:, 1] * cos], 1)
    return shapely.Polygon(points)


# -- cleaning and scaling -------------------------------------------------------------------------------------------

@dataclass
class Polygons:
    """Usable polygons in analysis pixels as flat edge arrays (sorted by polygon), with per-polygon properties."""

    source_index: np.ndarray  # position in the document
    area: np.ndarray  # geometric area in analysis pixels²
    bounds: np.ndarray  # (minx, miny, maxx, maxy)
    edges: np.ndarray  # (E, 4) x0, y0, x1, y1 of every non-horizontal edge
    edge_owner: np.ndarray  # polygon of each edge
    edge_start: np.ndarray  # first edge of each polygon (len + 1 entries)


def prepare_polygons(shapes: Shapes, scale: float, width: int, height: int, notes: _Notes) -> Polygons:
    """Scale to analysis pixels, repair invalid polygons and skip those that cannot make a segment."""
    geometry = _object_array(shapes.geometry)
    index = np.asarray(shapes.index, np.int64)
    usable = np.ones(len(geometry), bool)
    for i in np.flatnonzero(~shapely.is_valid(geometry)):
        reason = shapely.is_valid_reason(geometry[i]).split('[')[0]
        geometry[i] = _polygonal(shapely.make_valid(geometry[i]))
        if geometry[i] is None:
            usable[i] = False
            notes.add('Skipped {count} {items} with zero area', index[i])
        else:
            notes.add(f'Repaired {{count}} invalid {{items}} ({reason}) with shapely.make_valid', index[i])
    geometry, index = geometry[usable], index[usable]
    geometry = shapely.transform(geometry, lambda xy: xy / scale)
    area = shapely.area(geometry)
    minx, miny, maxx, maxy = shapely.bounds(geometry).T
    reasons = [(area == 0, 'with zero area'),
               ((maxx <= 0) | (maxy <= 0) | (minx >= width) | (miny >= height), 'entirely outside the slide'),
               (area < 1, 'smaller than one analysis pixel')]
    usable = np.ones(len(geometry), bool)
    for rejected, reason in reasons:
        for i in np.flatnonzero(rejected & usable):
            notes.add(f'Skipped {{count}} {{items}} {reason}', index[i])
        usable &= ~rejected
    return _flatten(index[usable], geometry[usable])


def _object_array(items: list) -> np.ndarray:
    """A 1-D object array of ``items`` (``np.asarray`` would try to look inside each geometry)."""
    array = np.empty(len(items), object)
    array[:] = items
    return array


def _polygonal(geometry: BaseGeometry) -> BaseGeometry | None:
    """The polygon parts of what make_valid returned (it may add lines and points), or None if there are none."""
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ('Polygon', 'MultiPolygon')]
    polygons = [q for p in parts for q in shapely.get_parts(p) if q.area > 0]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def _flatten(source_index: np.ndarray, geometry: np.ndarray) -> Polygons:
    """Every polygon's edges (exterior and holes, all parts) in one array, grouped by polygon."""
    n = len(geometry)
    parts, part_owner = shapely.get_parts(geometry, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    start = np.flatnonzero(coord_ring[:-1] == coord_ring[1:])
    edges = np.concatenate([coords[start], coords[start + 1]], axis=1)
    owner = part_owner[ring_part[coord_ring[start]]]
    sloped = edges[:, 1] != edges[:, 3]  # horizontal edges never cross a row of pixel centres
    edges, owner = edges[sloped], owner[sloped]
    edge_start = np.searchsorted(owner, np.arange(n + 1))
    bounds = shapely.bounds(geometry).reshape(n, 4)
    return Polygons(source_index, shapely.area(geometry), bounds, edges, owner, edge_start)


# -- rasterising ----------------------------------------------------------------------------------------------------

def rasterise(polygons: Polygons, raster, tile_size: int, notes: _Notes,
              progress: Progress) -> tuple[SegmentTable, np.ndarray]:
    """Draw the polygons into ``raster`` tile by tile; return the table and which polygons became segments.

    Polygons are first written with provisional ids (their position in ``polygons`` + 1); if some end up with no
    pixels, a second pass renumbers the tiles written so that ids stay contiguous.
    """
    n = len(polygons.source_index)
    height, width = raster.shape
    # Rank polygons so that the smaller one wins a contested pixel (ties: the earlier one in the file).
    rank = np.empty(n, np.int64)
    rank[np.lexsort((-np.arange(n), -polygons.area))] = np.arange(n)
    stats = _Stats(n)
    tiles = _tile_pairs(polygons.bounds, width, height, tile_size)
    columns = _tile_columns(width, tile_size)
    local = np.full(n, -1, np.int64)  # position of each polygon among the current tile's members
    written = []
    for done, (tile, members) in enumerate(tiles):
        y0, x0 = (tile // columns) * tile_size, (tile % columns) * tile_size
        y1, x1 = min(height, y0 + tile_size), min(width, x0 + tile_size)
        members = members[np.argsort(rank[members])]  # ascending rank: a later member beats an earlier one
        local[members] = np.arange(len(members))
        winner = _paint(polygons, members, local, x0, y0, x1, y1, stats)
        local[members] = -1
        if (winner >= 0).any():
            raster[y0:y1, x0:x1] = np.where(winner >= 0, members[winner] + 1, 0).astype(np.uint32)
            written.append((x0, y0, x1, y1))
            stats.add_tile(members, winner, x0, y0)
        progress(done + 1, len(tiles), 'Rasterising polygons')
    keep = stats.count > 0
    _note_losses(polygons, stats, notes)
    if not keep.all():
        new_id = np.concatenate([[0], np.cumsum(keep)]).astype(np.uint32)
        for x0, y0, x1, y1 in written:
            raster[y0:y1, x0:x1] = new_id[raster[y0:y1, x0:x1]]
    table = SegmentTable(
        bbox=np.stack([stats.min_x, stats.min_y, stats.max_x + 1, stats.max_y + 1], 1)[keep],
        centroid=(np.stack([stats.sum_x, stats.sum_y], 1) / np.maximum(stats.count, 1)[:, None])[keep],
        area=stats.count[keep])
    return table, keep


def _tile_columns(width: int, tile_size: int) -> int:
    return -(-width // tile_size)


def _pixel_span(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last pixel whose centre (p + 0.5) lies in [low, high)."""
    return np.ceil(low - 0.5).astype(np.int64), np.ceil(high - 0.5).astype(np.int64)


def _tile_pairs(bounds: np.ndarray, width: int, height: int, tile_size: int) -> list[tuple[int, np.ndarray]]:
    """For every tile that some polygon's bounding box meets: (tile number, those polygons)."""
    c0, c1 = _pixel_span(bounds[:, 0], bounds[:, 2])
    r0, r1 = _pixel_span(bounds[:, 1], bounds[:, 3])
    c0, r0 = np.maximum(c0, 0), np.maximum(r0, 0)
    c1, r1 = np.minimum(c1, width), np.minimum(r1, height)
    polygon = np.flatnonzero((c1 > c0) & (r1 > r0))
    tc0, tc1 = c0[polygon] // tile_size, (c1[polygon] - 1) // tile_size + 1
    tr0, tr1 = r0[polygon] // tile_size, (r1[polygon] - 1) // tile_size + 1
    across, count = tc1 - tc0, (tc1 - tc0) * (tr1 - tr0)
    owner = np.repeat(polygon, count)
    offset = _ranges(np.zeros_like(count), count)
    row = np.repeat(tr0, count) + offset // np.repeat(across, count)
    column = np.repeat(tc0, count) + offset % np.repeat(across, count)
    tile = row * _tile_columns(width, tile_size) + column
    order = np.argsort(tile, kind='stable')
    tile, owner = tile[order], owner[order]
    if not len(tile):
        return []
    cuts = np.flatnonzero(np.diff(tile)) + 1
    return [(int(t[0]), o) for t, o in zip(np.split(tile, cuts), np.split(owner, cuts), strict=True)]


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(s, e)`` for every pair, without a Python loop."""
    lengths = ends - starts
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


def _paint(polygons: Polygons, members: np.ndarray, local: np.ndarray, x0: int, y0: int, x1: int, y1: int,
           stats: _Stats) -> np.ndarray:
    """For each pixel of the tile [y0:y1, x0:x1], the position in ``members`` of the polygon that wins it, or -1.

    Scanline fill: every edge is intersected with the rows of pixel centres it crosses; per polygon and row the
    sorted crossings pair up into inside spans (even–odd rule, so holes and multi-part polygons come out right).
    ``members`` is sorted so that where spans overlap, the later member (the smaller polygon) wins.
    """
    edge = _ranges(polygons.edge_start[members], polygons.edge_start[members + 1])
    ex0, ey0, ex1, ey1 = polygons.edges[edge].T
    first, stop = _pixel_span(np.minimum(ey0, ey1), np.maximum(ey0, ey1))
    first, stop = np.maximum(first, y0), np.minimum(stop, y1)
    crossing = stop > first
    edge, ex0, ey0, ex1, ey1, first, stop = (a[crossing] for a in (edge, ex0, ey0, ex1, ey1, first, stop))
    rows = _ranges(first, stop)
    repeat = stop - first
    x = np.repeat(ex0, repeat) + (rows + 0.5 - np.repeat(ey0, repeat)) * np.repeat((ex1 - ex0) / (ey1 - ey0), repeat)
    owner = np.repeat(local[polygons.edge_owner[edge]], repeat)
    order = np.lexsort((x, rows, owner))
    x, rows, owner = x[order], rows[order], owner[order]
    start, stop = _pixel_span(x[0::2], x[1::2])
    start, stop = np.maximum(start, x0), np.minimum(stop, x1)
    rows, owner = rows[0::2], owner[0::2]
    filled = stop > start
    start, stop, rows, owner = start[filled], stop[filled], rows[filled], owner[filled]
    tile_width = x1 - x0
    offset = (rows - y0) * tile_width - x0
    pixel = _ranges(offset + start, offset + stop)
    pixel_owner = np.repeat(owner, stop - start)
    winner = np.full((y1 - y0) * tile_width, -1, np.int64)
    np.maximum.at(winner, pixel, pixel_owner)
    stats.add_coverage(members, pixel, pixel_owner, winner.size)
    return winner.reshape(y1 - y0, tile_width)


class _Stats:
    """Running per-polygon sums over tiles: pixel count, coordinate sums and extremes, and overlap bookkeeping."""

    def __init__(self, n: int) -> None:
        self.count = np.zeros(n, np.int64)
        self.sum_x = np.zeros(n, np.float64)
        self.sum_y = np.zeros(n, np.float64)
        self.min_x = np.full(n, np.iinfo(np.int64).max, np.int64)
        self.min_y = np.full(n, np.iinfo(np.int64).max, np.int64)
        self.max_x = np.full(n, -1, np.int64)
        self.max_y = np.full(n, -1, np.int64)
        self.covered = np.zeros(n, np.int64)  # pixels inside the polygon, whoever won them
        self.overlapping = np.zeros(n, bool)
        self.contested = 0

    def add_coverage(self, members: np.ndarray, pixel: np.ndarray, owner: np.ndarray, size: int) -> None:
        self.covered[members] += np.bincount(owner, minlength=len(members))
        cover = np.bincount(pixel, minlength=size)
        shared = cover[pixel] > 1
        if shared.any():
            self.overlapping[members[owner[shared]]] = True
            self.contested += int((cover > 1).sum())

    def add_tile(self, members: np.ndarray, winner: np.ndarray, x0: int, y0: int) -> None:
        m = len(members)
        flat = winner.ravel()
        pixel = np.flatnonzero(flat >= 0)
        owner = flat[pixel]
        rows, columns = np.divmod(pixel, winner.shape[1])
        count = np.bincount(owner, minlength=m)
        self.count[members] += count
        self.sum_x[members] += np.bincount(owner, columns, minlength=m) + x0 * count
        self.sum_y[members] += np.bincount(owner, rows, minlength=m) + y0 * count
        for target, values, reduce, start in ((self.min_x, columns + x0, np.minimum, np.iinfo(np.int64).max),
                                              (self.min_y, rows + y0, np.minimum, np.iinfo(np.int64).max),
                                              (self.max_x, columns + x0, np.maximum, -1),
                                              (self.max_y, rows + y0, np.maximum, -1)):
            extreme = np.full(m, start, np.int64)
            reduce.at(extreme, owner, values)
            target[members] = reduce(target[members], extreme)


def _note_losses(polygons: Polygons, stats: _Stats, notes: _Notes) -> None:
    for index in polygons.source_index[stats.covered == 0]:
        notes.add('Skipped {count} {items} with no analysis pixel centre inside (too thin or too small)', index)
    for index in polygons.source_index[(stats.covered > 0) & (stats.count == 0)]:
        notes.add('Dropped {count} {items} whose pixels all belong to smaller overlapping polygons', index)
    overlapping = int(stats.overlapping.sum())
    if overlapping:
        notes.note(f'{overlapping} polygons overlap others ({stats.contested} pixels contested); each contested '
                   'pixel went to the smallest polygon covering it')


class _Notes:
    """Warnings grouped by kind, each listing the positions in the file of the features it concerns."""

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self._indices: dict[str, list[int]] = defaultdict(list)
        self._plain: list[str] = []

    def add(self, template: str, index: int) -> None:
        self._indices[template].append(int(index))

    def note(self, message: str) -> None:
        self._plain.append(message)

    def messages(self) -> list[str]:
        result = []
        for template, indices in self._indices.items():
            items = self.noun if len(indices) == 1 else f'{self.noun}s'
            listed = ', '.join(map(str, indices[:LISTED_INDICES]))
            more = f' and {len(indices) - LISTED_INDICES} more' if len(indices) > LISTED_INDICES else ''
            text = template.replace('{count}', str(len(indices))).replace('{items}', items)
            result.append(f'{text} ({items} {listed}{more}; 0-based positions in the file).')
        return result + self._plain
