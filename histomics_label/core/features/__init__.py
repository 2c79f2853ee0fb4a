"""Representations of segments: masked square patches, embeddings from pretrained networks (the ``extractors``
registry), the representation registry that pairs each with the models that can learn from it, and the colour
map of the embedding space."""
