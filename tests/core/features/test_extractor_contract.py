"""The contract every registered feature extractor keeps, checked on each of them the way scikit-learn's
``parametrize_with_checks`` checks every estimator: the tests are parametrised over ``extractors.names()``, so an
extractor registered later (here or through the entry-point group) is checked without touching this file.

Every extractor embeds the same real patches: masked 32-pixel patches of four real DSB2018 nuclei and four of its
nucleus-free background blocks, cut by the real patch code. The timm-backed extractors (``timm``, ``uni``) load
checkpoints of their architectures made here with timm, since no model hub can be reached; ``uni`` is checked with
its ViT of test size (``helpers/small_uni.py``: the same class, a 2-block ViT in place of ViT-L, which takes a
minute per call here), ``timm`` as a resnet18 on 64-pixel inputs. An extractor that computes nothing (``imported``:
embeddings computed elsewhere, imported per slide) keeps a contract of its own: it refuses to embed, saying how to
import.
"""

import json

import numpy as np
import pytest
import torch
from helpers.dsb2018_segments import nuclei_and_background
from helpers.small_uni import SmallUNI, small_uni_network
from skimage.measure import regionprops

from histomics_label.core.errors import FeaturesError
from histomics_label.core.features.extractors import TorchImageExtractor, extractors
from histomics_label.core.features.patches import ArraySlide, iter_patches
from histomics_label.core.segments import SegmentTable

OPTIONS = {
    'efficientnet_lite0': lambda weights: {'batch_size': 4},
    'timm': lambda weights: {'model_name': 'resnet18', 'weights_path': weights('resnet18'), 'input_size': 64,
                             'batch_size': 4},
    'uni': lambda weights: {'weights_path': weights('uni'), 'batch_size': 4},
    'imported': lambda weights: {'batch_size': 4},
}
"""Construction options of each registered extractor for this contract, given a function that makes a checkpoint; an
extractor missing here fails the contract."""
TEST_SIZE = {'uni': SmallUNI}
"""Registered extractors checked through a subclass that only shrinks their network."""
COMPUTING = [name for name in extractors.names() if extractors.get(name).computes]


@pytest.fixture(scope='module', autouse=True)
def two_torch_threads():
    """At most two intra-op threads: the machines running the suite are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """``weights(kind)``: the path of a checkpoint of that architecture, made once with timm from a fixed seed."""
    folder = tmp_path_factory.mktemp('contract-weights')
    made = {}

    def get(kind: str) -> str:
        if kind not in made:
            import timm

            torch.manual_seed(0)
            if kind == 'uni':  # UNI's architecture at test size, with its weights' names
                network = small_uni_network(0)
            else:
                network = timm.create_model(kind, num_classes=1000)
            made[kind] = str(folder / f'{kind}.pth')
            torch.save(network.state_dict(), made[kind])
        return made[kind]
    return get


@pytest.fixture(scope='module')
def make(weights):
    def create(name: str):
        if name not in OPTIONS:
            pytest.fail(f'Feature extractor {name!r} is registered but has no entry in OPTIONS of the extractor '
                        'contract; add one')
        return TEST_SIZE.get(name, extractors.get(name))(**OPTIONS[name](weights))
    return create


@pytest.fixture(scope='module')
def patches(dsb2018):
    """Eight real masked patches ``(8, 32, 32, 3)`` uint8: four nuclei, then four background blocks."""
    rgb, raster, n_nuclei = nuclei_and_background(*dsb2018, 32)
    props = regionprops(raster)
    table = SegmentTable(bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props]),
                         centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
                         area=np.array([p.area for p in props]))
    chosen = np.concatenate([[1, 30, 60, 90], n_nuclei + np.array([1, 10, 20, 30])])
    out = np.empty((len(chosen), 32, 32, 3), np.uint8)
    for ids, batch in iter_patches(ArraySlide(rgb), raster, table, 32, ids=chosen):
        out[np.searchsorted(chosen, ids)] = batch
    assert len(np.unique(out.reshape(len(out), -1), axis=0)) == len(out)
    return out


@pytest.fixture(scope='module')
def embedded(make, patches):
    """``embedded(name)``: an extractor ``name`` and its embeddings of ``patches``, made once for the module."""
    done = {}

    def get(name: str):
        if name not in done:
            extractor = make(name)
            done[name] = extractor, extractor.extract(patches)
        return done[name]
    return get


def test_contract_covers_every_registered_extractor():
    missing = sorted(set(extractors.names()) - set(OPTIONS))
    assert not missing, f'registered feature extractors without contract options: {missing}'


@pytest.mark.parametrize('name', COMPUTING)
def test_embeds_a_batch_as_finite_float32_rows_of_its_dimension(name, embedded, patches):
    extractor, features = embedded(name)
    assert features.shape == (len(patches), extractor.dim) and features.dtype == np.float32
    assert extractor.params()['dim'] == extractor.dim
    assert np.all(np.isfinite(features))
    assert len(np.unique(features, axis=0)) == len(patches)  # the patches differ, so must their embeddings


@pytest.mark.parametrize('name', COMPUTING)
def test_is_deterministic(name, make, embedded, patches):
    extractor, first = embedded(name)
    np.testing.assert_array_equal(extractor.extract(patches), first)
    np.testing.assert_array_equal(make(name).extract(patches), first)


@pytest.mark.parametrize('name', COMPUTING)
def test_a_patch_embedding_does_not_depend_on_its_batch_mates(name, embedded, patches):
    """Reordered, every patch has other mates in its chunk of the batch size; alone, it has none."""
    extractor, together = embedded(name)
    tolerance = {'rtol': 1e-4, 'atol': 1e-5 * float(np.abs(together).max())}
    order = np.array([5, 0, 7, 2, 1, 6, 3, 4])
    np.testing.assert_allclose(extractor.extract(patches[order]), together[order], **tolerance)
    np.testing.assert_allclose(extractor.extract(patches[6:7])[0], together[6], **tolerance)


@pytest.mark.parametrize('name', COMPUTING)
def test_params_are_json_stable_and_need_no_network(name, make, embedded, monkeypatch):
    fresh = make(name)
    if isinstance(fresh, TorchImageExtractor):
        def refuse():
            raise AssertionError('params() loaded the network')
        monkeypatch.setattr(fresh, 'load', refuse)
    params = fresh.params()
    assert params['name'] == name == fresh.name
    assert json.loads(json.dumps(params)) == params
    assert fresh.params() == params
    assert embedded(name)[0].params() == params  # the same options give the same params, loaded or not


@pytest.mark.parametrize('name', COMPUTING)
def test_patches_of_the_wrong_type_or_shape_are_features_errors(name, make, patches):
    extractor = make(name)
    for wrong in (patches.astype(np.float32), patches[:, :, :, :2], patches[0]):
        with pytest.raises(FeaturesError):
            extractor.extract(wrong)


@pytest.mark.parametrize('name', sorted(set(extractors.names()) - set(COMPUTING)))
def test_an_extractor_that_computes_nothing_refuses_saying_how_to_import(name, make, patches):
    extractor = make(name)
    params = extractor.params()
    assert params['name'] == name and json.loads(json.dumps(params)) == params
    for attempt in (extractor.load, lambda: extractor.extract(patches)):
        with pytest.raises(FeaturesError, match='import a file of them for each slide'):
            attempt()
