"""HistomicsUI on Girder 3, the DSA of today, in Chromium: Girder 3.2.18 with HistomicsUI 1.8.1, and this plugin's
client compiled by ``girder build`` as an admin compiles it (``devtools.girder3_client``: pinned by the committed lock
file, cached by what made it). The same views as on Girder 5 draw in Girder 3's pages; HistomicsUI's image view links
a project's slide to its project, and shows nothing of ours, and no error, for a slide in none. From that image view
a labeler labels ten suggestions by keyboard in the panel beside the slide while HistomicsUI's own viewer pans to
each (its view as HistomicsUI records it in its address, against where the server says each segment lies), paints a
stroke on HistomicsUI's viewer (the segments labeled, against the slide's segment raster, and drawn in the category's
colour there); the panels' layers come and go with them; the project's review and set-up open as HistomicsUI routes;
a reader gets no labeling panel and sees the labels read only."""

import numpy as np
import pytest
from helpers.live_stack import add_user, plain_slide, seeded_project, stack_on, store_path

from histomics_label.core.io.store import SlideStore

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b', 'hotkey': 't'},
              {'name': 'stroma', 'color': '#3cb44b', 'hotkey': 's'},
              {'name': 'background', 'color': '#888888', 'excluded': True}]
CONFIG = {'categories': CATEGORIES, 'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0,
          'batchSize': 8}
SEED_NAMES = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
# ten labels by number keys and hotkeys: a row of eight, then two of the next row
KEYS = ['1', '2', 't', 's', '2', '1', 's', 't', '1', '2']
BY_KEY = {'1': 'tumor', '2': 'stroma', 't': 'tumor', 's': 'stroma'}
PAINT_KEY, PAINT_CATEGORY = '2', 'stroma'
READER = {'login': 'huireader', 'password': 'password1'}
LAYERS_ADDED = 2
"""What the panel adds to HistomicsUI's map: the segment's outline and the labeled segments' tint."""


@pytest.fixture(scope='module')
def girder3(web_client, tmp_path_factory):
    """A live stack on Girder 3 serving the client built for it."""
    with stack_on('girder3', tmp_path_factory.mktemp('girder3') / 'data') as stack:
        yield stack


@pytest.fixture(scope='module')
def slides(girder3, cmu_svs):
    """The sample slide in a project made through the REST API (segmented, seed labels, a first round; a reader
    added), and the same slide in a plain folder (in no project)."""
    client = girder3.client()
    made = seeded_project(client, cmu_svs, 'HistomicsUI project', CONFIG, SEED_NAMES)
    add_user(client, made['folder']['_id'], READER, 0)
    return {'project': made['folder'], 'slide': made['item'], 'base': made['base'], 'seeds': len(made['seeds']),
            'plainSlide': plain_slide(client, cmu_svs)}


@pytest.fixture(scope='module')
def observed(girder3, slides, browser_driver) -> dict:
    """What the driver script saw in Chromium (see histomicsui_girder3.mjs)."""
    request = {'projectId': slides['project']['_id'], 'slideId': slides['slide']['_id'],
               'plainSlideId': slides['plainSlide']['_id'], 'keys': KEYS, 'paintKey': PAINT_KEY, 'reader': READER}
    return browser_driver.run('histomicsui_girder3.mjs', girder3, request, timeout=500)


def test_girder_3_pages_load_the_plugin_built_by_girder_build(observed):
    home = observed['home']
    assert home['histomicsUI']
    assert {'api', 'GuidedView', 'ProjectView', 'ReviewView', 'BulkView'} <= set(home['plugin'])
    built = '/static/built/plugins/histomics_label/'
    assert home['files'] == [f'{built}plugin.min.css', f'{built}plugin.min.js', f'{built}histomics-label.js']
    assert not observed['consoleErrors'].get('login') and not observed['consoleErrors'].get('home')


def test_the_item_page_opens_the_project_in_girder_3s_pages(observed, slides):
    project = slides['project']
    assert observed['slideItem'] == {'names': [project['name']], 'openedHash': f'#histomics_label/project/'
                                     f'{project["_id"]}', 'projectName': project['name']}
    assert not observed['consoleErrors'].get('slideItem')


def test_histomicsui_links_a_project_slide_to_its_project(observed, girder3, slides):
    seen = observed['histomicsUI']
    root = girder3.info().url.rstrip('/')
    assert seen['viewer'] >= 1 and seen['imageMenu'] == slides['slide']['name']
    assert seen['menus'] == 1 and seen['names'] == [slides['project']['name']]
    # the project's page opens as a HistomicsUI route, in a window of its own (see the routes test)
    assert seen['projectLinks'] == [f'{root}/histomics#histomics_label/project/{slides["project"]["_id"]}']
    assert set(seen['targets']) == {'histomics_label'}
    assert not observed['consoleErrors'].get('histomicsUI')


def test_histomicsui_shows_nothing_of_ours_for_a_slide_in_no_project(observed, slides):
    assert observed['histomicsUIPlain'] == {'answer': [], 'menus': 0, 'imageMenu': slides['plainSlide']['name']}
    assert not observed['consoleErrors'].get('histomicsUIPlain')


def test_a_labeler_labels_suggestions_beside_histomicsuis_viewer_by_keyboard(observed, slides):
    steps = observed['labeled']
    assert [step['key'] for step in steps] == KEYS
    assert len({(step['item'], step['segment']) for step in steps}) == len(KEYS)
    # the server's labels once the keys were saved: the stroke painted next may cover a labeled segment
    stored = observed['storedAfterKeys']
    guided = {(label['item'], label['segment']): label['category'] for label in stored if label['view'] == 'guided'}
    assert guided == {(step['item'], step['segment']): BY_KEY[step['key']] for step in steps}
    assert len(stored) == slides['seeds'] + len(KEYS)
    assert not observed['consoleErrors'].get('huiLabel')


def test_histomicsuis_own_viewer_pans_to_each_suggestion(observed, girder3, slides):
    client = girder3.client()
    tiles = client.get(f'item/{slides["slide"]["_id"]}/tiles')
    views = []
    for step in observed['labeled']:
        assert step['image'] == slides['slide']['_id']
        # HistomicsUI's view as it records it in its address: left, top, right, bottom (base pixels), rotation
        left, top, right, bottom, _ = (float(value) for value in step['bounds'].split(','))
        where = client.get(f'{slides["base"]}/slide/{step["item"]}/segment/{step["segment"]}')
        x0, y0, x1, y1 = where['region']
        assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom, (step, where['region'])
        # centred on the segment, but where that would show past the slide's edge, moved in from it
        assert abs((left + right) / 2 - (x0 + x1) / 2) <= 1 or left <= 0 or right >= tiles['sizeX'], step
        assert abs((top + bottom) / 2 - (y0 + y1) / 2) <= 1 or top <= 0 or bottom >= tiles['sizeY'], step
        views.append((left, top, right, bottom))
    assert len(set(views)) > len(views) / 2  # it moved from segment to segment


def test_the_panels_layers_are_on_histomicsuis_map_while_it_is_open(observed):
    layers = observed['layers']
    assert layers['open'] == layers['before'] + LAYERS_ADDED
    assert layers['closed'] == layers['before']
    assert observed['panelAfterClose'] == 0


def test_a_stroke_on_histomicsuis_viewer_labels_the_segments_under_it(observed, girder3, slides):
    painting = observed['painting']
    assert painting['brushes'] == 1 and painting['layers'] == observed['layers']['before'] + 1  # the segments' layer
    # HistomicsUI's slide is still drawn under it (adding a layer once blanked it: docs/histomicsui.md)
    assert painting['whiteShare'] < 0.5, painting
    assert painting['chosen'] == PAINT_CATEGORY
    sent, answer = painting['request'], painting['answer']
    assert sent['item'] == slides['slide']['_id'] and sent['category'] == PAINT_CATEGORY
    segments = set(answer['segments'])
    client = girder3.client()
    stored = client.get(f'{slides["base"]}/labels', parameters={'limit': 0})
    assert {label['segment'] for label in stored if label['view'] == 'bulk'} == segments
    # against the slide's segment raster, read here from the store: every segment the stroke's line crosses is
    # labeled, and none lies farther than the brush's reach (plus a raster pixel) from it
    with SlideStore(store_path(client, slides['project'], slides['slide'])) as store:
        raster, scale = store.label_raster[:], store.slide_info.scale
    path = np.asarray(sent['points'], float) / scale
    reach = sent['radius'] / scale
    crossed = set(raster[points_along(path, raster.shape)].tolist()) - {0}
    assert crossed and crossed <= segments
    rows, columns = np.nonzero(np.isin(raster, list(segments)))
    centres = np.column_stack([columns + 0.5, rows + 0.5])
    nearest = {segment: np.inf for segment in segments}
    for segment, distance in zip(raster[rows, columns].tolist(), distance_to_path(centres, path), strict=True):
        nearest[segment] = min(nearest[segment], distance)
    assert max(nearest.values()) <= reach + 1, nearest
    # the segments' layer on HistomicsUI's map draws them in the category's colour (green) under the stroke
    assert painting['greenAfter'] > painting['greenBefore'] + 15, painting
    assert f'Labeled {len(segments)} segments as {PAINT_CATEGORY}' in painting['status']
    assert painting['closed'] == {'layers': observed['layers']['before'], 'brushes': 0}
    assert not observed['consoleErrors'].get('huiPaint')


def points_along(path: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The (row, column) indices of a raster of ``shape`` under points a tenth of a pixel apart along the polyline
    ``path``, those on the raster."""
    pieces = [np.linspace(a, b, max(2, int(np.hypot(*(b - a)) * 10)))
              for a, b in zip(path[:-1], path[1:], strict=True)]
    points = np.floor(np.concatenate(pieces)).astype(int)
    inside = (points >= 0).all(axis=1) & (points[:, 0] < shape[1]) & (points[:, 1] < shape[0])
    return points[inside, 1], points[inside, 0]


def distance_to_path(points: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Each point's distance to the polyline ``path`` (all in raster pixels)."""
    best = np.full(len(points), np.inf)
    for a, b in zip(path[:-1], path[1:], strict=True):
        step = b - a
        t = np.clip(((points - a) @ step) / max(step @ step, 1e-12), 0, 1)
        best = np.minimum(best, np.hypot(*(points - (a + t[:, None] * step)).T))
    return best


def test_review_and_set_up_open_as_histomicsui_routes(observed, girder3, slides):
    routes, project = observed['routes'], slides['project']
    base = f'#histomics_label/project/{project["_id"]}'
    expected = {'scrolls': True, 'histomicsUI': True, 'path': '/histomics', 'window': 'histomics_label'}
    assert routes['review'] == {**expected, 'hash': f'{base}/review'}
    assert routes['project'] == {**expected, 'hash': base, 'name': project['name']}
    # a link to Girder's folder page, which HistomicsUI's router lacks, opens in Girder's window
    root = girder3.info().url.rstrip('/')
    assert routes['folder'] == {'url': f'{root}/#folder/{project["_id"]}', 'window': 'girder'}
    assert not observed['consoleErrors'].get('huiRoutes')


def test_a_reader_gets_no_labeling_panel_and_sees_the_labels_read_only(observed, girder3, slides):
    seen = observed['reader']
    assert seen['names'] and seen['labelItems'] == 0
    assert seen['paintTexts'] == ["See this slide's labels (read only)"]
    assert seen['panelTexts'] == ['Show labels here (read only)']
    panel = seen['panel']
    assert panel['mode'] == 'pan' and not panel['brushEnabled']
    assert any('may see this project but not label it' in text for text in panel['messages'])
    stored = girder3.client().get(f'{slides["base"]}/labels', parameters={'limit': 0})
    assert panel['labeled'] == len({label['segment'] for label in stored})  # every labeled segment is drawn
    assert not observed['consoleErrors'].get('reader')
