"""Polygon segments: real DSB2018 nuclei outlines rasterise back onto their mask, and bad input is explained."""

import json
import logging

import numpy as np
import pytest
import tifffile
from skimage.measure import find_contours, regionprops

from histomics_label.core.errors import SegmentsError
from histomics_label.core.io.slide import SlideInfo, SlideReader
from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments import segment_sources
from histomics_label.core.segments.polygons import PolygonSegments


@pytest.fixture(scope='module')
def nuclei(dsb2018, tmp_path_factory):
    """The DSB2018 image as a tiled TIFF slide, its instance mask, and one outline per nucleus (base pixels)."""
    image, mask = dsb2018
    folder = tmp_path_factory.mktemp('nuclei')
    slide_path = folder / 'slide.tif'
    tifffile.imwrite(slide_path, (image / image.max() * 255).astype(np.uint8), tile=(256, 256))
    labels = np.unique(mask)[1:]
    outlines = []
    for label in labels:
        contour = max(find_contours(np.pad(mask == label, 1).astype(float), 0.5), key=len)
        # find_contours puts pixel centres at integers; slide coordinates put them at +0.5
        outlines.append(np.stack([contour[:, 1] - 0.5, contour[:, 0] - 0.5], 1))
    return str(slide_path), mask, labels, outlines


def geojson(outlines):
    return {'type': 'FeatureCollection', 'features': [
        {'type': 'Feature', 'properties': {}, 'geometry': {'type': 'Polygon', 'coordinates': [xy.tolist()]}}
        for xy in outlines]}


def polyline(xy):
    return {'type': 'polyline', 'closed': True, 'points': [[x, y, 0] for x, y in xy]}


def run(source, slide_path, scale=1, **options):
    slide = SlideReader(slide_path, scale=scale)
    segments = PolygonSegments(source, **options)
    raster = np.zeros((slide.height, slide.width), np.uint32)
    table = segments.segment(slide, raster)
    return segments, raster, table


def assert_segment_form(raster, table):
    """Ids 1..N contiguous and a table equal to regionprops of the raster."""
    assert np.array_equal(np.unique(raster), np.arange(len(table) + 1))
    for prop in regionprops(raster):
        row = prop.label - 1
        assert tuple(table.bbox[row]) == (prop.bbox[1], prop.bbox[0], prop.bbox[3], prop.bbox[2])
        assert table.area[row] == prop.area
        np.testing.assert_allclose(table.centroid[row], prop.centroid[::-1])


def test_geojson_reproduces_the_mask(nuclei, tmp_path):
    slide_path, mask, labels, outlines = nuclei
    path = tmp_path / 'nuclei.geojson'
    path.write_text(json.dumps(geojson(outlines)))
    segments, raster, table = run(str(path), slide_path, tile_size=128)
    assert len(table) == len(labels) == 125
    assert segments.warnings == []
    np.testing.assert_array_equal(segments.source_index, np.arange(len(labels)))
    iou = [((raster == i + 1) & (mask == label)).sum() / ((raster == i + 1) | (mask == label)).sum()
           for i, label in enumerate(labels[segments.source_index])]
    assert np.median(iou) >= 0.99 and min(iou) >= 0.95
    assert_segment_form(raster, table)


def test_tiling_does_not_change_the_result(nuclei):
    slide_path, _, _, outlines = nuclei
    _, small_tiles, table = run(geojson(outlines), slide_path, tile_size=37)
    _, one_tile, whole = run(geojson(outlines), slide_path, tile_size=1024)
    np.testing.assert_array_equal(small_tiles, one_tile)
    np.testing.assert_array_equal(table.bbox, whole.bbox)
    np.testing.assert_allclose(table.centroid, whole.centroid)


def test_dsa_annotation_forms_match_geojson(nuclei, tmp_path):
    slide_path, _, _, outlines = nuclei
    _, expected, _ = run(geojson(outlines), slide_path)
    elements = [polyline(xy) for xy in outlines]
    document = {'name': 'nuclei', 'elements': elements}
    girder = {'_id': '0123', 'itemId': '4567', 'annotation': document}
    split = [{'annotation': {'name': 'a', 'elements': elements[:50]}}, {'name': 'b', 'elements': elements[50:]}]
    for form in (document, girder, split):
        path = tmp_path / 'annotation.json'
        path.write_text(json.dumps(form))
        segments, raster, table = run(str(path), slide_path)
        np.testing.assert_array_equal(raster, expected)
        assert len(table) == 125 and segments.warnings == []


def test_scaled_slide(nuclei):
    slide_path, mask, labels, outlines = nuclei
    segments, raster, table = run(geojson(outlines), slide_path, scale=2)
    assert raster.shape == (256, 256)
    assert len(table) == len(labels)
    iou = []
    for i, label in enumerate(labels[segments.source_index]):
        reference = (mask == label).reshape(256, 2, 256, 2).mean(axis=(1, 3)) >= 0.5
        iou.append(((raster == i + 1) & reference).sum() / ((raster == i + 1) | reference).sum())
    assert np.median(iou) >= 0.85
    assert_segment_form(raster, table)


def test_into_a_store_raster(nuclei, tmp_path):
    slide_path, _, _, outlines = nuclei
    slide = SlideReader(slide_path)
    source = segment_sources.create('polygons', source=geojson(outlines))
    path = tmp_path / 'slide.h5'
    with SlideStore.create(path, slide.info, {'source': 'polygons'}) as writer:
        table = source.segment(slide, writer.create_label_raster(slide.height, slide.width), None)
        writer.write_segments(table)
    with SlideStore(path) as store:
        assert isinstance(store.slide_info, SlideInfo)
        assert store.n_segments == 125
        assert_segment_form(store.label_raster[()], store.segments())


def test_overlaps_go_to_the_smaller_polygon(nuclei, caplog):
    slide_path, mask, labels, outlines = nuclei
    region = {'type': 'rectangle', 'center': [256, 256, 0], 'width': 512, 'height': 200, 'rotation': 0}
    halves = [{'type': 'rectangle', 'center': [15, 10, 0], 'width': 10, 'height': 10},
              {'type': 'rectangle', 'center': [25, 10, 0], 'width': 10, 'height': 10}]
    whole = {'type': 'rectangle', 'center': [20, 10, 0], 'width': 20, 'height': 10}
    elements = [region] + [polyline(xy) for xy in outlines] + [whole] + halves
    _, nuclei_alone, _ = run(geojson(outlines), slide_path)
    with caplog.at_level(logging.WARNING, logger='histomics_label.core.segments.polygons'):
        segments, raster, table = run({'elements': elements}, slide_path)
    whole_index = len(outlines) + 1
    assert whole_index not in segments.source_index  # every pixel of it belongs to its two halves
    assert len(table) == len(elements) - 1
    assert_segment_form(raster, table)
    in_band = np.zeros(mask.shape, bool)
    in_band[156:356] = True
    np.testing.assert_array_equal(raster == 1, in_band & (nuclei_alone == 0))  # the region keeps what is left
    nucleus_ids = np.flatnonzero((segments.source_index >= 1) & (segments.source_index <= len(outlines))) + 1
    np.testing.assert_array_equal(np.isin(raster, nucleus_ids), nuclei_alone > 0)  # nuclei keep every pixel
    assert table.area[-2] == table.area[-1] == 100
    assert any('Dropped 1 element whose pixels all belong to smaller overlapping polygons' in w
               and f'element {whole_index};' in w for w in segments.warnings)
    overlap = [w for w in segments.warnings if 'overlap others' in w]
    in_band_nuclei = len(np.unique(nuclei_alone[156:356])) - 1
    assert len(overlap) == 1 and overlap[0].startswith(f'{in_band_nuclei + 4} polygons overlap others')
    assert caplog.records and all(r.levelno == logging.WARNING for r in caplog.records)
    assert any('overlap others' in r.getMessage() for r in caplog.records)


def test_repairs_skips_and_warns(nuclei):
    slide_path, _, _, outlines = nuclei
    bowtie = [[100, 100], [140, 140], [140, 100], [100, 140], [100, 100]]
    features = geojson(outlines[:3])['features'] + [
        {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': [bowtie]}},                      # 3
        {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': [[[1, 1], [5, 5], [1, 1]]]}},     # 4
        {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': [[[0, 0], [4, 4], [8, 8]]]}},     # 5
        {'type': 'Feature', 'geometry': {'type': 'Polygon',
                                         'coordinates': [[[9000, 10], [9100, 10], [9100, 90]]]}},          # 6
        {'type': 'Feature', 'geometry': {'type': 'Polygon',
                                         'coordinates': [[[300, 300], [300.5, 300], [300.5, 300.5]]]}},    # 7
        {'type': 'Feature', 'geometry': {'type': 'Point', 'coordinates': [20, 20]}},                        # 8
        {'type': 'Feature', 'geometry': {'type': 'Polygon',
                                         'coordinates': [[[400, 400], [460, 400.2], [400, 400.4]]]}},      # 9
        {'type': 'Feature', 'geometry': {'type': 'MultiPolygon', 'coordinates': [
            [[[200, 10], [220, 10], [220, 30], [200, 30]]], [[[240, 10], [250, 10], [250, 20], [240, 20]]]]}},  # 10
    ]
    segments, raster, table = run({'type': 'FeatureCollection', 'features': features}, slide_path)
    np.testing.assert_array_equal(segments.source_index, [0, 1, 2, 3, 10])
    assert_segment_form(raster, table)
    assert table.area[3] == 2 * 40 * 20 / 2  # the bowtie became its two triangles (pixel centres inside)
    assert table.area[4] == 400 + 100  # both parts of the MultiPolygon are one segment
    messages = '\n'.join(segments.warnings)
    assert 'Repaired 1 invalid feature (Self-intersection) with shapely.make_valid (feature 3;' in messages
    assert 'fewer than 3 distinct points (feature 4;' in messages
    assert 'Skipped 1 feature with zero area (feature 5;' in messages
    assert 'entirely outside the slide (feature 6;' in messages
    assert 'smaller than one analysis pixel (feature 7;' in messages
    assert 'Point geometry, not a Polygon or MultiPolygon (feature 8;' in messages
    assert 'with no analysis pixel centre inside (too thin or too small) (feature 9;' in messages


def test_rectangles_ellipses_and_circles(nuclei):
    slide_path, _, _, _ = nuclei
    elements = [{'type': 'rectangle', 'center': [100, 100, 0], 'width': 40, 'height': 10, 'rotation': np.pi / 2},
                {'type': 'circle', 'center': [300, 300, 0], 'radius': 30},
                {'type': 'ellipse', 'center': [400, 100, 0], 'width': 60, 'height': 20, 'rotation': 0},
                {'type': 'polyline', 'points': [[0, 0, 0], [50, 0, 0], [50, 50, 0]]},  # open: a line
                {'type': 'point', 'center': [10, 10, 0]}]
    segments, raster, table = run({'name': 'shapes', 'elements': elements}, slide_path)
    assert len(table) == 3
    np.testing.assert_array_equal(table.bbox[0], [95, 80, 105, 120])  # turned a quarter: 10 wide, 40 tall
    assert abs(table.area[1] - np.pi * 30 ** 2) < 0.01 * np.pi * 30 ** 2
    assert abs(table.area[2] - np.pi * 30 * 10) < 0.02 * np.pi * 30 * 10
    messages = '\n'.join(segments.warnings)
    assert 'open polyline (not closed), so no area (element 3;' in messages
    assert "'point' element, which has no area (element 4;" in messages


def test_bad_input_raises(nuclei, tmp_path):
    slide_path, _, _, _ = nuclei
    with pytest.raises(SegmentsError, match='not found'):
        PolygonSegments(str(tmp_path / 'missing.json'))
    with pytest.raises(SegmentsError, match='is not a JSON file'):
        PolygonSegments(slide_path)
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'labels': {'1': 'tumor'}}))
    with pytest.raises(SegmentsError, match='neither GeoJSON .* nor a DSA annotation'):
        PolygonSegments(str(other))
    with pytest.raises(SegmentsError, match='has no polygons .*no features'):
        PolygonSegments({'type': 'FeatureCollection', 'features': []})
    with pytest.raises(SegmentsError, match='has no polygons .*2 elements'):
        PolygonSegments({'name': 'points', 'elements': [{'type': 'point', 'center': [1, 2, 0]}] * 2})
    triangle = [[[-50, -50], [-10, -50], [-10, -10]]]
    outside = {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': triangle}}
    with pytest.raises(SegmentsError, match='No usable polygons in the polygon document.*entirely outside the slide'):
        run(outside, slide_path)
