"""The timm-backed extractors: they embed with the weights a deployment supplies, or fail saying why.

timm is a test dependency (the ``timm`` extra pins it with the torchvision built for the pinned torch). The weights
loaded are real timm checkpoints made here, since no model hub can be reached; UNI is tested through a ViT of test
size in UNI's checkpoint layout (``helpers/small_uni.py``), and once with its real ViT-L configuration.
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers.small_uni import SmallUNI, hub_cache, small_uni_network, uni_hub_files
from skimage.measure import regionprops
from skimage.segmentation import relabel_sequential

from histomics_label.core.errors import ConfigurationError, FeaturesError
from histomics_label.core.features.extractors import extractors
from histomics_label.core.features.extractors.hub import IMAGENET_MEAN, IMAGENET_STD, read_state_dict
from histomics_label.core.features.patches import ArraySlide, iter_patches
from histomics_label.core.features.representations import VectorRepresentation
from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments import SegmentTable


@pytest.fixture(scope='module')
def nuclei(dsb2018):
    """The real DSB2018 nuclei as an RGB image, a segment raster and its table."""
    image, mask = dsb2018
    rgb = np.repeat((image.astype(np.float64) * (255 / image.max())).astype(np.uint8)[:, :, None], 3, axis=2)
    raster = relabel_sequential(mask)[0].astype(np.uint32)
    props = regionprops(raster)
    table = SegmentTable(bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props]),
                         centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
                         area=np.array([p.area for p in props]))
    return rgb, raster, table


@pytest.fixture(scope='module')
def patches(nuclei):
    rgb, raster, table = nuclei
    return np.concatenate([batch for _, batch in iter_patches(ArraySlide(rgb), raster, table, 32)])[:48]


# -- the extractors without timm, and checkpoint files -----------------------------------------------------------------

def test_without_timm_the_extractors_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'timm', None)  # as if timm were not installed
    for name, options in (('timm', {'model_name': 'resnet18'}), ('uni', {})):
        with pytest.raises(FeaturesError, match=r'need the timm package: pip install "histomics-label\[timm\]"'):
            extractors.create(name, **options)
    with pytest.raises(ConfigurationError, match='needs model_name'):
        extractors.create('timm')


def test_weights_files_are_read_or_refused_clearly(tmp_path):
    state = {'layer.weight': torch.arange(6.0).reshape(2, 3), 'layer.bias': torch.zeros(2)}
    torch.save({'state_dict': state}, tmp_path / 'wrapped.pth')
    loaded = read_state_dict(str(tmp_path / 'wrapped.pth'))
    assert set(loaded) == set(state) and torch.equal(loaded['layer.weight'], state['layer.weight'])
    with pytest.raises(FeaturesError, match='does not exist'):
        read_state_dict(str(tmp_path / 'missing.pth'))
    (tmp_path / 'notes.pth').write_text('not weights')
    with pytest.raises(FeaturesError, match='not a weights file'):
        read_state_dict(str(tmp_path / 'notes.pth'))
    torch.save([1, 2, 3], tmp_path / 'list.pth')
    with pytest.raises(FeaturesError, match='state dict of tensors'):
        read_state_dict(str(tmp_path / 'list.pth'))


# -- the timm extractor ------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """resnet18 checkpoints with a classifier head (as trained networks are saved), from two seeds, and misfits."""
    import timm

    folder = tmp_path_factory.mktemp('weights')
    paths = {}
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths[seed] = str(folder / f'resnet18_seed{seed}.pth')
        torch.save(timm.create_model('resnet18', num_classes=1000).state_dict(), paths[seed])
    paths['resnet34'] = str(folder / 'resnet34.pth')
    torch.save(timm.create_model('resnet34', num_classes=0).state_dict(), paths['resnet34'])
    paths['grey'] = str(folder / 'resnet18_grey.pth')
    torch.save(timm.create_model('resnet18', num_classes=0, in_chans=1).state_dict(), paths['grey'])
    return paths


SIZE = 64
"""Network input size of most tests: resnet18 works at any size, and 64² runs 12 times faster than 224²."""


def reference_embeddings(weights_path: str, patches: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The same embeddings computed by hand: the checkpoint loaded by timm, ImageNet-normalised inputs."""
    import timm

    network = timm.create_model('resnet18', num_classes=0)
    state = {k: v for k, v in torch.load(weights_path, weights_only=True).items() if not k.startswith('fc.')}
    network.load_state_dict(state)
    images = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
    images = torch.nn.functional.interpolate(images, size=(size, size), mode='bilinear', align_corners=False,
                                             antialias=True)
    images = (images - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        return network.eval()(images).numpy()


def test_a_local_checkpoint_gives_its_own_embeddings(checkpoints, patches):
    extractor = extractors.create('timm', model_name='resnet18', weights_path=checkpoints[0], batch_size=16,
                                  input_size=SIZE)
    features = extractor.extract(patches)
    assert features.shape == (len(patches), 512) and features.dtype == np.float32
    assert np.isfinite(features).all() and features.std(axis=0).max() > 0
    np.testing.assert_allclose(features, reference_embeddings(checkpoints[0], patches), rtol=1e-4, atol=1e-4)
    again = extractors.create('timm', model_name='resnet18', weights_path=checkpoints[0],
                              input_size=SIZE).extract(patches)
    assert np.array_equal(features, again)  # a second, separately built network: same weights, same numbers
    params = extractor.params()
    with open(checkpoints[0], 'rb') as handle:
        assert params['weights_sha256'] == hashlib.sha256(handle.read()).hexdigest()
    assert params['architecture'] == 'resnet18' and params['dim'] == 512 and params['input_size'] == SIZE
    assert extractors.create('timm', model_name='resnet18', weights_path=checkpoints[0]).input_size == 224  # timm's
    other = extractors.create('timm', model_name='resnet18', weights_path=checkpoints[1], input_size=SIZE)
    assert other.params() != params
    assert not np.allclose(other.extract(patches), features)


def test_weights_that_do_not_fit_or_do_not_exist_are_errors(checkpoints, patches, tmp_path):
    with pytest.raises(FeaturesError, match=r'do not fit the timm model resnet18: .*unexpected tensors \(layer1\.2'):
        extractors.create('timm', model_name='resnet18', weights_path=checkpoints['resnet34']).extract(patches[:2])
    with pytest.raises(FeaturesError, match=r'1 tensors of another shape \(conv1.weight \(64, 1, 7, 7\) instead'):
        extractors.create('timm', model_name='resnet18', weights_path=checkpoints['grey']).load()
    with pytest.raises(FeaturesError, match='No weights of timm/resnet18.* in the Hugging Face cache'):
        extractors.create('timm', model_name='resnet18', cache_dir=str(tmp_path), offline=True)
    with pytest.raises(ConfigurationError, match="no architecture 'resnet_unknown'"):
        extractors.create('timm', model_name='resnet_unknown', weights_path=checkpoints[0])
    if not torch.cuda.is_available():
        with pytest.raises(FeaturesError, match='no CUDA GPU'):
            extractors.create('timm', model_name='resnet18', weights_path=checkpoints[0], device='cuda')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_runs_on_the_gpu(checkpoints, patches):
    on_gpu = extractors.create('timm', model_name='resnet18', weights_path=checkpoints[0], device='cuda',
                               input_size=SIZE)
    on_cpu = extractors.create('timm', model_name='resnet18', weights_path=checkpoints[0], input_size=SIZE)
    assert next(on_gpu.load().parameters()).is_cuda
    np.testing.assert_allclose(on_gpu.extract(patches), on_cpu.extract(patches), rtol=1e-2, atol=1e-2)


def test_a_hub_repository_is_taken_from_the_local_cache(checkpoints, patches, tmp_path):
    from safetensors.torch import save_file

    state = torch.load(checkpoints[0], weights_only=True)
    config = {'architecture': 'resnet18', 'num_classes': 1000, 'num_features': 512,
              'pretrained_cfg': {'input_size': [3, SIZE, SIZE], 'mean': list(IMAGENET_MEAN), 'std': list(IMAGENET_STD),
                                 'classifier': 'fc'}}
    cache = hub_cache(tmp_path, 'histomics-label/resnet18-test', {
        'config.json': lambda path: json.dump(config, open(path, 'w')),
        'model.safetensors': lambda path: save_file(state, path)})
    extractor = extractors.create('timm', model_name='hf-hub:histomics-label/resnet18-test', cache_dir=cache,
                                  offline=True)
    assert extractor.weights_path.endswith('model.safetensors')
    assert extractor.params()['architecture'] == 'resnet18' and extractor.input_size == SIZE  # from config.json
    np.testing.assert_allclose(extractor.extract(patches), reference_embeddings(checkpoints[0], patches),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(FeaturesError, match='No weights of histomics-label/absent'):
        extractors.create('timm', model_name='hf-hub:histomics-label/absent', cache_dir=cache, offline=True)


# -- UNI --------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def small_uni(tmp_path_factory):
    """A UNI ViT of test size (seed 0) and a Hugging Face cache holding it as MahmoodLab/UNI ships its weights."""
    network = small_uni_network(0)
    return network, hub_cache(tmp_path_factory.mktemp('hub'), 'MahmoodLab/UNI', uni_hub_files(network))


def uni_reference(network, patches: np.ndarray) -> np.ndarray:
    """The embeddings by hand: timm's own forward pass of ``network`` (its class token after the final norm) on the
    patches resized to 224 pixels and ImageNet-normalised, as UNI's model card prepares them."""
    images = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
    images = torch.nn.functional.interpolate(images, size=(224, 224), mode='bilinear', align_corners=False,
                                             antialias=True)
    images = (images - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        return network(images).numpy()


def test_uni_embeds_with_the_weights_of_its_hub_checkpoint(small_uni, patches):
    network, cache = small_uni
    uni = SmallUNI(cache_dir=cache, offline=True, batch_size=16)
    assert uni.weights_path.endswith(os.path.join('snapshots', hashlib.sha1(b'MahmoodLab/UNI').hexdigest(),
                                                  'pytorch_model.bin'))
    features = uni.extract(patches)
    assert features.shape == (len(patches), 64) and features.dtype == np.float32
    assert np.isfinite(features).all() and len(np.unique(features, axis=0)) == len(patches)
    np.testing.assert_allclose(features, uni_reference(network, patches), rtol=1e-4, atol=1e-5)
    from_file = SmallUNI(weights_path=uni.weights_path, batch_size=5)  # another network, other batches
    assert np.array_equal(from_file.extract(patches), features) and from_file.params() == uni.params()
    # timm's own reading of the repository (its config.json) embeds the same: the uni configuration is UNI's
    as_timm = extractors.create('timm', model_name='hf-hub:MahmoodLab/UNI', cache_dir=cache, offline=True)
    np.testing.assert_allclose(as_timm.extract(patches[:4]), features[:4], rtol=1e-5, atol=1e-6)
    other = SmallUNI(weights_path=str(write_state(small_uni_network(1), os.path.dirname(uni.weights_path),
                                                  'seed1.bin')))
    assert other.params()['weights_sha256'] != uni.params()['weights_sha256']
    assert not np.allclose(other.extract(patches[:4]), features[:4], atol=1e-3)


def write_state(network, folder: str, name: str) -> str:
    path = os.path.join(folder, name)
    torch.save(network.state_dict(), path)
    return path


def test_a_wrong_or_corrupt_uni_checkpoint_is_a_clear_error(small_uni, patches, tmp_path):
    good = SmallUNI(cache_dir=small_uni[1], offline=True).weights_path
    with open(good, 'rb') as handle:
        content = handle.read()
    (tmp_path / 'cut.bin').write_bytes(content[:len(content) // 2])  # a download cut short
    with pytest.raises(FeaturesError, match='cut.bin is not a weights file that can be read'):
        SmallUNI(weights_path=str(tmp_path / 'cut.bin')).extract(patches[:1])
    deeper = write_state(small_uni_network(0, depth=3), str(tmp_path), 'deeper.bin')
    with pytest.raises(FeaturesError, match=r'do not fit the timm model vit_large_patch16_224: '
                                            r'14 unexpected tensors \(blocks\.2\.'):
        SmallUNI(weights_path=deeper).extract(patches[:1])
    wider = write_state(small_uni_network(0, embed_dim=96), str(tmp_path), 'wider.bin')
    with pytest.raises(FeaturesError, match=r'tensors of another shape \(cls_token \(1, 1, 96\) instead of '
                                            r'\(1, 1, 64\)'):
        SmallUNI(weights_path=wider).load()
    with pytest.raises(FeaturesError, match='No weights of MahmoodLab/UNI are in the Hugging Face cache at .*'
                                            'looked for model.safetensors, pytorch_model.bin.* pass weights_path'):
        SmallUNI(cache_dir=str(tmp_path / 'empty'), offline=True)


def test_uni_is_vit_large_with_its_configuration(small_uni):
    """The registered extractor builds UNI's real architecture, and refuses weights of any other."""
    uni = extractors.create('uni', cache_dir=small_uni[1], offline=True)  # finds the small ViT where UNI's lies
    params = uni.params()
    assert params['dim'] == 1024 and params['input_size'] == 224 and params['architecture'] == 'vit_large_patch16_224'
    assert params['mean'] == pytest.approx([255 * v for v in IMAGENET_MEAN])
    assert params['model_options'] == {'img_size': 224, 'patch_size': 16, 'init_values': 1e-5,
                                       'dynamic_img_size': True}
    network = uni.build_network()
    assert network.num_features == 1024 and len(network.blocks) == 24 and network.global_pool == 'token'
    assert torch.allclose(network.blocks[0].ls1.gamma, torch.full((1024,), 1e-5))  # UNI's LayerScale
    with pytest.raises(FeaturesError, match=r'do not fit the timm model vit_large_patch16_224: 308 tensors missing '
                                            r'.*tensors of another shape \(cls_token \(1, 1, 64\) instead of '
                                            r'\(1, 1, 1024\)'):
        uni.load()


def test_hf_hub_offline_is_honoured(tmp_path):
    """With HF_HUB_OFFLINE=1 a missing hub file fails at once, without trying (and retrying) the network."""
    code = ('from histomics_label.core.features.extractors import extractors\n'
            'from histomics_label.core.errors import FeaturesError\n'
            'try:\n    extractors.create("uni")\nexcept FeaturesError as exc:\n    print(exc)\n')
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_HUB_CACHE': str(tmp_path)}
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=60)
    assert 'No weights of MahmoodLab/UNI are in the Hugging Face cache' in result.stdout, result.stderr


def test_the_vector_representation_stores_timm_embeddings(checkpoints, nuclei, tmp_path):
    rgb, raster, table = nuclei
    path = str(tmp_path / 'nuclei.h5')
    height, width = raster.shape
    with SlideStore.create(path, SlideInfo('dsb2018', width, height, None, None, 1.0, width, height), {}) as writer:
        writer.create_label_raster(height, width)[:] = raster
        writer.write_segments(table)
    vector = VectorRepresentation(patch_size=32, extractor='timm', weights=checkpoints[0], batch_size=32,
                                  extractor_options={'model_name': 'resnet18', 'input_size': SIZE})
    assert vector.ensure(ArraySlide(rgb), path) is False
    with SlideStore(path) as store:
        assert vector.is_current(store) and store.feature_params('timm')['architecture'] == 'resnet18'
        features = vector.load(store)
    expected = np.zeros_like(features)
    for ids, batch in iter_patches(ArraySlide(rgb), raster, table, 32):
        expected[ids - 1] = reference_embeddings(checkpoints[0], batch)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)
    other = VectorRepresentation(patch_size=32, extractor='timm', weights=checkpoints[1],
                                 extractor_options={'model_name': 'resnet18', 'input_size': SIZE})
    with SlideStore(path) as store:
        assert not other.is_current(store)  # other weights: the stored embeddings are not theirs
