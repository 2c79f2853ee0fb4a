"""Registries find the variants installed packages declare in an entry-point group, the way large_image finds tile
sources; a variant that fails to import is logged and skipped, and the built-in ones stay."""

import logging
import sys

import pytest

from histomics_label.core.errors import ConfigurationError
from histomics_label.core.registry import Registry

GROUP = 'histomics_label_tests.things'


@pytest.fixture
def installed_plugins(tmp_path, monkeypatch):
    """A distribution on ``sys.path`` declaring two entry points in ``GROUP``: one whose module registers a variant
    in ``things``, one whose module fails to import."""
    things = Registry('thing')
    monkeypatch.setitem(sys.modules, 'tests_things_registry', type(sys)('tests_things_registry'))
    sys.modules['tests_things_registry'].things = things
    (tmp_path / 'good_thing.py').write_text(
        'from tests_things_registry import things\n\n\n'
        '@things.register("good")\n'
        'class Good:\n'
        '    pass\n')
    (tmp_path / 'broken_thing.py').write_text('import a_module_that_is_not_installed\n')
    info = tmp_path / 'thing_plugins-1.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: thing-plugins\nVersion: 1.0\n')
    (info / 'entry_points.txt').write_text(f'[{GROUP}]\ngood = good_thing\nbroken = broken_thing\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield things
    for name in ('good_thing', 'broken_thing'):
        sys.modules.pop(name, None)


def test_entry_points_register_their_variants_and_a_broken_one_is_skipped(installed_plugins, caplog):
    things = installed_plugins

    @things.register('built_in')
    class BuiltIn:
        pass

    with caplog.at_level(logging.WARNING, logger='histomics_label.core.registry'):
        loaded = things.load_entry_points(GROUP)
    assert loaded == ['good']
    assert things.names() == ['built_in', 'good']
    assert things.get('good').name == 'good'
    (record,) = [r for r in caplog.records if 'broken' in r.getMessage()]
    assert 'broken_thing' in record.getMessage() and 'a_module_that_is_not_installed' in record.getMessage()
    with pytest.raises(ConfigurationError, match="Unknown thing 'broken'; choose one of: built_in, good"):
        things.get('broken')


def test_a_group_nobody_declares_loads_nothing():
    assert Registry('thing').load_entry_points('histomics_label_tests.nobody') == []


def test_a_name_registered_twice_is_refused():
    things = Registry('thing')
    things.register('one')(type('One', (), {}))
    with pytest.raises(ValueError, match="thing 'one' is registered twice"):
        things.register('one')(type('Other', (), {}))
