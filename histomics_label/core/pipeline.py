"""The SuperpixelClassification pipeline: segments → features → train → predict every segment → rank.

Each stage reuses what the slide store already holds for the same parameters, so a rerun after new labels only
trains and predicts. Every write to the store is atomic: a failed stage leaves the previous store as it was.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .acquisition import acquisition_functions
from .acquisition.suggestions import suggest
from .distributed import dask_client
from .errors import ConfigurationError
from .features.embedding_map import embedding_colours
from .features.extractors import extractors as extractor_registry
from .features.representations import Representation, check_model_fits, representations
from .io.labels import LabelSet
from .io.slide import SlideReader
from .io.store import SlideStore
from .models import models as model_registry
from .progress import Progress, StagedProgress, no_progress
from .rounds import train_round
from .segments import segment_sources


@dataclass
class PipelineConfig:
    """Every choice of one SuperpixelClassification run; names follow the CLI parameters."""

    slide: str
    store: str
    segments: str = 'slic'
    polygons: str | None = None
    magnification: float = 5.0
    radius: int = 100
    compactness: float = 15.0
    tile_size: int = 2048
    feature: str = 'vector'
    extractor: str = 'efficientnet_lite0'
    extractor_model: str | None = None
    weights: str | None = None
    patch_size: int = 100
    device: str = 'cpu'
    feature_batch_size: int = 64
    model: str = 'linear'
    epochs: int = 100
    split: float = 0.8
    seed: int = 0
    certainty: str = 'negative_entropy'
    suggestions: int = 32
    scheduler: str | None = None
    workers: int | None = None
    embedding_map: bool = False
    label_image: str | None = None
    label_image_boundaries: bool = True
    label_image_offset: int = 1
    label_image_count: int | None = None
    slide_file: dict | None = None
    label_image_file: dict | None = None

    def validate(self) -> None:
        if self.segments not in segment_sources:
            segment_sources.get(self.segments)
        if self.segments == 'polygons' and not self.polygons:
            raise ConfigurationError('Segments from polygons need a polygon file (--polygons)')
        if self.segments == 'label_image' and not self.label_image:
            raise ConfigurationError('Segments from a segment-id image need the image (label_image)')
        representations.get(self.feature)
        extractor_registry.get(self.extractor)
        model_registry.get(self.model)
        check_model_fits(self.model, self.feature)
        acquisition_functions.get(self.certainty)
        for name in ('radius', 'patch_size', 'tile_size', 'epochs', 'suggestions', 'feature_batch_size'):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f'{name} must be positive, not {getattr(self, name)}')
        if not 0 < self.split <= 1:
            raise ConfigurationError(f'split must be in (0, 1], not {self.split}')
        if self.embedding_map and self.feature != 'vector':
            raise ConfigurationError('The embedding map colours segments by their feature vectors: it needs '
                                     '--feature vector')
        if self.magnification is not None and self.magnification <= 0:
            raise ConfigurationError(f'magnification must be positive, not {self.magnification}')

    def segment_params(self, slide: SlideReader) -> dict:
        """What a segmentation of ``slide`` is made from: compared with a store's by ``same_segmentation``.

        The slide (and a segment-id image) is named by ``slide_file`` (``label_image_file``) where a repository
        knows the file, so that moving the files elsewhere does not make a store look out of date; without one (the
        CLI on a local file) by its path, size and modification time.
        """
        params = {'source': self.segments, 'magnification': self.magnification, 'scale': slide.scale,
                  'slide': self.slide_file or _file_identity(slide.path)}
        if self.segments == 'slic':
            params.update(radius=self.radius, compactness=self.compactness)
        elif self.segments == 'label_image':
            params.update(label_image=self.label_image_file or _file_identity(self.label_image),
                          boundaries=self.label_image_boundaries,
                          offset=self.label_image_offset, count=self.label_image_count)
        else:
            params.update(polygons=_file_identity(self.polygons))
        return params

    def slide_reader(self) -> SlideReader:
        """The slide at its analysis scale: the configured magnification, or for segments from a segment-id
        image, that image's own scale (its grid is the analysis grid)."""
        if self.segments != 'label_image':
            return SlideReader(self.slide, self.magnification)
        from .io.label_tiff import segment_image_shape

        base = SlideReader(self.slide, None, 1.0)
        _, image_width = segment_image_shape(self.label_image)
        return SlideReader(self.slide, None, base.base_width / image_width)


@dataclass
class PipelineResult:
    store: str
    n_segments: int
    round: int | None
    categories: list[dict]
    classes: list[int]
    suggestions: list[dict]
    metrics: dict
    reused: dict


def run_pipeline(config: PipelineConfig, labels: LabelSet | None = None,
                 progress: Progress = no_progress) -> PipelineResult:
    """Run every stage for one slide.

    Without labels it stops after features (segment generation jobs), and suggests a first batch when the
    certainty metric needs no model (``kmeans_cold_start``, ``coreset``); on a store trained before, a cold-start
    function hands over to the store's latest model, as in a project.
    """
    config.validate()
    if labels is not None:
        labels.training_set()
    stages = StagedProgress(progress, {'segments': 4, 'features': 5, 'map': 1 if config.embedding_map else 0,
                                       'train': 1})
    slide = config.slide_reader()
    reused = {'segments': ensure_segments(config, slide, stages.stage('segments')),
              'features': ensure_features(config, slide, stages.stage('features'))}
    if config.embedding_map:
        reused['embedding_map'] = ensure_embedding_map(config, stages.stage('map'))
    round_number, metrics, classes, suggestion_list = None, {}, [], []
    with SlideStore(config.store) as store:
        n_segments = store.n_segments
    if labels is not None:
        rep = representation(config)
        record = train_round(config.store, rep, labels, config.model, model_options(config), stages.stage('train'))
        round_number, metrics, classes = record.number, record.metrics, record.model_params['classes']
        suggestion_list = suggest(config.store, labels, config.certainty, config.suggestions, config.seed, rep=rep,
                                  embedding_key=config.extractor)
    elif not acquisition_functions.get(config.certainty).uses_model:
        # a store trained before hands the cold start over to its model, which needs the representation
        suggestion_list = suggest(config.store, LabelSet([]), config.certainty, config.suggestions, config.seed,
                                  rep=representation(config), embedding_key=config.extractor)
    progress(1000, 1000, 'done')
    categories = [c.as_dict() for c in labels.categories] if labels is not None else []
    return PipelineResult(config.store, n_segments, round_number, categories, classes, suggestion_list, metrics,
                          reused)


def ensure_segments(config: PipelineConfig, slide: SlideReader, progress: Progress) -> bool:
    """Segment the slide into the store unless it already holds segments made with the same parameters."""
    params = config.segment_params(slide)
    if os.path.exists(config.store):
        with SlideStore(config.store) as store:
            if same_segmentation(store.segment_params, params):
                progress(1, 1, 'segments reused')
                return True
    source = _segment_source(config)
    with SlideStore.create(config.store, slide.info, params) as writer:
        raster = writer.create_label_raster(slide.height, slide.width)
        if config.segments == 'slic':
            with dask_client(config.scheduler, config.workers) as client:
                source.client = client
                table = source.segment(slide, raster, progress)
        else:
            table = source.segment(slide, raster, progress)
        writer.write_segments(table)
    return False


def _segment_source(config: PipelineConfig):
    if config.segments == 'slic':
        return segment_sources.create('slic', radius=config.radius, compactness=config.compactness,
                                      tile_size=config.tile_size)
    if config.segments == 'label_image':
        return segment_sources.create('label_image', source=config.label_image,
                                      boundaries=config.label_image_boundaries, offset=config.label_image_offset,
                                      count=config.label_image_count)
    return segment_sources.create(config.segments, source=config.polygons)


def model_options(config: PipelineConfig) -> dict:
    """The run's parameters that the chosen model takes: ``split`` of the labels train, the rest validate."""
    model_class = model_registry.get(config.model)
    offered = {'seed': config.seed, 'epochs': config.epochs, 'validation': round(1 - config.split, 6),
               'batch_size': config.feature_batch_size, 'device': config.device}
    if model_class.representation != 'image':
        offered.pop('batch_size')
        offered.pop('device')
    accepted = inspect.signature(model_class).parameters
    return {name: value for name, value in offered.items() if name in accepted}


def representation(config: PipelineConfig) -> Representation:
    """The configured representation (embeddings or masked patches) of the segments."""
    options = {'model_name': config.extractor_model} if config.extractor_model else None
    return representations.create(config.feature, patch_size=config.patch_size, extractor=config.extractor,
                                  device=config.device, batch_size=config.feature_batch_size,
                                  weights=config.weights, extractor_options=options)


def ensure_features(config: PipelineConfig, slide: SlideReader, progress: Progress) -> bool:
    """Compute every segment's representation unless the store has it for the same parameters."""
    return representation(config).ensure(slide, config.store, progress)


def ensure_embedding_map(config: PipelineConfig, progress: Progress) -> bool:
    """Colour every segment by a UMAP of its feature vectors, unless the store has that map for these features."""
    with SlideStore(config.store) as store:
        params = {'features': store.feature_params(config.extractor), 'seed': config.seed}
        if config.extractor in store.embedding_map_names():
            stored = store.embedding_map_params(config.extractor)
            if {key: stored.get(key) for key in params} == params:
                progress(1, 1, 'embedding map reused')
                return True
        embeddings = store.features(config.extractor)
    progress(0, 1, 'embedding map (UMAP)')
    mapped = embedding_colours(embeddings, seed=config.seed)
    with SlideStore.update(config.store) as writer:
        writer.write_embedding_map(config.extractor, mapped.colours,
                                   {**params, 'method': mapped.method, 'note': mapped.note})
    progress(1, 1, 'embedding map')
    return False


FILE_KEYS = ('slide', 'label_image', 'polygons')
"""Segment parameters that name a file (by ``_file_identity`` or a repository's identity of it)."""


def same_segmentation(stored: dict, wanted: dict) -> bool:
    """Whether a store's segment parameters (``stored``) describe the segmentation ``wanted`` would make.

    Every parameter must be equal, except the files (``FILE_KEYS``), which ``same_file`` compares: a store made
    before slides were named by their repository file, or before the assetstore moved, stays current while the
    file is the same.
    """
    stored, wanted = json.loads(json.dumps(stored)), json.loads(json.dumps(wanted))
    if set(stored) != set(wanted):
        return False
    return all(same_file(stored[key], wanted[key]) if key in FILE_KEYS else stored[key] == wanted[key]
               for key in stored)


def same_file(stored: dict | None, wanted: dict | None) -> bool:
    """Whether two identities of a file name the same file.

    Both with a ``sha512`` (Girder stores one for uploaded files): equal digests. Both with a repository ``file``
    id: the same id and size. One of them only with a repository identity (a store made when slides were still
    named by path): the same size, since the path and modification time say where the file was, not what it is.
    Neither (the CLI's local files): path, size and modification time all equal, as before.
    """
    if stored is None or wanted is None:
        return stored is wanted
    if 'sha512' in stored and 'sha512' in wanted:
        return stored['sha512'] == wanted['sha512']
    if 'file' in stored and 'file' in wanted:
        return stored['file'] == wanted['file'] and stored.get('size') == wanted.get('size')
    if any(key in identity for identity in (stored, wanted) for key in ('file', 'sha512')):
        return stored.get('size') is not None and stored.get('size') == wanted.get('size')
    return stored == wanted


def _file_identity(path: str | None) -> dict | None:
    """Path, size and modification time: enough to notice that a local slide or polygon file changed (what names a
    file where no repository does; see ``same_file``)."""
    if not path:
        return None
    stat = Path(path).stat()
    return {'path': os.path.abspath(path), 'size': stat.st_size, 'mtime': int(stat.st_mtime)}
