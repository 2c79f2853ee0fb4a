"""The default category colours: the web client offers the same palette the server assigns (two copies that must not
drift), and its first eight stay apart for colour-blind eyes (the client's warning uses the same measure)."""

import itertools
import re
from pathlib import Path

import numpy as np

from histomics_label.core.io.labels import DEFAULT_COLORS

CLIENT = Path(__file__).parents[3] / 'plugin_client' / 'src' / 'views' / 'project' / 'CategoriesView.js'
VISIONS = {  # Machado, Oliveira and Fernandes 2009, full severity, on linear RGB (as colourVision.js)
    'protanopia': [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    'deuteranopia': [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    'tritanopia': [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}


def _lab(hex_colour: str, matrix=None) -> np.ndarray:
    from skimage.color import rgb2lab

    srgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if matrix is not None:
        linear = np.clip(np.asarray(matrix) @ linear, 0, 1)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return rgb2lab(encoded.reshape(1, 1, 3))[0, 0]


def test_the_client_offers_the_servers_palette():
    source = CLIENT.read_text()
    block = re.search(r'export const PALETTE = \[(.*?)\];', source, re.S).group(1)
    assert re.findall(r"'(#[0-9a-f]{6})'", block) == DEFAULT_COLORS


def test_the_first_eight_colours_stay_apart_for_colour_blind_eyes():
    for first, second in itertools.combinations(DEFAULT_COLORS[:8], 2):
        for name, matrix in [('normal', None), *VISIONS.items()]:
            distance = np.linalg.norm(_lab(first, matrix) - _lab(second, matrix))
            assert distance >= 12, (first, second, name, distance)
