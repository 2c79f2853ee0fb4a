"""Name → class registries, so every variant (segment source, extractor, model, acquisition function) is one
small class that the CLI and the project configuration select by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ConfigurationError

T = TypeVar('T')


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
