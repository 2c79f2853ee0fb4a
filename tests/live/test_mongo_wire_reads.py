"""Reads on the live stack's Mongo-wire server ask the collection whether a field holds a decimal or an array once,
not again after every write (mongo_wire's adjustment 7: with eight labelers writing, those scans of the label
collection took three quarters of the server's time), and a write that does put a decimal or an array there makes
the next read answer as MongoDB does.

The engine runs in the stack's Python 3.13 mongoeco virtualenv (made on demand), in a child process that counts
mongoeco's scans while it writes and reads label-shaped documents.
"""

import pytest
from helpers.mongoeco_engine import run_engine_script

pytestmark = pytest.mark.live

SCRIPT = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
from bson import Decimal128, ObjectId
from mongo_wire import GirderSQLiteEngine
from mongoeco import MongoClient
from mongoeco.engines.sqlite import SQLiteEngine

scans = []
for name in ('_field_contains_tagged_value_type_in_collection', '_field_is_top_level_array_in_collection'):
    def counted(self, *args, _scan=getattr(SQLiteEngine, name), _name=name):
        scans.append(_name)
        return _scan(self, *args)
    setattr(SQLiteEngine, name, counted)

labels = MongoClient(GirderSQLiteEngine(sys.argv[2]))['girder']['label']
labels.create_index([('project', 1), ('segment', 1)], unique=True)
project = ObjectId()
labels.insert_many([{'project': project, 'segment': k, 'tag': 'x'} for k in range(300)])
queries = {'above 298': {'project': project, 'segment': {'$gt': 298}}, 'segment 5000.5': {'segment': 5000.5},
           'between 299 and 5001': {'segment': {'$gt': 299, '$lt': 5001}}, 'tag b': {'tag': 'b'},
           'tag below c': {'tag': {'$lt': 'c'}}}
outcome = {'first reads': {name: labels.count_documents(query) for name, query in queries.items()},
           'scans of the first reads': len(scans)}
scans.clear()
for k in range(20):
    labels.insert_one({'project': project, 'segment': 1000 + k, 'tag': 'y'})
    labels.count_documents(queries['above 298'])
outcome['scans of 20 writes, each read after'] = len(scans)
labels.insert_one({'project': project, 'segment': Decimal128('5000.5'), 'tag': ['a', 'b']})
outcome['after a decimal and an array'] = {name: labels.count_documents(query) for name, query in queries.items()}
print(json.dumps(outcome))
'''


def test_reads_remember_what_no_document_holds_until_a_write_holds_it(tmp_path):
    outcome = run_engine_script(SCRIPT, tmp_path)
    assert outcome['first reads'] == {'above 298': 1, 'segment 5000.5': 0, 'between 299 and 5001': 0, 'tag b': 0,
                                      'tag below c': 0}
    assert outcome['scans of the first reads'] > 0  # the planner does ask, once per field and kind
    assert outcome['scans of 20 writes, each read after'] == 0  # and remembers across writes that hold neither
    # the decimal segment and the array of tags are found as MongoDB finds them (missed when the answers are kept)
    assert outcome['after a decimal and an array'] == {'above 298': 22, 'segment 5000.5': 1,
                                                       'between 299 and 5001': 21, 'tag b': 1, 'tag below c': 1}
