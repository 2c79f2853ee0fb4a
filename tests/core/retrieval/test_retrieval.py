"""More like this on real embeddings: EfficientNet-Lite0 features of DSB2018 nuclei and background, split into
two "slides" (the left and right halves of the image)."""

import numpy as np
import pytest
from helpers.dsb2018_segments import nuclei_and_background
from skimage.measure import regionprops

from histomics_label.core.features.extractors import extract_features, extractors
from histomics_label.core.features.patches import ArraySlide, iter_patches
from histomics_label.core.retrieval.index import NeighbourIndex, Suggestion, cnfp
from histomics_label.core.segments import SegmentTable

BLOCK = 32


@pytest.fixture(scope='module')
def slides(dsb2018):
    """Embeddings by slide and whether each segment is a nucleus: every real nucleus plus each nucleus-free
    32-pixel block of background, masked 40-pixel patches, halves split by centroid x."""
    rgb, raster, n_nuclei = nuclei_and_background(*dsb2018, BLOCK)
    props = regionprops(raster)
    table = SegmentTable(bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props]),
                         centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
                         area=np.array([p.area for p in props]))
    features = extract_features(extractors.create('efficientnet_lite0'),
                                iter_patches(ArraySlide(rgb), raster, table, 40, batch_size=48, tile_size=128),
                                len(table))
    left = table.centroid[:, 0] < 256
    nucleus = table.ids <= n_nuclei
    return ({'left': features[left], 'right': features[~left]},
            {'left': nucleus[left], 'right': nucleus[~left]})


@pytest.mark.parametrize('metric', ['cosine', 'l2'])
def test_own_segment_first_and_neighbours_of_a_kind(slides, metric):
    embeddings, nucleus = slides
    index = NeighbourIndex.build(embeddings, metric=metric)
    assert len(index) == sum(len(v) for v in embeddings.values()) and nucleus['left'].sum() >= 20
    same_kind = []
    for slide in ('left', 'right'):
        for segment in range(len(embeddings[slide])):
            found = index.query((slide, segment), 10)
            assert (found[0].slide, found[0].segment) == (slide, segment) and found[0].distance < 1e-4
            assert all(a.distance <= b.distance for a, b in zip(found, found[1:], strict=False))
            same_kind.append(np.mean([nucleus[n.slide][n.segment] == nucleus[slide][segment] for n in found[1:]]))
    assert np.mean(same_kind) > 0.9
    queries = [(s, i) for s in ('left', 'right') for i in np.flatnonzero(nucleus[s])]
    crossing = [n.slide != q[0] for q in queries for n in index.query(q, 10)[1:]]
    assert 0.2 < np.mean(crossing)  # nuclei are found on the other slide too


@pytest.mark.parametrize('metric', ['cosine', 'l2'])
def test_faiss_and_scikit_learn_rank_alike(slides, metric):
    embeddings, _ = slides
    faiss_index = NeighbourIndex.build(embeddings, metric=metric, backend='faiss')
    sklearn_index = NeighbourIndex.build(embeddings, metric=metric, backend='sklearn')
    assert faiss_index.backend == 'faiss' and sklearn_index.backend == 'sklearn'
    for segment in range(len(embeddings['right'])):
        a = faiss_index.query(('right', segment), 15)
        b = sklearn_index.query(('right', segment), 15)
        assert [(n.slide, n.segment) for n in a] == [(n.slide, n.segment) for n in b]
        np.testing.assert_allclose([n.distance for n in a], [n.distance for n in b], rtol=1e-5, atol=1e-6)


def test_exclusions_vectors_and_sets_of_segments(slides):
    embeddings, nucleus = slides
    index = NeighbourIndex.build(embeddings)
    first = index.query(('left', 0), 6)
    rest = index.query(('left', 0), 5, exclude=[('left', 0)])
    assert rest == first[1:]
    assert index.query(embeddings['left'][0], 6) == first
    positives = [('left', int(i)) for i in np.flatnonzero(nucleus['left'])[:4]]
    found = index.query(positives, 10, exclude=positives)
    assert not {(n.slide, n.segment) for n in found} & set(positives)
    assert all(nucleus[n.slide][n.segment] for n in found)
    assert len(index.query(('left', 0), 10_000)) == len(index)
    with pytest.raises(KeyError, match='slide'):
        index.query(('middle', 0), 3)
    with pytest.raises(KeyError, match='segment'):
        index.query(('left', len(embeddings['left'])), 3)


def test_cnfp_interleaves_near_negatives_far_positives_and_near_unlabeled(slides):
    embeddings, nucleus = slides
    index = NeighbourIndex.build(embeddings)
    positives = [('left', int(i)) for i in np.flatnonzero(nucleus['left'])[:6]]
    negatives = [('left', int(i)) for i in np.flatnonzero(~nucleus['left'])[:6]]
    suggestions = cnfp(index, positives, negatives, 12)
    assert len(suggestions) == 12 and all(isinstance(s, Suggestion) for s in suggestions)
    assert [s.kind for s in suggestions[:3]] == ['unlabeled', 'negative', 'positive']
    by_kind = {kind: [s for s in suggestions if s.kind == kind] for kind in ('unlabeled', 'negative', 'positive')}
    assert all(len(items) == 4 for items in by_kind.values())
    negative_distances = [s.distance for s in by_kind['negative']]
    positive_distances = [s.distance for s in by_kind['positive']]
    assert negative_distances == sorted(negative_distances)
    assert positive_distances == sorted(positive_distances, reverse=True)
    labeled = set(positives) | set(negatives)
    assert not {(s.slide, s.segment) for s in by_kind['unlabeled']} & labeled
    assert all(nucleus[s.slide][s.segment] for s in by_kind['unlabeled'])
    assert cnfp(index, positives, [], 20)[1].kind == 'positive'  # no negatives: their turn is skipped
    with pytest.raises(ValueError, match='positive'):
        cnfp(index, [], negatives, 5)


def test_auto_falls_back_to_scikit_learn_where_faiss_cannot_be_imported():
    import subprocess
    import sys

    code = ('import sys; sys.modules["faiss"] = None\n'  # what "import faiss" meets when faiss is not installed
            'import numpy as np\n'
            'from histomics_label.core.retrieval.index import NeighbourIndex, faiss_available\n'
            'index = NeighbourIndex.build({"a": np.eye(3), "b": np.ones((1, 3))})\n'
            'print(faiss_available(), index.backend, index.query(("b", 0), 2)[0])\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert result.stdout.split(' ', 2)[:2] == ['False', 'sklearn']
    assert "slide='b', segment=0" in result.stdout
