""""More like this": a nearest-neighbour index over segment embeddings and the ranked retrieval, with negatives, that
the similar-segments route and CLI serve."""
