"""Files in a project folder that are not slides are reported with why, not skipped in silence: a text file, a text
file named ``.tiff``, an empty item, and a real image that was not made a large image; the real slide is not among
them."""

import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _upload(folder, admin, name, data: bytes, mime: str):
    import io

    from girder.models.upload import Upload

    return Upload().uploadFromFile(io.BytesIO(data), len(data), name, parentType='folder', parent=folder, user=admin,
                                   mimeType=mime)


def test_the_project_lists_what_is_not_a_slide_and_why(server, bare_project, admin, user, tmp_path):
    from girder.models.item import Item
    from PIL import Image

    folder = bare_project['folder']
    _upload(folder, admin, 'notes.txt', b'tumour in the upper left\n', 'text/plain')
    _upload(folder, admin, 'fake.tiff', b'not an image at all', 'image/tiff')
    Item().createItem('empty', creator=admin, folder=folder)
    png = tmp_path / 'small.png'
    Image.new('RGB', (64, 48), (200, 120, 160)).save(png)
    file = _upload(folder, admin, 'small.png', png.read_bytes(), 'image/png')
    item = Item().load(file['itemId'], force=True)
    if item.get('largeImage'):  # large_image's auto-set made it one: undo, as an admin may have turned that off
        del item['largeImage']
        Item().save(item)
    response = server.request(f'/histomics_label/project/{folder["_id"]}', user=user)
    assertStatusOk(response)
    assert response.json['slides'] == 1
    reasons = {entry['name']: entry['reason'] for entry in response.json['notSlides']}
    assert sorted(reasons) == ['empty', 'fake.tiff', 'notes.txt', 'small.png']
    assert reasons['empty'] == 'It holds no file.'
    assert reasons['fake.tiff'] == ('No image reader of large_image can read fake.tiff (19 bytes, of type image/tiff): '
                                    'it is not a slide, or the file is damaged.')
    assert reasons['notes.txt'].startswith('No image reader of large_image can read notes.txt (25 bytes, of type '
                                           'text/plain)')
    assert 'use "Make large image" on its item page' in reasons['small.png']
    assert bare_project['item']['name'] not in reasons
