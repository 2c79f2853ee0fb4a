"""The project page's view of the segment-job queue, in Chromium on the live stack: with one heavy job per server
process, "Make segments" on a project of two real H&E slides runs one and queues the other; the page shows each
slide's place exactly as the server's ``GET .../work`` says (to a reader too, without Cancel buttons), and the
admin's Cancel buttons take the queued job out of the queue (it never runs) and stop the running one, which the
server confirms."""

import pytest
from helpers.live_stack import add_user, slide_project

pytestmark = [pytest.mark.live, pytest.mark.browser]

# full resolution and small segments with embeddings and their map: minutes per slide, so the first job is still
# running while the page is read and the queued one cancelled (the test cancels it too, so it never waits for it)
CONFIG = {'categories': [{'name': 'tumor'}, {'name': 'stroma'}], 'magnification': 20, 'radius': 8,
          'patchSize': 48, 'embeddingMap': True}
CANCELED = 5
READER = {'login': 'queuereader', 'password': 'password1'}


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A project of two copies of the sample slide, not segmented, on a server that runs one heavy job at a time."""
    client = stack.client()
    client.put('system/setting', parameters={'key': 'histomics_label.heavy_jobs_per_process', 'value': 1})
    folder, first, base = slide_project(client, cmu_svs, 'Queue project', CONFIG)
    second = client.getItem(client.uploadFileToFolder(folder['_id'], str(cmu_svs))['itemId'])
    if not second.get('largeImage'):
        client.post(f'item/{second["_id"]}/tiles', parameters={'fileId': next(client.listFile(second['_id']))['_id']})
    add_user(client, folder['_id'], READER, 0)
    return {'folder': folder, 'items': [first['_id'], second['_id']], 'base': base}


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    """What the driver script saw in Chromium (see segment_queue.mjs)."""
    request = {'projectId': project['folder']['_id'], 'reader': READER}
    return browser_driver.run('segment_queue.mjs', stack, request, timeout=600)


def test_rows_show_the_servers_queue(observed, project):
    queued = observed['queued']
    work = queued['work']
    assert queued['workAfter'] == work, 'the queue changed while the page was read'
    assert work['perProcess'] == 1
    assert sorted(entry['item'] for entry in work['work']) == sorted(project['items'])
    running = next(entry for entry in work['work'] if entry['status'] == 'running')
    waiting = next(entry for entry in work['work'] if entry['status'] == 'queued')
    assert (running['position'], waiting['position']) == (0, 1)
    rows = queued['rows']
    assert rows[running['item']]['state'] == 'running'
    assert rows[running['item']]['status'].startswith('running')
    assert rows[waiting['item']] == {'state': 'queued', 'position': '1', 'status': 'queued (1st in line)',
                                     'cancel': waiting['job']}
    assert rows[running['item']]['cancel'] == running['job']


def test_reader_sees_the_queue_without_cancel(observed):
    reader = observed['reader']
    waiting = next(entry for entry in reader['work']['work'] if entry['status'] == 'queued')
    assert waiting['position'] == 1
    assert reader['rows'][waiting['item']] == {'state': 'queued', 'position': '1', 'status': 'queued (1st in line)',
                                               'cancel': None}
    assert reader['buttons'] == 0


def test_cancel_takes_the_queued_job_out(observed, stack):
    queued = observed['queued']['work']['work']
    waiting = next(entry for entry in queued if entry['status'] == 'queued')
    running = next(entry for entry in queued if entry['status'] == 'running')
    after = observed['cancelQueued']
    assert after['rows'][waiting['item']] == {'state': 'canceled', 'position': None, 'status': 'canceled',
                                              'cancel': None}
    assert after['rows'][running['item']]['state'] == 'running'
    assert [entry['job'] for entry in after['work']['work']] == [running['job']]
    job = stack.client().get(f'job/{waiting["job"]}')
    assert job['status'] == CANCELED
    assert not job.get('progress')  # it never ran: a started segment job has a progress total


def test_cancel_stops_the_running_job(observed, stack, project):
    running = next(entry for entry in observed['queued']['work']['work'] if entry['status'] == 'running')
    after = observed['cancelRunning']
    assert after['work'] == {'work': [], 'perProcess': 1}
    assert after['rows'][running['item']] == {'state': 'canceled', 'position': None, 'status': 'canceled',
                                              'cancel': None}
    assert after['message'] == '2 segment job(s) cancelled.'
    client = stack.client()
    assert client.get(f'job/{running["job"]}')['status'] == CANCELED
    assert client.get(f'{project["base"]}/work')['work'] == []
    assert [slide['segments'] for slide in client.get(f'{project["base"]}/slides')] == [None, None]


def test_no_console_errors(observed):
    for phase in ('login', 'open', 'make', 'reader', 'cancelQueued', 'cancelRunning'):
        assert not observed['consoleErrors'].get(phase), (phase, observed['consoleErrors'][phase])
