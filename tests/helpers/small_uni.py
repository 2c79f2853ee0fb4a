"""A UNI of test size: the ``uni`` extractor's own code with a 2-block, 64-wide ViT/16 in place of ViT-L/16, and
checkpoints of it written in the file layout of UNI's hub repository, so the extractor is tested for real in
seconds (ViT-L takes about a minute per batch of eight patches on two cores, and its weights are gated)."""

import hashlib
import json
import os

import torch

from histomics_label.core.features.extractors import UNIExtractor
from histomics_label.core.features.extractors.hub import IMAGENET_MEAN, IMAGENET_STD

SMALL_VIT = {'embed_dim': 64, 'depth': 2, 'num_heads': 4}
"""What shrinks ViT-L/16 (1024 wide, 24 blocks, 16 heads); patch size, LayerScale and the class token stay UNI's."""


class SmallUNI(UNIExtractor):
    """The registered ``uni`` extractor, changed only in the size of its ViT."""

    MODEL_OPTIONS = {**UNIExtractor.MODEL_OPTIONS, **SMALL_VIT}
    dim = SMALL_VIT['embed_dim']


def small_uni_network(seed: int, **changes):
    """The small UNI ViT as timm builds it from UNI's model card arguments, randomly initialised from ``seed``."""
    import timm

    torch.manual_seed(seed)
    options = {**UNIExtractor.MODEL_OPTIONS, **SMALL_VIT, **changes}
    return timm.create_model(UNIExtractor.ARCHITECTURE, num_classes=0, **options).eval()


def hub_cache(folder, repo: str, files: dict) -> str:
    """A Hugging Face cache holding ``files`` (name → function writing that file at a path) of ``repo`` at one
    revision, laid out as huggingface_hub keeps a download. Returns the cache folder."""
    commit = hashlib.sha1(repo.encode()).hexdigest()
    root = os.path.join(folder, f'models--{repo.replace("/", "--")}')
    snapshot = os.path.join(root, 'snapshots', commit)
    os.makedirs(snapshot)
    os.makedirs(os.path.join(root, 'refs'))
    with open(os.path.join(root, 'refs', 'main'), 'w') as handle:
        handle.write(commit)
    for name, write in files.items():
        write(os.path.join(snapshot, name))
    return str(folder)


def uni_hub_files(network) -> dict:
    """``network`` as UNI's hub repository ships it, for ``hub_cache``: ``pytorch_model.bin`` (the plain state dict
    of the ViT built with no classifier, saved with ``torch.save``) and timm's ``config.json``."""
    config = {'architecture': UNIExtractor.ARCHITECTURE, 'num_classes': 0, 'num_features': network.num_features,
              'global_pool': 'token', 'model_args': {**UNIExtractor.MODEL_OPTIONS, **SMALL_VIT},
              'pretrained_cfg': {'input_size': [3, 224, 224], 'interpolation': 'bilinear', 'mean': list(IMAGENET_MEAN),
                                 'std': list(IMAGENET_STD), 'num_classes': 0, 'classifier': 'head'}}

    def write_config(path: str) -> None:
        with open(path, 'w') as handle:
            json.dump(config, handle)
    return {'pytorch_model.bin': lambda path: torch.save(network.state_dict(), path), 'config.json': write_config}
