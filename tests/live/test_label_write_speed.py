"""Label writes on the live stack's Mongo-wire server check the labels' compound unique index through its SQLite
index, not by decoding the whole collection on every write (which made 200 label upserts outlast Girder's socket
timeout once a project held a few thousand labels).

The engine runs in the stack's Python 3.13 mongoeco virtualenv (made on demand), in a child process that counts the
whole-collection decodes while it writes label-shaped documents, and reports which writes the index rejected.
"""

import pytest
from helpers.mongoeco_engine import run_engine_script

pytestmark = pytest.mark.live

SCRIPT = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
from bson import Int64, ObjectId
from mongo_wire import GirderSQLiteEngine
from mongoeco import MongoClient
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

scans, array_scans = [], []
class Counting(GirderSQLiteEngine):
    def _load_documents(self, db_name, coll_name):
        scans.append(coll_name)
        return super()._load_documents(db_name, coll_name)
    def _field_is_top_level_array_in_collection(self, db_name, coll_name, field):
        array_scans.append(field)
        return super()._field_is_top_level_array_in_collection(db_name, coll_name, field)

labels = MongoClient(Counting(sys.argv[2]))['girder']['label']
labels.create_index([('project', 1), ('item', 1), ('segment', 1), ('labeler', 1)], unique=True)
scans.clear()  # building the index reads the collection once
project, item, labeler = ObjectId(), ObjectId(), ObjectId()
def key(segment, **extra):
    return {'project': project, 'item': item, 'segment': segment, 'labeler': labeler, **extra}
labels.insert_many([key(segment, category='a', rev=ObjectId()) for segment in range(300)])
outcome = {'array scans of 300 inserts': len(array_scans)}
labels.insert_one(key(Int64(1000), category='a'))
for name, document in [('same segment', key(7)), ('same segment as a float', key(7.0)),
                       ('same segment as int64', key(Int64(7))), ('int against int64', key(1000)),
                       ('new segment', key(300)), ('other labeler', {**key(7), 'labeler': ObjectId()})]:
    try:
        labels.insert_one(document)
        outcome[name] = 'inserted'
    except DuplicateKeyError:
        outcome[name] = 'duplicate'
moved = labels.find_one(key(300))
try:
    labels.update_one({'_id': moved['_id']}, {'$set': {'segment': 8}})
    outcome['update onto a labeled segment'] = 'updated'
except DuplicateKeyError:
    outcome['update onto a labeled segment'] = 'duplicate'
labels.update_one({'_id': moved['_id']}, {'$set': {'category': 'b'}})
try:
    result = labels.bulk_write([UpdateOne(key(segment, rev=None), {'$set': {'category': 'c'}}, upsert=True)
                                for segment in (9, 400)], ordered=False)
    outcome['stale upserts'] = []
except BulkWriteError as error:
    outcome['stale upserts'] = [(e['index'], e['code']) for e in error.details['writeErrors']]
outcome['scans'] = scans.count('label')
for name, document in [('an array of new segments', key([500, 501])), ('a segment the array holds', key(501))]:
    try:
        labels.insert_one(document)
        outcome[name] = 'inserted'
    except DuplicateKeyError:
        outcome[name] = 'duplicate'
outcome['labels'] = labels.count_documents({})
print(json.dumps(outcome))
'''


def test_compound_unique_index_is_checked_through_its_index(tmp_path):
    outcome = run_engine_script(SCRIPT, tmp_path)
    assert outcome == {
        'same segment': 'duplicate',
        'same segment as a float': 'duplicate',
        'same segment as int64': 'duplicate',
        'int against int64': 'duplicate',
        'new segment': 'inserted',
        'other labeler': 'inserted',
        'update onto a labeled segment': 'duplicate',
        # segment 9 is labeled with another revision: the upsert collides; 400 is new: inserted.
        'stale upserts': [[0, 11000]],
        # an array in the index's field makes it multikey from then on, however many writes said it had none
        'an array of new segments': 'inserted',
        'a segment the array holds': 'duplicate',
        'labels': 300 + 1 + 2 + 1 + 1,
        # whether a field holds an array is asked of the collection once, not again after every write
        'array scans of 300 inserts': 4,
        # No write of a scalar key decoded the whole collection to check the unique index (an array's does).
        'scans': 0,
    }
