"""Each of CIFAR-10-C's 19 corruptions against its reference engine, on a few images: motion blur and snow
against ImageMagick called through Wand as make_cifar_c.py calls it, with the same draws; the deterministic
ones against values derived here from the reference's formulas, one image at a time; the random ones against
the scale their constants imply, or replayed step by step with the same draws. Streams are seeded by name."""
import colorsys
import ctypes.util
import io
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from cifarpipe.core.errors import PipelineError
from cifarpipe.corrupt import frost as frost_photographs
from cifarpipe.corrupt import magick
from cifarpipe.corrupt.corruptions import CORRUPTIONS, corrupt, require, stream
from cifarpipe.corrupt.names import BENCHMARK, EXTRAS
from cifarpipe.corrupt.sets import fingerprints, make_sets
from synthetic_cifar import make_images

IMAGES = make_images(16, np.random.default_rng(0))[0]
SEVERITIES = range(1, 6)
try:
    import wand.image  # noqa: F401
    HAVE_MAGICK = True
except ImportError:
    HAVE_MAGICK = False
needs_magick = pytest.mark.skipif(not HAVE_MAGICK,
                                  reason=f"ImageMagick: apt-get install {magick.DEBIAN_PACKAGE}")


def ours(name, severity, images=IMAGES, seed=0):
    return corrupt(images, name, severity, stream(seed, name, severity))


def as_uint8(values):
    """The reference's last step: np.uint8 of its float result, clipped to 0..255."""
    return np.uint8(np.clip(values, 0, 255))


def ours_float(name, severity, images=IMAGES, seed=0):
    """The corruption's values before they are truncated to uint8, clipped to 0..255."""
    return np.clip(CORRUPTIONS[name](images, severity, stream(seed, name, severity)), 0, 255)


def close(name, severity, expected, images=IMAGES, atol=1e-6):
    """Our values before truncation equal the reference's to float precision (in 0..255 units), and truncated,
    equal it but where the value sits on an integer within that precision."""
    values = ours_float(name, severity, images)
    np.testing.assert_allclose(values, np.clip(expected, 0, 255), rtol=0, atol=atol)
    assert np.array_equal(corrupt(images, name, severity, stream(0, name, severity)), np.uint8(values))


def skimage_gaussian(image, sigma, mode="nearest", truncate=4.0):
    """skimage.filters.gaussian: a Gaussian over the rows and columns of one image (channels apart)."""
    return ndimage.gaussian_filter(image, (sigma, sigma, 0)[:image.ndim], mode=mode, truncate=truncate)


def test_the_benchmark_and_the_extras_are_the_19_the_stage_makes_by_default():
    import yaml

    from conftest import PARAMS_YAML
    assert len(BENCHMARK) == 15 and len(EXTRAS) == 4 and not set(BENCHMARK) & set(EXTRAS)
    assert list(CORRUPTIONS) == list(BENCHMARK + EXTRAS)
    corrupt_params = yaml.safe_load(PARAMS_YAML.read_text())["corrupt"]
    assert corrupt_params["corruptions"] == list(BENCHMARK + EXTRAS)
    assert corrupt_params["severities"] == [1, 2, 3, 4, 5]


def test_a_corruptions_sets_do_not_depend_on_its_place_in_the_list_and_the_fingerprint_tells_sets_apart():
    y = np.arange(len(IMAGES)) % 10
    one = make_sets(IMAGES, ["fog", "gaussian_noise"], [1, 5], seed=0)
    other = make_sets(IMAGES, ["gaussian_noise", "contrast", "fog"], [1, 5], seed=0)
    assert np.array_equal(one[0], other[2]) and np.array_equal(one[1], other[0])
    assert not np.array_equal(make_sets(IMAGES, ["fog"], [1], seed=1)[0], one[0][:1])
    first, again = fingerprints(one, y, ["fog", "gaussian_noise"], [1, 5]), fingerprints(
        other[[2, 0]], y, ["fog", "gaussian_noise"], [1, 5])
    assert str(first["fingerprint"]) == str(again["fingerprint"]) and len(str(first["fingerprint"])) == 64
    changed = one.copy()
    changed[1, 1, 0, 0, 0, 0] ^= 1  # one value of one image
    moved = fingerprints(changed, y, ["fog", "gaussian_noise"], [1, 5])
    assert moved["fingerprints"][0] == first["fingerprints"][0]  # the other corruption's is its own
    assert first["fingerprints"][0] != first["fingerprints"][1] != moved["fingerprints"][1]
    assert str(moved["fingerprint"]) != str(first["fingerprint"])
    assert str(fingerprints(one, (y + 1) % 10, ["fog", "gaussian_noise"], [1, 5])["fingerprint"]) != str(
        first["fingerprint"])


def test_the_sets_made_over_a_pool_of_processes_are_the_same_bytes_as_made_in_one():
    """runtime.workers cannot change a result: every corruption at two severities, on 1 process and on 3 (more
    than the 2 cores, so that sets land on each worker in turn), equal byte for byte and by fingerprint."""
    names = [n for n in CORRUPTIONS if HAVE_MAGICK or n not in ("motion_blur", "snow")]
    y = np.arange(len(IMAGES)) % 10
    alone = make_sets(IMAGES, names, [1, 5], seed=0, workers=1)
    pooled = make_sets(IMAGES, names, [1, 5], seed=0, workers=3)
    assert alone.shape == (len(names), 2, *IMAGES.shape) and alone.dtype == np.uint8
    assert np.array_equal(alone, pooled)
    for k, name in enumerate(names):  # each set where the names and severities put it
        assert np.array_equal(alone[k, 1], ours(name, 5))
    assert str(fingerprints(alone, y, names, [1, 5])["fingerprint"]) == str(
        fingerprints(pooled, y, names, [1, 5])["fingerprint"])


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_keeps_shape_and_dtype_and_repeats_bit_for_bit(name):
    if name in ("motion_blur", "snow") and not HAVE_MAGICK:
        pytest.skip(f"ImageMagick: apt-get install {magick.DEBIAN_PACKAGE}")
    for severity in SEVERITIES:
        a, b = ours(name, severity), ours(name, severity)
        assert a.shape == IMAGES.shape and a.dtype == np.uint8 and np.array_equal(a, b)
        assert not np.array_equal(a, IMAGES) or name == "glass_blur" and severity == 1


def distortion(name, severity):
    return float(((ours(name, severity, seed=7).astype(float) - IMAGES) ** 2).mean())


# glass blur smooths away the test images' noise; elastic's severity 1 is its largest affine warp; motion
# blur's angle and frost's photograph, drawn per image, vary more than a step of severity on 16 images
NOT_MONOTONE = ("saturate", "glass_blur", "elastic_transform", "motion_blur", "frost")


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n not in NOT_MONOTONE])
def test_the_distortion_grows_with_the_severity(name):
    if name == "snow" and not HAVE_MAGICK:
        pytest.skip(f"ImageMagick: apt-get install {magick.DEBIAN_PACKAGE}")
    d = [distortion(name, s) for s in SEVERITIES]
    assert d[0] > 0 and all(a < b for a, b in zip(d, d[1:])), d


def test_saturate_grows_in_each_of_its_two_directions():
    """The original's saturate desaturates at severities 1 and 2 (x0.3, x0.1) and oversaturates at 3 to 5, so
    its distortion grows within each direction, not across them."""
    d = [distortion("saturate", s) for s in SEVERITIES]
    assert d[0] < d[1] and d[2] < d[3] < d[4], d


# ---- the deterministic ones, from the reference's formulas, image by image

@pytest.mark.parametrize("severity", SEVERITIES)
def test_contrast_pulls_each_channel_towards_its_mean(severity):
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    x = IMAGES / 255.
    means = x.mean(axis=(1, 2), keepdims=True)
    close("contrast", severity, np.clip((x - means) * c + means, 0, 1) * 255)


def through_hsv(change):
    """Each pixel through Python's colorsys (RGB -> HSV -> RGB), with `change` applied to its (h, s, v)."""
    out = np.empty(IMAGES.shape)
    for index in np.ndindex(IMAGES.shape[:3]):
        out[index] = colorsys.hsv_to_rgb(*change(*colorsys.rgb_to_hsv(*(IMAGES[index] / 255.))))
    return np.clip(out, 0, 1) * 255


@pytest.mark.parametrize("severity", SEVERITIES)
def test_brightness_adds_to_the_value_and_saturate_scales_the_saturation(severity):
    c = [.05, .1, .15, .2, .3][severity - 1]
    close("brightness", severity, through_hsv(lambda h, s, v: (h, s, min(1, max(0, v + c)))))
    k, add = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    close("saturate", severity, through_hsv(lambda h, s, v: (h, min(1, max(0, s * k + add)), v)))


def box_resize(image, size):
    """PIL's box resize of one (H, W, 3) image to size x size, from its definition: each output pixel the mean
    of the input pixels whose centres fall within its footprint (widened to one input pixel when growing)."""
    def weights(n_in, n_out):
        scale = n_in / n_out
        support = 0.5 * max(scale, 1.0)
        w = np.zeros((n_out, n_in))
        for i in range(n_out):
            centre = (i + 0.5) * scale
            for j in range(max(0, int(centre - support + 0.5)), min(n_in, int(centre + support + 0.5))):
                offset = (j - centre + 0.5) / max(scale, 1.0)
                w[i, j] = -0.5 < offset <= 0.5
        return w / w.sum(1, keepdims=True)
    def rounded(values):  # each pass writes 8-bit pixels, rounded half up
        return np.floor(values + 0.5)
    wide = rounded(np.einsum("jkc,lk->jlc", image.astype(float), weights(image.shape[1], size)))  # across,
    return rounded(np.einsum("ij,jlc->ilc", weights(image.shape[0], size), wide))  # then down


@pytest.mark.parametrize("severity", SEVERITIES)
def test_pixelate_box_shrinks_then_box_grows_back(severity):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    expected = np.stack([box_resize(box_resize(im, int(32 * c)), 32) for im in IMAGES])
    diff = np.abs(ours("pixelate", severity).astype(int) - expected)  # PIL's weights are fixed-point
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (diff.max(), (diff == 0).mean())


# the IJG's luminance quantisation table (JPEG standard, Annex K), which libjpeg scales by the quality
LUMINANCE = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                      14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                      18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                      49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])


@pytest.mark.parametrize("severity", SEVERITIES)
def test_jpeg_uses_the_quality_of_its_severity_and_decodes_as_another_libjpeg_does(severity):
    quality = [80, 65, 58, 50, 40][severity - 1]
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    buffer = io.BytesIO()
    Image.fromarray(IMAGES[0]).save(buffer, "JPEG", quality=quality)
    table = np.array(Image.open(buffer).quantization[0])  # zig-zag order; the standard's is natural order
    assert sorted(table) == sorted(np.clip((LUMINANCE * scale + 50) // 100, 1, 255))
    encoded = [cv2.imencode(".jpg", im[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1] for im in IMAGES]
    theirs = np.stack([cv2.imdecode(e, cv2.IMREAD_COLOR)[..., ::-1] for e in encoded])
    diff = np.abs(ours("jpeg_compression", severity).astype(int) - theirs)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())


@pytest.mark.parametrize("severity", SEVERITIES)
def test_defocus_is_opencvs_filter_with_the_antialiased_disk(severity):
    radius, alias_blur = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    span = np.arange(-8, 8 + 1)
    xx, yy = np.meshgrid(span, span)
    disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias_blur)
    expected = np.stack([np.stack([cv2.filter2D(im[:, :, d] / 255., -1, kernel) for d in range(3)], -1)
                         for im in IMAGES])
    close("defocus_blur", severity, np.clip(expected, 0, 1) * 255, atol=1e-4)  # OpenCV's kernel is float32


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_blur_is_the_separable_kernel_cut_at_four_sigma_with_edges_repeated(severity):
    sigma = [.4, .6, 0.7, .8, 1][severity - 1]
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma ** 2))
    taps /= taps.sum()
    padded = np.pad(IMAGES / 255., ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
    rows = sum(t * padded[:, k:k + 32] for k, t in enumerate(taps))
    blurred = sum(t * rows[:, :, k:k + 32] for k, t in enumerate(taps))
    close("gaussian_blur", severity, np.clip(blurred, 0, 1) * 255)


def reference_clipped_zoom(img, zoom_factor):
    h = img.shape[0]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    img = ndimage.zoom(img[top:top + ch, top:top + ch], (zoom_factor, zoom_factor, 1), order=1)
    trim_top = (img.shape[0] - h) // 2
    return img[trim_top:trim_top + h, trim_top:trim_top + h]


@pytest.mark.parametrize("severity", [1, 5])
def test_zoom_blur_averages_scipys_zooms_of_each_image(severity):
    factors = [np.arange(1, 1.06, 0.01), np.arange(1, 1.26, 0.01)][severity // 5]
    expected = []
    for im in IMAGES[:6]:
        x = (im / 255.).astype(np.float32)
        out = np.zeros_like(x)
        for f in factors:
            out += reference_clipped_zoom(x, f)
        expected.append(np.clip((x + out) / (len(factors) + 1), 0, 1) * 255)
    close("zoom_blur", severity, np.stack(expected), IMAGES[:6], atol=1e-4)  # float32 sums


# ---- ImageMagick, called as the reference calls it, on the same images and draws

def reference_motion_blur(image, radius, sigma, angle):
    """make_cifar_c.py's route: the PIL image as PNG, MagickMotionBlurImage (through Wand's C binding), the
    PNG it writes read back by OpenCV."""
    from wand.api import library
    from wand.image import Image as WandImage
    output = io.BytesIO()
    Image.fromarray(image).save(output, format="PNG")
    with WandImage(blob=output.getvalue()) as x:
        library.MagickMotionBlurImage(x.wand, ctypes.c_double(radius), ctypes.c_double(sigma),
                                      ctypes.c_double(angle))
        return cv2.imdecode(np.frombuffer(x.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)


@needs_magick
@pytest.mark.parametrize("severity", SEVERITIES)
def test_motion_blur_is_imagemagicks_along_the_drawn_angle(severity):
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    angles = stream(0, "motion_blur", severity).uniform(-45, 45, size=len(IMAGES))
    expected = np.stack([reference_motion_blur(im, radius, sigma, a)[..., [2, 1, 0]]
                         for im, a in zip(IMAGES, angles)])
    out = ours("motion_blur", severity)
    assert np.array_equal(out, expected)
    assert np.abs(out.astype(int) - IMAGES).mean() > 5  # it blurs


@needs_magick
@pytest.mark.parametrize("severity", SEVERITIES)
def test_snow_is_the_references_flakes_blurred_by_imagemagick(severity):
    c = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    rng = stream(0, "snow", severity)
    layers = rng.normal(size=IMAGES.shape[:3], loc=c[0], scale=c[1])
    angles = rng.uniform(-135, -45, len(IMAGES))
    expected = []
    for im, snow_layer, angle in zip(IMAGES, layers, angles):
        x = np.array(im, dtype=np.float32) / 255.
        snow_layer = reference_clipped_zoom(snow_layer[..., np.newaxis], c[2])
        snow_layer[snow_layer < c[3]] = 0
        flakes = (np.clip(snow_layer.squeeze(), 0, 1) * 255).astype(np.uint8)
        snow_layer = reference_motion_blur(flakes, c[4], c[5], angle) / 255.
        snow_layer = snow_layer[..., np.newaxis]
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(32, 32, 1)
        x = c[6] * x + (1 - c[6]) * np.maximum(x, grey * 1.5 + 0.5)
        expected.append(np.clip(x + snow_layer + np.rot90(snow_layer, k=2), 0, 1) * 255)
    close("snow", severity, np.stack(expected), atol=1e-4)


def test_without_imagemagick_a_corruption_that_needs_it_stops_with_one_line_naming_the_package(monkeypatch):
    monkeypatch.delenv("MAGICK_HOME", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)  # no MagickWand library anywhere
    for module in [m for m in sys.modules if m == "wand" or m.startswith(("wand.", "wand._"))]:
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(PipelineError, match=f"^corruption snow needs ImageMagick's MagickWand library.*"
                                            f"apt-get install {magick.DEBIAN_PACKAGE}.*take snow out"):
        require(["gaussian_noise", "snow", "motion_blur"])
    monkeypatch.setitem(sys.modules, "wand", None)  # and without Wand itself
    with pytest.raises(PipelineError, match="^corruption motion_blur needs ImageMagick's Python binding"):
        require(["motion_blur"])
    require(["gaussian_noise", "fog", "glass_blur"])  # the others need nothing


# ---- the random ones: the scale each severity's constant implies

MID = (IMAGES > 60) & (IMAGES < 195)  # far from 0 and 255, where the noise is rarely clipped


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_and_speckle_noise_have_the_scale_of_their_constants(severity):
    images = np.repeat(IMAGES, 4, axis=0)  # more values, a tighter estimate
    mid = np.repeat(MID, 4, axis=0)
    c = [0.04, 0.06, .08, .09, .10][severity - 1]
    residual = (ours("gaussian_noise", severity, images).astype(float) - images)[mid] / 255.
    assert np.std(residual) == pytest.approx(np.sqrt(c ** 2 + 1 / 12 / 255 ** 2), rel=0.03)
    assert np.mean(residual) == pytest.approx(-0.5 / 255, abs=3 * c / np.sqrt(residual.size))  # truncated
    c = [.06, .1, .12, .16, .2][severity - 1]
    relative = (ours("speckle_noise", severity, images).astype(float)[mid] + 0.5 - images[mid]) / images[mid]
    assert np.std(relative) == pytest.approx(c, rel=0.05)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_shot_noise_has_the_poisson_variance_of_its_photon_count(severity):
    images = np.repeat(IMAGES, 4, axis=0)
    mid = np.repeat(MID, 4, axis=0)
    c = [500, 250, 100, 75, 50][severity - 1]
    residual = (ours("shot_noise", severity, images).astype(float) + 0.5 - images)[mid] / 255.
    implied = np.mean(images[mid] / 255.) / (np.var(residual) - 1 / 12 / 255 ** 2)  # var = x / c
    assert implied == pytest.approx(c, rel=0.08)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_impulse_noise_sets_its_share_of_values_to_black_or_white_half_each(severity):
    c = [.01, .02, .03, .05, .07][severity - 1]
    images = np.repeat(IMAGES, 4, axis=0)
    out = ours("impulse_noise", severity, images)
    inside = (images > 0) & (images < 255)
    hit = (out != images) & inside
    assert hit.mean() / inside.mean() == pytest.approx(c, rel=0.1)
    assert np.isin(out[hit], [0, 255]).all() and (out[hit] == 255).mean() == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_fog_adds_one_plasma_layer_spanning_its_constant_and_dims_to_the_images_brightest(severity):
    strength = [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1][0]
    x = IMAGES / 255.
    top = x.max(axis=(1, 2, 3), keepdims=True)
    # out = (x + strength * layer) * top / (top + strength), never clipped, for a layer spanning 0..1
    layer = (ours_float("fog", severity) / 255. * (top + strength) / top - x) / strength
    assert np.allclose(layer.min(axis=(1, 2, 3)), 0, atol=1e-9) and np.allclose(layer.max(axis=(1, 2, 3)), 1)
    assert np.allclose(layer, layer[..., :1], atol=1e-9)  # one layer for the three channels
    assert np.abs(np.diff(layer, axis=2)).mean() < np.abs(layer - layer.mean()).mean()  # smooth, not noise


# ---- the random ones replayed: the reference's steps, one image at a time, with the same draws

@pytest.mark.parametrize("severity", SEVERITIES)
def test_glass_blur_replays_the_references_pixel_loop(severity):
    sigma, max_delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                                    (0.4, 1, 2)][severity - 1]
    rng = stream(0, "glass_blur", severity)
    draws = [rng.integers(-max_delta, max_delta, size=(len(IMAGES), 30, 30, 2)) for _ in range(iterations)]
    expected = []
    for n, im in enumerate(IMAGES):
        x = np.uint8(skimage_gaussian(np.array(im) / 255., sigma) * 255)
        for i in range(iterations):
            for h in range(32 - max_delta, max_delta, -1):
                for w in range(32 - max_delta, max_delta, -1):
                    dx, dy = draws[i][n, h - 2, w - 2]
                    h_prime, w_prime = h + dy, w + dx
                    x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]  # the reference's "swap"
        expected.append(np.clip(skimage_gaussian(x / 255., sigma), 0, 1) * 255)
    assert np.array_equal(ours("glass_blur", severity), as_uint8(np.stack(expected)))
    assert set(np.unique(draws[0])) == {-1, 0}  # np.random.randint(-1, 1): up or left, or the pixel itself


@pytest.mark.parametrize("severity", SEVERITIES)
def test_elastic_transform_replays_the_references_warp_and_displacement(severity):
    imsize = 32
    c = [(imsize * 0, imsize * 0, imsize * 0.08), (imsize * 0.05, imsize * 0.2, imsize * 0.07),
         (imsize * 0.08, imsize * 0.06, imsize * 0.06), (imsize * 0.1, imsize * 0.04, imsize * 0.05),
         (imsize * 0.1, imsize * 0.03, imsize * 0.03)][severity - 1]
    rng = stream(0, "elastic_transform", severity)
    shifts = rng.uniform(-c[2], c[2], size=(len(IMAGES), 3, 2)).astype(np.float32)
    noise_x, noise_y = (rng.uniform(-1, 1, size=(len(IMAGES), 32, 32)) for _ in "xy")
    expected = []
    for image, shift, nx, ny in zip(IMAGES, shifts, noise_x, noise_y):
        image = np.array(image, dtype=np.float32) / 255.
        shape = image.shape
        shape_size = shape[:2]
        center_square = np.float32(shape_size) // 2
        square_size = min(shape_size) // 3
        pts1 = np.float32([center_square + square_size, [center_square[0] + square_size,
                                                         center_square[1] - square_size],
                           center_square - square_size])
        M = cv2.getAffineTransform(pts1, pts1 + shift)
        image = cv2.warpAffine(image, M, shape_size[::-1], borderMode=cv2.BORDER_REFLECT_101)
        dx = (skimage_gaussian(nx, c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
        dy = (skimage_gaussian(ny, c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
        dx, dy = dx[..., np.newaxis], dy[..., np.newaxis]
        x, y, z = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
        indices = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1)), np.reshape(z, (-1, 1))
        moved = ndimage.map_coordinates(image, indices, order=1, mode="reflect").reshape(shape)
        expected.append(np.clip(moved, 0, 1) * 255)
    assert np.array_equal(ours("elastic_transform", severity), as_uint8(np.stack(expected)))


@pytest.mark.parametrize("severity", SEVERITIES)
def test_spatter_replays_the_references_water_and_mud(severity):
    c = [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
         (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)][severity - 1]
    layers = stream(0, "spatter", severity).normal(size=IMAGES.shape[:3], loc=c[0], scale=c[1])
    expected = []
    for im, liquid_layer in zip(IMAGES, layers):
        x = np.array(im, dtype=np.float32) / 255.
        liquid_layer = skimage_gaussian(liquid_layer, c[2])
        liquid_layer[liquid_layer < c[3]] = 0
        if c[5] == 0:
            liquid_layer = (liquid_layer * 255).astype(np.uint8)
            dist = 255 - cv2.Canny(liquid_layer, 50, 150)
            dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
            _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
            dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
            dist = cv2.equalizeHist(dist)
            ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)
            dist = cv2.filter2D(dist, cv2.CV_8U, ker)
            dist = cv2.blur(dist, (3, 3)).astype(np.float32)
            m = cv2.cvtColor(liquid_layer * dist, cv2.COLOR_GRAY2BGRA)
            m /= np.max(m, axis=(0, 1))
            m *= c[4]
            color = np.concatenate((175 / 255. * np.ones_like(m[..., :1]),
                                    238 / 255. * np.ones_like(m[..., :1]),
                                    238 / 255. * np.ones_like(m[..., :1])), axis=2)
            color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
            x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
            expected.append(cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255)
        else:
            m = np.where(liquid_layer > c[3], 1, 0)
            m = skimage_gaussian(m.astype(np.float32), c[4])
            m[m < 0.8] = 0
            color = np.concatenate((63 / 255. * np.ones_like(x[..., :1]),
                                    42 / 255. * np.ones_like(x[..., :1]),
                                    20 / 255. * np.ones_like(x[..., :1])), axis=2)
            color *= m[..., np.newaxis]
            x *= (1 - m[..., np.newaxis])
            expected.append(np.clip(x + color, 0, 1) * 255)
    close("spatter", severity, np.stack(expected), atol=1e-4)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_frost_replays_the_references_crop_of_its_photographs(severity):
    c = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    rng = stream(0, "frost", severity)
    files = [frost_photographs._path(f) for f in ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg",
                                                  "frost5.jpg"]]
    shrunk = [cv2.resize(cv2.imread(str(f)), (0, 0), fx=0.2, fy=0.2) for f in files]
    which = rng.integers(5, size=len(IMAGES))
    tops = rng.integers(0, np.array([f.shape[0] - 32 for f in shrunk])[which])
    lefts = rng.integers(0, np.array([f.shape[1] - 32 for f in shrunk])[which])
    expected = [np.clip(c[0] * np.array(x) + c[1] * shrunk[k][t:t + 32, s:s + 32][..., [2, 1, 0]], 0, 255)
                for x, k, t, s in zip(IMAGES, which, tops, lefts)]
    assert np.array_equal(ours("frost", severity), as_uint8(np.stack(expected)))


def test_a_frost_photograph_that_is_not_the_references_stops_with_one_line(monkeypatch, tmp_path):
    other = tmp_path / "frost3.png"
    other.write_bytes(frost_photographs._path("frost3.png").read_bytes()[:-1] + b"\0")
    real = frost_photographs._path
    monkeypatch.setattr(frost_photographs, "_path", lambda f: other if f == "frost3.png" else real(f))
    frost_photographs.photos.cache_clear()
    try:
        with pytest.raises(PipelineError, match=r"^corruption frost: .*frost3.png has md5 [0-9a-f]{32}, "
                                                "expected b3ed8eb147824261888e730f916c0d8b.*reinstall"):
            require(["frost"])
    finally:
        frost_photographs.photos.cache_clear()
