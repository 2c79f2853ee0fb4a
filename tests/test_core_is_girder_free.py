"""The engine must run where girder is not installed: importing every core module imports nothing from girder."""

import pkgutil
import subprocess
import sys

import histomics_label.core


def test_core_imports_nothing_from_girder():
    modules = [f'histomics_label.core.{m.name}' for m in pkgutil.iter_modules(histomics_label.core.__path__)]
    assert 'histomics_label.core.pipeline' in modules
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
