"""Instance segmentation on images larger than the model was trained on: overlapping tiles, each resized like a
training image, every object's mask mapped back to the image, objects merged across tile borders.

The merge (no object cut in two, none counted twice): an object whose mask touches an inner tile edge (one that is
not the image's edge) is *cut*, as that tile may see only part of it. Objects are taken by descending score (whole
before cut at equal scores); one joins an earlier one of the same class from another tile when the two masks agree
where both tiles see the image (mask IoU >= ``iou`` inside the intersection of the two windows); a group holds one
object per tile. A group's mask is its best whole member, or, when every member is cut (an object larger than the
tiles' overlap), the union of the members, which may not outgrow one tile (no model saw a larger object whole, and
tile-sized junk of adjacent tiles must not chain into one blob); its score is its best member's (a weak object
never outranks a strong one by being seen in more tiles).
``TiledInstances(...)(image, model)`` is the inferer (MONAI's shape)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toolkit.inference.tiles import Window, tile_windows

TILE_BATCH = 4  # tiles per model call (each returns up to detections_per_img full-tile masks)
EDGE = 1  # a mask within this many pixels of an inner tile edge touches it

Rect = tuple[int, int, int, int]  # (y0, x0, y1, x1) image pixels, y1/x1 exclusive


@dataclass
class Piece:
    """One object found in one tile: ``mask`` (h, w) bool over its box ``rect`` in image pixels."""

    tile: int
    window: Rect
    rect: Rect
    mask: np.ndarray
    score: float
    label: int
    cut: bool


class TiledInstances:
    """``tiles(image, model)``: instances ``{"boxes": (N, 4) float32 xyxy image pixels (x2/y2 exclusive), "scores":
    (N,) float32, "labels": (N,) int64, "masks": (N, H, W) bool}`` of an (H, W, 3) float image of any size, by
    descending score.

    ``tile``: images with a side over this many pixels are cut into tiles (0 = always the whole image);
    ``transform``: the eval pipeline (a sample dict -> ``{"image": (3, h, w) tensor, ...}``); ``conf``: objects with
    a lower score are dropped; ``iou``: two objects from different tiles with at least this mask IoU where both
    tiles see the image are one; ``mask_thresh``: mask probability cut; ``overlap``: pixels shared by neighbouring
    tiles (0 = a quarter of the tile; objects larger than it are cut in every tile and their pieces joined).

    The model: ``model(images: list[(3, h, w)]) -> [{"scores": (N,), "labels": (N,), "masks": (N, 1, h, w)
    probabilities}]`` (torchvision's Mask R-CNN in eval mode)."""

    def __init__(self, tile: int, transform: Callable[[dict[str, Any]], dict[str, Any]], conf: float = 0.5,
                 iou: float = 0.5, mask_thresh: float = 0.5, overlap: int = 0, batch: int = TILE_BATCH) -> None:
        self.tile, self.transform, self.conf, self.iou = tile, transform, conf, iou
        self.mask_thresh, self.overlap, self.batch = mask_thresh, overlap, batch

    def windows(self, h: int, w: int) -> list[Window]:
        """The tiles of an h x w image: one window over all of it when it fits in one tile."""
        return tile_windows(h, w, self.tile, self.overlap) if self.tile and max(h, w) > self.tile else [(0, 0, h, w)]

    @torch.no_grad()
    def __call__(self, image: np.ndarray, model: nn.Module, dense: bool = True) -> dict[str, Any]:
        """The instances; ``dense=False``: ``masks`` is a list of N bool masks, each over its object's box ((y2 - y1,
        x2 - x1)): memory in proportion to the boxes, not N x H x W (large images with many objects)."""
        h, w = image.shape[:2]
        windows = self.windows(h, w)
        device = next(model.parameters(), torch.zeros(0)).device
        pieces: list[Piece] = []
        for start in range(0, len(windows), self.batch):
            chunk = windows[start:start + self.batch]
            crops = [self._prepare(image[y:y + th, x:x + tw]) for y, x, th, tw in chunk]
            found = model([c.to(device) for c in crops])
            for i, (window, det) in enumerate(zip(chunk, found)):
                pieces += self._pieces(start + i, window, det, (h, w))
        objects = sorted((_joined(group) for group in merge(pieces, self.iou)), key=lambda p: -p.score)
        return _arrays(objects, (h, w) if dense else None)

    def _prepare(self, crop: np.ndarray) -> torch.Tensor:
        """(h, w, 3) float crop -> (3, h', w') model input, resized like a training image."""
        sample = {"image": crop, "masks": np.zeros((0, *crop.shape[:2]), np.uint8),
                  "boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}
        return self.transform(sample)["image"]

    def _pieces(self, index: int, window: Window, det: dict[str, torch.Tensor], image_hw: tuple[int, int]
                ) -> list[Piece]:
        """The objects of one tile with score >= conf and a non-empty mask, in image pixels."""
        y, x, th, tw = window
        keep = det["scores"] >= self.conf
        if not bool(keep.any()):
            return []
        probs = det["masks"][keep].float()
        masks = (F.interpolate(probs, size=(th, tw), mode="bilinear", align_corners=False)[:, 0]
                 > self.mask_thresh).cpu().numpy()
        inner = (y > 0, x > 0, y + th < image_hw[0], x + tw < image_hw[1])  # top, left, bottom, right
        out = []
        for mask, score, label in zip(masks, det["scores"][keep].tolist(), det["labels"][keep].tolist()):
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            if not len(rows):
                continue
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            touches = (y0 <= EDGE, x0 <= EDGE, y1 >= th - EDGE, x1 >= tw - EDGE)
            cut = any(a and b for a, b in zip(inner, touches))
            out.append(Piece(index, (y, x, y + th, x + tw), (y + y0, x + x0, y + y1, x + x1), mask[y0:y1, x0:x1],
                             float(score), int(label), cut))
        return out


def merge(pieces: list[Piece], iou: float) -> list[list[Piece]]:
    """Groups of pieces that are one object (see the module's docstring), each group's best piece first."""
    order = sorted(pieces, key=lambda p: (-p.score, p.cut))
    rects = np.asarray([p.rect for p in order], np.int64).reshape(-1, 4)
    labels = np.asarray([p.label for p in order], np.int64)
    tiles = np.asarray([p.tile for p in order], np.int64)
    group_of = np.zeros(len(order), np.int64)
    groups: list[list[Piece]] = []
    for i, piece in enumerate(order):
        near = np.flatnonzero((rects[:i, 0] < rects[i, 2]) & (rects[i, 0] < rects[:i, 2]) & (rects[:i, 1] < rects[i, 3])
                              & (rects[i, 1] < rects[:i, 3]) & (labels[:i] == labels[i]) & (tiles[:i] != tiles[i]))
        best, best_iou = -1, iou
        for j in near:
            group = groups[group_of[j]]
            if any(p.tile == piece.tile for p in group) or not _fits(group, piece):
                continue
            shared = shared_iou(piece, order[j])
            if shared >= best_iou:
                best, best_iou = int(group_of[j]), shared
        if best < 0:
            group_of[i] = len(groups)
            groups.append([piece])
        else:
            group_of[i] = best
            groups[best].append(piece)
    return groups


def _fits(group: list[Piece], piece: Piece) -> bool:
    """Whether ``piece`` may join ``group``: always when one of them is whole (the group's mask is then a whole
    member), else when the union of their boxes fits in one tile."""
    if not piece.cut or any(not p.cut for p in group):
        return True
    rects = [p.rect for p in group] + [piece.rect]
    height = max(r[2] for r in rects) - min(r[0] for r in rects)
    width = max(r[3] for r in rects) - min(r[1] for r in rects)
    return height <= piece.window[2] - piece.window[0] and width <= piece.window[3] - piece.window[1]


def shared_iou(a: Piece, b: Piece) -> float:
    """Mask IoU of two pieces inside the intersection of their tiles' windows (0 when neither has pixels there)."""
    region = _intersect(a.window, b.window)
    span = _intersect(region, (min(a.rect[0], b.rect[0]), min(a.rect[1], b.rect[1]),
                               max(a.rect[2], b.rect[2]), max(a.rect[3], b.rect[3])))
    if span[0] >= span[2] or span[1] >= span[3]:
        return 0.0
    ma, mb = _paint(a, span), _paint(b, span)
    union = int((ma | mb).sum())
    return int((ma & mb).sum()) / union if union else 0.0


def _intersect(p: Rect, q: Rect) -> Rect:
    return max(p[0], q[0]), max(p[1], q[1]), min(p[2], q[2]), min(p[3], q[3])


def _paint(piece: Piece, span: Rect) -> np.ndarray:
    """``piece``'s mask on the (y1 - y0, x1 - x0) grid of ``span``."""
    out = np.zeros((span[2] - span[0], span[3] - span[1]), bool)
    y0, x0, y1, x1 = _intersect(piece.rect, span)
    if y0 < y1 and x0 < x1:
        out[y0 - span[0]:y1 - span[0], x0 - span[1]:x1 - span[1]] = \
            piece.mask[y0 - piece.rect[0]:y1 - piece.rect[0], x0 - piece.rect[1]:x1 - piece.rect[1]]
    return out


def _joined(group: list[Piece]) -> Piece:
    """One piece for a group (by descending score), scored as its best member: its best whole member, else the
    union of its (cut) members."""
    whole = [p for p in group if not p.cut]
    if whole or len(group) == 1:
        return dataclasses.replace((whole or group)[0], score=group[0].score)
    span = (min(p.rect[0] for p in group), min(p.rect[1] for p in group),
            max(p.rect[2] for p in group), max(p.rect[3] for p in group))
    mask = np.logical_or.reduce([_paint(p, span) for p in group])
    return Piece(group[0].tile, group[0].window, span, mask, group[0].score, group[0].label, True)


def _arrays(objects: list[Piece], image_hw: tuple[int, int] | None) -> dict[str, Any]:
    """The merged objects as the inferer's output: masks (N, H, W) over an ``image_hw`` image, or (None) each over
    its box."""
    masks: Any = [p.mask for p in objects]
    if image_hw is not None:
        masks = np.zeros((len(objects), *image_hw), bool)
        for mask, p in zip(masks, objects):
            mask[p.rect[0]:p.rect[2], p.rect[1]:p.rect[3]] = p.mask
    return {"boxes": np.asarray([[p.rect[1], p.rect[0], p.rect[3], p.rect[2]] for p in objects],
                                np.float32).reshape(-1, 4),
            "scores": np.asarray([p.score for p in objects], np.float32),
            "labels": np.asarray([p.label for p in objects], np.int64), "masks": masks}
