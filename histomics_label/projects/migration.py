"""Import a project of the published Histomics Label (github.com/DigitalSlideArchive/histomics-label, formerly
wsi-superpixel-guided-labeling: a Girder 3 plugin on HistomicsUI) into this plugin, so a DSA can switch over.

What the published tool keeps, and where it goes here:

* Its folder's ``.histomicsui_config.yaml`` (resolved as HistomicsUI's ``folder/{id}/yaml_config`` resolves it):
  ``activeLearning: true``, ``annotationGroups.groups`` (one ``{id, fillColor, lineColor, hotKey}`` per category,
  the ``defaultGroup`` – "default" – first, meaning *unlabeled*), ``annotationGroups.exclusions`` (names of the
  categories kept out of training). These become the project's categories (name, colour, excluded, hotkey). Old
  projects mark the folder with the metadata ``active_learning`` instead.
* Per slide, the newest large_image annotation whose name holds "Superpixel" and not "Predictions" ("Superpixel
  Epoch N"): one pixelmap element whose ``values[k]`` is the index into its ``categories`` (0 = the default
  category, unlabeled) of superpixel ``k``; its ``girderId`` names the superpixel image; ``user.bbox`` holds four
  base-pixel numbers per superpixel; ``attributes.metadata[str(k)]`` records who labeled superpixel ``k``
  (``labeler``, a user id; ``labelEpoch``) and who reviewed it (``reviewer``, ``reviewValue``, ``reviewEpoch``).
  Each labeled superpixel becomes one label here, by its labeler (else the annotation's creator), with view
  ``'import'``; a review still in force becomes a review here.
* The superpixel image (HistomicsTK's SuperpixelSegmentation with ``boundaries``): the pixel value
  ``R + 256·G + 65536·B`` is ``2k`` inside superpixel ``k`` and ``2k + 1`` on its outline; superpixels count from
  0 and cover the whole image, so there is no background value. Our segment ids count from 1 with 0 for
  background, so superpixel ``k`` is segment ``k + 1`` (``SEGMENT_OFFSET``); the slide's ``SEGMENT_IMAGE_KEY``
  names their image and ``SEGMENTATION_KEY`` records how to read it.
* Settings found in the annotations: the superpixel size and magnification (``attributes.params`` that
  HistomicsTK writes) and the certainty metric of the newest predictions (``user.certainty_info.type``). They
  apply only when the folder is not a project here yet; an existing project keeps its own settings.

Importing again changes nothing that is already here: a label already present with the same category is left
alone (with its review), and a label changed here since (any view but ``'import'``) is kept over the imported one.

Nothing in an annotation is trusted for more than its author could do. A reader of a slide can create an
annotation on it (large_image asks READ and its "Create annotations" flag, which a DSA grants to readers who
annotate), so an annotation is accepted only when the user who made it (and the one who last changed it) exists and
has WRITE on the slide, the access labeling needs here and in the published tool (whose labels are saved by
changing the annotation); a newer annotation that fails this is passed over for the newest that passes, and
reported in ``rejected``. The superpixel image it names is used only when it is a large
image inside the project that its author and the importing user may read. Labels and reviews are attributed to the
users the annotation names only when they exist (else ``unknownUsers``) and have WRITE on the slide now (else
``unauthorizedUsers``: Girder keeps no history of access, so a former member's labels are kept as the importing
user's, counted by original id, rather than put in the name of someone who may never have made them).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from bson.errors import InvalidId
from bson.objectid import ObjectId
from girder.constants import AccessType
from girder.exceptions import ValidationException
from girder.models.item import Item
from girder.models.user import User
from girder_large_image import yamlConfigFile
from girder_large_image.models.image_item import ImageItem
from girder_large_image_annotation.models.annotation import Annotation
from large_image.exceptions import TileGeneralError

from ..core.errors import HistomicsLabelError
from ..core.io.annotation import DEFAULT_FILL_OPACITY, parse_color, rgba
from ..models.label import Label
from . import folders
from .config import MAX_NAME_LENGTH, META_KEY, validate_config
from .folders import IMPORTED_SEGMENTATION_KEY
from .metadata_guard import plugin_write
from .segment_images import SEGMENT_IMAGE_KEY

SOURCE = 'wsi-superpixel-guided-labeling'
CONFIG_FILE = '.histomicsui_config.yaml'
ANNOTATION_NAME = 'Superpixel'
"""What the published tool's label and prediction annotation names contain (its CLI's ``--annotationName``)."""
SEGMENT_OFFSET = 1
"""Our segment id of their superpixel ``k`` is ``k + SEGMENT_OFFSET``: they count from 0 and have no background."""
SEGMENTATION_KEY = IMPORTED_SEGMENTATION_KEY
"""Item metadata key on an imported slide: how its segment image (``SEGMENT_IMAGE_KEY``) encodes our segment ids."""
_HOTKEY = re.compile(r'^[a-z0]$')
"""Their hotkeys we can keep as they are: a letter, or 0 (1–9 choose categories by position in both tools)."""


def import_histomicsui_project(folder: dict, user: dict) -> dict:
    """Import the published tool's categories, settings, segmentation and labels of ``folder`` as this plugin's
    project; returns a summary of what was imported and of what was skipped and why.

    ``user`` is the importing user: labels and reviews by someone who is no Girder user any more, or who has no
    WRITE access on the slide, are attributed to them (the summary's ``unknownUsers`` and ``unauthorizedUsers``
    count them by original id); annotations made or changed by users without WRITE on their slide are not imported
    and are listed in ``rejected``. Raises ``ValidationException`` (a 400 over REST) when the folder holds nothing
    of the published tool, and when the categories cannot be stored.
    """
    if not isinstance(folder, dict) or '_id' not in folder:
        raise ValidationException('Import needs a folder document')
    if not isinstance(user, dict) or '_id' not in user:
        raise ValidationException('Import needs the importing user')
    return _Import(folder, user).run()


class _Import:
    """One import of one folder: reads everything first, then writes the configuration, then each slide."""

    def __init__(self, folder: dict, user: dict) -> None:
        self.folder, self.user = folder, user
        self.skipped: Counter[tuple[str, str, str]] = Counter()
        self.labelers: Counter[ObjectId] = Counter()
        self.unknown_users: Counter[str] = Counter()
        self.unauthorized_users: Counter[str] = Counter()
        self.rejected: list[dict] = []
        self.names: set[str] = set()
        self._users: dict[str, dict | None] = {}
        self._writers: dict[tuple[ObjectId, ObjectId], bool] = {}

    def run(self) -> dict:
        config = yamlConfigFile(self.folder, CONFIG_FILE, self.user)
        config = config if isinstance(config, dict) else {}
        annotated, unannotated = [], []
        for item in folders.slides(self.folder):
            annotation = self._label_annotation(item)
            (annotated if annotation else unannotated).append((item, annotation))
        marked = bool(config.get('activeLearning') or (self.folder.get('meta') or {}).get('active_learning'))
        if not annotated and not marked:
            rejected = (f'; {len(self.rejected)} {ANNOTATION_NAME!r} annotations were not accepted, made or changed '
                        'by users without WRITE access on their slide' if self.rejected else '')
            raise ValidationException(
                f'Folder {self.folder["name"]!r} holds no project of the published Histomics Label: no slide has '
                f'a {ANNOTATION_NAME!r} label annotation and neither its {CONFIG_FILE} (activeLearning) nor its '
                f'metadata (active_learning) marks it for active learning{rejected}')
        categories = self._categories(config, [annotation for _, annotation in annotated])
        if not annotated and not categories:
            raise ValidationException(
                f'Folder {self.folder["name"]!r} is marked for active learning but has nothing to import yet: no '
                f'categories in its {CONFIG_FILE} and no slide with a {ANNOTATION_NAME!r} label annotation')
        existed = isinstance((self.folder.get('meta') or {}).get(META_KEY), dict)
        settings = {} if existed else self._settings([item for item, _ in annotated],
                                                     [annotation for _, annotation in annotated])
        saved, added = self._save_categories(categories, settings)
        self.names = {category['name'] for category in saved['categories']}
        rejected_items = {entry['item'] for entry in self.rejected}
        for item, _ in unannotated:
            self._skip(item, 'no label annotation made by a user with WRITE access on the slide (see rejected)'
                       if str(item['_id']) in rejected_items else
                       'no label annotation: the published tool made no superpixels for this slide', 0)
        slides = [self._import_slide(item, annotation) for item, annotation in annotated]
        users = {str(u): self._user(str(u)) for u in self.labelers}
        return {
            'source': SOURCE,
            'config': bool(config),
            'categories': [c['name'] for c in categories],
            'added': added,
            'excluded': [c['name'] for c in categories if c['excluded']],
            'settings': settings,
            'slides': [slide for slide in slides if slide],
            'labelers': [{'id': key, 'login': users[key]['login'], 'labels': self.labelers[ObjectId(key)]}
                         for key in sorted(users)],
            'unknownUsers': dict(self.unknown_users),
            'unauthorizedUsers': dict(self.unauthorized_users),
            'rejected': self.rejected,
            'skipped': [{'item': item, 'name': name, 'reason': reason, 'count': count}
                        for (item, name, reason), count in self.skipped.items()],
        }

    # -- configuration ---------------------------------------------------------------------------------------------

    def _categories(self, config: dict, annotations: list[dict]) -> list[dict]:
        """Their categories in their client's order (the config's groups, then those only in annotations), as
        ours; the default (unlabeled) category is left out."""
        groups = config.get('annotationGroups') if isinstance(config.get('annotationGroups'), dict) else {}
        default = groups.get('defaultGroup') or 'default'
        excluded = {str(name).strip() for name in groups.get('exclusions') or []}
        found = [(g.get('id'), g.get('fillColor'), g.get('lineColor'), g.get('hotKey'))
                 for g in groups.get('groups') or [] if isinstance(g, dict)]
        for annotation in annotations:
            element = annotation['annotation']['elements'][0]
            found.extend((c.get('label'), c.get('fillColor'), c.get('strokeColor'), None)
                         for c in (element.get('categories') or [])[1:] if isinstance(c, dict))
        result, seen = [], set()
        for label, fill, stroke, hotkey in found:
            name = label.strip() if isinstance(label, str) else ''
            if label == default or name in seen:
                continue
            if not name or len(name) > MAX_NAME_LENGTH:
                self._skip(None, f'category {label!r}: a name needs 1–{MAX_NAME_LENGTH} characters', 0)
                continue
            seen.add(name)
            category = {'name': name, 'excluded': name in excluded, 'hotkey': hotkey}
            colour = _css_colour(fill, stroke)
            if colour:
                category['color'] = colour
            result.append(category)
        return result

    def _save_categories(self, categories: list[dict], settings: dict) -> tuple[dict, list[str]]:
        """Store the project configuration: the existing categories first, kept as they are, then the new ones;
        returns the configuration and the names added."""
        existing = (self.folder.get('meta') or {}).get(META_KEY)
        merged = [dict(c) for c in existing['categories']] if isinstance(existing, dict) else []
        names = {c['name'] for c in merged}
        hotkeys = {c['hotkey'] for c in merged if c.get('hotkey')}
        added = []
        for category in categories:
            if category['name'] in names:
                continue
            new = {key: value for key, value in category.items() if key != 'hotkey'}
            merged.append(new)
            added.append(new['name'])
            hotkey = category['hotkey']
            key = str(hotkey).lower() if hotkey is not None else None
            if key is None or key == str(len(merged)):
                continue  # none, or their positional default, which is ours too
            if _HOTKEY.match(key) and key not in hotkeys:
                new['hotkey'] = key
                hotkeys.add(key)
            else:
                self._skip(None, f'hotkey {hotkey!r} of category {new["name"]!r}: here a hotkey is one letter or 0, '
                                 'unique, and keys 1–9 choose categories by position', 0)
        return folders.save_config(self.folder, {'categories': merged, **settings}), added

    def _settings(self, items: list[dict], annotations: list[dict]) -> dict:
        """The settings their annotations record, as ours; each is kept only where our validator accepts it."""
        found: dict[str, Any] = {}
        for annotation in annotations:
            params = (annotation['annotation'].get('attributes') or {}).get('params')
            if isinstance(params, dict):
                if isinstance(params.get('superpixelSize'), int | float):
                    # Their --radius is SLIC's seed spacing (HistomicsTK's superpixelSize, a diameter); ours is half
                    # the seed spacing, so the same superpixel size is half their number.
                    found['radius'] = round(params['superpixelSize'] / 2)
                if isinstance(params.get('magnification'), int | float) and params['magnification'] > 0:
                    found['magnification'] = params['magnification']
                break
        for item in items:
            certainty = self._prediction_certainty(item)
            if certainty:
                found['certainty'] = certainty
                break
        settings = {}
        for name, value in found.items():
            try:
                settings[name] = validate_config({name: value})[name]
            except HistomicsLabelError as exc:
                self._skip(None, f'setting {name}={value!r}: {exc}', 0)
        return settings

    # -- slides ----------------------------------------------------------------------------------------------------

    def _import_slide(self, item: dict, annotation: dict) -> dict | None:
        """Adopt the slide's superpixel image as its segmentation and import its labels and reviews."""
        element = annotation['annotation']['elements'][0]
        image = self._superpixel_image(element.get('girderId'), annotation)
        if image is None:
            self._skip(item, f'its superpixel image {element.get("girderId")!r} is no large image inside this '
                             'project that the annotation\'s creator and the importing user may read, so its '
                             'superpixel ids name no segments', _labeled(element))
            return None
        current = (item.get('meta') or {}).get(SEGMENT_IMAGE_KEY)
        if current != str(image['_id']) and folders.store_path(self.folder, item).exists():
            self._skip(item, 'segments were already made here for this slide; their superpixel ids do not name '
                             'these segments', _labeled(element))
            return None
        values, count = _superpixel_values(element, _recorded_superpixels(image))
        categories = element.get('categories') or []
        metadata = (annotation['annotation'].get('attributes') or {}).get('metadata') or {}
        labels: dict[int, tuple[ObjectId, str]] = {}
        for index, value in enumerate(values):
            if value == 0:
                continue
            name = _category_name(categories, value)
            if name not in self.names:
                self._skip(item, f'labels with category index {value!r}, which names no imported category', 1)
            elif index >= count:
                self._skip(item, f'labels of superpixels past the {count} of the superpixel image', 1)
            else:
                entry = metadata.get(str(index)) if isinstance(metadata.get(str(index)), dict) else {}
                labeler = self._attribute(item, entry.get('labeler'), annotation.get('creatorId'))
                labels[index + SEGMENT_OFFSET] = (labeler['_id'], name)
        written, unchanged, kept = self._write(item, labels)
        reviews = self._reviews(item, labels, categories, metadata, count)
        with plugin_write():  # the import route is the project admin's
            Item().setMetadata(item, {SEGMENT_IMAGE_KEY: str(image['_id']), SEGMENTATION_KEY: {
                'source': SOURCE, 'image': str(image['_id']), 'annotation': str(annotation['_id']),
                'boundaries': bool(element.get('boundaries')),
                'segmentOffset': SEGMENT_OFFSET, 'segments': count, 'transform': element.get('transform') or {}}})
        return {'item': str(item['_id']), 'name': item['name'], 'annotation': str(annotation['_id']),
                'annotationName': annotation['annotation'].get('name'), 'superpixelImage': str(image['_id']),
                'superpixels': count, 'labels': len(labels), 'written': written, 'unchanged': unchanged,
                'keptNewer': kept, 'reviews': reviews}

    def _write(self, item: dict, labels: dict[int, tuple[ObjectId, str]]) -> tuple[int, int, int]:
        """Upsert the labels that are new or changed at the source, one batch per labeler; returns how many were
        written, already present, and kept because they were changed here since an earlier import."""
        present = {(doc['segment'], doc['labeler']): doc for doc in Label().find(
            {'project': self.folder['_id'], 'item': item['_id']}, fields=['segment', 'labeler', 'category', 'view'])}
        batches: dict[ObjectId, list[dict]] = {}
        unchanged = kept = 0
        for segment, (labeler, category) in labels.items():
            self.labelers[labeler] += 1
            doc = present.get((segment, labeler))
            if doc is not None and doc['category'] == category:
                unchanged += 1
            elif doc is not None and doc.get('view') != 'import':
                kept += 1
            else:
                batches.setdefault(labeler, []).append({'item': item['_id'], 'segment': segment,
                                                         'category': category})
        for labeler, entries in batches.items():
            Label().upsert(self.folder, self._users.get(str(labeler)) or self.user, entries, view='import')
        return sum(len(entries) for entries in batches.values()), unchanged, kept

    def _reviews(self, item: dict, labels: dict[int, tuple[ObjectId, str]], categories: list, metadata: dict,
                 count: int) -> int:
        """Record each review still in force at the source (their client applies a review made in the label's
        epoch or later) on the imported label that has no review here yet; returns how many were recorded."""
        recorded = 0
        for key, entry in metadata.items():
            if not isinstance(entry, dict) or not isinstance(entry.get('reviewValue'), int):
                continue
            index = int(key) if str(key).isdigit() else -1
            if not 0 <= index < count:
                self._skip(item, 'reviews of superpixels the superpixel image does not have', 1)
                continue
            label_epoch, review_epoch = entry.get('labelEpoch'), entry.get('reviewEpoch')
            if isinstance(label_epoch, int) and isinstance(review_epoch, int) and review_epoch < label_epoch:
                continue  # relabeled after the review: their client no longer applies it
            segment = index + SEGMENT_OFFSET
            name = _category_name(categories, entry['reviewValue'])
            if segment not in labels or name not in self.names:
                self._skip(item, 'reviews of unlabeled superpixels or naming no category', 1)
                continue
            labeler, category = labels[segment]
            doc = Label().findOne({'project': self.folder['_id'], 'item': item['_id'], 'segment': segment,
                                   'labeler': labeler}, fields=['review', 'view'])
            if doc is None or doc.get('review') or doc.get('view') != 'import':
                continue  # reviewed here already, or relabeled here since
            reviewer = self._attribute(item, entry.get('reviewer'), None)
            Label().review(self.folder, reviewer, doc['_id'], None if name == category else name)
            recorded += 1
        return recorded

    # -- trust -----------------------------------------------------------------------------------------------------

    def _label_annotation(self, item: dict) -> dict | None:
        """The slide's newest label annotation of the published tool, with its elements, as its client picks it,
        among those made and last changed by users with WRITE on the slide; the others are reported."""
        cursor = Annotation().find({'itemId': item['_id'], '_active': {'$ne': False},
                                    'annotation.name': {'$regex': re.escape(ANNOTATION_NAME)}},
                                   sort=[('created', -1)], fields=['annotation.name'])
        for candidate in cursor:
            if 'Predictions' in candidate['annotation']['name']:
                continue
            annotation = Annotation().load(candidate['_id'], force=True)
            elements = annotation['annotation'].get('elements') or []
            if elements and elements[0].get('type') == 'pixelmap' and isinstance(elements[0].get('values'), list) \
                    and self._trusted(item, annotation, _labeled(elements[0])):
                return annotation
        return None

    def _prediction_certainty(self, item: dict) -> str | None:
        """The certainty metric of the slide's newest trusted predictions annotation of the published tool, if it
        says."""
        cursor = Annotation().find({'itemId': item['_id'], '_active': {'$ne': False},
                                    'annotation.name': {'$regex': re.escape(ANNOTATION_NAME) + '.*Predictions'}},
                                   sort=[('created', -1)], fields=['_id'])
        for candidate in cursor:
            annotation = Annotation().load(candidate['_id'], force=True)
            if not self._trusted(item, annotation, 0):
                continue
            elements = annotation['annotation'].get('elements') or []
            info = ((elements[0].get('user') or {}).get('certainty_info') or {}) if elements else {}
            return info['type'] if isinstance(info.get('type'), str) else None
        return None

    def _trusted(self, item: dict, annotation: dict, labels: int) -> bool:
        """Whether the users who made and last changed ``annotation`` exist and may write the slide; when not,
        the annotation is recorded in ``rejected`` with the number of labels it holds."""
        for role, key in (('made', 'creatorId'), ('last changed', 'updatedId')):
            user_id = annotation.get(key)
            if user_id is None and key == 'updatedId':
                continue
            person = self._user(str(user_id)) if user_id else None
            if person is None:
                reason = f'{role} by {user_id}, who is no Girder user'
            elif not self._may_write(item, person):
                reason = f'{role} by {person["login"]}, who has no WRITE access on the slide'
            else:
                continue
            self.rejected.append({'item': str(item['_id']), 'name': item['name'], 'annotation': str(annotation['_id']),
                                  'annotationName': annotation['annotation'].get('name'), 'reason': reason,
                                  'labels': labels})
            return False
        return True

    def _superpixel_image(self, girder_id: Any, annotation: dict) -> dict | None:
        """The large-image item an accepted annotation names as its superpixel image, when it lies in the project
        and both the annotation's creator and the importing user may read it; else None."""
        image = _large_image_item(girder_id)
        if image is None or not folders.in_project(self.folder, image):
            return None
        readers = (self._user(str(annotation['creatorId'])), self.user)  # the creator exists: it was accepted
        return image if all(Item().hasAccess(image, who, AccessType.READ) for who in readers) else None

    def _may_write(self, item: dict, user: dict) -> bool:
        key = (item['folderId'], user['_id'])
        if key not in self._writers:
            self._writers[key] = Item().hasAccess(item, user, AccessType.WRITE)
        return self._writers[key]

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _attribute(self, item: dict, user_id: Any, fallback: Any) -> dict:
        """The Girder user with id ``user_id`` (else ``fallback``) when they may write the slide; one that no
        longer exists, or has no WRITE access on the slide, is counted and replaced by the importing user."""
        original = user_id if user_id else fallback
        if not original:
            return self.user
        found = self._user(str(original))
        if found is None:
            self.unknown_users[str(original)] += 1
            return self.user
        if not self._may_write(item, found):
            self.unauthorized_users[str(original)] += 1
            return self.user
        return found

    def _user(self, user_id: str) -> dict | None:
        if user_id not in self._users:
            try:
                self._users[user_id] = User().load(ObjectId(user_id), force=True, fields=['login', 'admin', 'groups'])
            except (InvalidId, TypeError):
                self._users[user_id] = None
        return self._users[user_id]

    def _skip(self, item: dict | None, reason: str, count: int) -> None:
        key = (str(item['_id']) if item else '', item['name'] if item else '', reason)
        self.skipped[key] += count


def _recorded_superpixels(image: dict) -> int | None:
    """How many superpixels the superpixel image has by its own description, where HistomicsTK wrote one (a JSON
    ImageDescription with ``indexCount``, the number of pixel values: two per superpixel with ``boundaries``)."""
    try:
        record = (ImageItem().tileSource(image).getInternalMetadata() or {}).get('xml')
    except TileGeneralError:
        return None
    if not isinstance(record, dict) or isinstance(record.get('indexCount'), bool) or \
            not isinstance(record.get('indexCount'), int):
        return None
    return record['indexCount'] // (2 if record.get('boundaries') else 1)


def _superpixel_values(element: dict, recorded: int | None) -> tuple[list, int]:
    """One category index per superpixel, and the number of superpixels of the superpixel image.

    The number is the image's own (``recorded``) where it says, else that of ``user.bbox`` (four numbers per
    superpixel) where the element has it, else the length of ``values``. Older HistomicsTK wrote two values per
    superpixel with ``boundaries`` (fill, outline); those are taken one per superpixel (the fill's)."""
    values = element['values']
    bbox = (element.get('user') or {}).get('bbox')
    count = recorded or (len(bbox) // 4 if isinstance(bbox, list) and bbox else len(values))
    if element.get('boundaries') and len(values) == 2 * count:
        values = values[::2]
    return values, count


def _labeled(element: dict) -> int:
    return sum(1 for value in element['values'] if value != 0)


def _category_name(categories: list, value: Any) -> str | None:
    """The stripped label of ``categories[value]``, or None when the value names no labeled category."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < len(categories):
        return None
    label = categories[value].get('label') if isinstance(categories[value], dict) else None
    return label.strip() if isinstance(label, str) else None


def _large_image_item(girder_id: Any) -> dict | None:
    try:
        item = Item().load(ObjectId(str(girder_id)), force=True)
    except InvalidId:
        return None
    return item if item and item.get('largeImage') else None


def _css_colour(fill: Any, stroke: Any) -> str | None:
    """A category colour our validator accepts: their fill colour (else stroke) unless fully transparent, as
    ``#rrggbb`` when its opacity is our default fill opacity (or absent), else as ``rgba()``."""
    for colour in (fill, stroke):
        if not isinstance(colour, str):
            continue
        try:
            red, green, blue, alpha = parse_color(colour)
        except HistomicsLabelError:
            continue
        if alpha == 0:
            continue
        if alpha is None or alpha == DEFAULT_FILL_OPACITY:
            return f'#{red:02x}{green:02x}{blue:02x}'
        return rgba(colour)
    return None
