"""A MongoDB-wire server over SQLite for the live stack: mongoeco's proxy with seven adjustments Girder needs.

This file runs as a script under Python >= 3.13 in the stack's mongoeco virtualenv (mongoeco needs 3.13; the rest of
Histomics Label runs on 3.11), so it imports only the standard library and mongoeco, never ``histomics_label``.

No mongoeco file is changed; the adjustments are subclasses wired in at launch:

1. ``buildinfo``: pymongo's ``server_info()`` sends the lower-case command, which mongoeco's wire surface rejects;
   Girder reads ``versionArray`` from it at start-up. ``GirderWireExecutor._build_request_context`` renames it to
   ``buildInfo``, whose answer carries ``versionArray``.
2. ``$graphLookup`` (slicer_cli_web, large_image and its annotations walk folder trees with it) is no mongoeco stage.
   ``GirderWireExecutor.execute_prepared`` runs the stages before it, searches breadth-first with ``find`` (so the
   ``from`` collection's indexes serve each level), then hands the rest of the pipeline to mongoeco behind a
   ``$documents`` stage holding the expanded documents, so cursors and batches work as usual.
3. ``SQLiteEngine._validate_document_against_unique_indexes`` decodes every document of the collection on each insert
   (``scan_payload_id``) to find an ``_id`` numerically equal to the new one under another storage key (``1`` and
   ``1.0``). Only numeric ``_id`` values can differ that way; ``GirderSQLiteEngine`` keeps the scan for them and skips
   it for all others (Girder's ObjectIds), whose duplicates the indexed storage-key lookup and the table's unique
   constraint still reject.
4. ``SQLiteEngine._find_scalar_sort_index`` picks any single-field index on the sort field, including a text index,
   whose scalar table mongoeco names but never creates: sorting files by ``name`` (Girder's item page lists an item's
   files so) failed with "no such index". ``GirderSQLiteEngine`` only picks indexes the engine can serve scalars from.
5. A unique index of several fields (labels are unique per project, slide, segment and labeler) has no scalar entries,
   so mongoeco checks each insert and update against it by decoding every document of the collection: a write took
   about a millisecond per document stored, and 200 label writes on a collection of a few thousand labels outlasted
   Girder's socket timeout. ``GirderSQLiteEngine._unique_index_conflict_via_scalar_entries`` finds the candidates
   through the SQLite index mongoeco builds for that index instead (an equality seek on each field's stored type and
   value, with ranges over the other stored types where several represent an equal value, as numbers do) and
   compares only them exactly as mongoeco does; values it cannot seek on (arrays, documents, ...) keep the scan.
6. Before each such check mongoeco asks whether any document of the collection holds an array in one of the index's
   fields, by scanning the collection once per field, because every write clears its cache of such facts: changing
   1,000 labels took about a minute. ``GirderSQLiteEngine._unique_index_uses_multikey_values`` keeps the facts
   "no array in this field" itself: a write of a document with an array there drops them, a dropped or renamed
   collection forgets them, and every other write leaves them true.
7. Before each read the planner asks, once per field of the query, whether any document of the collection holds a
   decimal there (three tagged types) or an array at the top of that field, by scanning the collection; every write
   forgets those answers too. Listing a project's labels while eight labelers wrote made 12 such scans of the label
   collection per query, three quarters of the server's time, and a suggestion request took a minute.
   ``GirderSQLiteEngine`` keeps the negative answers itself (``_known_absent``): every written document passes
   ``_validate_document_against_unique_indexes`` (inserts, updates, upserts and replacements alike), where it drops
   the answers it contradicts; a deletion cannot contradict one. An answer found while a write is between that check
   and its commit is checked against the written document before it is kept, and one whose scan overlapped a commit
   is not kept.

Usage: ``python mongo_wire.py --db DATA/mongo.sqlite --port PORT``; SIGTERM or SIGINT closes it cleanly.
"""

import argparse
import asyncio
import dataclasses
import itertools
import math
import signal
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from mongoeco.core.codec import DocumentCodec
from mongoeco.core.filtering import QueryEngine
from mongoeco.core.identity import id_contains_numeric_value
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.engines.sqlite_query import index_expressions_sql
from mongoeco.engines.virtual_indexes import document_in_virtual_index
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire.executor import WireCommandExecutor
from mongoeco.wire.requests import WireRequestContext

START_FIELD = '__histomics_label_graph_start'
"""Temporary field that carries each document's evaluated ``startWith`` out of the stages before ``$graphLookup``."""

_MISSING = object()
ARRAY = 'array'
"""The kind of fact ``_field_is_top_level_array_in_collection`` answers, beside the tagged types' names."""
Fact = tuple[str, str, str, str]
"""``(database, collection, field, kind)``: no document of the collection holds ``kind`` at ``field``."""
MAX_CANDIDATE_QUERIES = 16
"""Most index seeks one compound unique check makes (one per combination of a field's stored types); beyond, the
check keeps mongoeco's scan."""
Alternative = tuple[str, list[Any]]
"""A condition on one field's stored type and value, in SQL over the ``documents`` table, with its parameters."""


class GirderSQLiteEngine(SQLiteEngine):
    """mongoeco's SQLite engine without its whole-collection scans on each write and read (adjustments 3, 5, 6 and
    7)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._array_free: set[tuple[str, str, str]] = set()
        """``(database, collection, field)`` known to hold no array in any document of the collection."""
        self._absent: set[Fact] = set()
        self._writing: dict[tuple[str, str], list[dict[str, Any]]] = {}
        """Documents checked for writing and not yet committed (the next commit to their collection clears them)."""
        self._commits: dict[tuple[str, str], int] = {}
        self._facts_lock = threading.Lock()

    def _field_contains_tagged_value_type_in_collection(self, db_name: str, coll_name: str, field: str,
                                                         value_type: str) -> bool:
        return not self._known_absent((db_name, coll_name, field, value_type), lambda: super(
            GirderSQLiteEngine, self)._field_contains_tagged_value_type_in_collection(
                db_name, coll_name, field, value_type))

    def _field_is_top_level_array_in_collection(self, db_name: str, coll_name: str, field: str) -> bool:
        return not self._known_absent((db_name, coll_name, field, ARRAY), lambda: super(
            GirderSQLiteEngine, self)._field_is_top_level_array_in_collection(db_name, coll_name, field))

    def _known_absent(self, fact: Fact, scan: Any) -> bool:
        """Whether ``fact`` holds: remembered, or found by ``scan()`` (mongoeco's: True when some document holds the
        kind) and then remembered, unless a write to the collection committed meanwhile or one that is about to
        commit contradicts it (adjustment 7)."""
        collection = fact[:2]
        with self._facts_lock:
            if fact in self._absent:
                return True
            commits = self._commits.get(collection, 0)
        if scan():
            return False
        with self._facts_lock:
            if self._commits.get(collection, 0) == commits and not any(
                    _contradicts(document, fact) for document in self._writing.get(collection, ())):
                self._absent.add(fact)
        return True

    def _invalidate_collection_features_cache(self, db_name: str | None = None, coll_name: str | None = None) -> None:
        """A write committed (mongoeco forgets its facts of the collection): the documents it checked are stored now.
        The facts they contradict were dropped when they were checked, and none kept since contradicts them
        (``_known_absent`` checks the documents still waiting)."""
        super()._invalidate_collection_features_cache(db_name, coll_name)
        with self._facts_lock:
            if db_name is None or coll_name is None:
                self._absent.clear()
                self._writing.clear()
                self._commits = {key: count + 1 for key, count in self._commits.items()}
                return
            self._writing.pop((db_name, coll_name), None)
            self._commits[(db_name, coll_name)] = self._commits.get((db_name, coll_name), 0) + 1

    def _validate_document_against_unique_indexes(
        self,
        db_name: str,
        coll_name: str,
        document: dict[str, Any],
        *,
        exclude_storage_key: str | None = None,
        skip_id_check: bool = False,
        scan_payload_id: bool = False,
    ) -> None:
        with self._facts_lock:  # every written document passes here: it drops the facts it contradicts
            self._absent.difference_update([fact for fact in self._absent if fact[:2] == (db_name, coll_name)
                                            and _contradicts(document, fact)])
            self._writing.setdefault((db_name, coll_name), []).append(document)
        if scan_payload_id and not id_contains_numeric_value(document.get('_id')):
            scan_payload_id = False
        super()._validate_document_against_unique_indexes(
            db_name,
            coll_name,
            document,
            exclude_storage_key=exclude_storage_key,
            skip_id_check=skip_id_check,
            scan_payload_id=scan_payload_id,
        )

    def _unique_index_conflict_via_scalar_entries(
        self,
        conn: sqlite3.Connection,
        collection_id: int | None,
        index: dict,
        document: dict[str, Any],
        *,
        exclude_storage_key: str | None,
    ) -> bool | None:
        found = super()._unique_index_conflict_via_scalar_entries(
            conn, collection_id, index, document, exclude_storage_key=exclude_storage_key)
        if found is not None or collection_id is None or len(index['fields']) < 2:
            return found
        return self._compound_unique_conflict(conn, collection_id, index, document, exclude_storage_key)

    def _compound_unique_conflict(self, conn: sqlite3.Connection, collection_id: int, index: dict,
                                  document: dict[str, Any], exclude_storage_key: str | None) -> bool | None:
        """Whether another document has ``document``'s key in the compound unique ``index``, looked up through the
        SQLite index over each field's stored type and value; None where some field's value allows no seek.

        mongoeco calls this only for documents whose key holds no array and indexes without collation."""
        per_field = []
        for field in index['fields']:
            alternatives = self._stored_alternatives(document, field)
            if alternatives is None:
                return None
            per_field.append((field, alternatives))
        combinations = math.prod(len(alternatives) for _, alternatives in per_field)
        if combinations > MAX_CANDIDATE_QUERIES:
            return None
        names = conn.execute('SELECT db_name, coll_name FROM collections WHERE collection_id = ?',
                             (collection_id,)).fetchone()
        if names is None:
            return None
        key = tuple(self._index_value(document, field) for field in index['fields'])
        for combination in itertools.product(*(
                [(field, alternative) for alternative in alternatives] for field, alternatives in per_field)):
            conditions, parameters = ['db_name = ?', 'coll_name = ?'], list(names)
            for field, (condition, values) in combination:
                type_sql, value_sql = index_expressions_sql(field)
                conditions.append(condition.format(type=type_sql, value=value_sql))
                parameters += values
            rows = conn.execute(f'SELECT storage_key, document FROM documents WHERE {" AND ".join(conditions)}',
                                parameters)
            for storage_key, payload in rows:
                existing = self._deserialize_document(payload)
                if (storage_key != exclude_storage_key and document_in_virtual_index(existing, index)
                        and tuple(self._index_value(existing, field) for field in index['fields']) == key):
                    return True
        return False

    def _stored_alternatives(self, document: dict[str, Any], field: str) -> list[Alternative] | None:
        """Conditions on a field's stored type and value that together hold for every stored value equal to
        ``document``'s value there (each a seek or a range of the SQLite index); None for values not handled."""
        values = QueryEngine.extract_values(document, field)
        if len(values) != 1:
            return None
        encoded = DocumentCodec.encode({'value': values[0]})['value']
        tagged = isinstance(encoded, dict) and DocumentCodec._MARKER in encoded
        kind = encoded[DocumentCodec._MARKER][DocumentCodec._TYPE] if tagged else ''
        stored = encoded[DocumentCodec._MARKER][DocumentCodec._VALUE] if tagged else encoded
        if kind == 'objectid':  # only an ObjectId equals an ObjectId, always stored so
            return [('{type} = ? AND {value} = ?', [kind, stored])]
        if kind == '' and isinstance(stored, str):  # a string, or a value of another type stored tagged
            return [("{type} = '' AND {value} = ?", [stored]), ("{type} > ''", [])]
        if (kind in ('', 'int64') and isinstance(stored, int | float) and not isinstance(stored, bool)
                and math.isfinite(stored)):  # a number untagged or as int64, or another tagged type
            return [("{type} IN ('', 'int64') AND {value} = ?", [stored]),
                    ("{type} > '' AND {type} < 'int64'", []), ("{type} > 'int64'", [])]
        return None

    def _unique_index_uses_multikey_values(self, db_name: str, coll_name: str, document: dict[str, Any],
                                           index: dict) -> bool:
        """Whether a unique index check must treat ``index`` as multikey, remembering which fields hold no array in
        the collection (adjustment 6): only a written document can put an array there, and every write to a
        collection with a unique index passes here with that document."""
        fields = [(db_name, coll_name, field) for field in index['fields']]
        if any(self._array_paths_for_index_field(document, field) for field in index['fields']):
            self._array_free.difference_update(fields)
            return True
        if all(field in self._array_free for field in fields):
            return False
        found = super()._unique_index_uses_multikey_values(db_name, coll_name, document, index)
        if not found:
            self._array_free.update(fields)
        return found

    def _invalidate_collection_id_cache(self, db_name: str | None = None, coll_name: str | None = None) -> None:
        """A collection dropped, renamed or created: forget what was known of its fields' arrays."""
        super()._invalidate_collection_id_cache(db_name, coll_name)
        with self._facts_lock:
            if db_name is None or coll_name is None:
                self._array_free.clear()
                self._absent.clear()
            else:
                self._array_free.difference_update({f for f in self._array_free if f[:2] == (db_name, coll_name)})
                self._absent.difference_update({f for f in self._absent if f[:2] == (db_name, coll_name)})

    def _find_scalar_sort_index(self, db_name: str, coll_name: str, field: str) -> dict | None:
        for index in self._load_indexes(db_name, coll_name):
            if (index['fields'] == [field] and self._supports_scalar_index(index) and not index.get('sparse')
                    and not index.get('partial_filter_expression') and index.get('scalar_physical_name')):
                return index
        return None


def _contradicts(document: dict[str, Any], fact: Fact) -> bool:
    """Whether ``document`` holds ``fact``'s kind at its field (an array anywhere on the path counts, to be safe)."""
    value: Any = document
    for part in fact[2].split('.'):
        if isinstance(value, list):
            return True
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    if isinstance(value, list):
        return True
    if fact[3] == ARRAY:
        return False
    encoded = DocumentCodec.encode({'value': value})['value']
    return (isinstance(encoded, dict) and DocumentCodec._MARKER in encoded
            and encoded[DocumentCodec._MARKER][DocumentCodec._TYPE] == fact[3])


def path_values(document: Any, path: str) -> Iterator[Any]:
    """Yield the values at a dotted ``path`` of ``document``, descending into arrays and flattening array values, as
    MongoDB reads ``connectFromField``."""
    head, _, rest = path.partition('.')
    if isinstance(document, list):
        for element in document:
            yield from path_values(element, path)
        return
    if not isinstance(document, dict) or head not in document:
        return
    value = document[head]
    if rest:
        yield from path_values(value, rest)
    elif isinstance(value, list):
        yield from value
    else:
        yield value


def _identity(value: Any) -> str:
    """A hashable stand-in for a BSON value (``_id`` values and search keys may be documents)."""
    return repr(value)


class GirderWireExecutor(WireCommandExecutor):
    """mongoeco's wire command executor that also answers ``buildinfo`` and runs ``$graphLookup``."""

    def _build_request_context(self, body: dict[str, Any], **kwargs: Any) -> WireRequestContext:
        if 'buildinfo' in body:
            body = {('buildInfo' if key == 'buildinfo' else key): value for key, value in body.items()}
        return super()._build_request_context(body, **kwargs)

    async def execute_prepared(self, context: WireRequestContext) -> dict[str, Any]:
        if context.command_name == 'aggregate' and _graph_lookup_index(context.command_document.get('pipeline')) >= 0:
            context = await self._expand_graph_lookups(context)
        return await super().execute_prepared(context)

    async def _expand_graph_lookups(self, context: WireRequestContext) -> WireRequestContext:
        """Replace each ``$graphLookup`` and the stages before it by a ``$documents`` stage of their result."""
        command = context.command_document
        pipeline = list(command['pipeline'])
        collection = self._client.get_database(context.db_name).get_collection(command['aggregate'])
        while (index := _graph_lookup_index(pipeline)) >= 0:
            spec = pipeline[index]['$graphLookup']
            head = [*pipeline[:index], {'$addFields': {START_FIELD: spec['startWith']}}]
            documents = await collection.aggregate(head, session=context.session).to_list()
            for document in documents:
                start = document.pop(START_FIELD, _MISSING)
                document[spec['as']] = [] if start is _MISSING else await self._graph_search(context, spec, start)
            pipeline = [{'$documents': documents}, *pipeline[index + 1:]]
        return dataclasses.replace(context, command_document={**command, 'pipeline': pipeline})

    async def _graph_search(self, context: WireRequestContext, spec: dict[str, Any], start: Any) -> list[dict]:
        """The documents of ``spec['from']`` reachable from ``start``, level by level, with their depth if asked."""
        source = self._client.get_database(context.db_name).get_collection(spec['from'])
        max_depth = spec.get('maxDepth')
        restrict = spec.get('restrictSearchWithMatch')
        frontier = start if isinstance(start, list) else [start]
        queried = {_identity(value) for value in frontier}
        found: dict[str, dict] = {}
        depth = 0
        while frontier and (max_depth is None or depth <= max_depth):
            query = {spec['connectToField']: {'$in': frontier}}
            if restrict:
                query = {'$and': [query, restrict]}
            frontier = []
            for match in await source.find(query, session=context.session).to_list():
                key = _identity(match.get('_id'))
                if key in found:
                    continue
                if spec.get('depthField'):
                    match[spec['depthField']] = depth
                found[key] = match
                for value in path_values(match, spec['connectFromField']):
                    if _identity(value) not in queried:
                        queried.add(_identity(value))
                        frontier.append(value)
            depth += 1
        return list(found.values())


def _graph_lookup_index(pipeline: Any) -> int:
    """Position of the first top-level ``$graphLookup`` stage of ``pipeline``, -1 if none."""
    if isinstance(pipeline, list):
        for index, stage in enumerate(pipeline):
            if isinstance(stage, dict) and '$graphLookup' in stage:
                return index
    return -1


class GirderProxyServer(AsyncMongoEcoProxyServer):
    """mongoeco's wire proxy server that executes commands with ``GirderWireExecutor``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._executor = GirderWireExecutor(
            self._client, self._cursor_store, self._session_store, surface=self._surface, auth=self._auth)


async def serve(db_path: str, host: str, port: int) -> None:
    """Serve the SQLite database at ``db_path`` on ``host:port`` until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = GirderProxyServer(engine=GirderSQLiteEngine(db_path), host=host, port=port)
    address = await server.start()
    print(f'mongo-wire listening on {address.host}:{address.port}, database {db_path}', flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()
        print('mongo-wire stopped', flush=True)


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--db', required=True, help='SQLite database file')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.db, args.host, args.port))


if __name__ == '__main__':
    main()
