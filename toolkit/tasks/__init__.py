"""Tasks, imported on demand so that e.g. classification never imports MONAI."""
from __future__ import annotations

import importlib

from toolkit.errors import ConfigError
from toolkit.registry import TASKS

TASK_MODULES = {
    "classify": "toolkit.tasks.classify",
    "detect": "toolkit.tasks.detect",
    "segment": "toolkit.tasks.segment",
    "segment3d": "toolkit.tasks.segment3d",
}


def task_class(name: str) -> type:
    """The Task class registered as ``name`` (classify, detect, segment, segment3d)."""
    if name not in TASK_MODULES:
        raise ConfigError(f"unknown task '{name}'; valid: {', '.join(TASK_MODULES)}")
    if name not in TASKS:
        try:
            importlib.import_module(TASK_MODULES[name])
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("toolkit"):
                raise ConfigError(f"task '{name}' is not available in this version") from None
            raise
    return TASKS.get(name)
