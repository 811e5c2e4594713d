"""CIFAR-10-C-style corruptions, regenerated: the test images under the common corruptions of Hendrycks &
Dietterich (2019), at severities 1 to 5, with the parameters of their CIFAR script (`make_cifar_c.py` in
hendrycks/robustness), not the ImageNet-C ones, which are far harsher at 32x32.

Ported to numpy, scipy and PIL, on whole batches: the original's skimage, OpenCV and ImageMagick calls are
replaced by their definitions (skimage's Gaussian filter is scipy's with mode "nearest"; OpenCV's border is
scipy's "mirror"; the HSV conversion is written out). Motion blur, snow, frost, spatter, glass blur and the
elastic transform are left out: they need ImageMagick or frost photographs. These sets are therefore not the
released CIFAR-10-C files, and their numbers are not comparable one to one with published ones
(docs/robustness.md).

Each function maps (N, 32, 32, 3) uint8 images and a severity 1..5 to uint8 images of the same shape, drawing
from the numpy Generator it is given; the stage seeds one per (corruption, severity), so every set is
bit-repeatable. As in the original, the float result is clipped to 0..255 and truncated to uint8.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / 255.0


def gaussian_noise(x, severity, rng):
    c = [0.04, 0.06, .08, .09, .10][severity - 1]
    return np.clip(_unit(x) + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, severity, rng):
    c = [500, 250, 100, 75, 50][severity - 1]
    return np.clip(rng.poisson(_unit(x) * c) / c, 0, 1) * 255


def impulse_noise(x, severity, rng):
    """skimage's random_noise(mode="s&p"): a share `c` of the values become 0 or 1, half of each."""
    c = [.01, .02, .03, .05, .07][severity - 1]
    out = _unit(x)
    hit = rng.random(x.shape) < c
    out[hit] = (rng.random(int(hit.sum())) < 0.5).astype(np.float64)
    return np.clip(out, 0, 1) * 255


def speckle_noise(x, severity, rng):
    c = [.06, .1, .12, .16, .2][severity - 1]
    u = _unit(x)
    return np.clip(u + u * rng.normal(size=x.shape, scale=c), 0, 1) * 255


def gaussian_blur(x, severity, rng):
    c = [.4, .6, 0.7, .8, 1][severity - 1]
    return np.clip(ndimage.gaussian_filter(_unit(x), sigma=(0, c, c, 0), mode="nearest", truncate=4.0), 0,
                   1) * 255


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The original's anti-aliased disk kernel: a 17x17 disk, blurred by OpenCV's 3x3 Gaussian."""
    span = np.arange(-8, 8 + 1) if radius <= 8 else np.arange(-radius, radius + 1)
    xx, yy = np.meshgrid(span, span)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    taps = np.exp(-np.arange(-1, 2) ** 2 / (2 * alias_blur ** 2))  # cv2.GaussianBlur, ksize 3
    taps /= taps.sum()
    return ndimage.correlate1d(ndimage.correlate1d(disk, taps, axis=0, mode="mirror"), taps, axis=1,
                               mode="mirror")


def defocus_blur(x, severity, rng):
    c = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    kernel = _disk(c[0], c[1])[None, :, :, None]
    return np.clip(ndimage.correlate(_unit(x), kernel, mode="mirror"), 0, 1) * 255


def _clipped_zoom(x: np.ndarray, zoom_factor: float) -> np.ndarray:
    """The centre of each (N, H, W, C) image zoomed by `zoom_factor` back to H x W."""
    h = x.shape[1]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    zoomed = ndimage.zoom(x[:, top:top + ch, top:top + ch], (1, zoom_factor, zoom_factor, 1), order=1)
    trim = (zoomed.shape[1] - h) // 2
    return zoomed[:, trim:trim + h, trim:trim + h]


def zoom_blur(x, severity, rng):
    c = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
         np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][severity - 1]
    u = _unit(x).astype(np.float32)
    out = np.zeros_like(u)
    for factor in c:
        out += _clipped_zoom(u, factor)
    return np.clip((u + out) / (len(c) + 1), 0, 1) * 255


def contrast(x, severity, rng):
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    u = _unit(x)
    means = u.mean(axis=(1, 2), keepdims=True)
    return np.clip((u - means) * c + means, 0, 1) * 255


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """skimage.color.rgb2hsv on float RGB in 0..1."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    delta = v - rgb.min(-1)
    s = np.divide(delta, v, out=np.zeros_like(v), where=v > 0)
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], -1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """skimage.color.hsv2rgb."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return np.stack([np.choose(i, [c[k] for c in choices]) for k in range(3)], -1)


def brightness(x, severity, rng):
    c = [.05, .1, .15, .2, .3][severity - 1]
    hsv = _rgb_to_hsv(_unit(x))
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


def saturate(x, severity, rng):
    c = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    hsv = _rgb_to_hsv(_unit(x))
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


def _plasma_fractal(n: int, rng, mapsize: int = 32, wibbledecay: float = 3) -> np.ndarray:
    """The original's diamond-square height maps in 0..1, (n, mapsize, mapsize), one per image."""
    maps = np.zeros((n, mapsize, mapsize))
    stepsize, wibble = mapsize, 100.0

    def wibbled_mean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        corners = maps[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        squares = corners + np.roll(corners, shift=-1, axis=1)
        squares += np.roll(squares, shift=-1, axis=2)
        maps[:, half:mapsize:stepsize, half:mapsize:stepsize] = wibbled_mean(squares)
        down_right = maps[:, half:mapsize:stepsize, half:mapsize:stepsize]
        up_left = maps[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        across = down_right + np.roll(down_right, 1, axis=1) + up_left + np.roll(up_left, -1, axis=2)
        maps[:, 0:mapsize:stepsize, half:mapsize:stepsize] = wibbled_mean(across)
        down = down_right + np.roll(down_right, 1, axis=2) + up_left + np.roll(up_left, -1, axis=1)
        maps[:, half:mapsize:stepsize, 0:mapsize:stepsize] = wibbled_mean(down)
        stepsize //= 2
        wibble /= wibbledecay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def fog(x, severity, rng):
    c = [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    u = _unit(x)
    max_val = u.max(axis=(1, 2, 3), keepdims=True)
    u += c[0] * _plasma_fractal(len(x), rng, wibbledecay=c[1])[..., None]
    return np.clip(u * max_val / (max_val + c[0]), 0, 1) * 255


def _each_image(x, change):
    return np.stack([np.asarray(change(Image.fromarray(image))) for image in x])


def pixelate(x, severity, rng):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    side = x.shape[1]
    return _each_image(x, lambda im: im.resize((int(side * c), int(side * c)), Image.BOX).resize((side, side),
                                                                                                  Image.BOX))


def jpeg_compression(x, severity, rng):
    quality = [80, 65, 58, 50, 40][severity - 1]

    def jpeg(image):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer).convert("RGB")
    return _each_image(x, jpeg)


CORRUPTIONS = {f.__name__: f for f in (  # corrupt.corruptions
    gaussian_noise, shot_noise, impulse_noise, speckle_noise, gaussian_blur, defocus_blur, zoom_blur,
    contrast, brightness, saturate, fog, pixelate, jpeg_compression)}


def corrupt(x: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """`x` (N, H, W, 3) uint8 under corruption `name` at `severity` (1..5), as uint8 (clipped, truncated)."""
    return np.uint8(np.clip(CORRUPTIONS[name](x, severity, rng), 0, 255))
