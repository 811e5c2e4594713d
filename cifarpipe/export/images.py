"""Image files as the classifier's input: `decode` is the one way any file becomes a (32, 32, 3) uint8 RGB
array, and `image_files` turns the paths a user names (folders included) into the files to decode."""
from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.params import IMAGE_SIZE

RESIZE = f"bicubic, squash to {IMAGE_SIZE}x{IMAGE_SIZE}"  # the whole image, not cropped: what decode does
BACKGROUND = (255, 255, 255)  # transparent pixels become white, as most viewers show them
# PIL's 32-bit modes (I, F) do not say the depth of what was stored: white is the first of these that no value
# exceeds (1 for a float image in 0..1, 255 for 8-bit values, 65535 for 16-bit ones)
WHITE_LEVELS = (1.0, 255.0, 65535.0, 2.0 ** 32 - 1)
ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


@dataclass
class Failure:
    """An input that gave no image: its path and why, in words for the user."""
    path: Path
    why: str


class Unreadable(Exception):
    """A file `decode` cannot turn into an image; the message says why."""


@functools.cache
def with_heif() -> None:
    """PIL opens HEIC/HEIF (a phone's photos) through pillow-heif's plugin, which applies the file's own
    rotation and leaves the EXIF orientation at 1, so nothing turns twice."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def image_suffixes() -> set[str]:
    """The file name suffixes of every format PIL can open (lower case, with the dot)."""
    with_heif()
    return {suffix for suffix, name in Image.registered_extensions().items() if name in Image.OPEN}


def image_files(paths: Iterable[Path], recursive: bool = False) -> Iterator[Path | Failure]:
    """Each path that is not a folder, as given; each folder's image files (by suffix, hidden ones skipped)
    in name order, and a Failure for a folder that holds none."""
    suffixes = image_suffixes()
    for path in map(Path, paths):
        if not path.is_dir():
            yield path  # a missing or broken file fails when it is decoded, in its turn
            continue
        found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                       if p.suffix.lower() in suffixes and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not found:
            where = "in it or below" if recursive else "in it (--recursive looks in its subfolders too)"
            yield Failure(path, f"a folder with no image files {where}")
        yield from found


def to_8_bits(image: Image.Image) -> Image.Image:
    """A 16-bit (I;16) or 32-bit (I, F) single-channel image as 8-bit L, scaled so that white stays white
    rather than clipped; negative values are black."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float32))
    if image.mode.startswith("I;16"):
        white = 65535.0
    else:
        top = float(values.max(initial=0))
        white = next((level for level in WHITE_LEVELS if top <= level), top)
    return Image.fromarray(np.rint(np.clip(values / white, 0, 1) * 255).astype(np.uint8))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: deep images scaled, transparency composited on BACKGROUND, palette, CMYK,
    grayscale and the rest converted."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = to_8_bits(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        flat = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        image = Image.alpha_composite(flat, image.convert("RGBA"))
    return image.convert("RGB")


def bomb_message(err: Exception) -> str:
    pixels = re.search(r"\((\d+) pixels\)", str(err))
    size = f"{int(pixels.group(1)):,} pixels" if pixels else "too many pixels"
    return (f"{size}, over PIL's limit of {Image.MAX_IMAGE_PIXELS:,} (PIL.Image.MAX_IMAGE_PIXELS): refused "
            "as a possible decompression bomb (shrink it first if you trust it)")


def decode(path: Path) -> np.ndarray:
    """The image in the file at `path` as (32, 32, 3) uint8 RGB: EXIF orientation applied, `to_rgb`, then
    RESIZE. Raises Unreadable with the reason for any file that does not decode."""
    with_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's notes on odd but readable files (corrupt EXIF, ...)
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over the limit: refused
            with Image.open(path) as image:
                rgb = to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except UnidentifiedImageError:
        raise Unreadable("not an image file PIL can read (PNG, JPEG, HEIC, WebP, TIFF, GIF, ...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise Unreadable(bomb_message(err)) from None
    except Exception as err:  # noqa: BLE001 (a truncated or corrupt file: whatever PIL raises, one line)
        raise Unreadable(f"cannot be decoded ({type(err).__name__}: {err})") from None
    return np.asarray(rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC))
