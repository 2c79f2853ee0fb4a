"""JSON request bodies: declared with Girder's ``jsonParam``, read with limits and answered with short messages.

A route that reads a JSON body declares it with ``jsonParam(name, description, paramType='body', schema=SCHEMA,
dataType=SCHEMA['title'])`` under ``autoDescribeBodyRoute``: the schema, registered as a Swagger model under its
title (``add_models``), shows the body's shape on the API page, and the body is checked against it before the
handler runs. What needs the project (its slides, their segment ranges, its categories) is checked by the project
code, whose messages name the slide or category.

``autoDescribeBodyRoute`` is Girder's ``autoDescribeRoute`` with three answers Girder 5.0 lacks: a body over
``MAX_BODY_BYTES`` is refused before it is read (413), a body that is not UTF-8 is a 400 (Girder's reader raises a
500), and a schema mismatch is one line naming where and what (Girder quotes the whole schema and body).
"""

from __future__ import annotations

import cherrypy
import jsonschema
from girder.api import docs
from girder.api.describe import autoDescribeRoute
from girder.api.rest import Resource, RestException

MAX_BODY_BYTES = 64 << 20
"""The largest JSON body a route reads (a 100,000-label batch is about 8 MB)."""
MAX_MESSAGE_CHARS = 300
"""Schema messages quote the offending value; a long one is cut to this length."""


def add_models(resource: Resource, *schemas: dict) -> None:
    """Show each schema on the Swagger page of ``resource`` as the model its ``title`` names."""
    for schema in schemas:
        docs.addModel(schema['title'], schema, resources=resource.resourceName)


class autoDescribeBodyRoute(autoDescribeRoute):
    """``autoDescribeRoute`` for routes that read a JSON body: bounded, decoded with a 400, and checked against its
    schema with a one-line message."""

    _validators: dict[int, jsonschema.protocols.Validator] = {}

    def _loadJsonBody(self, name: str, info: dict):
        length = cherrypy.request.body.length
        if length is None:
            raise RestException(f'The request body ({name}) needs a Content-Length', 411)
        if length > MAX_BODY_BYTES:
            raise RestException(f'The request body ({name}) is larger than {MAX_BODY_BYTES >> 20} MB', 413)
        try:
            return super()._loadJsonBody(name, info)
        except UnicodeDecodeError as exc:
            raise RestException(f'The request body ({name}) is not valid UTF-8 JSON: {exc}') from None

    def _validateJsonType(self, name: str, info: dict, val) -> None:
        schema = info.get('schema')
        if schema is None:
            super()._validateJsonType(name, info, val)
            return
        validator = self._validators.get(id(schema))
        if validator is None:
            validator = self._validators[id(schema)] = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(val))
        if error is not None:
            where = '/'.join(str(part) for part in error.absolute_path)
            if not where and error.validator == 'type':
                raise RestException(f'The request body ({name}) must be a JSON {error.validator_value}')
            message = error.message
            if len(message) > MAX_MESSAGE_CHARS:
                message = message[:MAX_MESSAGE_CHARS - 1] + '…'
            raise RestException(f'Invalid {name}{f" at {where}" if where else ""}: {message}')
