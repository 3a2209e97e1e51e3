"""Pascal VOC XML: ``root/Annotations/<stem>.xml``, ``root/JPEGImages/<file>``,
``root/ImageSets/Main/<split>.txt`` (stems; without it every XML is ``train``).

Classes: ``root/labels.txt`` (one name a line) if present, else the sorted object names.
VOC coordinates are 1-based and inclusive: pixel box ``x1 = xmin - 1, x2 = xmax``. Objects marked
``<difficult>1</difficult>`` are read as ignore regions.
"""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from toolkit.data.formats.detection import DetectionData, ImageRecord, Problem, check_box, image_size

LABELS = "labels.txt"


def is_voc(root: Path) -> bool:
    return root.is_dir() and (root / "Annotations").is_dir()


def read_voc(root: Path) -> tuple[dict[str, DetectionData], list[Problem]]:
    """Read every split of a VOC folder; returns ``{split: data}`` and all problems."""
    problems: list[Problem] = []
    parsed = {}
    for xml in sorted((root / "Annotations").glob("*.xml")):
        try:
            parsed[xml.stem] = (xml, ET.parse(xml).getroot())
        except ET.ParseError as e:
            problems.append(Problem(xml, f"line {e.position[0]}", "not valid XML"))
    classes = _classes(root, parsed)
    splits = {}
    for split, stems in _split_stems(root, list(parsed), problems).items():
        records = [_record(root, *parsed[s], classes, problems) for s in stems if s in parsed]
        splits[split] = DetectionData(classes, [r for r in records if r is not None])
    return splits, problems


def _classes(root: Path, parsed: dict[str, tuple[Path, ET.Element]]) -> list[str]:
    if (root / LABELS).is_file():
        return [line.strip() for line in (root / LABELS).read_text().splitlines() if line.strip()]
    return sorted({(obj.findtext("name") or "").strip() for _, xml in parsed.values() for obj in xml.iter("object")})


def _split_stems(root: Path, stems: list[str], problems: list[Problem]) -> dict[str, list[str]]:
    sets = sorted((root / "ImageSets" / "Main").glob("*.txt")) if (root / "ImageSets" / "Main").is_dir() else []
    if not sets:
        return {"train": stems}
    out = {}
    for txt in sets:
        names = [line.split()[0] for line in txt.read_text().splitlines() if line.strip()]
        for n, name in enumerate(names, start=1):
            if name not in stems:
                problems.append(Problem(txt, f"line {n}", f"no annotation Annotations/{name}.xml"))
        out[txt.stem] = names
    return out


def _record(root: Path, xml_path: Path, xml: ET.Element, classes: list[str],
            problems: list[Problem]) -> ImageRecord | None:
    filename = xml.findtext("filename") or ""
    image = root / "JPEGImages" / filename
    size = image_size(image) if filename else None
    if size is None:
        problems.append(Problem(xml_path, "filename", f"image file {image} is missing or unreadable"))
        return None
    rec = ImageRecord(image, *size, [], [], [], [])  # lists while collecting; arrays after
    for i, obj in enumerate(xml.iter("object")):
        name = (obj.findtext("name") or "").strip()
        where = f"object[{i}] ({name})"
        try:
            bb = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            problems.append(Problem(xml_path, where, "bndbox needs numeric xmin, ymin, xmax, ymax"))
            continue
        if name not in classes:
            problems.append(Problem(xml_path, where, f"class '{name}' is not in {root / LABELS}"))
            continue
        box = np.array([xmin - 1, ymin - 1, xmax, ymax], np.float32)
        error = check_box(box, rec.width, rec.height)
        if error:
            problems.append(Problem(xml_path, where, error))
            continue
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        (rec.ignore_boxes if difficult else rec.boxes).append(box)
        (rec.ignore_labels if difficult else rec.labels).append(classes.index(name))
    return rec.as_arrays()


def write_voc(splits: dict[str, DetectionData], root: Path) -> Path:
    """Write Annotations/, JPEGImages/ (copies), ImageSets/Main/<split>.txt and labels.txt."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    classes = next(iter(splits.values())).classes
    (root / LABELS).write_text("".join(c + "\n" for c in classes))
    for split, data in splits.items():
        for rec in data.records:
            dest = root / "JPEGImages" / rec.path.name
            if rec.path.resolve() != dest.resolve():
                shutil.copy2(rec.path, dest)
            _xml(rec, classes).write(root / "Annotations" / f"{rec.path.stem}.xml")
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(r.path.stem + "\n" for r in data.records))
    return root


def _xml(rec: ImageRecord, classes: list[str]) -> ET.ElementTree:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "filename").text = rec.path.name
    size = ET.SubElement(ann, "size")
    for key, value in (("width", rec.width), ("height", rec.height), ("depth", 3)):
        ET.SubElement(size, key).text = str(value)
    for (x1, y1, x2, y2), label, difficult in rec.annotations():
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = classes[label]
        ET.SubElement(obj, "difficult").text = str(int(difficult))
        bb = ET.SubElement(obj, "bndbox")
        for key, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bb, key).text = str(int(round(value)))
    ET.indent(ann)
    return ET.ElementTree(ann)
