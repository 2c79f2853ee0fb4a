"""A slide's store made outside the project adopted as its segments and features: the store the DSA job panel's
SuperpixelClassification uploads to Girder (slicer_cli_web running the CLI image), or one made on another machine.

The store is trusted no more than an upload: it must open as a store, name a slide file of the slide's size, and
have been made with the project's current settings (segmentation and features), which is what makes a store current
for the project (``segments.slide_is_current``); anything else is a 400 that leaves the slide as it was. Rounds in
it (the CLI trains on the labels it was given) are dropped: they are not the project's. It is then
placed as a segment job places the store it made: on a slide without labels (or with the very same segments, pixel
for pixel) at once, with its segment image published; on a labeled slide whose segments it changes, beside the
current store as a new segmentation that waits for the admin's carry-over report (``projects.resegmentation``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.file import File
from girder.models.item import Item

from ..core.errors import HistomicsLabelError
from ..core.io.store import SlideStore, replace_store
from ..projects import folders, resegmentation
from .remote import copy_out
from .rounds import round_if_trainable, segments_in_progress
from .segments import changes_segments, publish_segment_image, slide_is_current, slide_pipeline


def adopt_store(folder: dict, item_id: str | ObjectId, file: dict, user: dict) -> dict:
    """Make the store in Girder ``file`` the segments and features of slide ``item_id``; returns ``applied`` (with
    the segment image and any round started) or ``waiting`` (with the carry-over counts)."""
    item = folders.slide_of(folder, item_id)
    config = folders.config_of(folder)
    if segments_in_progress(folder['_id']):
        raise ValidationException('Segment jobs of this project are queued or running; adopt the store once they '
                                  'have ended', 'item')
    store_path = folders.store_path(folder, item)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    # beside the stores, so that the checked copy is moved into place (a rename), not copied again
    with tempfile.TemporaryDirectory(dir=store_path.parent, prefix='.adopting-') as work:
        copy = Path(work) / 'adopted.h5'
        copy_out(file, copy)
        count, foreign_rounds = checked_store(copy, folder, item, config, file)
        if foreign_rounds:  # trained on the CLI's labels, not the project's: the project's rounds start afresh
            with SlideStore.update(copy) as writer:
                writer.drop_rounds()
        pipeline = slide_pipeline(folder, item, config, user=user)
        labeled = resegmentation.has_labels(folder, item)
        if changes_segments(pipeline) or (labeled and store_path.exists() and not same_segments(copy, store_path)):
            replace_store(copy, resegmentation.pending_path(folder, item))
            counts = resegmentation.prepare(folder, item)
            if labeled:
                return {'status': 'waiting', 'segments': count, **counts}
            resegmentation.apply(folder, item, 'keep')
        else:
            resegmentation.discard(folder, item)
            replace_store(copy, store_path)
    image = publish_segment_image(folder, Item().load(item['_id'], force=True))
    training = round_if_trainable(folder, config, user, f'store of slide {item["name"]} adopted')
    return {'status': 'applied', 'segments': count, 'segmentImage': str(image['_id']), 'training': training}


def checked_store(path: Path, folder: dict, item: dict, config: dict, file: dict) -> tuple[int, bool]:
    """The store's segment count and whether it holds rounds, or a ``ValidationException`` saying why it cannot be
    the slide's."""
    try:
        with SlideStore(path) as store:
            count, params, rounds = store.n_segments, store.segment_params, bool(store.rounds())
    except HistomicsLabelError as exc:
        raise ValidationException(f'{file["name"]} is not a slide store: {exc}', 'fileId') from None
    slide_file = File().load(item['largeImage']['fileId'], force=True)
    made_from = params.get('slide') or {}
    if made_from.get('size') != slide_file['size']:
        raise ValidationException(f'{file["name"]} was made from another slide (a file of {made_from.get("size")} '
                                  f'bytes, not {item["name"]}\'s {slide_file["size"]})', 'fileId')
    if not slide_is_current(folder, item, config, path):
        raise ValidationException(
            f'{file["name"]} was made with other settings than the project\'s (segments: {_settings(params)}; the '
            f'project: magnification {config["magnification"]}, radius {config["radius"]}, compactness '
            f'{config["compactness"]}, {config["feature"]} features by {config["extractor"]}, patch size '
            f'{config["patchSize"]}): run it with the project\'s settings, or change the project\'s', 'fileId')
    return count, rounds


def same_segments(first: Path, second: Path, rows: int = 1024) -> bool:
    """Whether two stores number the same segments on the same pixels (read ``rows`` rows of the rasters at a
    time). Equal settings are not enough where labels hang on the ids: another machine's libraries may draw a
    boundary a pixel apart."""
    with SlideStore(first) as one, SlideStore(second) as other:
        if one.n_segments != other.n_segments or one.label_raster.shape != other.label_raster.shape:
            return False
        return all(np.array_equal(one.label_raster[top:top + rows], other.label_raster[top:top + rows])
                   for top in range(0, one.label_raster.shape[0], rows))


def _settings(params: dict) -> str:
    return ', '.join(f'{key} {params[key]}' for key in ('source', 'magnification', 'radius', 'compactness')
                     if key in params)
