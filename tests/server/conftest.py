"""Girder server tests: pytest-girder on a mongomock-ng database (see ../shared/STACK.md), our plugin enabled. They
run on Girder 5 (pytest-girder 5) and on Girder 3.2 (pytest-girder 3.2, in ``devtools.girder3``'s environment).

pytest-girder's ``--mock-db`` uses stock mongomock, which cannot open Girder 5's tz-aware collections; these
fixtures make it use mongomock-ng (on both lines), teach Girder's ``@filtermodel`` its cursor types, and give its
cursor the ``count()`` that large_image_annotation's start-up migration calls. ``--mongo-uri`` (a real
MongoDB or the live stack's Mongo-wire server) runs the same tests against a real database.
"""

import shutil

import pytest


def pytest_configure(config):
    if config.getoption('--mongo-uri') == 'mongodb://localhost:27017':
        config.option.mock_db = True
    import mongomock_ng
    import mongomock_ng.collection
    import mongomock_ng.command_cursor
    import pytest_girder.fixtures

    pytest_girder.fixtures.mongomock = mongomock_ng
    if not hasattr(mongomock_ng.collection.Cursor, 'count'):
        # large_image_annotation's start-up migration thread still calls pymongo 3's Cursor.count()
        mongomock_ng.collection.Cursor.count = lambda cursor, *args, **kwargs: len(list(cursor.clone()))
    from girder.api import rest

    rest._MONGO_CURSOR_TYPES = (*rest._MONGO_CURSOR_TYPES, mongomock_ng.collection.Cursor,
                                mongomock_ng.command_cursor.CommandCursor)


def pytest_report_header(config):
    from importlib.metadata import version

    return f'server tests on girder {version("girder")} (pytest-girder {version("pytest-girder")})'


@pytest.fixture
def data_dir(db, tmp_path):
    """Where the server keeps slide stores in this test."""
    from girder.models.setting import Setting

    from histomics_label.settings import DATA_DIR

    path = tmp_path / 'data'
    Setting().set(DATA_DIR, str(path))
    return path


@pytest.fixture
def project(bare_project, embedded_cmu):
    """A project folder owned by admin, which ``user`` may read, with three categories (one excluded) and one real
    slide already segmented and embedded (a copy of the session's H&E store)."""
    from histomics_label.projects import folders

    shutil.copyfile(embedded_cmu, folders.store_path(bare_project['folder'], bare_project['item']))
    return bare_project


@pytest.fixture
def bare_project(server, admin, user, fsAssetstore, data_dir, cmu_svs):
    """The project of ``project`` before segment generation: its slide has no store yet."""
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.item import Item
    from girder.models.upload import Upload
    from girder_large_image.models.image_item import ImageItem

    from histomics_label.projects import folders

    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    folder = Folder().createFolder(home, 'Project', creator=admin)
    folder = Folder().setUserAccess(folder, user, AccessType.READ, save=True)
    with open(cmu_svs, 'rb') as handle:
        file = Upload().uploadFromFile(handle, cmu_svs.stat().st_size, cmu_svs.name, parentType='folder',
                                       parent=folder, user=admin)
    item = Item().load(file['itemId'], force=True)
    if not item.get('largeImage'):  # large_image sets it on upload where its auto-set setting is on
        ImageItem().createImageItem(item, file, user=admin, createJob=False)
        item = Item().load(file['itemId'], force=True)
    folders.save_config(folder, {'categories': CATEGORIES, **STORE_SETTINGS})
    return {'folder': Folder().load(folder['_id'], force=True), 'item': item}


STORE_SETTINGS = {'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0}
"""The settings the session's store was made with (tests/conftest.py ``EMBEDDED_FAST``); rounds only on request,
unless a test turns automatic retraining on."""
CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
              {'name': 'background', 'color': '#888888', 'excluded': True}]


@pytest.fixture(autouse=True)
def requests_end_like_the_servers(request):
    """After each ``server.request``, drop the request from the test's thread, as CherryPy's server does when a
    request ends: pytest-girder leaves it there, so code a test then calls directly would run as that request's user
    (the metadata guard, ``projects/metadata_guard.py``, would judge it by that user)."""
    import cherrypy

    if 'server' not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue('server')
    original = server.request

    def ended(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        finally:
            cherrypy.serving.clear()

    server.request = ended
    yield
    server.request = original


@pytest.fixture(autouse=True)
def rankings_end_with_the_test(request):
    """After each test with a server, wait for the rankings its rounds queued (``jobs.rankings``), which
    ``train?wait=true`` does not wait for: they would otherwise write into the next test's database and data
    folder."""
    if 'server' not in request.fixturenames:
        yield
        return
    request.getfixturevalue('server')  # so that this ends before the server and its database
    yield
    from histomics_label.jobs.rankings import KIND, wait_for_rankings
    from histomics_label.models.work_queue import HeavyWork

    for project in HeavyWork().collection.distinct('project', {'kind': KIND}):
        wait_for_rankings(project, timeout=300)
