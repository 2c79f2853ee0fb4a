"""Agreement figures of a project: between labelers, and between the labels and the model.

Cohen's kappa (scikit-learn) and a confusion matrix over the project's categories, for every pair of labelers
who labeled some of the same segments, for each labeler against the model, and for the effective labels against
the model. The model's category of a segment is the argmax of its slide's latest round, its certainty the
probability of that category.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import NamedTuple

import numpy as np
from bson.objectid import ObjectId
from girder.models.user import User
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from ..core.io.store import SlideStore
from ..models.label import Label
from . import folders


class ModelCall(NamedTuple):
    """The latest round's verdict on one segment: its most probable category and that category's probability."""

    category: str
    certainty: float


def model_calls(folder: dict, keys: list[tuple[ObjectId, int]]) -> dict[tuple[ObjectId, int], ModelCall]:
    """The latest round's call on each ``(item, segment)``; slides without a store or a round are left out.

    Each slide's store is opened and its latest round read once, however many of its segments are asked about.
    """
    by_item: dict[ObjectId, list[int]] = defaultdict(list)
    for item_id, segment in keys:
        by_item[item_id].append(segment)
    calls = {}
    for item_id, segments in by_item.items():
        path = folders.store_path(folder, item_id)
        if not path.exists():
            continue
        with SlideStore(path) as store:
            record = store.latest_round()
            if record is None:
                continue
            classes = np.asarray(record.model_params['classes'])
            rows = np.asarray(segments, np.int64) - 1
            valid = (rows >= 0) & (rows < store.n_segments)
            probabilities = record.probabilities[rows[valid]][:, classes]
            best = probabilities.argmax(axis=1)
            certainties = probabilities[np.arange(len(best)), best]
            for segment, column, certainty in zip(np.asarray(segments)[valid], best, certainties, strict=True):
                calls[(item_id, int(segment))] = ModelCall(record.categories[int(classes[column])]['name'],
                                                           float(certainty))
    return calls


def model_predictions(folder: dict, keys: list[tuple[ObjectId, int]]) -> dict[tuple[ObjectId, int], str]:
    """The latest round's predicted category of each ``(item, segment)``; slides without a round are left out."""
    return {key: call.category for key, call in model_calls(folder, keys).items()}


def project_agreement(folder: dict) -> dict:
    """Kappa, raw agreement, counts and confusion for labeler pairs, labelers vs model, and labels vs model."""
    config = folders.config_of(folder)
    names = [c['name'] for c in config['categories']]
    by_labeler: dict[ObjectId, dict[tuple[ObjectId, int], str]] = defaultdict(dict)
    for doc in Label().collection.find({'project': folder['_id']}, {'item': 1, 'segment': 1, 'labeler': 1,
                                                                     'category': 1}):
        by_labeler[doc['labeler']][(doc['item'], doc['segment'])] = doc['category']
    effective = Label().effective(folder['_id'])
    predicted = model_predictions(folder, list(effective))
    logins = {user_id: (User().load(user_id, force=True) or {}).get('login') for user_id in by_labeler}
    pairs = []
    for first, second in combinations(sorted(by_labeler, key=str), 2):
        shared = sorted(set(by_labeler[first]) & set(by_labeler[second]))
        if shared:
            pairs.append({'labelers': [str(first), str(second)], 'logins': [logins[first], logins[second]],
                          **_compare([by_labeler[first][k] for k in shared],
                                     [by_labeler[second][k] for k in shared], names)})
    versus_model = []
    for labeler in sorted(by_labeler, key=str):
        shared = sorted(k for k in by_labeler[labeler] if k in predicted)
        if shared:
            versus_model.append({'labeler': str(labeler), 'login': logins[labeler],
                                 **_compare([by_labeler[labeler][k] for k in shared],
                                            [predicted[k] for k in shared], names)})
    shared = sorted(k for k in effective if k in predicted)
    overall = _compare([effective[k] for k in shared], [predicted[k] for k in shared], names) if shared else None
    return {'categories': names, 'labelers': pairs, 'labelersVsModel': versus_model, 'labelsVsModel': overall}


def _compare(first: list[str], second: list[str], names: list[str]) -> dict:
    """Agreement of two labelings of the same segments: count, raw agreement, Cohen's kappa, confusion."""
    known = names + sorted((set(first) | set(second)) - set(names))
    agreement = float(np.mean([a == b for a, b in zip(first, second, strict=True)]))
    # with one category on both sides kappa is 0/0: undefined, reported as None
    kappa = float(cohen_kappa_score(first, second, labels=known)) if len(set(first) | set(second)) > 1 else None
    return {'count': len(first), 'agreement': agreement, 'kappa': kappa,
            'confusion': confusion_matrix(first, second, labels=known).tolist()}
