"""Pixelmap annotation documents validate against large_image's schema and colour segments as asked."""

import jsonschema
import numpy as np
import pytest
from girder_large_image_annotation.models.annotation import AnnotationSchema

from histomics_label.core.errors import ConfigurationError
from histomics_label.core.io.annotation import (
    EXCLUDED_DESCRIPTION,
    parse_color,
    pixelmap_annotation,
    pixelmap_category,
    rgba,
)

GIRDER_ID = '0123456789abcdef01234567'
CATEGORIES = [
    {'name': 'unlabeled', 'color': 'rgba(0, 0, 0, 0)'},
    {'name': 'tumor', 'color': '#ff8000'},
    {'name': 'stroma', 'color': 'rgb(0, 128, 255)'},
    {'name': 'pen mark', 'color': '#0f0', 'excluded': True},
]


@pytest.fixture(scope='module')
def nuclei_values(dsb2018):
    """Per nucleus id of the real DSB2018 mask a category: large nuclei 'tumor', small ones 'stroma'."""
    _, mask = dsb2018
    areas = np.bincount(mask.ravel())
    values = np.zeros(len(areas), int)
    present = np.nonzero(areas)[0][1:]
    values[present] = np.where(areas[present] > np.median(areas[present]), 1, 2)
    return values.tolist()


def validate(document):
    jsonschema.validate(document, AnnotationSchema.annotationSchema)
    for element in document['elements']:
        jsonschema.validate(element, AnnotationSchema.pixelmapSchema)


def test_document_validates_against_large_image_schema(nuclei_values):
    for boundaries in (False, True):
        document = pixelmap_annotation(
            'Histomics Label predictions', girder_id=GIRDER_ID, values=nuclei_values, categories=CATEGORIES,
            boundaries=boundaries, scale=4.0, description='round 3', attributes={'histomics_label': {'round': 3}})
        validate(document)
        (element,) = document['elements']
        assert element['type'] == 'pixelmap' and element['girderId'] == GIRDER_ID
        assert element['boundaries'] is boundaries
        assert element['values'] == nuclei_values and element['values'][0] == 0
        assert document['attributes'] == {'histomics_label': {'round': 3}}
        assert document['description'] == 'round 3'


def test_the_schema_check_bites():
    document = pixelmap_annotation('x', girder_id=GIRDER_ID, values=[0, 1], categories=CATEGORIES[:2],
                                   boundaries=False)
    validate(document)
    document['elements'][0]['categories'][1]['fillColor'] = 'orange'
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_colours_are_converted_to_dsa_categories():
    converted = [pixelmap_category(c) for c in CATEGORIES]
    assert converted[0] == {'label': 'unlabeled', 'fillColor': 'rgba(0, 0, 0, 0)', 'strokeColor': 'rgba(0, 0, 0, 1)'}
    assert converted[1] == {'label': 'tumor', 'fillColor': 'rgba(255, 128, 0, 0.5)',
                            'strokeColor': 'rgba(255, 128, 0, 1)'}
    assert converted[2]['fillColor'] == 'rgba(0, 128, 255, 0.5)'
    assert converted[3] == {'label': 'pen mark', 'fillColor': 'rgba(0, 255, 0, 0.5)',
                            'strokeColor': 'rgba(0, 255, 0, 1)', 'description': EXCLUDED_DESCRIPTION}
    assert pixelmap_category({'name': 'a', 'color': 'rgba(10, 20, 30, 0.25)'})['fillColor'] == 'rgba(10, 20, 30, 0.25)'
    assert pixelmap_category({'name': 'a', 'color': '#0a141e'}, fill_opacity=0.3)['fillColor'] == \
        'rgba(10, 20, 30, 0.3)'


def test_parse_color_forms():
    assert parse_color('#ff8000') == (255, 128, 0, None)
    assert parse_color('#F80') == (255, 136, 0, None)
    assert parse_color('#00ff0080') == (0, 255, 0, 128 / 255)
    assert parse_color('rgb(1, 2, 3)') == (1, 2, 3, None)
    assert parse_color(' rgba(1,2,3,.5) ') == (1, 2, 3, 0.5)
    assert rgba('#00ff0080') == 'rgba(0, 255, 0, 0.502)'
    for bad in ('red', '#12345', 'rgb(256, 0, 0)', 'rgba(1, 2, 3, 1.5)', 'rgb(1, 2, 3, 0.5)', 'rgba(1, 2, 3)'):
        with pytest.raises(ConfigurationError):
            parse_color(bad)


def test_transform_scales_the_overlay_to_base_pixels():
    plain = pixelmap_annotation('x', girder_id=GIRDER_ID, values=[0, 1], categories=CATEGORIES[:2],
                                boundaries=False)
    assert 'transform' not in plain['elements'][0]
    scaled = pixelmap_annotation('x', girder_id=GIRDER_ID, values=[0, 1], categories=CATEGORIES[:2],
                                 boundaries=False, scale=2.5)
    assert scaled['elements'][0]['transform']['matrix'] == [[2.5, 0], [0, 2.5]]
    validate(scaled)


def test_inconsistent_input_is_refused():
    with pytest.raises(ConfigurationError, match='only 2 categories'):
        pixelmap_annotation('x', girder_id=GIRDER_ID, values=[0, 1, 2], categories=CATEGORIES[:2], boundaries=False)
    with pytest.raises(ConfigurationError, match='Girder id'):
        pixelmap_annotation('x', girder_id='not-an-id', values=[0], categories=CATEGORIES[:1], boundaries=False)
    with pytest.raises(ConfigurationError, match='not a colour'):
        pixelmap_annotation('x', girder_id=GIRDER_ID, values=[0], categories=[{'name': 'a', 'color': 'blue'}],
                            boundaries=False)
