"""Joint transforms: pad-to-crop with 255, nearest for masks, output types."""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from segtool.core.conventions import IMAGENET_MEAN
from segtool.data.transforms import eval_transforms, train_transforms


def _pair(h=20, w=30):
    image = tv_tensors.Image(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.randint(0, 4, (h, w), dtype=torch.uint8))
    return image, mask


def test_train_pads_small_images_with_ignore():
    torch.manual_seed(0)
    image, mask = train_transforms((32, 40), hflip=False)(*_pair())
    assert type(image) is torch.Tensor and type(mask) is torch.Tensor
    assert image.dtype == torch.float32 and image.shape == (3, 32, 40)
    assert mask.dtype == torch.int64 and mask.shape == (32, 40)
    assert (mask == 255).sum() == 32 * 40 - 20 * 30
    assert (image[:, mask == 255] == 0).all()


def test_geometry_is_shared_and_masks_stay_labels():
    torch.manual_seed(1)
    h, w = 40, 40
    # The image encodes its own label map, so any mismatch in geometry shows up.
    blocks = torch.randint(0, 5, (h // 8, w // 8), dtype=torch.uint8)
    labels = blocks.repeat_interleave(8, 0).repeat_interleave(8, 1)  # 8x8 blocks: few edges
    image = tv_tensors.Image((labels * 50).expand(3, h, w).clone())
    t = train_transforms((32, 32), vflip=True, scale=(0.7, 1.5), rotation=0.0)
    for _ in range(5):
        out_image, out_mask = t(image, tv_tensors.Mask(labels))
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 3, 4, 255}  # nearest: no blended labels
        inside = out_mask != 255
        same = (out_image[0][inside] * 255 / 50).round() == out_mask[inside]
        assert same.float().mean() > 0.8  # bilinear image resize blurs only label edges


def test_rotation_fills_mask_with_ignore_and_jitter_touches_image_only():
    torch.manual_seed(2)
    image, mask = _pair(32, 32)
    out_image, out_mask = train_transforms((32, 32), rotation=45, color_jitter=0.5, hflip=False)(image, mask)
    assert (out_mask == 255).any()
    assert set(out_mask.unique().tolist()) <= {0, 1, 2, 3, 255}


def test_eval_normalises_image_and_keeps_mask():
    image, mask = _pair()
    out_image, out_mask = eval_transforms("imagenet")(image, mask)
    expected = (image[0].float() / 255 - IMAGENET_MEAN[0]) / 0.229
    assert torch.allclose(out_image[0], expected, atol=1e-5)
    assert out_mask.dtype == torch.int64 and (out_mask == mask).all()


def test_resize_uses_nearest_for_masks():
    image, mask = _pair(20, 30)
    out_image, out_mask = eval_transforms(resize=(40, 60))(image, mask)
    assert out_image.shape == (3, 40, 60) and out_mask.shape == (40, 60)
    assert (out_mask[::2, ::2] == mask).all()  # 2x nearest upscaling repeats each label
    out_image, out_mask = train_transforms((16, 16), resize=(40, 60))(image, mask)
    assert out_mask.shape == (16, 16) and set(out_mask.unique().tolist()) <= {0, 1, 2, 3}
