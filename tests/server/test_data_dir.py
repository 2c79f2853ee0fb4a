"""Where the server keeps slide stores when the admin set nothing: beside the current filesystem assetstore (on the
disk and in the backups that hold the slides), fixed at first use so that nothing moves later; an older server's
stores in the old home-folder default stay where they are; with no folder to put them in, a message says what to
set."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.plugin('histomics_label')


@pytest.fixture
def unset(monkeypatch, tmp_path):
    """No folder named by the environment, and no stores in the old default folder (a folder of this test)."""
    from histomics_label import settings

    monkeypatch.delenv('HISTOMICS_LABEL_DATA_DIR', raising=False)
    monkeypatch.setattr(settings, 'LEGACY_DATA_DIR', tmp_path / 'home' / '.local' / 'share' / 'histomics_label')
    return settings


def stored(key: str):
    from girder.models.setting import Setting

    document = Setting().findOne({'key': key})
    return document and document['value']


def test_stores_go_beside_the_current_filesystem_assetstore_and_stay_there(server, fsAssetstore, unset, tmp_path):
    from girder.models.assetstore import Assetstore

    expected = Path(fsAssetstore['root']) / 'histomics_label'
    assert unset.data_dir() == expected and expected.is_dir()
    assert stored(unset.DATA_DIR) == str(expected)  # fixed at first use
    # another assetstore made current later moves nothing
    other = Assetstore().createFilesystemAssetstore(name='other', root=str(tmp_path / 'other'))
    other['current'] = True
    Assetstore().save(other)
    assert Assetstore().getCurrent()['_id'] == other['_id']
    assert unset.data_dir() == expected


def test_the_environment_names_the_folder_before_the_first_start(server, fsAssetstore, unset, monkeypatch, tmp_path):
    monkeypatch.setenv('HISTOMICS_LABEL_DATA_DIR', str(tmp_path / 'stores'))
    assert unset.data_dir() == tmp_path / 'stores'
    assert stored(unset.DATA_DIR) == str(tmp_path / 'stores')
    monkeypatch.setenv('HISTOMICS_LABEL_DATA_DIR', str(tmp_path / 'elsewhere'))
    assert unset.data_dir() == tmp_path / 'stores'


def test_stores_in_the_old_default_folder_stay_there(server, fsAssetstore, unset):
    legacy = unset.LEGACY_DATA_DIR
    (legacy / 'project').mkdir(parents=True)
    (legacy / 'project' / 'slide.h5').write_bytes(b'a store')
    assert unset.data_dir() == legacy
    assert (legacy / 'project' / 'slide.h5').read_bytes() == b'a store'


def test_with_no_assetstore_the_admin_is_told_to_set_the_folder(server, unset):
    from girder.exceptions import GirderException

    with pytest.raises(GirderException, match='Set histomics_label.data_dir'):
        unset.data_dir()
    assert stored(unset.DATA_DIR) is None  # nothing fixed: the next try, with an assetstore, picks its folder


def test_an_explicit_setting_wins(server, fsAssetstore, unset, tmp_path):
    from girder.models.setting import Setting

    Setting().set(unset.DATA_DIR, str(tmp_path / 'chosen'))
    assert unset.data_dir() == tmp_path / 'chosen'
