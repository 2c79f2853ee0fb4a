"""The Slicer CLI image as slicer_cli_web runs it: its CLI list, every CLI's specification, and a
SuperpixelClassification run on the real H&E sample mounted into the container, checked against the same run
outside it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from histomics_label.core.io.store import SlideStore
from histomics_label.devtools import REPO_ROOT

pytestmark = pytest.mark.docker

CLI_DIR = REPO_ROOT / 'slicer_cli'
LISTED = json.loads((CLI_DIR / 'slicer_cli_list.json').read_text())
FAST = ['--magnification', '5', '--radius', '10', '--patchsize', '48', '--workers', '1', '--tilesize', '256']
OUTPUTS = {'store': 'slide.h5', 'annotation': 'pred.anot', 'suggestions': 'sugg.json', 'segmentimage': 'seg.tiff'}


def run_image(daemon, image, *args, mounts=(), check=True):
    """``docker run`` the image with no network, as a worker runs a CLI on files it was given."""
    volumes = [f'--volume={host}:{inside}' for host, inside in mounts]
    return daemon.docker('run', '--rm', '--network', 'none', *volumes, image, *args, check=check, timeout=900)


def cli_args(slide: str, folder: str) -> list[str]:
    args = [slide, '--labelfile', f'{folder}/labels.json', '--segmentimageid', 'a' * 24, *FAST]
    for flag, name in OUTPUTS.items():
        args += [f'--{flag}', f'{folder}/{name}']
    return args


def test_the_image_lists_its_clis(docker_daemon, cli_image):
    assert json.loads(run_image(docker_daemon, cli_image, '--list_cli').stdout) == LISTED


@pytest.mark.parametrize('name', sorted(LISTED))
def test_every_cli_prints_its_specification(docker_daemon, cli_image, name):
    printed = run_image(docker_daemon, cli_image, name, '--xml').stdout
    assert printed.strip() == (CLI_DIR / name / f'{name}.xml').read_text().strip()


def test_a_cli_that_fails_in_the_container_says_why(docker_daemon, cli_image, tmp_path):
    (tmp_path / 'notes.svs').write_text('this is not a slide')
    result = run_image(docker_daemon, cli_image, 'SuperpixelClassification', '/data/notes.svs', '--store',
                       '/data/slide.h5', mounts=[(tmp_path, '/data')], check=False)
    assert result.returncode != 0
    assert 'not a slide' in result.stderr and 'Traceback' not in result.stderr
    assert not (tmp_path / 'slide.h5').exists()


def test_superpixel_classification_in_the_container_matches_the_run_outside(docker_daemon, cli_image, cmu_svs,
                                                                            seed_label_file, tmp_path):
    inside, outside = tmp_path / 'inside', tmp_path / 'outside'
    for folder in (inside, outside):
        folder.mkdir()
        (folder / 'labels.json').write_bytes(seed_label_file.read_bytes())
    run_image(docker_daemon, cli_image, 'SuperpixelClassification',
              *cli_args(f'/slides/{cmu_svs.name}', '/data'),
              mounts=[(cmu_svs.parent, '/slides:ro'), (inside, '/data')])
    script = CLI_DIR / 'SuperpixelClassification' / 'SuperpixelClassification.py'
    subprocess.run([sys.executable, str(script), *cli_args(str(cmu_svs), str(outside))], check=True,
                   capture_output=True, timeout=900)

    with SlideStore(inside / 'slide.h5') as a, SlideStore(outside / 'slide.h5') as b:
        # the same segments, pixel for pixel
        np.testing.assert_array_equal(a.label_raster[:], b.label_raster[:])
        assert a.n_segments == b.n_segments > 150
        # the same features, up to the float rounding of the image's torch build (2.13 CPU) against this one's
        assert a.feature_names() == b.feature_names() != []
        for name in a.feature_names():
            np.testing.assert_allclose(a.features(name), b.features(name), rtol=1e-3, atol=1e-4)
        ours, theirs = a.latest_round().probabilities, b.latest_round().probabilities
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean() >= 0.99

    pixelmap = [json.loads((folder / 'pred.anot').read_text())['elements'][0] for folder in (inside, outside)]
    assert pixelmap[0]['girderId'] == 'a' * 24 and pixelmap[0]['values'] == pixelmap[1]['values']
    suggested = [json.loads((folder / 'sugg.json').read_text())['suggestions'] for folder in (inside, outside)]
    assert [s['segment'] for s in suggested[0]] == [s['segment'] for s in suggested[1]]
    assert (inside / 'seg.tiff').read_bytes() == (outside / 'seg.tiff').read_bytes()
