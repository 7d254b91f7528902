"""Zero-shot tasks follow the official notebooks: prompt averaging, classification, value-path dense features,
whole / sliding-window segmentation at the input's size, and mIoU from a confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from training.tipsv2.model import TIPSv2, create_model
from training.tipsv2.prompts import TCL_TEMPLATES
from training.tipsv2.tokenizer import Tokenizer
from training.tipsv2.zeroshot import (
    classify,
    confusion_matrix,
    dense_features,
    label_text_embeddings,
    miou,
    miou_from_confusion,
    segment,
)

COLORS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.1, 0.8, 0.2]])


@pytest.fixture(scope="module")
def model() -> TIPSv2:
    return create_model("tiny", seed=0).eval()


@pytest.fixture(scope="module")
def tokenizer(tokenizer_path) -> Tokenizer:
    return Tokenizer(tokenizer_path)


def uniform(color: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return color[:, None, None].expand(3, height, width).clone()


def three_stripes(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image of three vertical colour stripes and its label map."""
    bounds = [0, width // 3, 2 * width // 3, width]
    image, truth = torch.empty(3, height, width), torch.empty(height, width, dtype=torch.long)
    for label in range(3):
        image[:, :, bounds[label] : bounds[label + 1]] = uniform(
            COLORS[label], height, bounds[label + 1] - bounds[label]
        )
        truth[:, bounds[label] : bounds[label + 1]] = label
    return image, truth


def colour_prototypes(model: TIPSv2) -> torch.Tensor:
    """Stand-in label embeddings: each colour's mean value-path feature on a uniform image."""
    return torch.stack([dense_features(model, uniform(c, 224, 224)[None]).mean(dim=(0, 1, 2)) for c in COLORS])


# --- label embeddings and classification ---------------------------------------------------------------------


def test_label_embeddings_average_normalised_template_embeddings(model, tokenizer) -> None:
    labels = ["circle", "red square"]
    ours = label_text_embeddings(model, tokenizer, labels)
    assert ours.shape == (2, 64)
    for row, label in enumerate(labels):
        ids, _ = tokenizer([t.format(label) for t in TCL_TEMPLATES])
        with torch.no_grad():
            per_template = F.normalize(model.encode_text(torch.from_numpy(ids.astype(np.int64))), dim=-1)
        expected = F.normalize(per_template.mean(dim=0), dim=-1)
        assert torch.allclose(ours[row], expected, atol=1e-6)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(2))


def test_label_embeddings_use_the_given_templates(model, tokenizer) -> None:
    one = label_text_embeddings(model, tokenizer, ["star"], templates=["a photo of a {}."])
    ids, _ = tokenizer(["a photo of a star."])
    with torch.no_grad():
        direct = F.normalize(model.encode_text(torch.from_numpy(ids.astype(np.int64))), dim=-1)
    assert torch.allclose(one, direct, atol=1e-6)
    with pytest.raises(ValueError, match="contain"):
        label_text_embeddings(model, tokenizer, ["star"], templates=["no placeholder"])


def test_tcl_templates_are_the_nine_of_the_official_notebook() -> None:
    assert len(TCL_TEMPLATES) == 9
    assert TCL_TEMPLATES[0] == "itap of a {}." and TCL_TEMPLATES[-2:] == ("a photo of many {}.", "a photo of {}s.")


def test_classification_is_softmax_of_cosine_over_temperature() -> None:
    images, labels = torch.randn(3, 16), torch.randn(5, 16)
    probs = classify(images * 7.0, labels * 0.1, temperature=0.01)  # scale-free: both sides are normalised
    cosine = F.normalize(images, dim=-1) @ F.normalize(labels, dim=-1).T
    assert torch.allclose(probs, torch.softmax(cosine / 0.01, dim=-1), atol=1e-6)
    assert torch.allclose(probs.sum(dim=-1), torch.ones(3))
    with pytest.raises(ValueError, match="positive"):
        classify(images, labels, temperature=0.0)


# --- dense features -----------------------------------------------------------------------------------------


def test_dense_features_resize_up_to_a_patch_multiple_like_the_notebook(model) -> None:
    pixels = torch.rand(2, 3, 100, 150)
    features = dense_features(model, pixels)
    assert features.shape == (2, 8, 11, 64)  # ceil(100 / 14), ceil(150 / 14)
    resized = F.interpolate(pixels, size=(112, 154), mode="bicubic", align_corners=False)
    assert torch.allclose(features, dense_features(model, resized), atol=1e-6)


def test_dense_features_are_the_value_path_not_the_final_patch_tokens(model) -> None:
    pixels = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        patches = model.encode_image(pixels).patch_tokens.reshape(1, 16, 16, 64)
    assert not torch.allclose(dense_features(model, pixels), patches, atol=1e-3)


# --- segmentation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["whole", "slide"])
@pytest.mark.parametrize("size", [(150, 230), (301, 97)])
def test_segmentation_returns_maps_of_the_input_size(model, mode: str, size: tuple[int, int]) -> None:
    labels = torch.randn(4, 64)
    label_map, probs = segment(model, torch.rand(3, *size), labels, mode=mode)
    assert label_map.shape == size and label_map.dtype == torch.int64
    assert probs.shape == (4, *size)
    assert torch.allclose(probs.sum(dim=0), torch.ones(size), atol=1e-5)
    assert torch.equal(label_map, probs.argmax(dim=0))


def test_segmentation_of_a_pil_image_is_at_the_pil_size(model) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (97, 301, 3), dtype=np.uint8))
    label_map, probs = segment(model, image, torch.randn(2, 64), mode="slide")
    assert label_map.shape == (97, 301) and probs.shape == (2, 97, 301)


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_segmentation_finds_the_stripes_whose_prototypes_it_is_given(model, mode: str) -> None:
    image, truth = three_stripes(200, 330)
    label_map, _ = segment(model, image, colour_prototypes(model), mode=mode)
    score, per_class = miou(label_map, truth, num_classes=3)
    assert score > 0.95 and bool((per_class > 0.9).all())


def notebook_protocol(
    model: TIPSv2, image: torch.Tensor, labels: torch.Tensor, side: int, stride: int, short: int
) -> torch.Tensor:
    """TIPSv2_Segmentation.ipynb: `ShortSideResize(short)`, then `predict_slide(side, stride)` written out window
    by window, then the upsampling to the input size."""
    H0, W0 = image.shape[1:]
    h, w = (short, int(short * W0 / H0)) if H0 <= W0 else (int(short * H0 / W0), short)
    img = F.interpolate(image[None], size=(h, w), mode="bicubic", antialias=True, align_corners=False)[0]
    text = F.normalize(labels, dim=-1)
    probs, counts = torch.zeros(len(labels), h, w), torch.zeros(h, w)
    for i in range(max(h - side + stride - 1, 0) // stride + 1):
        for j in range(max(w - side + stride - 1, 0) // stride + 1):
            y2, x2 = min(i * stride + side, h), min(j * stride + side, w)
            y1, x1 = max(y2 - side, 0), max(x2 - side, 0)
            window = img[:, y1:y2, x1:x2]
            feats = F.normalize(dense_features(model, window[None])[0], dim=-1)
            cos = torch.einsum("cd,hwd->chw", text, feats)
            cos = F.interpolate(cos[None], size=window.shape[1:], mode="bilinear", align_corners=False)[0]
            probs[:, y1:y2, x1:x2] += cos.softmax(dim=0)
            counts[y1:y2, x1:x2] += 1
    return F.interpolate((probs / counts)[None], size=(H0, W0), mode="bilinear", align_corners=False)[0]


def test_sliding_window_probabilities_follow_the_notebook_with_native_window_and_three_quarter_stride(model) -> None:
    image, labels = torch.rand(3, 180, 400), torch.randn(5, 64)
    _, probs = segment(model, image, labels, mode="slide")  # defaults for tiny: window 224, stride 168
    assert torch.allclose(probs, notebook_protocol(model, image, labels, 224, 168, short=224), atol=1e-5)
    _, probs = segment(model, image, labels, mode="slide", window=112, stride=100, short_side=168)
    assert torch.allclose(probs, notebook_protocol(model, image, labels, 112, 100, short=168), atol=1e-5)


def test_whole_mode_labels_are_the_argmax_of_the_upsampled_cosine_map(model) -> None:
    image, labels = torch.rand(3, 224, 300), torch.randn(3, 64)
    label_map, _ = segment(model, image, labels, mode="whole")
    feats = F.normalize(dense_features(model, image[None])[0], dim=-1)  # 224 x 300 is already short side 224
    cos = torch.einsum("cd,hwd->chw", F.normalize(labels, dim=-1), feats)
    upsampled = F.interpolate(cos[None], size=(224, 300), mode="bilinear", align_corners=False)[0]
    assert torch.equal(label_map, upsampled.argmax(dim=0))


def test_segmentation_rejects_bad_arguments(model) -> None:
    with pytest.raises(ValueError, match="mode"):
        segment(model, torch.rand(3, 50, 50), torch.randn(2, 64), mode="tiles")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(C, 64\)"):
        segment(model, torch.rand(3, 50, 50), torch.randn(2, 32))
    with pytest.raises(ValueError, match="PIL"):
        segment(model, torch.rand(50, 50), torch.randn(2, 64))


# --- mIoU -----------------------------------------------------------------------------------------------------


def test_miou_on_hand_made_masks() -> None:
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1], [2, 0, 1, 2], [2, 2, 0, 0]])
    score, per_class = miou(pred, target, num_classes=4)
    # class 0: TP 3, FN 1 (pred 1), FP 1 (pred 0 on a 2) -> 3/5; class 1: TP 4, FP 1 -> 4/5;
    # class 2: TP 3, FN 1 -> 3/4; class 3: never in target or prediction -> NaN; the four 255 pixels do not count.
    assert per_class[:3].tolist() == pytest.approx([3 / 5, 4 / 5, 3 / 4])
    assert torch.isnan(per_class[3])
    assert score == pytest.approx((3 / 5 + 4 / 5 + 3 / 4) / 3)


def test_miou_is_one_for_a_perfect_prediction_and_zero_for_a_wrong_one() -> None:
    target = np.array([[1, 1], [2, 2]])
    assert miou(target, target, num_classes=3)[0] == pytest.approx(1.0)
    assert miou(np.array([[2, 2], [1, 1]]), target, num_classes=3)[0] == 0.0


def test_dataset_miou_sums_confusion_matrices_over_images() -> None:
    a_pred, a_true = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1])
    b_pred, b_true = torch.tensor([1, 1]), torch.tensor([1, 1])
    total = confusion_matrix(a_pred, a_true, 2) + confusion_matrix(b_pred, b_true, 2)
    assert total.tolist() == [[1, 0], [1, 3]]  # rows: ground truth, columns: prediction
    score, _ = miou_from_confusion(total)
    assert score == pytest.approx((1 / 2 + 3 / 4) / 2)


def test_miou_rejects_labels_outside_the_class_range() -> None:
    with pytest.raises(ValueError, match="pred has labels outside"):
        miou(torch.tensor([3]), torch.tensor([0]), num_classes=3)
    with pytest.raises(ValueError, match="target has labels outside"):
        miou(torch.tensor([0]), torch.tensor([7]), num_classes=3)
