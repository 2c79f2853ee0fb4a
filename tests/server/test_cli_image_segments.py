"""The ``cli_image`` executor's request to slicer_cli_web: its parameters are the CLI's own (by the names its XML
declares, which slicer_cli_web's run call takes) and parse to the pipeline's settings; what the CLI cannot take from
Girder files is refused with the reason. The run itself is tested live (``tests/live/test_job_panel.py``)."""

import dataclasses
import xml.etree.ElementTree as ElementTree

import pytest

from histomics_label.core.pipeline import PipelineConfig
from histomics_label.devtools import REPO_ROOT

XML = REPO_ROOT / 'slicer_cli' / 'SuperpixelClassification' / 'SuperpixelClassification.xml'
PIPELINE = PipelineConfig(slide='', store='', magnification=10.0, radius=24, compactness=7.5, tile_size=1024,
                          feature='vector', extractor='timm', extractor_model='resnet18', patch_size=64,
                          feature_batch_size=16, workers=3)


def test_the_parameters_are_the_clis_and_parse_to_the_pipelines_settings():
    import sys

    from histomics_label.jobs.cli_image_segments import cli_parameters

    flags = {entry.findtext('name'): entry.findtext('longflag')
             for entry in ElementTree.parse(XML).getroot().iter() if entry.findtext('longflag')}
    parameters = cli_parameters(PIPELINE)
    assert set(parameters) <= set(flags), set(parameters) - set(flags)
    argv = ['slide.svs', *(item for name, value in parameters.items() for item in (f'--{flags[name]}', str(value)))]
    sys.path.insert(0, str(XML.parent.parent))
    try:
        from cli_utils import parse_args
    finally:
        sys.path.remove(str(XML.parent.parent))
    args = parse_args(XML, argv)
    assert (args.segments, args.magnification, args.radius, args.compactness, args.tileSize) == ('slic', 10.0, 24,
                                                                                                7.5, 1024)
    assert (args.feature, args.extractor, args.extractorModel, args.patchSize, args.batchSize, args.numWorkers) == (
        'vector', 'timm', 'resnet18', 64, 16, 3)


@pytest.mark.parametrize(('change', 'reason'), [
    ({'segments': 'label_image', 'label_image': '/data/superpixels.tiff'}, 'imported from another algorithm'),
    ({'segments': 'polygons', 'polygons': '/data/cells.geojson'}, 'imported from another algorithm'),
    ({'weights': '/data/uni.bin'}, 'weights are a file on the server'),
    ({'embedding_map': True}, 'embedding map')])
def test_what_the_cli_cannot_take_from_girder_files_is_refused_with_the_reason(change, reason):
    from histomics_label.jobs.cli_image_segments import unsupported

    assert unsupported(PIPELINE) is None
    assert reason in unsupported(dataclasses.replace(PIPELINE, **change))
