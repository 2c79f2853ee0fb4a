"""The effective labels kept between suggestion requests (``models.effective_labels``) against a read of every
label (``Label.effective``, the oracle) after each of hundreds of random changes of every kind, under concurrent
writers, and for the writes that carry no event (a rename: the epoch) or commit late (within ``MARGIN``)."""

import datetime
import random
import threading

import pytest
from bson.objectid import ObjectId
from girder.exceptions import ValidationException

CATEGORIES = ['tumor', 'stroma', 'unclear']


@pytest.fixture
def models(db):
    from histomics_label.models import effective_labels
    from histomics_label.models.label import Label, LabelEvent

    yield effective_labels, Label(), LabelEvent()
    effective_labels._kept.clear()


def _entries(rng, items, count):
    return [{'item': rng.choice(items), 'segment': rng.randint(1, 40), 'category': rng.choice(CATEGORIES)}
            for _ in range(count)]


def _random_change(rng, label, project, users, items, batches):
    """One change of a random kind by a random user: label, delete, undo, review (approve or override)."""
    user = rng.choice(users)
    kind = rng.choice(['label', 'label', 'label', 'delete', 'undo', 'review'])
    if kind == 'label':
        batches.append((user, label.upsert(project, user, _entries(rng, items, rng.randint(1, 12)), 'api')['batch']))
    elif kind == 'delete':
        label.remove_labels(project, user, _entries(rng, items, rng.randint(1, 6)))
    elif kind == 'undo' and batches:
        owner, batch = rng.choice(batches)
        try:
            label.undo(project, owner, batch)
        except ValidationException:  # undone already
            pass
    else:
        documents = list(label.find({'project': project['_id']}))
        if documents:
            chosen = rng.choice(documents)
            try:
                label.review(project, user, chosen['_id'], rng.choice([None, *CATEGORIES]))
            except ValidationException:  # another writer deleted it since
                pass


def test_kept_labels_equal_a_whole_read_after_every_change(models):
    effective_labels, label, _ = models
    rng = random.Random(7)
    project = {'_id': ObjectId()}
    users = [{'_id': ObjectId()} for _ in range(3)]
    items = [ObjectId(), ObjectId()]
    batches = []
    effective_labels.effective_labels(project['_id'])  # kept from now on: every later read is incremental
    for step in range(250):
        _random_change(rng, label, project, users, items, batches)
        if step % 60 == 59:  # a rename carries no event of its own
            label.rename_category(project['_id'], 'stroma', 'fibrous stroma')
            assert effective_labels.effective_labels(project['_id']) == label.effective(project['_id']), step
            label.rename_category(project['_id'], 'fibrous stroma', 'stroma')
        assert effective_labels.effective_labels(project['_id']) == label.effective(project['_id']), step
    assert len(label.effective(project['_id'])) > 30
    assert any(d.get('review', {}).get('status') == 'overridden' for d in label.find({'project': project['_id']}))


def test_kept_labels_follow_concurrent_writers(models):
    effective_labels, label, _ = models
    project = {'_id': ObjectId()}
    items = [ObjectId()]
    effective_labels.effective_labels(project['_id'])
    errors = []
    # one change at a time among the writers (they still interleave change by change, and the reader runs beside
    # them): the test database, mongomock, updates its stored documents in place, so a writer copying a document
    # while another adds or unsets a field of it raised "dictionary changed size during iteration" (once in about
    # ten runs), which MongoDB never does
    one_change = threading.Lock()

    def write(seed):
        rng = random.Random(seed)
        user, batches = {'_id': ObjectId()}, []
        try:
            for _ in range(40):
                with one_change:
                    _random_change(rng, label, project, [user], items, batches)
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)

    def read(stop):
        while not stop.is_set():
            effective_labels.effective_labels(project['_id'])

    stop = threading.Event()
    reader = threading.Thread(target=read, args=(stop,))
    reader.start()
    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(6)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert not errors
    assert effective_labels.effective_labels(project['_id']) == label.effective(project['_id'])


def test_a_write_without_an_event_is_seen_once_the_epoch_changes(models):
    from histomics_label.models.label import LabelEpoch

    effective_labels, label, _ = models
    project, user, item = {'_id': ObjectId()}, {'_id': ObjectId()}, ObjectId()
    label.upsert(project, user, [{'item': item, 'segment': 3, 'category': 'tumor'}], 'api')
    assert effective_labels.effective_labels(project['_id']) == {(item, 3): 'tumor'}
    label.collection.insert_one({'project': project['_id'], 'item': item, 'segment': 4, 'labeler': user['_id'],
                                 'category': 'stroma'})
    # incremental: no event names segment 4, so the kept labels stay as they were ...
    assert effective_labels.effective_labels(project['_id']) == {(item, 3): 'tumor'}
    LabelEpoch().bump(project['_id'])  # ... until the writer says labels were rewritten
    assert effective_labels.effective_labels(project['_id']) == {(item, 3): 'tumor', (item, 4): 'stroma'}


def test_an_event_recorded_before_the_last_read_began_is_still_read(models):
    """A write whose event commits after a read began, though recorded before it (a slow database): the next read
    looks back ``MARGIN``."""
    effective_labels, label, event = models
    project, user, item = {'_id': ObjectId()}, ObjectId(), ObjectId()
    assert effective_labels.effective_labels(project['_id']) == {}
    late = datetime.datetime.now(datetime.UTC) - effective_labels.MARGIN / 2
    document = {'_id': ObjectId(), 'project': project['_id'], 'item': item, 'segment': 9, 'labeler': user,
                'category': 'stroma', 'updated': late}
    label.collection.insert_one(document)
    event.collection.insert_one({'project': project['_id'], 'item': item, 'segment': 9, 'labeler': user,
                                 'label': document['_id'], 'recorded': late, 'time': late, 'action': 'label'})
    assert effective_labels.effective_labels(project['_id']) == {(item, 9): 'stroma'}


def test_events_of_one_label_taken_out_of_order_chain_up_as_they_happened(models):
    """Two changes of one label whose events were recorded in the other order (the first writer's event arrived
    late): each applies only to the document it changed, so the later category wins."""
    effective_labels, label, event = models
    project, user, item = {'_id': ObjectId()}, {'_id': ObjectId()}, ObjectId()
    assert effective_labels.effective_labels(project['_id']) == {}
    first = label.upsert(project, user, [{'item': item, 'segment': 5, 'category': 'tumor'}], 'api')['batch']
    second = label.upsert(project, user, [{'item': item, 'segment': 5, 'category': 'stroma'}], 'api')['batch']
    early = event.collection.find_one({'batch': first})['recorded']
    event.collection.update_one({'batch': second}, {'$set': {'recorded': early - datetime.timedelta(seconds=1)}})
    assert effective_labels.effective_labels(project['_id']) == {(item, 5): 'stroma'} == label.effective(
        project['_id'])
