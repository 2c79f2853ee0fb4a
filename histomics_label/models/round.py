"""The finished training rounds of a project: what each learnt from and how well it did (the learning curve)."""

from __future__ import annotations

from girder.models.model_base import Model
from pymongo import ASCENDING


class Round(Model):
    """One finished round of a project: what it learnt from and how well it did (the learning curve's points)."""

    def initialize(self) -> None:
        self.name = 'histomics_label_round'
        self.ensureIndices([([('project', ASCENDING), ('number', ASCENDING)], {'unique': True})])

    def validate(self, doc: dict) -> dict:
        return doc
