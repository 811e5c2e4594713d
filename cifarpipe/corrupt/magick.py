"""ImageMagick's motion blur, called through its Python binding Wand as make_cifar_c.py calls it (motion blur
and snow): each image goes in as a PNG, ImageMagick blurs it and writes a PNG, OpenCV reads that back."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from ..core.errors import PipelineError
from ..messages import INSTALL

# The Debian package of the MagickWand library that Wand loads at run time (Debian 12; no -dev package needed)
DEBIAN_PACKAGE = "libmagickwand-6.q16-6"


def require(*names: str) -> None:
    """Raise the one-line error naming what to install if corruptions `names` cannot reach ImageMagick."""
    which = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    needs, them = ((f"corruption {which} needs", which) if len(names) == 1
                   else (f"corruptions {which} need", "them"))
    try:
        import wand.image  # noqa: F401 (Wand loads the MagickWand library when imported)
    except ImportError as err:
        if isinstance(err, ModuleNotFoundError):  # Wand itself; a missing library is a plain ImportError
            raise PipelineError(f"{needs} ImageMagick's Python binding Wand, which is not installed: "
                                f"{INSTALL} (or take {them} out of corrupt.corruptions)") from None
        raise PipelineError(f"{needs} ImageMagick's MagickWand library, which Wand cannot find: apt-get "
                            f"install {DEBIAN_PACKAGE} (Debian 12; apt-get install imagemagick on other "
                            "Debian and Ubuntu releases, brew install imagemagick on macOS), or take "
                            f"{them} out of corrupt.corruptions") from None


def _blurred(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    from wand.image import Image as WandImage

    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    with WandImage(blob=png.getvalue()) as wand:
        wand.motion_blur(radius=radius, sigma=sigma, angle=angle)  # MagickMotionBlurImage
        out = cv2.imdecode(np.frombuffer(wand.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)
    if image.ndim == 2:  # a grey image comes back grey
        return out if out.ndim == 2 else out[..., 0]
    # ImageMagick writes a PNG of an image whose pixels are all grey as a grey one
    return np.stack([out] * 3, -1) if out.ndim == 2 else out[..., 2::-1]  # BGR(A) to RGB


def motion_blur(images: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) uint8 images, each blurred along its angle in degrees, as uint8."""
    return np.stack([_blurred(image, radius, sigma, float(angle)) for image, angle in zip(images, angles)])
