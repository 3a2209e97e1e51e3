"""Name -> factory registries, one per extension point. Duplicate names raise; unknown names list the valid ones.

Each registry is filled in one module: ``BACKBONES`` in ``backbones/__init__.py``, ``SEG_HEADS`` in
``heads/seg_decoders.py``, ``DETECTORS`` in ``heads/detection.py``, ``TASKS`` in ``tasks/__init__.py`` (lazily, so
that classification never imports MONAI), ``DATASETS`` in ``data/builtin.py``."""
from __future__ import annotations

import difflib
import importlib
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

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attr"``, imported on the first ``get(name)``."""
        self.register(name, _Lazy(target))

    def get(self, name: str) -> Any:
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown {self.kind} '{name}'.{hint} Valid: {', '.join(self.names())}")
        item = self._items[name]
        if isinstance(item, _Lazy):
            item = self._items[name] = item.load()
        return item

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class _Lazy:
    def __init__(self, target: str) -> None:
        self.target = target

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


BACKBONES = Registry("backbone")
SEG_HEADS = Registry("segmentation head")
DETECTORS = Registry("detector architecture")
TASKS = Registry("task")
DATASETS = Registry("built-in dataset")
