"""Labels taken off a slide when it was segmented again and their segment had no clear match in the new segments.

A label names a segment id, which means nothing in another segmentation; applying a re-segmentation moves the
labels whose segment has a clear match and, where the admin keeps the others, moves them here instead of leaving
them on an id that now names an unrelated segment. Kept apart from the labels so that nothing that trains,
suggests or counts labels can take them for labels of the current segments; they are listed and deleted with the
project's stale labels.
"""

from __future__ import annotations

from bson.objectid import ObjectId
from girder.models.model_base import Model
from pymongo import ASCENDING, ReplaceOne

from ..girder_compat import UtcDates


class DetachedLabel(UtcDates, Model):
    """One label as it was (its ``_id``, labeler, category, times, view, review and old ``segment``), with
    ``detached``: when, why (``fate``, ``share``, ``coverage``) and the ``segmentation`` (store id) it left."""

    def initialize(self) -> None:
        self.name = 'histomics_label_detached_label'
        self.ensureIndices([([('project', ASCENDING), ('item', ASCENDING)], {})])

    def validate(self, doc: dict) -> dict:
        return doc

    def keep(self, labels: list[dict]) -> None:
        """Store these label documents (each with its ``detached`` record) under their own ids; a document kept
        before (an interrupted apply run again) is replaced, not doubled."""
        if labels:
            self.collection.bulk_write([ReplaceOne({'_id': doc['_id']}, doc, upsert=True) for doc in labels],
                                       ordered=False)

    def of_project(self, project_id: ObjectId, item_id: ObjectId | None = None) -> list[dict]:
        query = {'project': project_id, **({'item': item_id} if item_id is not None else {})}
        return list(self.find(query, sort=[('item', ASCENDING), ('segment', ASCENDING)]))

    def remove_ids(self, project_id: ObjectId, ids: list[ObjectId]) -> int:
        return self.collection.delete_many({'project': project_id, '_id': {'$in': ids}}).deleted_count
