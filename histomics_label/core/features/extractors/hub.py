"""Feature extractors backed by timm: any timm architecture (``timm``) and the UNI pathology model (``uni``).

No weights ship with the package; the deployment supplies them, either as a local checkpoint (``weights_path``: a
state dict saved with ``torch.save`` or a ``.safetensors`` file) or as a Hugging Face hub repository (``hf-hub:org/
name`` as the timm model name, or ``hub_id``). Hub files are taken from the local Hugging Face cache, or downloaded
when the hub can be reached; ``HF_HUB_OFFLINE=1`` (honoured by huggingface_hub) or ``offline=True`` keeps to the
cache. Gated repositories such as UNI need their licence accepted on the hub and ``HF_TOKEN`` set to download.

Whatever the source, this module reads the weights file itself, digests it for the store's parameters (so features
are reused only with the same weights) and loads it strictly into the architecture. No timm, no weights, an
unreachable or gated hub, or weights of another shape are a ``FeaturesError`` naming the cause: an extractor never
falls back to random weights. timm itself imports torchvision, which must be the release built for the installed
torch (a mismatched one fails with "operator torchvision::nms does not exist"; that is reported too).
"""

from __future__ import annotations

import json
import os

from ...errors import ConfigurationError, FeaturesError
from .base import TorchImageExtractor, extractors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HUB_PREFIX = 'hf-hub:'
HUB_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
"""Weight files looked for in a hub repository, in order (the names timm's own hub uploads use)."""


def import_timm():
    """The timm module, or a ``FeaturesError`` saying why it cannot be used."""
    try:
        import timm
    except ImportError as exc:
        raise FeaturesError('The timm and uni feature extractors need the timm package: pip install '
                            f'"histomics-label[timm]" ({exc})') from None
    except Exception as exc:  # a torchvision built for another torch raises RuntimeError on import
        import torch

        raise FeaturesError(f'timm is installed but cannot be imported ({type(exc).__name__}: {exc}). This usually '
                            'means torchvision was not built for the installed torch '
                            f'{torch.__version__}: install the torchvision release made for it') from None
    return timm


def hub_file(repo_id: str, filenames: tuple[str, ...], cache_dir: str | None = None, offline: bool = False) -> str:
    """Local path of the first of ``filenames`` that hub repository ``repo_id`` (``org/name[@revision]``) has.

    The Hugging Face cache (``cache_dir`` or the default one) is looked in first, for every name; only then is the
    hub asked, unless ``offline`` or ``HF_HUB_OFFLINE`` is set. An unreachable hub is given up on at its first
    file: huggingface_hub retries each request for about 25 seconds, which is worth waiting once, not per name.
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise FeaturesError(f'Weights from the Hugging Face hub ({repo_id}) need the huggingface_hub package, '
                            'which timm installs; or pass weights_path') from None
    repo, _, revision = repo_id.partition('@')
    missing = []
    for local_only in (True,) if offline else (True, False):
        for filename in filenames:
            try:
                return hf_hub_download(repo, filename, revision=revision or None, cache_dir=cache_dir,
                                       local_files_only=local_only)
            except Exception as exc:
                kinds = {cls.__name__ for cls in type(exc).__mro__}
                if 'GatedRepoError' in kinds:
                    raise FeaturesError(f'{repo} is a gated Hugging Face repository: accept its licence on the hub '
                                        'and set HF_TOKEN to download it, or download its weights once and pass '
                                        'weights_path') from None
                if 'RepositoryNotFoundError' in kinds:
                    raise FeaturesError(f'There is no Hugging Face repository {repo} (or it is private: set '
                                        'HF_TOKEN)') from None
                if 'EntryNotFoundError' not in kinds and not isinstance(exc, OSError):
                    raise FeaturesError(f'Cannot get {filename} of {repo} from the Hugging Face hub: '
                                        f'{_first_line(exc)}') from None
                if local_only:
                    continue
                missing.append(f'{filename} ({_first_line(exc)})')
                if 'LocalEntryNotFoundError' in kinds:  # the hub cannot be reached (or HF_HUB_OFFLINE is set)
                    break
    tried = f'; asked the hub for: {"; ".join(missing)}' if missing else ''
    raise FeaturesError(f'No weights of {repo} are in the Hugging Face cache{" at " + cache_dir if cache_dir else ""}'
                        f' (looked for {", ".join(filenames)}) and they cannot be downloaded here{tried}. Download '
                        'them where the hub can be reached (huggingface-cli download), or pass weights_path')


def read_state_dict(path: str) -> dict:
    """The tensors of a checkpoint file: a torch state dict (``{'state_dict': …}`` or ``{'model': …}`` unwrapped)
    or a ``.safetensors`` file. Loading never runs code from the file (``weights_only``)."""
    import torch

    if not os.path.isfile(path):
        raise FeaturesError(f'The weights file {path} does not exist')
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file

            state = load_file(path, device='cpu')
        else:
            state = torch.load(path, map_location='cpu', weights_only=True)
    except ImportError:
        raise FeaturesError(f'{path} is a .safetensors file, which needs the safetensors package') from None
    except Exception as exc:
        raise FeaturesError(f'{path} is not a weights file that can be read ({_first_line(exc)})') from None
    for wrapper in ('state_dict', 'model'):
        if isinstance(state, dict) and set(state) == {wrapper} and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FeaturesError(f'{path} does not hold a state dict of tensors (it holds a {type(state).__name__})')
    return state


@extractors.register('timm')
class TimmExtractor(TorchImageExtractor):
    """Any timm architecture, pooled to its ``num_features`` embedding (the network built with no classifier).

    ``model_name`` is a timm architecture (``resnet50``, ``vit_base_patch16_224``…) or ``hf-hub:org/name`` for a
    hub repository holding a timm ``config.json`` and weights. The weights are ``weights_path`` if given, else the
    hub repository's (``hub_id``, the ``hf-hub:`` name, or timm's default hub weights of the architecture).
    ``model_options`` are passed to ``timm.create_model``. Input size, mean and std follow the model's pretrained
    configuration; ``input_size`` overrides the size. The checkpoint must fit the architecture exactly, except
    that the weights of a classifier head are dropped, since the embedding comes before it.
    """

    def __init__(self, model_name: str | None = None, weights_path: str | None = None, device: str = 'cpu',
                 batch_size: int = 64, model_options: dict | None = None, input_size: int | None = None,
                 hub_id: str | None = None, cache_dir: str | None = None, offline: bool = False) -> None:
        if not model_name:
            raise ConfigurationError('The timm extractor needs model_name: a timm architecture (e.g. "resnet50") '
                                     'or a hub repository ("hf-hub:org/name")')
        if input_size is not None and (not isinstance(input_size, int) or input_size < 1):
            raise ConfigurationError(f'input_size must be a positive number of pixels, not {input_size!r}')
        self._timm = import_timm()
        self.model_name = model_name
        self.model_options = dict(model_options or {})
        self.hub_id = hub_id or (model_name[len(HUB_PREFIX):] if model_name.startswith(HUB_PREFIX) else None)
        self.cache_dir = cache_dir
        self.offline = bool(offline)
        self._input_size = input_size
        self._skeleton = None
        self._config: dict | None = None
        if not model_name.startswith(HUB_PREFIX) and not self._timm.is_model(model_name):
            raise ConfigurationError(f'timm has no architecture {model_name!r}')
        super().__init__(device, batch_size, weights_path)

    # -- weights and architecture ---------------------------------------------------------------------------------

    def default_weights_path(self) -> str:
        """The hub weights file, from the cache or downloaded (see ``hub_file``)."""
        repo = self.hub_id
        filenames = HUB_WEIGHT_FILES
        if repo is None:
            cfg = self._timm.models.get_pretrained_cfg(self.model_name)
            repo = getattr(cfg, 'hf_hub_id', None)
            if getattr(cfg, 'hf_hub_filename', None):
                filenames = (cfg.hf_hub_filename, *filenames)
        if not repo:
            raise FeaturesError(f'No weights for the timm model {self.model_name!r}: timm knows no hub weights for '
                                'it, so pass weights_path (a checkpoint of this architecture)')
        return hub_file(repo, filenames, self.cache_dir, self.offline)

    def describe(self) -> dict:
        """Architecture, its arguments and its pretrained configuration (mean, std, input size, classifier)."""
        if self._config is None:
            if self.model_name.startswith(HUB_PREFIX):
                with open(hub_file(self.hub_id, ('config.json',), self.cache_dir, self.offline)) as handle:
                    config = json.load(handle)
                pretrained = dict(config.get('pretrained_cfg', config))
                architecture, arguments = config.get('architecture'), dict(config.get('model_args', {}))
                if not architecture:
                    raise FeaturesError(f'The config.json of {self.hub_id} names no timm architecture')
            else:
                cfg = self._timm.models.get_pretrained_cfg(self.model_name)
                pretrained = cfg.to_dict() if cfg is not None else {}
                architecture, arguments = self.model_name, {}
            self._config = {'architecture': architecture, 'arguments': {**arguments, **self.model_options},
                            'pretrained': pretrained}
        return self._config

    def build_network(self):
        """The architecture with no classifier and no weights (built once, then reused by ``load``)."""
        if self._skeleton is None:
            config = self.describe()
            try:
                self._skeleton = self._timm.create_model(config['architecture'], pretrained=False,
                                                         **{**config['arguments'], 'num_classes': 0})
            except (TypeError, ValueError, RuntimeError) as exc:
                raise FeaturesError(f'timm cannot build {config["architecture"]} with options '
                                    f'{config["arguments"]}: {_first_line(exc)}') from None
        return self._skeleton

    def load(self):
        """Build the network and load the weights strictly (once); a ``FeaturesError`` if they do not fit."""
        if self._network is not None:
            return self._network
        import torch

        state = read_state_dict(self.weights_path)
        network = self.build_network()
        classifier = self.describe()['pretrained'].get('classifier')
        if classifier and not any(key.startswith(f'{classifier}.') for key in network.state_dict()):
            state = {key: value for key, value in state.items() if not key.startswith(f'{classifier}.')}
        problems = _misfit(network.state_dict(), state)
        if problems:
            raise FeaturesError(f'The weights in {self.weights_path} do not fit the timm model '
                                f'{self.describe()["architecture"]}: {problems}')
        network.load_state_dict(state, strict=True)
        self._network = network.eval().to(self.device, memory_format=torch.channels_last)
        return self._network

    def embed(self, network, images):
        return network(images)

    # -- what the store records -----------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.build_network().num_features)

    @property
    def input_size(self) -> int:
        return self._input_size or int(self.describe()['pretrained'].get('input_size', (3, 224, 224))[-1])

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(255.0 * v for v in self.describe()['pretrained'].get('mean', IMAGENET_MEAN))

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(255.0 * v for v in self.describe()['pretrained'].get('std', IMAGENET_STD))

    def params(self) -> dict:
        config = self.describe()
        return {**super().params(), 'architecture': config['architecture'],
                'model_options': json.loads(json.dumps(config['arguments'], default=str))}


@extractors.register('uni')
class UNIExtractor(TimmExtractor):
    """UNI (Chen et al., 2024), a ViT-L/16 trained on 100 million H&E patches; 1024-d embeddings of its class token.

    The architecture is timm's ``vit_large_patch16_224`` with UNI's configuration (``init_values=1e-5``,
    ``dynamic_img_size=True``, no classifier) and ImageNet mean and std, on 224-pixel inputs. Its weights are
    gated: pass ``weights_path`` (UNI's ``pytorch_model.bin``), or have ``hub_id`` (``MahmoodLab/UNI``) in the
    Hugging Face cache. The cache folder is named after the id as it was downloaded, so give the same spelling.
    """

    ARCHITECTURE = 'vit_large_patch16_224'
    MODEL_OPTIONS = {'img_size': 224, 'patch_size': 16, 'init_values': 1e-5, 'dynamic_img_size': True}
    """UNI's timm architecture and the arguments its model card creates it with; its checkpoint fits only these."""
    dim = 1024
    input_size = 224
    mean = tuple(255.0 * v for v in IMAGENET_MEAN)
    std = tuple(255.0 * v for v in IMAGENET_STD)

    def __init__(self, weights_path: str | None = None, device: str = 'cpu', batch_size: int = 64,
                 hub_id: str = 'MahmoodLab/UNI', cache_dir: str | None = None, offline: bool = False) -> None:
        super().__init__(self.ARCHITECTURE, weights_path, device, batch_size, model_options=dict(self.MODEL_OPTIONS),
                         hub_id=hub_id, cache_dir=cache_dir, offline=offline)

    def describe(self) -> dict:
        return {'architecture': self.ARCHITECTURE, 'arguments': self.model_options,
                'pretrained': {'classifier': 'head'}}


def _misfit(expected: dict, given: dict) -> str:
    """What keeps checkpoint ``given`` from loading into a network whose state is ``expected``; '' if nothing.

    Counts and a few names rather than torch's full list, which for a ViT-L runs to thousands of characters.
    """
    def sample(keys: list[str]) -> str:
        return ', '.join(keys[:3]) + (', …' if len(keys) > 3 else '')

    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    reshaped = [f'{key} {tuple(given[key].shape)} instead of {tuple(value.shape)}'
                for key, value in expected.items() if key in given and given[key].shape != value.shape]
    parts = [f'{len(found)} {what} ({sample(found)})' for what, found in (
        ('tensors missing', missing), ('unexpected tensors', unexpected), ('tensors of another shape', reshaped))
        if found]
    return '; '.join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
