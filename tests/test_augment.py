"""The on-device batch augmentation draws from the same law as the albumentations reference."""
import albumentations as A
import numpy as np
import pytest
import torch

from cifarpipe.core.params import IMAGE_SIZE
from cifarpipe.data.loader import random_streams
from cifarpipe.data.augment import augment_batch, fill_rgb


def reference_transform(*, pad: int, crop: int, flip: float, cutout: int, fill: tuple[int, int, int]):
    """The reference recipe's augmentation: albumentations on one HWC uint8 image, the law augment_batch
    follows."""
    steps = [A.PadIfNeeded(IMAGE_SIZE + 2 * pad, IMAGE_SIZE + 2 * pad, border_mode=0, fill=fill),
             A.RandomCrop(crop, crop), A.HorizontalFlip(p=flip)]
    if cutout > 0:
        steps.append(A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(cutout, cutout),
                                     hole_width_range=(cutout, cutout), fill=fill, p=1.0))
    return A.Compose(steps)


N = 3000


def coordinate_image():
    """Channel 0 = row + 1, channel 1 = column + 1, channel 2 = 200: every pixel says where it came from."""
    rows, cols = np.mgrid[0:32, 0:32]
    return np.stack([rows + 1, cols + 1, np.full((32, 32), 200)], -1).astype(np.uint8)


def torch_outputs(image, n, **aug):
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].repeat(n, 1, 1, 1)
    out = augment_batch(batch, streams=random_streams(0), **aug)
    return out.permute(0, 2, 3, 1).numpy()


def reference_outputs(image, n, **aug):
    transform = reference_transform(**aug)
    return np.stack([transform(image=image)["image"] for _ in range(n)])


IMPLEMENTATIONS = {"torch": torch_outputs, "albumentations": reference_outputs}


def decode_crop_and_flip(out):
    """(row offset, column offset, flipped) of one output of the coordinate image with pad 4."""
    flipped = out[16, 17, 1] < out[16, 16, 1]
    oy = int(out[16, 16, 0]) - 1 - 16 + 4
    ox = int(out[16, 16, 1]) - 1 - (15 if flipped else 16) + 4
    return oy, ox, flipped


def assert_uniform(values, n_values):
    counts = np.bincount(values, minlength=n_values)
    assert len(counts) == n_values, counts
    expected = len(values) / n_values
    sd = np.sqrt(expected * (1 - 1 / n_values))
    assert np.all(np.abs(counts - expected) < 5 * sd), counts


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_crop_offsets_uniform_over_0_to_8_and_flip_rate_half(impl):
    outs = IMPLEMENTATIONS[impl](coordinate_image(), N, pad=4, crop=32, flip=0.5, cutout=0, fill=(0, 0, 0))
    decoded = np.array([decode_crop_and_flip(o) for o in outs])
    assert_uniform(decoded[:, 0], 9)
    assert_uniform(decoded[:, 1], 9)
    assert abs(decoded[:, 2].mean() - 0.5) < 5 * np.sqrt(0.25 / N)
    # the decoded crop explains every pixel: padding where the source lies outside the image
    for o, (oy, ox, flipped) in zip(outs[:200], decoded[:200]):
        src_r = np.arange(32)[:, None] + oy - 4
        src_c = (np.arange(32)[::-1] if flipped else np.arange(32))[None, :] + ox - 4
        inside = (src_r >= 0) & (src_r < 32) & (src_c >= 0) & (src_c < 32)
        assert np.array_equal(o[..., 0], np.where(inside, src_r + 1, 0))
        assert np.array_equal(o[..., 1], np.where(inside, src_c + 1, 0))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("size", [8, 16])
def test_exactly_one_cutout_square_placed_uniformly(impl, size):
    white = np.full((32, 32, 3), 255, np.uint8)
    fill = (125, 123, 114)
    outs = IMPLEMENTATIONS[impl](white, N, pad=0, crop=32, flip=0.5, cutout=size, fill=fill)
    holes = np.all(outs == np.array(fill), axis=-1)
    assert np.all(holes | np.all(outs == 255, axis=-1))  # every pixel is either the image or the fill
    assert np.all(holes.sum((1, 2)) == size * size)
    tops = holes.any(2).argmax(1)
    lefts = holes.any(1).argmax(1)
    for hole, top, left in zip(holes, tops, lefts):
        assert hole[top:top + size, left:left + size].all()  # one square, not scattered pixels
    assert_uniform(tops, 32 - size + 1)
    assert_uniform(lefts, 32 - size + 1)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_padding_uses_the_configured_fill(impl):
    white = np.full((32, 32, 3), 255, np.uint8)
    fill = fill_rgb("mean", [0.4914, 0.4822, 0.4465])
    assert fill == (125, 123, 114)
    outs = IMPLEMENTATIONS[impl](white, 500, pad=4, crop=32, flip=0.0, cutout=0, fill=fill)
    filled = np.all(outs == np.array(fill), axis=-1)
    assert np.all(filled | np.all(outs == 255, axis=-1)) and filled.any()


def test_fill_as_a_grey_level():
    assert fill_rgb(0, [0.5, 0.5, 0.5]) == (0, 0, 0)


def test_same_seed_gives_the_same_batch():
    batch = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    aug = dict(pad=4, crop=32, flip=0.5, cutout=8, fill=(1, 2, 3))
    a = augment_batch(batch, streams=random_streams(5), **aug)
    b = augment_batch(batch, streams=random_streams(5), **aug)
    c = augment_batch(batch, streams=random_streams(6), **aug)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_each_augmentation_draws_from_its_own_stream():
    """Common random numbers: at one seed, turning cutout off (no cutout draws) leaves the batch order, the
    crops and the flips as they were, so the two batches differ only inside each image's cutout square; drawing
    crops and flips from one stream, as before, shifted every later draw."""
    from cifarpipe.data.loader import DeviceLoader

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 96)
    stats = {"mean": [0.0] * 3, "std": [1 / 255] * 3}  # normalisation that keeps the 0..255 values
    cpu = type("C", (), {"device": torch.device("cpu"), "memory_format": torch.contiguous_format,
                         "ranks": type("R", (), {"rank": 0, "world": 1})()})()

    def epoch(cutout):
        aug = dict(pad=4, crop=32, flip=0.5, cutout=cutout, fill=(7, 7, 7))
        return list(DeviceLoader(x, y, stats, cpu, 32, augment=aug, seed=3))

    with_cutout, without = epoch(8), epoch(0)
    for (a, ya), (b, yb) in zip(with_cutout, without, strict=True):
        assert torch.equal(ya, yb)
        for image_a, image_b in zip(a, b, strict=True):
            rows, cols = torch.nonzero((image_a != image_b).any(0), as_tuple=True)
            assert len(rows) > 0 and torch.allclose(image_a[:, rows, cols], torch.tensor(7.0), atol=1e-3)  # the hole, in the fill colour
            assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8  # inside one 8x8 square
