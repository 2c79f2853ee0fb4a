"""JSON request bodies as Girder sees them.

A route that reads a JSON body declares it with ``jsonParam(name, description, paramType='body', schema=SCHEMA,
dataType=SCHEMA['title'])``: Girder validates the body against the schema before the handler runs (a 400 quoting
the part that failed), and the schema, registered here as a Swagger model under its title, shows the body's shape
on the API page. What needs the project (its slides, their segment ranges, its categories) is checked by the
project code, whose messages name the slide or category.
"""

from __future__ import annotations

from girder.api import docs
from girder.api.rest import Resource


def add_models(resource: Resource, *schemas: dict) -> None:
    """Show each schema on the Swagger page of ``resource`` as the model its ``title`` names."""
    for schema in schemas:
        docs.addModel(schema['title'], schema, resources=resource.resourceName)
