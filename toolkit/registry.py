"""Name -> factory registries. Duplicate names raise; unknown names list the valid ones."""
from __future__ import annotations

import difflib
from typing import Any, Iterator

from toolkit.errors import ConfigError


class Registry:
    """A named table of factories, e.g. ``BACKBONES.get("resnet18")``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str | None = None, obj: Any = None) -> Any:
        """Register ``obj`` under ``name``; usable as ``@REG.register("name")``."""

        def add(item: Any) -> Any:
            key = name or item.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} '{key}' is already registered")
            self._items[key] = item
            return item

        return add(obj) if obj is not None else add

    def get(self, name: str) -> Any:
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown {self.kind} '{name}'.{hint} Valid: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


BACKBONES = Registry("backbone")
HEADS = Registry("head")
TASKS = Registry("task")
DATASETS = Registry("built-in dataset")
