"""Categories and the labels a person gave to segments, read from the files the CLI accepts.

A label file is one of:

* our JSON: ``{"categories": [{"name", "color", "excluded"}...], "labels": {"<segment id>": "<category>"}}``
  (``labels`` may also be a list of ``{"segment": id, "category": name}``);
* a DSA annotation with a pixelmap element, as this CLI writes and a DSA labeler edits: ``values[id]`` is an index
  into the element's ``categories``, whose first entry is the "unlabeled" category;
* CSV with a header row holding ``segment`` and ``category`` columns.

Excluded categories (background, pen marks, "unsure") are kept so their labels are never lost, but they never train
a model and their segments are never suggested.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError, LabelsError
from .annotation import EXCLUDED_DESCRIPTION, parse_color

UNLABELED = 'unlabeled'
DEFAULT_COLORS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000',
                  '#332288', '#88ccee', '#44aa99', '#117733', '#999933', '#ddcc77', '#cc6677', '#882255']
"""Category colours given where none is chosen: Okabe and Ito's eight, which stay apart for red-green and
blue-yellow colour-blind eyes, then Paul Tol's muted scheme for a ninth and later category (some of which come close
to the first eight: the project page warns of pairs that look alike)."""


@dataclass(frozen=True)
class Category:
    name: str
    color: str
    excluded: bool = False

    def as_dict(self) -> dict:
        return {'name': self.name, 'color': self.color, 'excluded': self.excluded}


@dataclass
class LabelSet:
    """Categories in a fixed order and, per labeled segment id, the index of its category."""

    categories: list[Category]
    segment_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    category_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        names = [c.name for c in self.categories]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LabelsError(f'Category names must be unique; repeated: {", ".join(duplicates)}')
        self.segment_ids = np.asarray(self.segment_ids, np.int64)
        self.category_index = np.asarray(self.category_index, np.int64)

    def __len__(self) -> int:
        return len(self.segment_ids)

    def index_of(self, name: str) -> int:
        for index, category in enumerate(self.categories):
            if category.name == name:
                return index
        raise LabelsError(f'Unknown category {name!r}; known categories: '
                          f'{", ".join(c.name for c in self.categories) or "(none)"}')

    def exclude(self, names: list[str]) -> LabelSet:
        """The same labels with the named categories marked excluded."""
        unknown = [n for n in names if n not in {c.name for c in self.categories}]
        if unknown:
            raise LabelsError(f'Cannot exclude unknown categories: {", ".join(unknown)}')
        categories = [Category(c.name, c.color, c.excluded or c.name in names) for c in self.categories]
        return LabelSet(categories, self.segment_ids, self.category_index)

    def merge(self, source: str, target: str) -> LabelSet:
        """The labels with category ``source`` folded into ``target``; ``source`` disappears and the categories
        after it move up by one. Every label is kept."""
        if source == target:
            raise LabelsError(f'Cannot merge category {source!r} into itself')
        remove, keep = self.index_of(source), self.index_of(target)
        index = np.where(self.category_index == remove, keep, self.category_index)
        index = index - (index > remove)
        categories = [c for i, c in enumerate(self.categories) if i != remove]
        return LabelSet(categories, self.segment_ids.copy(), index)

    def training_classes(self) -> list[int]:
        """Indices of the categories a model is trained on: not excluded and labeled at least once."""
        used = set(self.category_index.tolist())
        return [i for i, c in enumerate(self.categories) if not c.excluded and i in used]

    def training_set(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Segment ids, class numbers (0..C-1) and the category index of each class, for training.

        Raises LabelsError when there are no labels or fewer than two trainable categories.
        """
        if len(self) == 0:
            raise LabelsError('There are no labels: label segments of at least two categories before training')
        classes = self.training_classes()
        if len(classes) < 2:
            have = ', '.join(self.categories[i].name for i in classes) or 'none'
            raise LabelsError('Training needs labels of at least two categories that are not excluded '
                              f'(labeled and trainable: {have})')
        keep = np.isin(self.category_index, classes)
        lookup = {category: cls for cls, category in enumerate(classes)}
        return (self.segment_ids[keep], np.array([lookup[c] for c in self.category_index[keep]], np.int64),
                classes)

    def check_segments(self, n_segments: int) -> None:
        bad = self.segment_ids[(self.segment_ids < 1) | (self.segment_ids > n_segments)]
        if len(bad):
            raise LabelsError(f'{len(bad)} labels name segments that do not exist (valid ids are 1..{n_segments}); '
                              f'first: {bad[:5].tolist()}')


def default_categories(names: list[str]) -> list[Category]:
    return [Category(name, DEFAULT_COLORS[i % len(DEFAULT_COLORS)]) for i, name in enumerate(names)]


def read_labels(path: str | Path, category_names: list[str] | None = None) -> LabelSet:
    """Read a label file (JSON, DSA pixelmap annotation or CSV); ``category_names`` fixes the category order
    where the file does not define categories itself."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f'Label file not found: {path}')
    text = path.read_text(encoding='utf-8-sig', errors='replace')
    if path.suffix.lower() == '.csv':
        return _from_rows(_csv_rows(text, path), category_names)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelsError(f'{path} is not valid JSON ({exc}); label files are JSON, DSA annotation JSON or CSV') \
            from None
    return labels_from_document(document, category_names, source=str(path))


def labels_from_document(document, category_names: list[str] | None = None, source: str = 'labels') -> LabelSet:
    if isinstance(document, dict) and 'annotation' in document and isinstance(document['annotation'], dict):
        document = document['annotation']
    if isinstance(document, dict) and 'elements' in document:
        return _from_pixelmap(document, source)
    if isinstance(document, dict) and 'labels' in document:
        categories = _categories(document.get('categories'), source)
        labels = document['labels']
        if isinstance(labels, dict):
            rows = list(labels.items())
        elif isinstance(labels, list):
            try:
                rows = [(entry['segment'], entry['category']) for entry in labels]
            except (TypeError, KeyError):
                raise LabelsError(f'{source}: each entry of "labels" needs "segment" and "category"') from None
        else:
            raise LabelsError(f'{source}: "labels" must be an object or a list')
        return _from_rows(rows, category_names, categories)
    raise LabelsError(f'{source}: not a label file (expected "labels", or a DSA annotation with a pixelmap element)')


def _categories(raw, source: str) -> list[Category] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise LabelsError(f'{source}: "categories" must be a list')
    categories = []
    for index, entry in enumerate(raw):
        if isinstance(entry, str):
            entry = {'name': entry}
        if not isinstance(entry, dict) or not str(entry.get('name', '')).strip():
            raise LabelsError(f'{source}: category {index} has no name')
        categories.append(Category(str(entry['name']).strip(),
                                   str(entry.get('color') or DEFAULT_COLORS[index % len(DEFAULT_COLORS)]),
                                   bool(entry.get('excluded', False))))
    return categories


def _csv_rows(text: str, path: Path) -> list[tuple[str, str]]:
    reader = csv.DictReader(text.splitlines())
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    if 'segment' not in fields or 'category' not in fields:
        raise LabelsError(f'{path}: a CSV label file needs a header with "segment" and "category" columns')
    return [(row[fields['segment']], row[fields['category']]) for row in reader]


def _from_rows(rows, category_names: list[str] | None,
               categories: list[Category] | None = None) -> LabelSet:
    names_in_rows = []
    for _, name in rows:
        name = str(name).strip()
        if name not in names_in_rows:
            names_in_rows.append(name)
    if categories is None:
        order = list(category_names or [])
        order += [n for n in names_in_rows if n not in order]
        categories = default_categories(order)
    labelset = LabelSet(categories)
    ids, index = [], []
    for segment, name in rows:
        try:
            segment_id = int(str(segment).strip())
        except ValueError:
            raise LabelsError(f'Segment id {segment!r} is not an integer') from None
        ids.append(segment_id)
        index.append(labelset.index_of(str(name).strip()))
    if len(set(ids)) != len(ids):
        raise LabelsError('A segment is labeled more than once in the label file')
    return LabelSet(categories, np.array(ids, np.int64), np.array(index, np.int64))


def _from_pixelmap(document: dict, source: str) -> LabelSet:
    elements = [e for e in document.get('elements', []) if e.get('type') == 'pixelmap']
    if len(elements) != 1:
        raise LabelsError(f'{source}: expected one pixelmap element, found {len(elements)}')
    element = elements[0]
    raw = element.get('categories') or []
    if len(raw) < 2:
        raise LabelsError(f'{source}: the pixelmap needs an "unlabeled" category and at least one other')
    excluded_names = set((document.get('attributes') or {}).get('histomics_label', {}).get('excluded', []))
    categories = []
    for index, entry in enumerate(raw[1:]):
        name = str(entry.get('label') or f'category {index + 1}')
        excluded = name in excluded_names or entry.get('description') == EXCLUDED_DESCRIPTION
        categories.append(Category(name, _hex(entry.get('fillColor') or entry.get('strokeColor') or ''), excluded))
    values = np.asarray(element.get('values', []), np.int64)
    if len(values) and (values.min() < 0 or values.max() > len(categories)):
        raise LabelsError(f'{source}: pixelmap values refer to categories that do not exist')
    ids = np.nonzero(values > 0)[0]
    ids = ids[ids > 0]
    return LabelSet(categories, ids, values[ids] - 1)


def _hex(color: str) -> str:
    """A pixelmap category's CSS colour as ``#rrggbb`` (its opacity is a display choice, not the category's)."""
    try:
        red, green, blue, _ = parse_color(color)
    except ConfigurationError:
        return DEFAULT_COLORS[0]
    return f'#{red:02x}{green:02x}{blue:02x}'
