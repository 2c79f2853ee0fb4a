"""A MongoDB-wire server over SQLite for the live stack: mongoeco's proxy with four adjustments Girder needs.

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

Usage: ``python mongo_wire.py --db DATA/mongo.sqlite --port PORT``; SIGTERM or SIGINT closes it cleanly.
"""

import argparse
import asyncio
import dataclasses
import signal
from collections.abc import Iterator
from typing import Any

from mongoeco.core.identity import id_contains_numeric_value
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire.executor import WireCommandExecutor
from mongoeco.wire.requests import WireRequestContext

START_FIELD = '__histomics_label_graph_start'
"""Temporary field that carries each document's evaluated ``startWith`` out of the stages before ``$graphLookup``."""

_MISSING = object()


class GirderSQLiteEngine(SQLiteEngine):
    """mongoeco's SQLite engine without the whole-collection ``_id`` scan on inserts of non-numeric ``_id`` values."""

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

    def _find_scalar_sort_index(self, db_name: str, coll_name: str, field: str) -> dict | None:
        for index in self._load_indexes(db_name, coll_name):
            if (index['fields'] == [field] and self._supports_scalar_index(index) and not index.get('sparse')
                    and not index.get('partial_filter_expression') and index.get('scalar_physical_name')):
                return index
        return None


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
