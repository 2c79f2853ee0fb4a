"""Seeded k-means: clusters in embedding space that start from (and may keep) chosen centres.

Two users share the Lloyd iterations here. The cold start (``diversity.kmeans_cold_start``) keeps the labeled
segments as fixed centres and moves new ones into the parts of the space they do not cover. The ``seeded_kmeans``
model (Basu, Banerjee & Mooney 2002, "seeded and constrained k-means") starts each class's centres from its labeled
segments, keeps labeled segments in clusters of their own class, and lets every unlabeled segment join its nearest
centre; a segment's class probabilities come from its distances to the classes' centres.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError, FeaturesError, LabelsError
from .base import Model, check_feature_width, models
from .training import check_training_set, summary

CHUNK = 8192  # rows per block of a distance computation: bounded memory for a slide's worth of segments


def squared_distances(points: np.ndarray, centres: np.ndarray, point_norms: np.ndarray | None = None) -> np.ndarray:
    """``‖p − c‖²`` for every pair, ``(len(points), len(centres))`` float64, never negative.

    ``point_norms`` (the points' ``‖p‖²``, optional) saves recomputing them when the points stay the same.
    """
    points = np.asarray(points, np.float64)
    centres = np.asarray(centres, np.float64)
    if point_norms is None:
        point_norms = np.einsum('ij,ij->i', points, points)
    result = point_norms[:, None] - 2.0 * points @ centres.T + np.einsum('ij,ij->i', centres, centres)
    return np.maximum(result, 0.0, out=result)


def nearest_centres(points: np.ndarray, centres: np.ndarray, allowed: np.ndarray | None = None,
                    rows: np.ndarray | None = None, point_norms: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Index of each point's nearest centre and the squared distance to it, in memory-bounded chunks.

    ``rows`` (optional) selects the points to use without copying all of them at once. ``allowed``
    (``(n_points, len(centres))`` bool, optional) restricts which centres each point may join. Ties go to the
    lower centre index. ``point_norms`` are the points' ``‖p‖²`` when known (without ``rows``).
    """
    count = len(points) if rows is None else len(rows)
    index = np.empty(count, np.int64)
    distance = np.empty(count, np.float64)
    for start in range(0, count, CHUNK):
        part = slice(start, start + CHUNK)
        norms = None if point_norms is None else point_norms[part]
        block = squared_distances(points[part] if rows is None else points[rows[part]], centres, norms)
        if allowed is not None:
            block[~allowed[part]] = np.inf
        index[part] = block.argmin(axis=1)
        distance[part] = block[np.arange(len(block)), index[part]]
    return index, distance


def distances_to(points: np.ndarray, rows: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distances ``(len(rows), len(centres))`` float32 from ``points[rows]``, computed in chunks."""
    result = np.empty((len(rows), len(centres)), np.float32)
    for start in range(0, len(rows), CHUNK):
        result[start:start + CHUNK] = squared_distances(points[rows[start:start + CHUNK]], centres)
    return result


def kmeans_plus_plus(points: np.ndarray, n: int, rng: np.random.Generator,
                     existing: np.ndarray | None = None) -> np.ndarray:
    """``n`` rows of ``points`` chosen as new centres by D² sampling (k-means++), away from ``existing`` centres.

    With no existing centres the first is drawn uniformly. Returns row indices (fewer than ``n`` when the points
    run out of distinct positions).
    """
    points = np.asarray(points, np.float64)
    if existing is not None and len(existing):
        nearest = nearest_centres(points, existing)[1]
    else:
        nearest = np.full(len(points), np.inf)
    chosen: list[int] = []
    for _ in range(min(n, len(points))):
        if np.isinf(nearest).all():
            row = int(rng.integers(len(points)))
        else:
            total = nearest.sum()
            if total <= 0:
                break
            row = int(rng.choice(len(points), p=nearest / total))
        chosen.append(row)
        nearest = np.minimum(nearest, squared_distances(points, points[row:row + 1])[:, 0])
    return np.array(chosen, np.int64)


def lloyd(points: np.ndarray, centres: np.ndarray, fixed: np.ndarray | None = None,
          allowed: np.ndarray | None = None, iterations: int = 100) -> tuple[np.ndarray, np.ndarray, int]:
    """Lloyd's k-means from ``centres``; ``fixed`` centres never move, ``allowed`` limits which centre a point joins.

    A moving centre left with no points jumps to the point farthest from its centre, so no centre is wasted.
    Stops when no assignment changes, when the centres together move less than ``1e-4`` of the points' mean
    variance (squared; scikit-learn's rule), or after ``iterations``. Returns ``(centres, assignment, iterations
    run)``. Deterministic.
    """
    centres = np.array(centres, np.float64)
    fixed = np.zeros(len(centres), bool) if fixed is None else np.asarray(fixed, bool)
    assignment = np.full(len(points), -1, np.int64)
    tolerance = 1e-4 * float(np.var(points, axis=0, dtype=np.float64).mean())
    norms = np.einsum('ij,ij->i', points, points, dtype=np.float64)
    ran = 0
    while ran < max(1, iterations):
        ran += 1
        new_assignment, distance = nearest_centres(points, centres, allowed, point_norms=norms)
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        counts, sums = cluster_sums(points, assignment, len(centres))
        previous = centres.copy()
        moving = ~fixed & (counts > 0)
        centres[moving] = sums[moving] / counts[moving, None]
        for empty in np.flatnonzero(~fixed & (counts == 0)):
            far = int(distance.argmax())
            centres[empty] = points[far]
            distance[far] = 0.0
        if ((centres - previous) ** 2).sum() <= tolerance:
            break
    return centres, assignment, ran


def cluster_sums(points: np.ndarray, assignment: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Point count and coordinate sum ``(n_clusters, D)`` of each cluster, as a sparse one-hot product."""
    from scipy.sparse import csr_matrix

    counts = np.bincount(assignment, minlength=n_clusters)
    members = csr_matrix((np.ones(len(assignment)), (assignment, np.arange(len(assignment)))),
                         shape=(n_clusters, len(assignment)))
    return counts, np.asarray(members @ points, np.float64)


def _class_distances(distances: np.ndarray, centre_class: np.ndarray, n_classes: int) -> np.ndarray:
    """Squared distance to each class's nearest centre, ``(N, n_classes)`` (``inf`` for classes with none)."""
    result = np.full((len(distances), n_classes), np.inf)
    for cls in np.unique(centre_class):
        result[:, cls] = distances[:, centre_class == cls].min(axis=1)
    return result


def softmax_of_distances(class_distances: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(−d / T)`` over classes; classes at infinite distance get probability 0."""
    logits = -(class_distances - class_distances.min(axis=1, keepdims=True)) / temperature
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(class_distances: np.ndarray, labels: np.ndarray, lowest: float) -> float:
    """The temperature (≥ ``lowest``) maximising the likelihood of ``labels``: a search over a log grid.

    The negative log-likelihood is convex in ``1 / T``, so the grid's best point is within one step (a factor
    of about 1.12) of the optimum; capped at ``10⁴ · lowest`` when the labels are separable at any temperature.
    """
    rows = np.arange(len(labels))
    best, best_loss = lowest, np.inf
    for temperature in lowest * np.geomspace(1.0, 1e4, 81):
        probabilities = softmax_of_distances(class_distances, temperature)
        loss = -np.log(np.maximum(probabilities[rows, labels], 1e-300)).mean()
        if loss < best_loss - 1e-12:
            best, best_loss = float(temperature), loss
    return best


@models.register('seeded_kmeans')
class SeededKMeans(Model):
    """Seeded, constrained k-means in embedding space; class probabilities from distances to class centres.

    Features are standardised (training mean and scale, kept in the state). Each class starts with up to
    ``centres_per_class`` centres: its labeled mean, plus k-means++ picks among its labeled segments when it has
    enough of them (or, warm-started, the previous round's centres of that class). Lloyd's iterations then run over
    the labeled segments (each kept to centres of its own class) and the features passed as ``unlabeled`` to
    ``fit`` (at most ``max_points`` of them, a seeded sample), which join whichever centre is nearest, so labels
    spread along the clusters of the whole slide. Without ``unlabeled`` it is a nearest-class-centres classifier.

    ``predict_proba`` is a softmax of ``−d_c / T`` where ``d_c`` is the squared distance to class ``c``'s nearest
    centre. The temperature ``T`` is fitted to the data: the value that gives the labeled segments the highest
    likelihood, but no lower than ``2σ²`` (``σ²`` the mean squared distance per dimension of the training points to
    their centre), the posterior of isotropic Gaussian clusters, which real embeddings are not and which is
    overconfident on them. ``epochs`` is the most Lloyd iterations.

    ``predict_samples`` draws each centre from its posterior given its members, ``N(μ_k, σ² / n_k)`` per
    dimension (known variance, flat prior): centres of few segments move most, so segments between them
    disagree most across samples.
    """

    def __init__(self, seed: int = 0, epochs: int = 100, centres_per_class: int = 2,
                 max_points: int = 20_000) -> None:
        if epochs < 1:
            raise ConfigurationError(f'epochs must be at least 1, not {epochs}')
        if centres_per_class < 1:
            raise ConfigurationError(f'centres_per_class must be at least 1, not {centres_per_class}')
        if max_points < 1:
            raise ConfigurationError(f'max_points must be at least 1, not {max_points}')
        self.seed = int(seed)
        self.epochs = int(epochs)
        self.centres_per_class = int(centres_per_class)
        self.max_points = int(max_points)
        self._state: dict[str, np.ndarray] | None = None
        self.history = []

    @property
    def unlabeled_points(self) -> int:
        return self.max_points

    def params(self) -> dict:
        return {**super().params(), 'seed': self.seed, 'epochs': self.epochs,
                'centres_per_class': self.centres_per_class, 'max_points': self.max_points}

    def fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int,
            warm_start: dict[str, np.ndarray] | None = None, unlabeled: np.ndarray | None = None) -> SeededKMeans:
        """Learn class centres from labeled ``features`` and (optionally) the ``unlabeled`` segments' features.

        ``warm_start`` (a ``state()``, remapped to these classes) supplies the starting centres of the classes it
        has; the other classes are seeded from their labels.
        """
        features, labels = check_training_set(features, labels, n_classes)
        if features.ndim != 2:
            raise FeaturesError(f'Seeded k-means needs (N, D) feature vectors, not shape {features.shape}')
        rng = np.random.default_rng(self.seed)
        extra = np.zeros((0, features.shape[1])) if unlabeled is None else np.asarray(unlabeled)
        if extra.ndim != 2 or extra.shape[1] != features.shape[1]:
            raise FeaturesError(f'Unlabeled features must be (M, {features.shape[1]}), not shape {extra.shape}')
        if len(extra) > self.max_points:
            extra = extra[np.sort(rng.choice(len(extra), self.max_points, replace=False))]
        if not np.all(np.isfinite(extra)):
            raise FeaturesError('The features of some unlabeled segments are not finite numbers')
        data = np.concatenate([features, extra]).astype(np.float64)
        mean = data.mean(axis=0)
        scale = data.std(axis=0)
        scale[scale < 1e-8] = 1.0
        data = (data - mean) / scale
        centres, centre_class = self._seed_centres(data[:len(labels)], labels, n_classes, rng)
        if warm_start is not None:
            centres, centre_class = self._warm_centres(warm_start, centres, centre_class, labels, mean, scale)
        allowed = np.ones((len(data), len(centres)), bool)
        allowed[:len(labels)] = labels[:, None] == centre_class[None, :]
        centres, assignment, ran = lloyd(data, centres, allowed=allowed, iterations=self.epochs)
        spread = max(float(((data - centres[assignment]) ** 2).sum(axis=1).mean() / data.shape[1]), 1e-12)
        class_distances = _class_distances(squared_distances(data[:len(labels)], centres), centre_class, n_classes)
        temperature = fit_temperature(class_distances, labels, 2.0 * spread)
        self._state = {'centres': centres, 'centre_class': centre_class, 'mean': mean, 'scale': scale,
                       'centre_count': np.bincount(assignment, minlength=len(centres)).astype(np.float64),
                       'spread': np.array([spread]), 'temperature': np.array([temperature]),
                       'n_classes': np.array([n_classes])}
        self.history = [{'epoch': ran}]
        self._metrics = summary(self.history, ran, len(labels), 0, warm_start is not None)
        return self

    def _seed_centres(self, labeled: np.ndarray, labels: np.ndarray, n_classes: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Initial centres and their classes: each class's labeled mean, then k-means++ picks of its labels."""
        centres, classes = [], []
        for cls in range(n_classes):
            members = labeled[labels == cls]
            if not len(members):
                continue
            first = members.mean(axis=0, keepdims=True)
            more = kmeans_plus_plus(members, min(self.centres_per_class, len(members)) - 1, rng, existing=first)
            group = np.concatenate([first, members[more]])
            centres.append(group)
            classes.extend([cls] * len(group))
        return np.concatenate(centres), np.array(classes, np.int64)

    def _warm_centres(self, warm_start: dict[str, np.ndarray], seeded: np.ndarray, seeded_class: np.ndarray,
                      labels: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The previous centres (moved to this standardisation) of classes labeled now, seeded ones for the rest."""
        previous = SeededKMeans().load_state(warm_start).state()
        if previous['centres'].shape[1] != len(mean):
            raise FeaturesError(f'The warm-start centres have {previous["centres"].shape[1]} dimensions, the '
                                f'features {len(mean)}')
        raw = previous['centres'] * previous['scale'] + previous['mean']
        keep = np.isin(previous['centre_class'], labels)
        centres = [(raw[keep] - mean) / scale]
        classes = [previous['centre_class'][keep]]
        fresh = ~np.isin(seeded_class, classes[0])
        return np.concatenate(centres + [seeded[fresh]]), np.concatenate(classes + [seeded_class[fresh]])

    @classmethod
    def remap_classes(cls, state: dict[str, np.ndarray], mapping, n_classes: int | None = None
                      ) -> dict[str, np.ndarray]:
        """A state whose centres follow a change of categories: each centre takes its class's new index, centres
        of dropped classes (−1) go, and merged classes simply share their centres."""
        mapping = np.asarray(mapping, np.int64)
        if mapping.ndim != 1 or mapping.size == 0:
            raise LabelsError('The class mapping must list the new index of each old class')
        n_classes = int(mapping.max()) + 1 if n_classes is None else int(n_classes)
        loaded = SeededKMeans().load_state(state).state()
        if len(mapping) != int(loaded['n_classes'][0]):
            raise LabelsError(f'The class mapping has {len(mapping)} entries but the model has '
                              f'{int(loaded["n_classes"][0])} classes')
        if n_classes < 1 or mapping.max() >= n_classes or mapping.min() < -1:
            raise LabelsError(f'The class mapping {mapping.tolist()} does not fit {n_classes} classes')
        new_class = mapping[loaded['centre_class']]
        keep = new_class >= 0
        if not keep.any():
            raise LabelsError('The class mapping drops every class of the model')
        return {**loaded, 'centres': loaded['centres'][keep], 'centre_class': new_class[keep],
                'centre_count': loaded['centre_count'][keep], 'n_classes': np.array([n_classes])}

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        state = self._trained()
        features = self._check_features(features)
        n_classes = int(state['n_classes'][0])
        probabilities = np.zeros((len(features), n_classes), np.float32)
        for start in range(0, len(features), CHUNK):
            chunk = (features[start:start + CHUNK].astype(np.float64) - state['mean']) / state['scale']
            distances = _class_distances(squared_distances(chunk, state['centres']), state['centre_class'],
                                         n_classes)
            probabilities[start:start + len(chunk)] = softmax_of_distances(distances, float(state['temperature'][0]))
        return probabilities

    def predict_samples(self, features: np.ndarray, n_samples: int, seed: int = 0) -> np.ndarray:
        """``(S, N, C)`` probabilities under centres drawn from their posterior (class docstring); the draws
        depend only on ``seed``, the same for every row."""
        state = self._trained()
        features = self._check_features(features)
        if n_samples < 1:
            raise ValueError(f'n_samples must be at least 1, not {n_samples}')
        centres = state['centres']
        spread = np.sqrt(state['spread'][0] / np.maximum(state['centre_count'], 1.0))
        noise = np.random.default_rng(seed).standard_normal((n_samples, *centres.shape))
        drawn = centres[None] + noise * spread[None, :, None]
        n_classes = int(state['n_classes'][0])
        temperature = float(state['temperature'][0])
        out = np.empty((n_samples, len(features), n_classes), np.float32)
        for start in range(0, len(features), CHUNK):
            chunk = (features[start:start + CHUNK].astype(np.float64) - state['mean']) / state['scale']
            for sample in range(n_samples):
                distances = _class_distances(squared_distances(chunk, drawn[sample]), state['centre_class'],
                                             n_classes)
                out[sample, start:start + len(chunk)] = softmax_of_distances(distances, temperature)
        return out

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        return check_feature_width(features, self._state['centres'].shape[1])

    def state(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in self._trained().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> SeededKMeans:
        keys = ('centres', 'centre_class', 'centre_count', 'mean', 'scale', 'spread', 'temperature', 'n_classes')
        try:
            loaded = {key: np.asarray(state[key]) for key in keys}
        except KeyError as exc:
            raise FeaturesError(f'The stored seeded k-means model lacks its {exc.args[0]!r} array') from None
        centres = loaded['centres'].astype(np.float64)
        dim = centres.shape[1] if centres.ndim == 2 else -1
        n_classes = int(loaded['n_classes'].ravel()[0]) if loaded['n_classes'].size == 1 else 0
        centre_class = loaded['centre_class'].astype(np.int64)
        if (centres.ndim != 2 or centre_class.shape != (len(centres),)
                or loaded['centre_count'].shape != (len(centres),) or loaded['mean'].shape != (dim,)
                or loaded['scale'].shape != (dim,) or loaded['spread'].size != 1
                or loaded['temperature'].size != 1 or n_classes < 1
                or centre_class.min(initial=0) < 0 or centre_class.max(initial=0) >= n_classes):
            raise FeaturesError('The stored seeded k-means model\'s arrays are inconsistent: '
                                + ', '.join(f'{k} {v.shape}' for k, v in loaded.items()))
        self._state = {'centres': centres, 'centre_class': centre_class,
                       'centre_count': loaded['centre_count'].astype(np.float64),
                       'mean': loaded['mean'].astype(np.float64), 'scale': loaded['scale'].astype(np.float64),
                       'spread': loaded['spread'].astype(np.float64).reshape(1),
                       'temperature': loaded['temperature'].astype(np.float64).reshape(1),
                       'n_classes': np.array([n_classes])}
        return self
