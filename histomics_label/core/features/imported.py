"""Import a slide's embeddings computed elsewhere (a deployment's own foundation model) from a file, checked, into
its store as the ``imported`` features, which a project with extractor ``imported`` trains on.

File formats (NumPy's own, read without pickles):

- ``.npy``: one float array of shape (segments, dim); row ``i`` is segment ``i + 1``, i.e. rows in segment-id order;
- ``.npz``: arrays ``embeddings`` (segments, dim) and ``segment_ids`` (segments,), the id of each row, in any order.

The embeddings must be real numbers (integers are taken as floats; booleans, complex numbers and text are refused),
finite, one row for every segment of the slide's store and no other, and, where ``dim`` is given (the dimension
of the project's other slides), of that dimension. They are stored as float32. Anything wrong is a
``FeaturesError`` naming the problem, and the store is left as it was: it is rewritten only once all is checked.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import numpy as np

from ..errors import FeaturesError
from ..io.store import SlideStore

IMPORTED = 'imported'
"""The feature set (and extractor name) of imported embeddings."""
FORMATS = ('.npy', '.npz')


def read_embeddings(data: bytes, filename: str) -> tuple[np.ndarray | None, np.ndarray]:
    """``(segment_ids or None, embeddings)`` as the file holds them; its kind is told by ``filename``'s suffix."""
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in FORMATS:
        raise FeaturesError(f'{filename}: embeddings are imported from a .npy file (segments × dimensions, in '
                            'segment-id order) or a .npz file (arrays "embeddings" and "segment_ids"), not a '
                            f'{suffix or "suffix-less"} file')
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FeaturesError(f'{filename} is not a readable {suffix} file ({reason})') from None
    if suffix == '.npy':
        if not isinstance(loaded, np.ndarray):
            raise FeaturesError(f'{filename} is a .npz archive, not a .npy array; name it .npz')
        return None, loaded
    if isinstance(loaded, np.ndarray):
        raise FeaturesError(f'{filename} holds a single array, not a .npz archive; name it .npy')
    with loaded:
        missing = [key for key in ('embeddings', 'segment_ids') if key not in loaded.files]
        if missing:
            raise FeaturesError(f'{filename} lacks the array(s) {", ".join(missing)}; it holds '
                                f'{", ".join(loaded.files) or "nothing"}')
        try:
            return loaded['segment_ids'], loaded['embeddings']
        except ValueError as exc:  # an object array, which would need a pickle
            raise FeaturesError(f'{filename}: {exc}') from None


def embeddings_in_segment_order(segment_ids: np.ndarray | None, embeddings: np.ndarray, n_segments: int,
                                dim: int | None = None) -> np.ndarray:
    """The embeddings as float32 (n_segments, dim), row ``id − 1`` for segment ``id``, after checking them."""
    embeddings = np.asarray(embeddings)
    if embeddings.dtype.kind not in 'iuf':
        raise FeaturesError(f'Embeddings must be real numbers, not {_dtype_name(embeddings.dtype)}')
    if embeddings.ndim != 2 or embeddings.shape[1] < 1:
        raise FeaturesError(f'Embeddings must be a 2-D array (segments × dimensions), not of shape '
                            f'{embeddings.shape}')
    if len(embeddings) != n_segments:
        raise FeaturesError(f'The file has embeddings of {len(embeddings)} segments but the slide has {n_segments}')
    if dim is not None and embeddings.shape[1] != dim:
        raise FeaturesError(f'The embeddings have {embeddings.shape[1]} dimensions but the project\'s other slides\' '
                            f'have {dim}; a model trains on one kind of embedding')
    with np.errstate(over='ignore'):  # values beyond float32 become infinite, and are refused just below
        values = embeddings.astype(np.float32)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise FeaturesError(f'The embeddings of {len(rows)} segments are NaN, infinite or too large for float32 '
                            f'(rows {", ".join(str(r) for r in rows[:5])}{", …" if len(rows) > 5 else ""})')
    if segment_ids is None:
        return values
    ids = np.asarray(segment_ids)
    if ids.dtype.kind not in 'iu' or ids.shape != (n_segments,):
        raise FeaturesError(f'segment_ids must be {n_segments} whole numbers, one per row of embeddings, not '
                            f'{_dtype_name(ids.dtype)} of shape {ids.shape}')
    outside = (ids < 1) | (ids > n_segments)
    if outside.any():
        raise FeaturesError(f'segment_ids must lie in 1..{n_segments} (the slide\'s segments); '
                            f'{int(outside.sum())} do not, e.g. {int(ids[outside][0])}')
    if len(np.unique(ids)) != n_segments:
        raise FeaturesError('segment_ids name a segment twice, so some segments have no embedding')
    ordered = np.empty_like(values)
    ordered[ids.astype(np.int64) - 1] = values
    return ordered


def import_embeddings(store_path: str | os.PathLike, data: bytes, filename: str, dim: int | None = None) -> dict:
    """Check the embeddings in ``data`` (a file's bytes, its kind told by ``filename``) against the slide store at
    ``store_path`` (and ``dim``, if given) and store them as its ``imported`` features, replacing older ones.

    Returns what was imported: segments, dimension and the file's SHA-256 (recorded with the features)."""
    with SlideStore(store_path) as store:
        n_segments = store.n_segments
    segment_ids, embeddings = read_embeddings(data, filename)
    values = embeddings_in_segment_order(segment_ids, embeddings, n_segments, dim)
    params = {'name': IMPORTED, 'dim': int(values.shape[1]), 'file': os.path.basename(filename),
              'sha256': hashlib.sha256(data).hexdigest()}
    with SlideStore.update(store_path) as writer:
        writer.write_features(IMPORTED, values, params)
    return {'segments': n_segments, 'dim': params['dim'], 'file': params['file'], 'sha256': params['sha256']}


def imported_dim(store_path: str | os.PathLike) -> int | None:
    """The dimension of the slide store's imported embeddings, or None if it has none."""
    with SlideStore(store_path) as store:
        if IMPORTED not in store.feature_names():
            return None
        return int(store.features(IMPORTED, rows=slice(0, 1)).shape[1])


def _dtype_name(dtype: np.dtype) -> str:
    return {'b': 'booleans', 'c': 'complex numbers', 'U': 'text', 'S': 'bytes', 'O': 'Python objects'}.get(
        dtype.kind, str(dtype))
