"""Name → class registries, so every variant (segment source, extractor, model, acquisition function) is one
small class that the CLI and the project configuration select by name.

Each registry package of the engine (``segments``, ``features.extractors``, ``models``, ``acquisition``) defines its
interface and registry, imports its own variants, and then loads the variants other packages declare in an
entry-point group, the way large_image finds tile sources: a deployment adds, say, an extractor for its own
foundation model by installing a package, without changing this one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import ConfigurationError

T = TypeVar('T')
logger = logging.getLogger(__name__)


class Registry(Generic[T]):
    """A named collection of classes of one kind, filled by the ``register`` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise ValueError(f'{self.kind} {name!r} is registered twice')
            cls.name = name
            self._classes[name] = cls
            return cls
        return decorate

    def load_entry_points(self, group: str) -> list[str]:
        """Import the variants installed packages declare in entry-point ``group`` (each entry point names a module,
        or a class, that registers itself here when imported). One that fails to import is logged and skipped, never
        fatal: a broken plugin must not take the engine down. Returns the entry points that loaded."""
        loaded = []
        for point in entry_points(group=group):
            try:
                point.load()
            except Exception as exc:  # any error of a third party's import: log it, keep the built-in variants
                logger.warning('%s %r from entry point %s could not be loaded and is skipped: %s: %s',
                               self.kind, point.name, point.value, type(exc).__name__, exc)
                continue
            loaded.append(point.name)
        return loaded

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigurationError(
                f'Unknown {self.kind} {name!r}; choose one of: {", ".join(self.names())}') from None

    def create(self, name: str, **options) -> T:
        return self.get(name)(**options)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes
