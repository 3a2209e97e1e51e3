"""Every built-in dataset, registered by name (imports of heavy preparers stay lazy)."""
from __future__ import annotations

from pathlib import Path

from toolkit.data.builtin import register


@register("nuclei")
def prepare_nuclei(root: Path) -> Path:
    """Real fluorescence nuclei (stardist wheel): COCO boxes and mask PNGs. See datasets/nuclei.md."""
    from toolkit.data.nuclei import prepare_nuclei as prepare

    return prepare(root)


@register("brain-lesions")
def prepare_brain_lesions(root: Path) -> Path:
    """MNI152 brain with synthetic BraTS-style lesions (MSD layout). See datasets/brain-lesions.md."""
    from toolkit.medical.synthetic import prepare_brain_lesions as prepare

    return prepare(root)
