"""The finished training rounds of a project: what each learnt from and how well it did (the learning curve)."""

from __future__ import annotations

from bson.objectid import ObjectId
from girder.models.model_base import Model
from pymongo import ASCENDING, DESCENDING

from ..girder_compat import UtcDates


class Round(UtcDates, Model):
    """One finished round of a project: what it learnt from and how well it did (the learning curve's points)."""

    def initialize(self) -> None:
        self.name = 'histomics_label_round'
        self.ensureIndices([([('project', ASCENDING), ('number', ASCENDING)], {'unique': True})])

    def validate(self, doc: dict) -> dict:
        return doc

    def learning_curve(self, project_id: ObjectId) -> list[dict]:
        """Every finished round of the project as JSON, oldest first."""
        return [as_json(doc) for doc in self.find({'project': project_id}, sort=[('number', ASCENDING)])]

    def latest(self, project_id: ObjectId) -> dict | None:
        """The project's newest round as JSON, or None before its first."""
        doc = self.collection.find_one({'project': project_id}, sort=[('number', DESCENDING)])
        return None if doc is None else as_json(doc)


def as_json(doc: dict) -> dict:
    """A round document with its ids as strings."""
    return {key: (str(value) if isinstance(value, ObjectId) else value) for key, value in doc.items()}
