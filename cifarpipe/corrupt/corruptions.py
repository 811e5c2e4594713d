"""CIFAR-10-C's 15 corruptions and 4 extras at severities 1 to 5, with the constants of its CIFAR script.

Each maps (N, 32, 32, 3) uint8 images, a severity and the Generator `stream` seeds from the corruption's name
to corrupted images; docs/robustness.md gives each one's engine and what tests/test_corruptions.py checks."""
from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

from ..core.errors import PipelineError
from . import frost as frost_photographs
from . import magick
from .names import BENCHMARK, EXTRAS


def _unit(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) / 255.0


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """skimage.filters.gaussian(x, sigma, multichannel=True) on (N, H, W, C) floats: each image's rows and
    columns only, edges repeated, cut at 4 sigma."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)


def stream(seed: int, name: str, severity: int) -> np.random.Generator:
    """The random stream of corruption `name` at `severity`: seeded by the name's CRC-32, not its position."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), severity])


# ---- noise

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


# ---- blur

def gaussian_blur(x, severity, rng):
    c = [.4, .6, 0.7, .8, 1][severity - 1]
    return np.clip(_gaussian(_unit(x), c), 0, 1) * 255


def glass_blur(x, severity, rng):
    """Blur, move pixels locally, blur again. The reference's swap `x[h, w], x[h', w'] = x[h', w'], x[h, w]`
    assigns through numpy views, so it copies: each visited pixel takes the value of its neighbour (dx, dy)
    in {-1, 0}^2, visited from the far corner back, so every source is still unvisited: a pass is a gather."""
    sigma, max_delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
                                    (0.4, 1, 2)][severity - 1]
    out = np.uint8(_gaussian(_unit(x), sigma) * 255)
    side = x.shape[1]
    span = np.arange(max_delta + 1, side - max_delta + 1)  # the rows and columns visited (2..31)
    each = np.arange(len(x))[:, None, None]
    for _ in range(iterations):
        # (dx, dy) per image and visited pixel (row 2 + i, column 2 + j), as np.random.randint(-1, 1, 2) draws
        shifts = rng.integers(-max_delta, max_delta, size=(len(x), len(span), len(span), 2))
        rows, cols = span[None, :, None] + shifts[..., 1], span[None, None, :] + shifts[..., 0]
        out[:, span[0]:span[-1] + 1, span[0]:span[-1] + 1] = out[each, rows, cols]
    return np.clip(_gaussian(out / 255., sigma), 0, 1) * 255


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The original's anti-aliased disk kernel: a 17x17 disk, blurred by OpenCV's 3x3 Gaussian, cut to the
    taps that are not zero (the same sums, fewer of them)."""
    span = np.arange(-8, 8 + 1) if radius <= 8 else np.arange(-radius, radius + 1)
    xx, yy = np.meshgrid(span, span)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    taps = np.exp(-np.arange(-1, 2) ** 2 / (2 * alias_blur ** 2))  # cv2.GaussianBlur, ksize 3
    taps /= taps.sum()
    kernel = ndimage.correlate1d(ndimage.correlate1d(disk, taps, axis=0, mode="mirror"), taps, axis=1,
                                 mode="mirror")
    reach = int(np.abs(span[kernel.any(0)]).max())
    return kernel[8 - reach:8 + reach + 1, 8 - reach:8 + reach + 1] if radius <= 8 else kernel


def defocus_blur(x, severity, rng):
    c = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    kernel = _disk(c[0], c[1])[None, :, :, None]
    return np.clip(ndimage.correlate(_unit(x), kernel, mode="mirror"), 0, 1) * 255


def motion_blur(x, severity, rng):
    """ImageMagick's motion blur along an angle drawn per image in [-45, 45) degrees."""
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    return magick.motion_blur(x, radius, sigma, rng.uniform(-45, 45, size=len(x)))


def _zoom_rows(size: int, zoom_factor: float) -> np.ndarray:
    """(size, size) weights: the rows of the centre crop that scipy.ndimage.zoom(order=1) blows up by
    `zoom_factor` (corners on corners), trimmed back to `size` as the reference trims them."""
    ch = int(np.ceil(size / zoom_factor))
    top, zoomed = (size - ch) // 2, int(round(ch * zoom_factor))
    trim = (zoomed - size) // 2
    at = np.arange(trim, trim + size) * ((ch - 1) / (zoomed - 1))  # where each kept row falls in the crop
    low = np.minimum(np.floor(at).astype(int), ch - 1)
    weights = np.zeros((size, size))
    np.add.at(weights, (np.arange(size), top + low), 1 - (at - low))
    np.add.at(weights, (np.arange(size), top + np.minimum(low + 1, ch - 1)), at - low)
    return weights


def _clipped_zoom(x: np.ndarray, zoom_factor: float) -> np.ndarray:
    """The centre of each (N, H, W, C) image zoomed by `zoom_factor` back to H x W: the reference's
    clipped_zoom (scipy's linear zoom), as two products with its interpolation weights, in float64."""
    rows, (n, h, w, c) = _zoom_rows(x.shape[1], zoom_factor), x.shape
    tall = np.matmul(rows, x.astype(np.float64).reshape(n, h, w * c))  # zoomed down the rows
    wide = np.matmul(tall.reshape(n * h, w, c).transpose(0, 2, 1), rows.T)  # then along the columns
    return wide.transpose(0, 2, 1).reshape(n, h, w, c).astype(x.dtype)


def zoom_blur(x, severity, rng):
    c = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
         np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][severity - 1]
    u = _unit(x).astype(np.float32)
    out = np.zeros_like(u)
    for factor in c:
        out += _clipped_zoom(u, factor)
    return np.clip((u + out) / (len(c) + 1), 0, 1) * 255


# ---- weather

def snow(x, severity, rng):
    """Flakes: a normal field per image, zoomed, thresholded, motion-blurred by ImageMagick along an angle in
    [-135, -45) degrees, added twice (once turned half round) to the image brightened towards its grey."""
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    n, side = len(x), x.shape[1]
    u = x.astype(np.float32) / 255.
    flakes = _clipped_zoom(rng.normal(size=(n, side, side, 1), loc=loc, scale=scale), zoom)
    flakes[flakes < threshold] = 0
    flakes = (np.clip(flakes[..., 0], 0, 1) * 255).astype(np.uint8)
    flakes = magick.motion_blur(flakes, radius, sigma, rng.uniform(-135, -45, size=n))[..., None] / 255.
    grey = cv2.cvtColor(u.reshape(n * side, side, 3), cv2.COLOR_RGB2GRAY).reshape(n, side, side, 1)
    u = keep * u + (1 - keep) * np.maximum(u, grey * 1.5 + 0.5)
    return np.clip(u + flakes + np.rot90(flakes, k=2, axes=(1, 2)), 0, 1) * 255


def frost(x, severity, rng):
    """A 32x32 crop of one of the five frost photographs, drawn per image with its place, mixed in."""
    keep, mix = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    photos, side = frost_photographs.photos(), x.shape[1]
    which = rng.integers(len(photos), size=len(x))
    tops = rng.integers(0, np.array([p.shape[0] for p in photos])[which] - side)
    lefts = rng.integers(0, np.array([p.shape[1] for p in photos])[which] - side)
    crops = np.stack([photos[k][t:t + side, s:s + side] for k, t, s in zip(which, tops, lefts)])
    return np.clip(keep * x + mix * crops, 0, 255)


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


# ---- digital

def contrast(x, severity, rng):
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    u = _unit(x)
    means = u.mean(axis=(1, 2), keepdims=True)
    return np.clip((u - means) * c + means, 0, 1) * 255


def elastic_transform(x, severity, rng):
    """A random affine warp (the three points of a triangle moved by up to `shift` pixels), then a smooth
    random displacement field (uniform noise blurred by `sigma`, scaled by `alpha`), edges reflected."""
    side = 32  # the reference's IMSIZE
    alpha, sigma, shift = [(side * 0, side * 0, side * 0.08), (side * 0.05, side * 0.2, side * 0.07),
                           (side * 0.08, side * 0.06, side * 0.06), (side * 0.1, side * 0.04, side * 0.05),
                           (side * 0.1, side * 0.03, side * 0.03)][severity - 1]
    u = x.astype(np.float32) / 255.
    centre, half = np.float32(u.shape[1:3]) // 2, min(u.shape[1:3]) // 3
    corners = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    moved = corners + rng.uniform(-shift, shift, size=(len(x), 3, 2)).astype(np.float32)
    fields = [(ndimage.gaussian_filter(rng.uniform(-1, 1, size=(len(x),) + u.shape[1:3]), (0, sigma, sigma),
                                       mode="reflect", truncate=3) * alpha).astype(np.float32) for _ in "xy"]
    rows, cols, channels = np.meshgrid(np.arange(u.shape[1]), np.arange(u.shape[2]), np.arange(u.shape[3]),
                                       indexing="ij")
    out = np.empty_like(u)
    for i in range(len(x)):
        warped = cv2.warpAffine(u[i], cv2.getAffineTransform(corners, moved[i]), u.shape[2:0:-1],
                                borderMode=cv2.BORDER_REFLECT_101)
        where = (rows + fields[1][i][..., None], cols + fields[0][i][..., None], channels)
        out[i] = ndimage.map_coordinates(warped, [c.reshape(-1) for c in where], order=1,
                                         mode="reflect").reshape(u.shape[1:])
    return np.clip(out, 0, 1) * 255


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


# ---- the extras

def spatter(x, severity, rng):
    """Liquid: a normal field per image, blurred and thresholded. Severities 1-3 are water, whose edges OpenCV
    finds and embosses into a pale turquoise layer; 4-5 are mud, a blurred mask painted brown."""
    loc, scale, sigma, threshold, intensity, mud = [
        (0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)][severity - 1]
    u = x.astype(np.float32) / 255.
    liquid = ndimage.gaussian_filter(rng.normal(size=x.shape[:3], loc=loc, scale=scale), (0, sigma, sigma),
                                     mode="nearest", truncate=4.0)
    liquid[liquid < threshold] = 0
    if not mud:
        layer = np.stack([_water(image) for image in (liquid * 255).astype(np.uint8)])
        layer = layer / layer.max(axis=(1, 2), keepdims=True) * intensity
        colour = np.float32([175 / 255., 238 / 255., 238 / 255.])  # pale turquoise
        return np.clip(u + layer[..., None] * colour, 0, 1) * 255
    mask = ndimage.gaussian_filter((liquid > threshold).astype(np.float32), (0, intensity, intensity),
                                   mode="nearest", truncate=4.0)
    mask[mask < 0.8] = 0
    brown = np.float32([63 / 255., 42 / 255., 20 / 255.]) * mask[..., None]
    return np.clip(u * (1 - mask[..., None]) + brown, 0, 1) * 255


EMBOSS = np.float32([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])


def _water(layer: np.ndarray) -> np.ndarray:
    """One (H, W) uint8 liquid layer times its embossed distance-to-edge map, as the reference computes it."""
    dist = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, EMBOSS), (3, 3)).astype(np.float32)
    return layer * dist


def saturate(x, severity, rng):
    c = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    hsv = _rgb_to_hsv(_unit(x))
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


CORRUPTIONS = {name: globals()[name] for name in BENCHMARK + EXTRAS}  # corrupt.corruptions
NEEDS = {"motion_blur": magick.require, "snow": magick.require,  # what a corruption needs beyond the lock
         "frost": lambda *names: frost_photographs.photos()}


def require(names) -> None:
    """Stop with one line naming what to install if a corruption of `names` cannot run here."""
    for name in names:
        if name in NEEDS:
            NEEDS[name](name)


def missing(names) -> list[str]:
    """One line for each need of the corruptions `names` this machine lacks, naming what to install (all the
    corruptions that share a need on one line: cifarpipe doctor --check)."""
    sharing: dict = {}
    for name in names:
        if name in NEEDS:
            sharing.setdefault(NEEDS[name], []).append(name)
    lines = []
    for need, needing in sharing.items():
        try:
            need(*needing)
        except PipelineError as err:
            lines.append(str(err))
    return lines


def corrupt(x: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """`x` (N, H, W, 3) uint8 under corruption `name` at `severity` (1..5), as uint8 (clipped, truncated)."""
    return np.uint8(np.clip(CORRUPTIONS[name](x, severity, rng), 0, 255))
