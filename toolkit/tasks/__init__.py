"""The task registry, filled here once; each task's module is imported on first use, so that e.g.
classification never imports MONAI."""
from __future__ import annotations

from toolkit.registry import TASKS

TASKS.register_lazy("classify", "toolkit.tasks.classify:ClassifyTask")
TASKS.register_lazy("detect", "toolkit.tasks.detect:DetectTask")
TASKS.register_lazy("instance", "toolkit.tasks.instance:InstanceTask")
TASKS.register_lazy("segment", "toolkit.tasks.segment:SegmentTask")
TASKS.register_lazy("segment3d", "toolkit.tasks.segment3d:Segment3DTask")


def task_class(name: str) -> type:
    """The Task class registered as ``name`` (classify, detect, instance, segment, segment3d)."""
    return TASKS.get(name)
