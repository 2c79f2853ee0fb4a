"""REST routes of a project: ``/histomics_label/project/{id}/...`` where ``id`` is the project's folder.

Routes are thin: they check access and input, then call the label model, the project helpers and the engine.
READ on the folder lets a user see the project, WRITE label it, ADMIN configure it.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
from bson.objectid import ObjectId
from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, setContentDisposition, setRawResponse, setResponseHeader
from girder.constants import AccessType, SortDir, TokenScope
from girder.exceptions import ValidationException
from girder.models.folder import Folder
from girder.models.user import User

from ..core.errors import HistomicsLabelError
from ..core.io.store import SlideStore
from ..jobs import rounds as round_jobs
from ..jobs import segments as segment_jobs
from ..models.label import VIEWS, Label
from ..models.round import Round
from ..models.training_state import TrainingState
from ..projects import agreement, export, folders, overlays, publishing
from ..projects.config import DEFAULTS, META_KEY
from ..projects.segment_images import segment_image_of

MAX_BATCH = 100_000
"""Most labels one request may write: a painted region of a slide, not a whole cohort."""
LABEL_SORTS = ('updated', 'created', 'segment', 'category', 'certainty')
"""The sorts of GET .../labels; ``certainty`` is the latest round's, read from the slide stores."""


class ProjectResource(Resource):
    def __init__(self) -> None:
        super().__init__()
        self.resourceName = 'histomics_label'
        self.route('GET', ('project', ':id'), self.get_project)
        self.route('PUT', ('project', ':id'), self.put_project)
        self.route('GET', ('project', ':id', 'slides'), self.get_slides)
        self.route('PUT', ('project', ':id', 'labels'), self.put_labels)
        self.route('DELETE', ('project', ':id', 'labels'), self.delete_labels)
        self.route('GET', ('project', ':id', 'labels'), self.get_labels)
        self.route('POST', ('project', ':id', 'labels', 'undo'), self.undo_labels)
        self.route('POST', ('project', ':id', 'labels', 'paint'), self.paint_labels)
        self.route('PUT', ('project', ':id', 'labels', ':labelId', 'review'), self.review_label)
        self.route('POST', ('project', ':id', 'categories', 'rename'), self.rename_category)
        self.route('POST', ('project', ':id', 'categories', 'merge'), self.merge_categories)
        self.route('GET', ('project', ':id', 'suggestions'), self.get_suggestions)
        self.route('POST', ('project', ':id', 'train'), self.train)
        self.route('GET', ('project', ':id', 'rounds'), self.get_rounds)
        self.route('POST', ('project', ':id', 'segments'), self.make_segments)
        self.route('POST', ('project', ':id', 'annotations'), self.publish_annotations)
        self.route('GET', ('project', ':id', 'agreement'), self.get_agreement)
        self.route('GET', ('project', ':id', 'export'), self.export)
        self.route('GET', ('project', ':id', 'overlay'), self.get_overlay)
        self.route('GET', ('project', ':id', 'similar'), self.get_similar)
        self.route('POST', ('project', ':id', 'import'), self.import_published)

    # -- the project -----------------------------------------------------------------------------------------------

    @access.public(scope=TokenScope.DATA_READ)
    @autoDescribeRoute(
        Description('A project: its configuration, its slides and what the user may do.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .errorResponse('The folder is not a project.')
        .errorResponse('Read access was denied on the folder.', 403))
    def get_project(self, folder: dict) -> dict:
        config = folders.config_of(folder)
        user = self.getCurrentUser()
        return {'_id': str(folder['_id']), 'name': folder['name'], 'config': config,
                'slides': len(folders.slides(folder)),
                'access': {'write': Folder().hasAccess(folder, user, AccessType.WRITE),
                           'admin': Folder().hasAccess(folder, user, AccessType.ADMIN)}}

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Create a project on a folder, or change its configuration (fields not given are kept).')
        .notes('Fields: ' + ', '.join(sorted(DEFAULTS)) + '. categories is a list of {name, color, excluded, '
               'hotkey}. A category that has labels cannot be dropped here: rename or merge it.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
        .param('config', 'The configuration (or the changes to it), a JSON object.', paramType='body')
        .errorResponse('Invalid configuration.')
        .errorResponse('Admin access was denied on the folder.', 403))
    def put_project(self, folder: dict, config) -> dict:
        config = _json_object(config, 'config')
        current = (folder.get('meta') or {}).get(META_KEY)
        if current is not None and 'categories' in config:
            kept = {c.get('name') for c in config['categories'] if isinstance(c, dict)}
            dropped = [c['name'] for c in current['categories'] if c['name'] not in kept]
            used = [name for name in dropped if Label().findOne({'project': folder['_id'], 'category': name})]
            if used:
                raise ValidationException(f'Categories {", ".join(used)} have labels: rename or merge them instead '
                                          'of leaving them out', 'categories')
        return {'_id': str(folder['_id']), 'config': folders.save_config(folder, config)}

    @access.public(scope=TokenScope.DATA_READ)
    @autoDescribeRoute(
        Description('The slides of a project, with how many segments each has (null before segment generation).')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .errorResponse('Read access was denied on the folder.', 403))
    def get_slides(self, folder: dict) -> list[dict]:
        folders.config_of(folder)
        return [{'_id': str(item['_id']), 'name': item['name'], 'segments': folders.segment_count(folder, item),
                 'segmentImage': _segment_image_json(folder, item)}
                for item in folders.slides(folder)]

    # -- labels ----------------------------------------------------------------------------------------------------

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Label segments: each {item, segment, category} sets your label of that segment.')
        .notes('Atomic per label: labelers working at once never overwrite each other. Returns a batch id that '
               'POST .../labels/undo reverts.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
        .param('body', '{"labels": [{"item": id, "segment": n, "category": name}], "view": "guided"}',
               paramType='body')
        .errorResponse('Invalid labels.')
        .errorResponse('Write access was denied on the folder.', 403))
    def put_labels(self, folder: dict, body) -> dict:
        body = _json_object(body, 'body')
        config = folders.config_of(folder)
        entries = self._entries(folder, body, with_category=True)
        names = {c['name'] for c in config['categories']}
        unknown = sorted({e['category'] for e in entries} - names)
        if unknown:
            raise ValidationException(f'Unknown categories: {", ".join(unknown)}; the project has: '
                                      f'{", ".join(sorted(names)) or "none"}', 'labels')
        view = body.get('view', 'api')
        if view not in VIEWS:
            raise ValidationException(f'view must be one of {", ".join(VIEWS)}', 'view')
        user = self.getCurrentUser()
        result = Label().upsert(folder, user, entries, view)
        result['training'] = round_jobs.labels_changed(folder, config, user, result['changed'])
        return result

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Remove your labels of segments: each {item, segment}.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
        .param('body', '{"labels": [{"item": id, "segment": n}]}', paramType='body')
        .errorResponse('Invalid segments.')
        .errorResponse('Write access was denied on the folder.', 403))
    def delete_labels(self, folder: dict, body) -> dict:
        body = _json_object(body, 'body')
        folders.config_of(folder)
        return Label().remove_labels(folder, self.getCurrentUser(), self._entries(folder, body, with_category=False))

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Paint: label (or, with erase, unlabel) every segment a brush stroke covers on one slide.')
        .notes('Body {"item": id, "points": [[x, y], ...] in base pixels, "radius": brush radius in base pixels, '
               '"category": name (not with erase), "erase": false}. The covered segments are read from the slide\'s '
               'segment raster; the answer lists them with the batch id that labels/undo reverts.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
        .param('body', 'The stroke, a JSON object.', paramType='body')
        .errorResponse('Invalid stroke, slide or category.')
        .errorResponse('Write access was denied on the folder.', 403))
    def paint_labels(self, folder: dict, body) -> dict:
        from ..core.segments.strokes import segments_under_stroke

        body = _json_object(body, 'body')
        config = folders.config_of(folder)
        slide = folders.slide_of(folder, str(body.get('item')))
        path = folders.store_path(folder, slide)
        if not path.exists():
            raise ValidationException(f'Slide {slide["name"]} has no segments yet; generate them first', 'item')
        erase = bool(body.get('erase', False))
        category = body.get('category')
        if not erase and category not in {c['name'] for c in config['categories']}:
            raise ValidationException(f'Unknown category {category!r}', 'category')
        radius = body.get('radius', 0)
        if isinstance(radius, bool) or not isinstance(radius, int | float):
            raise ValidationException('radius must be a number of base pixels', 'radius')
        try:
            with SlideStore(path) as store:
                segments = segments_under_stroke(store, body.get('points'), float(radius))
        except (HistomicsLabelError, TypeError, ValueError) as exc:
            raise ValidationException(str(exc), 'points') from exc
        user = self.getCurrentUser()
        entries = [{'item': slide['_id'], 'segment': int(s)} for s in segments]
        if not entries:
            return {'batch': None, 'segments': [], 'labeled': 0, 'deleted': 0, 'training': None}
        if erase:
            result = Label().remove_labels(folder, user, entries)
            return {**result, 'segments': segments.tolist(), 'labeled': 0, 'training': None}
        result = Label().upsert(folder, user, [{**e, 'category': category} for e in entries], 'bulk')
        result['training'] = round_jobs.labels_changed(folder, config, user, result['changed'])
        return {**result, 'segments': segments.tolist(), 'deleted': 0}

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Undo one of your label batches, where its labels were not changed since.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
        .param('batch', 'The batch id a label or delete request returned.')
        .errorResponse('No such batch of yours.')
        .errorResponse('Write access was denied on the folder.', 403))
    def undo_labels(self, folder: dict, batch: str) -> dict:
        folders.config_of(folder)
        return Label().undo(folder, self.getCurrentUser(), batch)

    @access.public(scope=TokenScope.DATA_READ)
    @autoDescribeRoute(
        Description('The labels of a project, filtered, sorted and paginated on the server.')
        .notes('Girder-Total-Count holds the number of matching labels. Each label has the region of its segment '
               'in base pixels (for thumbnails: GET /item/{item}/tiles/region with left/top/right/bottom), and the '
               'latest round\'s predicted category and its certainty (that category\'s probability, 0–1; null '
               'before a round). sort=certainty with sortdir=1 lists the least certain first; labels without a '
               'prediction come last either way.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .param('item', 'Only labels of this slide.', required=False)
        .param('category', 'Only labels of this category.', required=False)
        .param('labeler', 'Only labels by this user id.', required=False)
        .param('since', 'Only labels changed at or after this ISO time.', required=False)
        .param('until', 'Only labels changed before this ISO time.', required=False)
        .param('reviewed', 'Only reviewed (true) or unreviewed (false) labels.', required=False, dataType='boolean')
        .param('disagree', 'Only labels the model disagrees (true) or agrees (false) with.', required=False,
               dataType='boolean')
        .pagingParams(defaultSort='updated', defaultSortDir=SortDir.DESCENDING)
        .errorResponse('Invalid filter.')
        .errorResponse('Read access was denied on the folder.', 403))
    def get_labels(self, folder: dict, item, category, labeler, since, until, reviewed, disagree, limit, offset,
                   sort):
        folders.config_of(folder)
        query: dict = {'project': folder['_id']}
        if item:
            query['item'] = folders.slide_of(folder, item)['_id']
        if category:
            query['category'] = category
        if labeler:
            query['labeler'] = _object_id(labeler, 'labeler')
        times = {}
        if since:
            times['$gte'] = _time(since, 'since')
        if until:
            times['$lt'] = _time(until, 'until')
        if times:
            query['updated'] = times
        if reviewed is not None:
            query['review'] = {'$exists': bool(reviewed)}
        [(field, direction)] = sort  # Girder's paging gives one (sort, sortdir)
        if field not in LABEL_SORTS:
            raise ValidationException(f'sort must be one of {", ".join(LABEL_SORTS)}', 'sort')
        by_certainty = field == 'certainty'
        stored_sort = [*([] if by_certainty else [(field, direction)]), ('_id', SortDir.ASCENDING)]
        if disagree is None and not by_certainty:
            labels = list(Label().find(query, sort=stored_sort, offset=offset, limit=limit))
            setResponseHeader('Girder-Total-Count', Label().collection.count_documents(query))
            return self._describe_labels(folder, labels)
        # the model's side lives in the slide stores, so its filter and sort page after reading the matching labels
        labels = list(Label().find(query, sort=stored_sort))
        calls = agreement.model_calls(folder, _label_keys(labels))
        if disagree is not None:
            labels = [d for d in labels if (key := (d['item'], d['segment'])) in calls
                      and (calls[key].category != d['category']) == disagree]
        if by_certainty:
            labels = _sorted_by_certainty(labels, calls, direction)
        setResponseHeader('Girder-Total-Count', len(labels))
        return self._describe_labels(folder, labels[offset:offset + limit] if limit else labels[offset:], calls)

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Review a label: approve it, or override it with another category (kept beside the original).')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
        .param('labelId', 'The label.', paramType='path')
        .param('category', 'The reviewer\'s category; leave out to approve.', required=False)
        .errorResponse('No such label or category.')
        .errorResponse('Write access was denied on the folder.', 403))
    def review_label(self, folder: dict, labelId: str, category: str | None) -> dict:
        config = folders.config_of(folder)
        if category is not None and category not in {c['name'] for c in config['categories']}:
            raise ValidationException(f'Unknown category {category!r}', 'category')
        label = Label().review(folder, self.getCurrentUser(), _object_id(labelId, 'labelId'), category)
        return self._describe_labels(folder, [label])[0]

    # -- categories ------------------------------------------------------------------------------------------------

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Rename a category; every label of it follows in one server-side update.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
        .param('old', 'The current name.')
        .param('new', 'The new name.')
        .errorResponse('No such category, or the new name is taken.')
        .errorResponse('Admin access was denied on the folder.', 403))
    def rename_category(self, folder: dict, old: str, new: str) -> dict:
        config = folders.config_of(folder)
        names = [c['name'] for c in config['categories']]
        if old not in names:
            raise ValidationException(f'No category {old!r}', 'old')
        if new.strip() in names:
            raise ValidationException(f'A category {new.strip()!r} exists already; merge instead', 'new')
        categories = [{**c, 'name': new.strip() if c['name'] == old else c['name']} for c in config['categories']]
        saved = folders.save_config(folder, {'categories': categories})
        relabeled = Label().rename_category(folder['_id'], old, new.strip())
        return {'config': saved, 'relabeled': relabeled}

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Merge category source into target: its labels become target\'s and source is removed.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
        .param('source', 'The category that disappears.')
        .param('target', 'The category that receives its labels.')
        .errorResponse('No such categories, or they are the same.')
        .errorResponse('Admin access was denied on the folder.', 403))
    def merge_categories(self, folder: dict, source: str, target: str) -> dict:
        config = folders.config_of(folder)
        names = [c['name'] for c in config['categories']]
        for name, field in ((source, 'source'), (target, 'target')):
            if name not in names:
                raise ValidationException(f'No category {name!r}', field)
        if source == target:
            raise ValidationException('Cannot merge a category into itself', 'target')
        relabeled = Label().rename_category(folder['_id'], source, target)
        saved = folders.save_config(folder, {'categories': [c for c in config['categories']
                                                              if c['name'] != source]})
        return {'config': saved, 'relabeled': relabeled}

    # -- suggestions and training ----------------------------------------------------------------------------------

    @access.public(scope=TokenScope.DATA_READ)
    @autoDescribeRoute(
        Description('The next unlabeled segments to label, across the project\'s slides, best first.')
        .notes('Ranked by the project\'s certainty metric on the latest round; each has its slide, segment, '
               'predicted category, probabilities, score and base-pixel region (for a thumbnail: GET '
               '/item/{item}/tiles/region). Segments anyone labeled, excluded categories included, never appear.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .param('limit', 'How many.', required=False, dataType='integer', default=None)
        .errorResponse('The project cannot rank yet (no trained round for a model-based metric).')
        .errorResponse('Read access was denied on the folder.', 403))
    def get_suggestions(self, folder: dict, limit: int | None) -> list[dict]:
        config = folders.config_of(folder)
        limit = config['batchSize'] if limit is None else limit
        if not 1 <= limit <= 1000:
            raise ValidationException('limit must be between 1 and 1000', 'limit')
        try:
            return round_jobs.project_suggestions(folder, limit)
        except HistomicsLabelError as exc:
            raise ValidationException(str(exc)) from exc

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Retrain the project\'s model now (or queue a round behind the running one).')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
        .param('wait', 'Answer only when the round (and any queued behind it) is done.', required=False,
               dataType='boolean', default=False)
        .errorResponse('Write access was denied on the folder.', 403))
    def train(self, folder: dict, wait: bool) -> dict:
        folders.config_of(folder)
        result = round_jobs.request_round(folder, self.getCurrentUser(), 'asked for')
        if wait:
            round_jobs.wait_for_rounds(folder['_id'])
            result['round'] = self._latest_round(folder)
        result['state'] = TrainingState().state(folder['_id'])
        return result

    @access.public(scope=TokenScope.DATA_READ)
    @autoDescribeRoute(
        Description('Every finished round of the project, oldest first: the learning curve.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .errorResponse('Read access was denied on the folder.', 403))
    def get_rounds(self, folder: dict) -> dict:
        folders.config_of(folder)
        rounds = [_round_json(doc) for doc in Round().find({'project': folder['_id']},
                                                                   sort=[('number', 1)])]
        return {'rounds': rounds, 'state': TrainingState().state(folder['_id'])}

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Make segments and features for every slide of the project that lacks them, as jobs.')
        .notes('One job per slide, shown in the job list with its progress. Slides whose segments and features '
               'match the configuration are left alone unless force is true.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
        .param('force', 'Remake them for every slide.', required=False, dataType='boolean', default=False)
        .errorResponse('Admin access was denied on the folder.', 403))
    def make_segments(self, folder: dict, force: bool) -> list[dict]:
        folders.config_of(folder)
        return segment_jobs.start_segment_jobs(folder, self.getCurrentUser(), force)

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Publish every slide\'s labels and latest predictions as large_image pixelmap annotations now.')
        .notes('Rounds publish them too. The annotations are updated in place, one of each kind per slide.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
        .errorResponse('Write access was denied on the folder.', 403))
    def publish_annotations(self, folder: dict) -> list[dict]:
        folders.config_of(folder)
        return publishing.publish_project(folder, self.getCurrentUser())

    # -- review figures and exports --------------------------------------------------------------------------------

    @access.public(scope=TokenScope.DATA_READ)
    @autoDescribeRoute(
        Description('Agreement between labelers (each pair with shared segments) and between labels and the model.')
        .notes('Cohen\'s kappa (null where only one category occurs), raw agreement, count and a confusion matrix '
               '(rows: the first labeling, columns: the second, in the order of "categories").')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .errorResponse('Read access was denied on the folder.', 403))
    def get_agreement(self, folder: dict) -> dict:
        return agreement.project_agreement(folder)

    @access.public(scope=TokenScope.DATA_READ, cookie=True)
    @autoDescribeRoute(
        Description("One slide's segments coloured by labels, predictions, certainty or the embedding map, as bytes.")
        .notes('One byte per index of the slide\'s segment image (GET .../slides gives its id, whether it carries '
               'outlines and the offset from image index to segment id); three (RGB) for the embedding map. '
               'labels and predictions: 0 none, else 1 + the category\'s index in the project; certainty: 0 none, '
               'else 1 + round(254 × the probability of the predicted category). For the web client\'s overlays.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .param('item', 'The slide.')
        .param('kind', 'What colours the segments.', enum=list(overlays.KINDS))
        .produces('application/octet-stream')
        .errorResponse('Not a slide of the project.')
        .errorResponse('The slide has no segments, no round or no embedding map yet.', 404)
        .errorResponse('Read access was denied on the folder.', 403))
    def get_overlay(self, folder: dict, item: str, kind: str):
        body = overlays.overlay_bytes(folder, folders.slide_of(folder, item), kind)
        setResponseHeader('Content-Type', 'application/octet-stream')
        setRawResponse()
        return body

    @access.public(scope=TokenScope.DATA_READ, cookie=True)
    @autoDescribeRoute(
        Description('Download labels and predictions as CSV or GeoJSON, or the labeled features as HDF5.')
        .notes('CSV and GeoJSON hold the labeled segments (every segment with predictions=true), in base pixels; '
               'GeoJSON polygons are the segments\' outlines. HDF5: features, label, item, segment datasets.')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .param('format', 'csv, geojson or hdf5.', enum=list(export.FORMATS))
        .param('item', 'Only this slide.', required=False)
        .param('predictions', 'Include unlabeled segments with their prediction.', required=False,
               dataType='boolean', default=False)
        .errorResponse('Nothing to export, or too much for GeoJSON.')
        .errorResponse('Read access was denied on the folder.', 403))
    def export(self, folder: dict, format: str, item: str | None, predictions: bool):
        folders.config_of(folder)
        slide = folders.slide_of(folder, item) if item else None
        stem = folder['name'].replace('"', '') + (f'-{slide["name"]}' if slide else '')
        try:
            if format == 'hdf5':
                path = export.to_hdf5(folder, slide)
                setResponseHeader('Content-Type', 'application/x-hdf5')
                setContentDisposition(f'{stem}-training-set.h5')
                setRawResponse()
                return _stream_and_remove(path)
            rows = export.export_rows(folder, slide, predictions)
            if format == 'csv':
                body = export.to_csv(rows)
                setResponseHeader('Content-Type', 'text/csv')
                setContentDisposition(f'{stem}-labels.csv')
            else:
                body = json.dumps(export.to_geojson(folder, rows))
                setResponseHeader('Content-Type', 'application/geo+json')
                setContentDisposition(f'{stem}-labels.geojson')
        except HistomicsLabelError as exc:
            raise ValidationException(str(exc)) from exc
        setRawResponse()
        return body.encode('utf8')

    @access.public(scope=TokenScope.DATA_READ)
    @autoDescribeRoute(
        Description('More like this: the segments of the project\'s slides nearest to example segments.')
        .notes('The examples\' mean embedding is the query; segments anyone labeled on the examples\' slide are left '
               'out. With negatives (or cnfp=true) the answer mixes nearest unlabeled segments with the closest '
               'counter-examples and the farthest examples (CNFP).')
        .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
        .param('item', 'The slide of the example segments.')
        .jsonParam('segments', 'Example segment ids, a JSON list.', requireArray=True)
        .jsonParam('negatives', 'Counter-example segment ids, a JSON list.', required=False, requireArray=True)
        .param('limit', 'How many.', required=False, dataType='integer', default=20)
        .param('cnfp', 'Mix in the farthest examples and closest counter-examples.', required=False,
               dataType='boolean', default=False)
        .errorResponse('Unknown slide or segments, or no feature vectors.')
        .errorResponse('Read access was denied on the folder.', 403))
    def get_similar(self, folder: dict, item: str, segments: list, negatives: list | None, limit: int,
                    cnfp: bool) -> list[dict]:
        from ..core.retrieval.similar import similar_segments

        config = folders.config_of(folder)
        slide = folders.slide_of(folder, item)
        if not 1 <= limit <= 1000:
            raise ValidationException('limit must be between 1 and 1000', 'limit')
        slides = [slide] + [s for s in folders.slides(folder) if s['_id'] != slide['_id']
                            and folders.store_path(folder, s).exists()]
        paths = [str(folders.store_path(folder, s)) for s in slides]
        if not Path(paths[0]).exists():
            raise ValidationException(f'Slide {slide["name"]} has no segments yet', 'item')
        labeled = [segment for (item_id, segment) in Label().effective(folder['_id'], slide['_id'])]
        try:
            found = similar_segments(paths, [int(v) for v in segments], limit, config['extractor'],
                                     negatives=[int(v) for v in negatives or []], cnfp_mix=cnfp, exclude=labeled)
        except (HistomicsLabelError, ValueError, TypeError) as exc:
            raise ValidationException(str(exc)) from exc
        by_path = dict(zip(paths, slides, strict=True))
        return [{'item': str(by_path[f.pop('store')]['_id']), **f, 'region': f['bbox_base']} for f in found]

    @access.user(scope=TokenScope.DATA_WRITE)
    @autoDescribeRoute(
        Description('Import a project of the published Histomics Label (HistomicsUI active learning) on this folder.')
        .notes('Reads the folder\'s .histomicsui_config.yaml and each slide\'s newest "Superpixel" label annotation: '
               'categories (colours, exclusions, hotkeys), settings, every label with its labeler and reviews. Their '
               'superpixel k becomes segment k + 1. Importing again writes nothing new and keeps labels changed here.')
        .modelParam('id', 'The folder.', model=Folder, level=AccessType.ADMIN)
        .errorResponse('Nothing to import in this folder.')
        .errorResponse('Admin access was denied on the folder.', 403))
    def import_published(self, folder: dict) -> dict:
        from ..projects.migration import import_histomicsui_project

        return import_histomicsui_project(folder, self.getCurrentUser())

    def _latest_round(self, folder: dict) -> dict | None:
        doc = Round().collection.find_one({'project': folder['_id']}, sort=[('number', -1)])
        return None if doc is None else _round_json(doc)

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _entries(self, folder: dict, body: dict, with_category: bool) -> list[dict]:
        labels = body.get('labels')
        if not isinstance(labels, list) or not labels:
            raise ValidationException('labels must be a non-empty list', 'labels')
        if len(labels) > MAX_BATCH:
            raise ValidationException(f'At most {MAX_BATCH} labels per request', 'labels')
        slides: dict[str, tuple[dict, int | None]] = {}
        entries = []
        for index, entry in enumerate(labels):
            if not isinstance(entry, dict) or 'item' not in entry or 'segment' not in entry:
                raise ValidationException(f'Label {index + 1} needs an item and a segment', 'labels')
            item_id = str(entry['item'])
            if item_id not in slides:
                item = folders.slide_of(folder, item_id)
                slides[item_id] = (item, folders.segment_count(folder, item))
            item, count = slides[item_id]
            segment = entry['segment']
            if isinstance(segment, bool) or not isinstance(segment, int):
                raise ValidationException(f'Label {index + 1}: segment must be a whole number', 'labels')
            if count is None:
                raise ValidationException(f'Slide {item["name"]} has no segments yet; generate them first', 'labels')
            if not 1 <= segment <= count:
                raise ValidationException(f'Label {index + 1}: slide {item["name"]} has segments 1–{count}, not '
                                          f'{segment}', 'labels')
            clean = {'item': item['_id'], 'segment': segment}
            if with_category:
                category = entry.get('category')
                if not isinstance(category, str):
                    raise ValidationException(f'Label {index + 1} needs a category name', 'labels')
                clean['category'] = category
            entries.append(clean)
        return entries

    def _describe_labels(self, folder: dict, labels: list[dict],
                         calls: dict[tuple[ObjectId, int], agreement.ModelCall] | None = None) -> list[dict]:
        """Labels as JSON, with the labeler's login, each segment's base-pixel region and the model's call on it.

        ``calls`` are the model's calls already read for these labels (read here when not given), so a request opens
        each slide store's latest round once.
        """
        logins = {}
        regions = {}
        by_item: dict[ObjectId, list[int]] = {}
        for label in labels:
            by_item.setdefault(label['item'], []).append(label['segment'])
        if calls is None:
            calls = agreement.model_calls(folder, _label_keys(labels))
        for item_id, segments in by_item.items():
            boxes = folders.segment_boxes(folder, item_id, np.array(segments))
            if boxes is not None:
                regions.update({(item_id, s): [int(v) for v in box] for s, box in zip(segments, boxes, strict=True)})
        result = []
        for label in labels:
            for user_id in (label['labeler'], (label.get('review') or {}).get('reviewer')):
                if user_id is not None and user_id not in logins:
                    user = User().load(user_id, force=True)
                    logins[user_id] = user['login'] if user else None
            review = label.get('review')
            call = calls.get((label['item'], label['segment']))
            result.append({
                '_id': str(label['_id']), 'item': str(label['item']), 'segment': label['segment'],
                'category': label['category'], 'labeler': str(label['labeler']),
                'labelerLogin': logins[label['labeler']], 'created': label['created'], 'updated': label['updated'],
                'view': label.get('view'), 'region': regions.get((label['item'], label['segment'])),
                'thumbnail': folders.thumbnail_url(label['item'], regions.get((label['item'], label['segment']))),
                'predicted': None if call is None else call.category,
                'certainty': None if call is None else call.certainty,
                'review': None if review is None else {
                    'status': review['status'], 'category': review['category'], 'reviewer': str(review['reviewer']),
                    'reviewerLogin': logins.get(review['reviewer']), 'time': review['time']}})
        return result


def _label_keys(labels: list[dict]) -> list[tuple[ObjectId, int]]:
    """The ``(item, segment)`` of each label."""
    return [(label['item'], label['segment']) for label in labels]


def _sorted_by_certainty(labels: list[dict], calls: dict[tuple[ObjectId, int], agreement.ModelCall],
                         direction: int) -> list[dict]:
    """Labels by the model's certainty on their segment (``direction`` 1: least certain first), those without a
    prediction last; ties keep the given order."""
    def key(label: dict) -> tuple[bool, float]:
        call = calls.get((label['item'], label['segment']))
        return (call is None, 0.0 if call is None else direction * call.certainty)
    return sorted(labels, key=key)


def _stream_and_remove(path):
    """Stream a temporary file in chunks, removing it once sent (or abandoned)."""
    def stream():
        try:
            with open(path, 'rb') as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
        finally:
            path.unlink(missing_ok=True)
    return stream


MAX_BODY_BYTES = 64 << 20
"""Largest JSON body a route reads (100,000 labels take about 8 MB)."""


def _json_object(body, field: str) -> dict:
    """The request body as a JSON object; a 400 (not Girder's 500) for a body that is not UTF-8 JSON."""
    raw = body.read(MAX_BODY_BYTES + 1) if hasattr(body, 'read') else body
    if raw is None or len(raw) == 0:
        raise ValidationException(f'A JSON object is required in the request body ({field})', field)
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationException(f'The request body is larger than {MAX_BODY_BYTES >> 20} MB', field)
    try:
        value = json.loads(raw.decode('utf8') if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationException(f'The request body is not valid UTF-8 JSON: {exc}', field) from exc
    if not isinstance(value, dict):
        raise ValidationException(f'The request body ({field}) must be a JSON object', field)
    return value


def _round_json(doc: dict) -> dict:
    return {key: (str(value) if isinstance(value, ObjectId) else value) for key, value in doc.items()}


def _object_id(value: str, field: str) -> ObjectId:
    try:
        return ObjectId(value)
    except Exception as exc:
        raise ValidationException(f'{field} must be an id, not {value!r}', field) from exc


def _time(value: str, field: str) -> datetime.datetime:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationException(f'{field} must be an ISO time such as 2026-11-24T10:00:00Z', field) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _segment_image_json(folder: dict, item: dict) -> dict | None:
    """The slide's segment image, its scale (slide base pixels per segment-image pixel) and which overlays it has
    (predictions once a round exists, the embedding map once made), for viewers."""
    image = segment_image_of(item)
    path = folders.store_path(folder, item)
    if image is None or not path.exists():
        return None
    with SlideStore(path) as store:
        facts = {'scale': store.slide_info.scale, 'predictions': bool(store.rounds()),
                 'embeddingMap': folders.config_of(folder)['extractor'] in store.embedding_map_names()}
    return {**image.to_json(), **facts}
