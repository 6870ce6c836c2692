import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

from datadream_bench.classifier import augment as A


def _image(h=20, w=24, seed=0):
    rng = np.random.default_rng(seed)
    arr = (rng.random((h, w, 3)) ** 2 * 200 + 20).astype(np.uint8)
    return arr, torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255


def _as_uint8(x):
    return (x[0].permute(1, 2, 0).numpy() * 255).round().astype(int)


def test_train_transform_shape_dtype_range():
    images = torch.randint(0, 256, (6, 3, 37, 37), dtype=torch.uint8)
    out = A.train_transform(images, 32, torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 32, 32) and out.dtype == torch.float32
    mean = torch.tensor(A.CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(A.CLIP_STD).view(1, 3, 1, 1)
    pixels = out * std + mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert torch.isfinite(out).all()


def test_train_transform_is_deterministic_by_seed():
    images = torch.randint(0, 256, (8, 3, 37, 37), dtype=torch.uint8)
    a = A.train_transform(images, 32, torch.Generator().manual_seed(5))
    b = A.train_transform(images, 32, torch.Generator().manual_seed(5))
    c = A.train_transform(images, 32, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_lighter_chains():
    images = torch.randint(0, 256, (4, 3, 37, 37), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    none = A.train_transform(images, 32, g, "none")
    resized = F.interpolate(images.float() / 255, size=(32, 32), mode="bicubic", antialias=True).clamp(0, 1)
    assert torch.allclose(none, A.normalize(resized))
    same = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(A.train_transform(same, 32, g, "none"), A.test_transform(same))
    crop = A.train_transform(images, 32, torch.Generator().manual_seed(1), "crop-flip")
    assert crop.shape == (4, 3, 32, 32) and not torch.allclose(crop, none)
    with pytest.raises(ValueError, match="unknown augmentation chain"):
        A.train_transform(images, 32, g, "heavy")


def test_images_of_any_size_each_crop_from_their_whole_frame():
    a = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    wide = torch.randint(0, 256, (3, 30, 60), dtype=torch.uint8)
    tall = torch.randint(0, 256, (3, 50, 20), dtype=torch.uint8)
    out = A.train_transform([a, wide, a.clone()], 32, torch.Generator().manual_seed(3))
    assert out.shape == (3, 3, 32, 32) and torch.isfinite(out).all()
    # A sample's augmentation is drawn before sizes matter: another neighbour leaves it as it was.
    other = A.train_transform([a, tall, a.clone()], 32, torch.Generator().manual_seed(3))
    assert torch.equal(out[0], other[0]) and torch.equal(out[2], other[2]) and not torch.equal(out[1], other[1])
    # A list of one size is the same batch as the stacked tensor.
    same = [torch.randint(0, 256, (3, 37, 37), dtype=torch.uint8) for _ in range(4)]
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(A.train_transform(same, 32, g1), A.train_transform(torch.stack(same), 32, g2))
    # The test view of a non-square image: the central square of its shorter side.
    none = A.train_transform([wide], 30, torch.Generator(), "none")
    assert torch.allclose(none, A.test_transform(wide[None, :, :, 15:45]), atol=1e-6)


def test_crop_boxes_fall_back_to_the_central_crop_of_the_whole_image():
    # 10 tries that cannot fit (a 1 px tall image) fall back to the central crop, aspect clamped to 4/3 as
    # torchvision does: 1 x round(4/3) for a 1 x 40 strip.
    boxes = A.crop_boxes(torch.Generator().manual_seed(0), 50, 1, 40)
    assert torch.equal(boxes, torch.tensor([[0.0, 19.0, 1.0, 1.0]]).expand(50, 4))
    wide = A.crop_boxes(torch.Generator().manual_seed(0), 500, 30, 90)
    top, left, h, w = wide.unbind(1)
    assert (left + w <= 90).all() and (top + h <= 30).all() and left.min() == 0 and (left + w).max() == 90


def test_magnitudes_are_randaugment_9_of_31():
    assert A.ra_magnitude("rotate", 224) == pytest.approx(9.0)
    assert A.ra_magnitude("shear_x", 224) == pytest.approx(0.09)
    assert A.ra_magnitude("brightness", 224) == pytest.approx(0.27)
    assert A.ra_magnitude("posterize", 224) == 7
    assert A.ra_magnitude("solarize", 224) == pytest.approx(178.5)
    assert A.ra_magnitude("translate_x", 331) == pytest.approx(45.0)


@pytest.mark.parametrize("name,ours,pil", [
    ("equalize", lambda x: A.equalize(x), lambda im: ImageOps.equalize(im)),
    ("autocontrast", lambda x: A.autocontrast(x), lambda im: ImageOps.autocontrast(im)),
    ("posterize", lambda x: A.posterize(x, 7), lambda im: ImageOps.posterize(im, 7)),
    ("solarize", lambda x: A.solarize(x, 178.5 / 255), lambda im: ImageOps.solarize(im, 178.5)),
    ("brightness", lambda x: A.brightness(x, torch.tensor([1.27])), lambda im: ImageEnhance.Brightness(im).enhance(1.27)),
    ("color", lambda x: A.saturation(x, torch.tensor([0.73])), lambda im: ImageEnhance.Color(im).enhance(0.73)),
    ("contrast", lambda x: A.contrast(x, torch.tensor([1.27])), lambda im: ImageEnhance.Contrast(im).enhance(1.27)),
    ("sharpness", lambda x: A.sharpness(x, torch.tensor([1.27])), lambda im: ImageEnhance.Sharpness(im).enhance(1.27)),
])
def test_pixel_ops_match_pil(name, ours, pil):
    arr, x = _image()
    diff = np.abs(_as_uint8(ours(x)) - np.asarray(pil(Image.fromarray(arr))).astype(int))
    assert diff.max() <= 1, name  # rounding only


@pytest.mark.parametrize("op,pil_matrix", [
    ("shear_x", (1, 0.09, 0, 0, 1, 0)),
    ("shear_y", (1, 0, 0, 0.09, 1, 0)),
    ("translate_x", (1, 0, -3, 0, 1, 0)),
    ("translate_y", (1, 0, 0, 0, 1, -3)),
])
def test_geometry_matches_pil(op, pil_matrix):
    arr, x = _image(20, 20)
    mag = torch.tensor([3.0 if op.startswith("translate") else 0.09])
    ours = A.warp(x, A.ra_geometry(op, mag, 20, 20), 20, "nearest", "zeros")
    im = Image.fromarray(arr)
    ref = im.transform(im.size, Image.AFFINE, pil_matrix, Image.NEAREST)
    assert np.array_equal(_as_uint8(ours), np.asarray(ref).astype(int))


def test_rotate_matches_pil():
    arr, x = _image(20, 20)
    ours = A.warp(x, A.ra_geometry("rotate", torch.tensor([9.0]), 20, 20), 20, "nearest", "zeros")
    assert np.array_equal(_as_uint8(ours), np.asarray(Image.fromarray(arr).rotate(9.0, Image.NEAREST)).astype(int))


def test_hue_shift_zero_is_identity_and_full_turn_too():
    _, x = _image()
    assert torch.allclose(A.hue(x, torch.tensor([0.0])), x, atol=1e-5)
    assert torch.allclose(A.hue(x, torch.tensor([1.0])), x, atol=1e-5)
    assert not torch.allclose(A.hue(x, torch.tensor([0.1])), x, atol=1e-2)


def test_crop_whole_image_is_identity_and_flip_mirrors():
    x = torch.rand(2, 3, 16, 16)
    m = A.crop_flip_matrix(torch.tensor([[0, 0, 16, 16], [0, 0, 16, 16]], dtype=torch.float32),
                           torch.tensor([False, True]), 16)
    out = A.warp(x, m, 16, "bicubic", "border")
    assert torch.allclose(out[0], x[0], atol=1e-5)
    assert torch.allclose(out[1], x[1].flip(-1), atol=1e-5)


def test_crop_resize_is_bicubic_resize_of_the_box():
    x = torch.rand(1, 3, 16, 16)
    m = A.crop_flip_matrix(torch.tensor([[2, 3, 8, 10]], dtype=torch.float32), torch.tensor([False]), 12)
    out = A.warp(x, m, 12, "bicubic", "border")
    ref = F.interpolate(x[:, :, 2:10, 3:13], size=(12, 12), mode="bicubic", align_corners=False)
    # Away from the box edge; at the edge we read the real neighbours instead of repeating the box border.
    assert torch.allclose(out[..., 3:-3, 3:-3], ref[..., 3:-3, 3:-3], atol=1e-5)


def test_crop_boxes_stay_inside_and_cover_a_quarter_or_more():
    boxes = A.crop_boxes(torch.Generator().manual_seed(0), 500, 40, 40)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 40).all() and (left + w <= 40).all()
    area = h * w / 1600
    assert area.min() >= 0.2 and area.max() <= 1.0 and area.mean() > 0.4


def test_mix_targets_sum_to_one_match_the_pixels_and_stay_within_groups():
    # Image i is the constant i and has label i: under MixUp or CutMix its mean pixel must be sum_k target_k * k.
    n = 8
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 8, 8).clone()
    labels = torch.arange(n)
    real = torch.arange(n) < 3
    kinds = set()
    for seed in range(30):
        out, targets = A.mix(x, labels, real, n, np.random.default_rng(seed), p=1.0, alpha=1.0)
        assert torch.allclose(targets.sum(1), torch.ones(n))
        assert torch.allclose(out.mean(dim=(1, 2, 3)), targets @ torch.arange(n, dtype=torch.float32), atol=1e-5)
        assert (targets[real][:, 3:] == 0).all() and (targets[~real][:, :3] == 0).all()
        kinds.add("cutmix" if any(len(torch.unique(row)) > 1 for row in out) else "mixup")
    assert kinds == {"cutmix", "mixup"}


def test_mix_happens_on_about_a_fifth_of_batches():
    x = torch.rand(4, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 3])
    real = torch.zeros(4, dtype=torch.bool)
    mixed = sum(not torch.equal(A.mix(x, labels, real, 4, np.random.default_rng(s), 0.2, 1.0)[0], x)
                for s in range(400))
    assert 50 <= mixed <= 110


def test_mix_probability_zero_is_one_hot():
    x = torch.rand(4, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 1])
    out, targets = A.mix(x, labels, torch.zeros(4, dtype=torch.bool), 3, np.random.default_rng(0), 0.0, 1.0)
    assert torch.equal(out, x) and torch.equal(targets, F.one_hot(labels, 3).float())


def test_test_transform_normalises():
    images = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
    out = A.test_transform(images)
    expected = (1 - torch.tensor(A.CLIP_MEAN)) / torch.tensor(A.CLIP_STD)
    assert torch.allclose(out[0, :, 0, 0], expected)
