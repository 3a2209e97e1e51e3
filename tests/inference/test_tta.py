"""Test-time augmentation: every view's boxes map back to the image, and the fusion weighs the views."""
import pytest
import torch

from toolkit.errors import ConfigError
from toolkit.inference.tta import VIEWS, DetectionTTA, from_view, to_view

BOX = [3.0, 5.0, 18.0, 12.0]  # xyxy of the bright patch: off-centre and not square


def bright_patch_detector(images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """A stand-in detector: the box around the pixels above 0.5 (x2/y2 exclusive), score 0.9."""
    out = []
    for x in images:
        ys, xs = torch.nonzero(x[0] > 0.5, as_tuple=True)
        box = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
        out.append({"boxes": box[None], "scores": torch.tensor([0.9]), "labels": torch.tensor([1])})
    return out


def _image(h: int = 24, w: int = 40) -> torch.Tensor:
    image = torch.zeros(3, h, w)
    x1, y1, x2, y2 = map(int, BOX)
    image[:, y1:y2, x1:x2] = 1.0
    return image


@pytest.mark.parametrize("view", VIEWS["d4"])
def test_each_view_maps_its_boxes_back_to_the_image(view) -> None:
    seen = to_view(_image(), *view)
    (det,) = bright_patch_detector([seen])
    assert from_view(det["boxes"], tuple(seen.shape[-2:]), *view).tolist() == [BOX]


@pytest.mark.parametrize("mode", ["hflip", "d4"])
def test_fused_views_agree_with_the_plain_detection(mode) -> None:
    (fused,) = DetectionTTA(mode)([_image()], bright_patch_detector)
    torch.testing.assert_close(fused["boxes"], torch.tensor([BOX]))
    assert fused["scores"].tolist() == pytest.approx([0.9]) and fused["labels"].tolist() == [1]


def test_a_box_only_some_views_find_scores_lower() -> None:
    def upright_only(images):  # finds the patch only where it is in the image's left half
        return [d if d["boxes"][0, 0] < x.shape[-1] / 2 else {k: v[:0] for k, v in d.items()}
                for x, d in zip(images, bright_patch_detector(images))]

    (fused,) = DetectionTTA("hflip")([_image()], upright_only)
    torch.testing.assert_close(fused["boxes"], torch.tensor([BOX]))
    assert fused["scores"].tolist() == pytest.approx([0.45])  # found by 1 of 2 views


def test_none_is_one_plain_call_and_unknown_modes_are_refused() -> None:
    calls = []
    DetectionTTA("none")([_image()] * 2, lambda images: calls.append(len(images)) or bright_patch_detector(images))
    assert calls == [2]
    with pytest.raises(ConfigError, match="unknown model.tta 'flips'; valid: none, hflip, d4"):
        DetectionTTA("flips")([_image()], bright_patch_detector)


def test_views_that_disagree_keep_no_more_boxes_than_one_view_returns() -> None:
    def scattered(images):  # two boxes at places that move with each call, so no two views agree
        scattered.calls += 1
        x = 10.0 * scattered.calls
        return [{"boxes": torch.tensor([[x, 0.0, x + 4, 4.0], [x, 10.0, x + 4, 14.0]]),
                 "scores": torch.tensor([0.9 - 0.01 * scattered.calls, 0.5]), "labels": torch.tensor([1, 1])}
                for _ in images]
    scattered.calls = 0

    (fused,) = DetectionTTA("d4")([torch.zeros(3, 100, 100)], scattered)
    assert len(fused["scores"]) == 2 and fused["scores"].tolist() == sorted(fused["scores"].tolist(), reverse=True)
    assert fused["scores"][0] == pytest.approx((0.9 - 0.01) / 8)  # the best box, found by one view of eight


def test_the_inferer_checks_its_mode_when_made_and_fuses_its_views() -> None:
    with pytest.raises(ConfigError, match="unknown model.tta 'flips'"):
        DetectionTTA("flips")
    (fused,) = DetectionTTA("d4")([_image()], bright_patch_detector)
    torch.testing.assert_close(fused["boxes"], torch.tensor([BOX]))
