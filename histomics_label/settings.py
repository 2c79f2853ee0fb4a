"""Server settings of the plugin, with their defaults and validators."""

from __future__ import annotations

import os
from pathlib import Path

from girder.exceptions import ValidationException
from girder.models.setting import Setting
from girder.utility import setting_utilities

DATA_DIR = 'histomics_label.data_dir'
"""Folder where the server keeps each slide's store (segments, features, rounds); local to the Girder server."""


@setting_utilities.default(DATA_DIR)
def _default_data_dir() -> str:
    return os.environ.get('HISTOMICS_LABEL_DATA_DIR') or str(Path.home() / '.local' / 'share' / 'histomics_label')


@setting_utilities.validator(DATA_DIR)
def _validate_data_dir(doc: dict) -> None:
    value = doc['value']
    if not isinstance(value, str) or not value.strip() or not os.path.isabs(value.strip()):
        raise ValidationException('The data folder must be an absolute path', 'value')
    doc['value'] = value.strip()


def data_dir() -> Path:
    """The data folder, created when missing."""
    path = Path(Setting().get(DATA_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path
