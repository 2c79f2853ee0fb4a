"""Labelers writing at once, the same labeler in 8 threads (two tabs, a retry) and 8 labelers, with a reviewer
approving meanwhile: no label is lost or made twice, and the stored labels are a serial replay of the writes.

What "serial replay" means when writes race: each change of a label applies at one moment inside its request, so
the changes of one label form a single chain, each starting from exactly the document the one before it left. The
test rebuilds that chain from the recorded events (each holds the whole document before and after) and asserts:
every change starts from the previous one's result (no update lost, no fork), replaying the chain gives the stored
document exactly, every acknowledged write of a segment is in it once, and the chain respects real time: a change
never comes after one of a request that started only after its own request was acknowledged. So the label left is
the last acknowledged write where writes did not overlap, and one of the overlapping last writes where they did.
"""

import copy
import itertools
import json
import random
import threading
import time

import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')

THREADS = 8
REQUESTS = 10
POOL = 24
"""Segments every thread writes to: each request names 6 of them, so requests overlap all the time."""
CATEGORIES = ('tumor', 'stroma', 'background')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


class Log:
    """What the clients sent and when each request started and was acknowledged, by batch id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[str, dict] = {}
        self.errors: list[str] = []

    def send(self, server, user, method, path, what, **kwargs):
        start = time.monotonic()
        response = server.request(path, method=method, user=user, **kwargs)
        ack = time.monotonic()
        with self.lock:
            if response.status != '200 OK':
                self.errors.append(f'{method} {path}: {response.status} {response.json}')
                return None
            self.requests[response.json['batch']] = {'start': start, 'ack': ack, **what}
        return response.json


def _labeler_work(server, project, user, log, seed):
    rng = random.Random(seed)
    item = str(project['item']['_id'])
    for _ in range(REQUESTS):
        segments = rng.sample(range(1, POOL + 1), 6)
        if rng.random() < 0.25:
            body = {'labels': [{'item': item, 'segment': s} for s in segments]}
            log.send(server, user, 'DELETE', _path(project, '/labels'), {'user': user['_id'], 'delete': segments},
                     type='application/json', body=json.dumps(body))
        else:
            labels = {s: rng.choice(CATEGORIES) for s in segments}
            body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in labels.items()],
                    'view': rng.choice(('guided', 'bulk'))}
            log.send(server, user, 'PUT', _path(project, '/labels'), {'user': user['_id'], 'labels': labels,
                     'view': body['view']}, type='application/json', body=json.dumps(body))


def _reviewer_work(server, project, reviewer, log, stop):
    rng = random.Random(99)
    while not stop.is_set():
        listed = server.request(_path(project, '/labels'), user=reviewer, params={'limit': 0})
        assertStatusOk(listed)
        for label in rng.sample(listed.json, min(3, len(listed.json))):
            category = rng.choice((None, *CATEGORIES))
            start = time.monotonic()
            response = server.request(_path(project, f'/labels/{label["_id"]}/review'), method='PUT', user=reviewer,
                                      params={} if category is None else {'category': category})
            if response.status == '200 OK':
                with log.lock:
                    log.requests[response.json['batch']] = {'start': start, 'ack': time.monotonic()}
            elif response.status != '400 Bad Request':  # 400: the label was deleted meanwhile
                log.errors.append(f'review: {response.status} {response.json}')


def _run(server, project, users, reviewer):
    log, stop = Log(), threading.Event()
    threads = [threading.Thread(target=_labeler_work, args=(server, project, user, log, seed))
               for seed, user in enumerate(users)]
    review = threading.Thread(target=_reviewer_work, args=(server, project, reviewer, log, stop))
    for thread in [*threads, review]:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    review.join()
    assert log.errors == []
    return log


def _chains(events):
    """Each label's changes in the order they applied, rebuilt from the revisions they started from and left:
    ``{(labeler, segment): [lives]}``, a life being the changes from one creation to its deletion (or to now)."""
    by_key: dict = {}
    for event in events:
        label = event['beforeLabel'] or event['afterLabel']
        by_key.setdefault((label['labeler'], label['segment']), []).append(event)
    chains = {}
    for key, changes in by_key.items():
        following: dict = {}
        for event in changes:
            if event['beforeLabel'] is not None:
                rev = event['beforeLabel']['rev']
                assert rev not in following, (f'{key}: a {following.get(rev, {}).get("action")} and a '
                                              f'{event["action"]} started from the same revision (one was lost)')
                following[rev] = event
        lives = []
        for first in (e for e in changes if e['beforeLabel'] is None):
            life = [first]
            while life[-1]['afterLabel'] is not None and life[-1]['afterLabel']['rev'] in following:
                life.append(following.pop(life[-1]['afterLabel']['rev']))
            lives.append(life)
        assert following == {}, f'{key}: changes that start from no revision any change left'
        chains[key] = lives
    return chains


def _assert_serial_replay(project, log):
    from histomics_label.models.label import Label, LabelEvent

    stored = {(d['labeler'], d['segment']): d for d in Label().find({'project': project['folder']['_id']})}
    events = list(LabelEvent().find({'project': project['folder']['_id']}))
    assert {e['batch'] for e in events} <= set(log.requests)  # nothing changed that no request acknowledged
    chains = _chains(events)
    for key, lives in chains.items():
        live = [life for life in lives if life[-1]['afterLabel'] is not None]
        assert len(live) <= 1, f'{key}: two labels at once'
        for life in lives:
            for earlier, later in itertools.pairwise(life):
                assert later['beforeLabel'] == earlier['afterLabel']  # each change starts where the last one ended
                assert log.requests[later['batch']]['ack'] >= log.requests[earlier['batch']]['start']
        if live:
            assert stored.pop(key) == live[0][-1]['afterLabel']  # the replay ends in the stored document exactly
            last = log.requests[live[0][-1]['batch']]
            started_after = [batch for batch, r in log.requests.items() if r.get('user') == key[0]
                             and key[1] in [*r.get('labels', {}), *r.get('delete', [])] and r['start'] > last['ack']]
            assert started_after == [], f'{key}: a write acknowledged before another one started won'
    assert stored == {}, 'labels no event made'
    # every acknowledged label write is in its segment's chain exactly once, as it was sent
    made = {(e['batch'], e['afterLabel']['labeler'], e['afterLabel']['segment']): e['afterLabel']
            for e in events if e['action'] == 'label'}
    for batch, request in log.requests.items():
        for segment, category in request.get('labels', {}).items():
            label = made.pop((batch, request['user'], segment))
            assert (label['category'], label['view']) == (category, request['view'])
    assert made == {}
    return chains


def _races(log):
    """How many pairs of requests by one labeler wrote the same segment while both were in flight."""
    writes = [r for r in log.requests.values() if 'user' in r]
    return sum(a['user'] == b['user'] and a['start'] < b['ack'] and b['start'] < a['ack']
               and bool({*a.get('labels', {}), *a.get('delete', [])} & {*b.get('labels', {}), *b.get('delete', [])})
               for a, b in itertools.combinations(writes, 2))


@pytest.fixture(autouse=True)
def atomic_documents(db, pytestconfig, monkeypatch):
    """Give mongomock-ng, the test database, MongoDB's guarantee that one operation on one document is atomic and
    that a read sees whole documents. It has none: ``find_one_and_delete`` is a find then a delete, an update
    matches a document then changes it in place, so two threads can both change the revision they both matched,
    which no MongoDB server allows. Here each write runs alone and a read copies what it found while no write runs.
    (Against a real server, ``--mongo-uri``, nothing is changed.)"""
    import mongomock_ng.collection

    collection = mongomock_ng.collection.Collection
    if not pytestconfig.getoption('--mock-db'):
        return
    lock, inside = threading.RLock(), threading.local()

    def alone(method):
        def run(self, *args, **kwargs):
            with lock:
                inside.depth = getattr(inside, 'depth', 0) + 1
                try:
                    return method(self, *args, **kwargs)
                finally:
                    inside.depth -= 1
        return run

    for name in ('_update_documents', '_insert', '_delete', '_find_and_modify'):
        monkeypatch.setattr(collection, name, alone(getattr(collection, name)))
    iterate = collection._iter_documents

    def snapshot(self, query):
        with lock:
            found = list(iterate(self, query))
            return iter(found if getattr(inside, 'depth', 0) else [copy.deepcopy(doc) for doc in found])

    monkeypatch.setattr(collection, '_iter_documents', snapshot)


@pytest.fixture
def labelers(project, admin):
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.user import User

    users = [User().createUser(f'labeler{k}', 'password', 'L', str(k), f'l{k}@example.com') for k in range(THREADS)]
    for user in users:
        Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    return users


def test_the_same_labeler_in_eight_threads(server, project, labelers, admin):
    log = _run(server, project, [labelers[0]] * THREADS, admin)
    chains = _assert_serial_replay(project, log)
    assert len(chains) == POOL
    assert _races(log) > 0  # the harness did make requests of the same labeler on the same segment overlap


def test_eight_labelers_at_once(server, project, labelers, admin):
    log = _run(server, project, labelers, admin)
    chains = _assert_serial_replay(project, log)
    assert {labeler for labeler, _ in chains} == {user['_id'] for user in labelers}
