"""The corrupt stage as a user runs it: from the published CIFAR-10-C (a tiny archive in its layout, served
over loopback HTTP, and bad ones, each refused with one line), and generating, where a corruption that needs
ImageMagick stops it with one line naming the package when the library is missing."""
import hashlib
import io
import shutil
import sys
import tarfile

import numpy as np
import pytest

from cifarpipe.core.errors import DataError
from cifarpipe.corrupt import published
from cifarpipe.corrupt.magick import DEBIAN_PACKAGE
from cifarpipe.corrupt.names import BENCHMARK, EXTRAS
from cifarpipe.corrupt.published import published_sets, read_archive
from cifarpipe.corrupt.sets import fingerprints
from conftest import ROOT, defaults, run, set_params, tiny_archive_in
from synthetic_cifar import make_images

PER_SEVERITY = 12
RUNTIME = defaults("runtime", download_timeout_s=10, download_retries=1, download_backoff_s=0,
                   download_max_mb=1024, download_deadline_s=60)


def npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def published_files(names=BENCHMARK + EXTRAS, per_severity=PER_SEVERITY) -> dict[str, bytes]:
    """{member: bytes} of a CIFAR-10-C archive in the published layout, with `per_severity` images."""
    rng = np.random.default_rng(3)
    labels = make_images(per_severity, rng)[1].astype(np.uint8)
    files = {"CIFAR-10-C/labels.npy": npy(np.tile(labels, 5))}
    for name in names:
        images = rng.integers(0, 256, (5 * per_severity, 32, 32, 3), dtype=np.uint8)
        files[f"CIFAR-10-C/{name}.npy"] = npy(images)
    return files


def write_tar(path, files: dict[str, bytes], link: str | None = None) -> str:
    with tarfile.open(path, "w") as tar:
        folder = tarfile.TarInfo("CIFAR-10-C")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return hashlib.md5(path.read_bytes()).hexdigest()


def rows(files, name, severity, images):
    array = np.load(io.BytesIO(files[f"CIFAR-10-C/{name}.npy"]))
    return array[(severity - 1) * PER_SEVERITY:(severity - 1) * PER_SEVERITY + images]


def project(dest):
    """The project's code and params in a folder, to run a stage script in."""
    for name in ("cifarpipe", "stages"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, dest / name)
    return dest


def test_the_stage_reads_the_published_layout_over_http_into_sets_and_their_fingerprint(http_root, tmp_path):
    folder, base = http_root
    files = published_files()
    md5 = write_tar(folder / "CIFAR-10-C.tar", files)
    repo = project(tmp_path / "repo")
    names = ["fog", "glass_blur", "saturate"]
    set_params(repo, {"corrupt.source": "published", "corrupt.url": f"{base}/CIFAR-10-C.tar",
                      "corrupt.md5": md5, "corrupt.corruptions": names, "corrupt.severities": [2, 5],
                      "corrupt.images": 5,
                      "runtime.download_max_mb": 0.001})  # the published archive is allowed its own size
    out = run([sys.executable, "-m", "stages.corrupt"], repo).stdout
    assert "(published): 5 test images x 3 corruptions x 2 severities" in out
    with np.load(repo / "data/corrupted.npz") as z:
        assert z["x"].shape == (3, 2, 5, 32, 32, 3) and z["x"].dtype == np.uint8
        for i, name in enumerate(names):
            for k, severity in enumerate([2, 5]):
                assert np.array_equal(z["x"][i, k], rows(files, name, severity, 5))
        labels = np.load(io.BytesIO(files["CIFAR-10-C/labels.npy"]))[:5]
        assert list(z["y"]) == list(labels) and str(z["source"]) == "published"
        assert list(z["corruptions"]) == names and list(z["severities"]) == [2, 5]
        assert list(z["benchmark"]) == list(BENCHMARK) and list(z["extras"]) == list(EXTRAS)  # the convention
        assert list(z["scale"]) == [1, 2, 3, 4, 5]
        expected = fingerprints(z["x"], z["y"], names, [2, 5])
        assert str(z["fingerprint"]) == str(expected["fingerprint"])
        assert list(z["fingerprints"]) == list(expected["fingerprints"])
    assert not list((repo / "data").glob("tmp*"))  # the downloaded archive is gone


def test_a_file_url_is_read_in_place_and_a_wrong_md5_names_both(tmp_path):
    files = published_files(["fog"])
    md5 = write_tar(tmp_path / "CIFAR-10-C.tar", files)
    url = (tmp_path / "CIFAR-10-C.tar").as_uri()
    x, y = published_sets(url, md5, ["fog"], [1], 3, RUNTIME, tmp_path / "data")
    assert np.array_equal(x[0, 0], rows(files, "fog", 1, 3)) and not (tmp_path / "data").exists()
    with pytest.raises(DataError, match=f"^checksum mismatch for {url}: expected md5 0{{32}}, got {md5}.*"
                                        f"set corrupt.md5 to {md5}"):
        published_sets(url, "0" * 32, ["fog"], [1], 3, RUNTIME, tmp_path / "data")


def test_a_download_larger_than_the_published_archive_is_refused(http_root, tmp_path, monkeypatch):
    folder, base = http_root
    md5 = write_tar(folder / "CIFAR-10-C.tar", published_files(["fog"]))
    monkeypatch.setattr(published, "ARCHIVE_BYTES", 1000)
    small = RUNTIME.model_copy(update={"download_max_mb": 0.0005})
    with pytest.raises(DataError, match="more than runtime.download_max_mb.*it is not the CIFAR-10-C "
                                        "archive.*Check corrupt.url"):
        published_sets(f"{base}/CIFAR-10-C.tar", md5, ["fog"], [1], 3, small, tmp_path / "data")
    assert not list((tmp_path / "data").glob("*/*"))  # nothing half-written


def broken(kind):
    files = published_files(["fog", "snow"])
    if kind == "missing":
        del files["CIFAR-10-C/snow.npy"]
    elif kind == "shape":
        files["CIFAR-10-C/snow.npy"] = npy(np.zeros((5 * PER_SEVERITY, 32, 32), np.uint8))
    elif kind == "dtype":
        files["CIFAR-10-C/fog.npy"] = npy(np.zeros((5 * PER_SEVERITY, 32, 32, 3), np.float32))
    elif kind == "count":
        files["CIFAR-10-C/fog.npy"] = npy(np.zeros((5 * PER_SEVERITY - 5, 32, 32, 3), np.uint8))
    elif kind == "labels":
        labels = np.load(io.BytesIO(files["CIFAR-10-C/labels.npy"]))
        labels[-1] = (labels[-1] + 1) % 10
        files["CIFAR-10-C/labels.npy"] = npy(labels)
    elif kind == "not npy":
        files["CIFAR-10-C/fog.npy"] = b"not an array"
    elif kind == "truncated":
        files["CIFAR-10-C/fog.npy"] = files["CIFAR-10-C/fog.npy"][:-100]
    return files


@pytest.mark.parametrize("kind, message", [
    ("missing", r"the archive lacks CIFAR-10-C/snow.npy: it is not the published CIFAR-10-C"),
    ("shape", r"CIFAR-10-C/snow.npy has shape \(60, 32, 32\) and dtype uint8, expected \(60, 32, 32, 3\)"),
    ("dtype", r"CIFAR-10-C/fog.npy has shape \(60, 32, 32, 3\) and dtype float32"),
    ("count", r"CIFAR-10-C/fog.npy has shape \(55, 32, 32, 3\)"),
    ("labels", r"CIFAR-10-C/labels.npy: the five severities' labels differ"),
    ("not npy", r"CIFAR-10-C/fog.npy in the archive is not a readable .npy file"),
    ("truncated", r"CIFAR-10-C/fog.npy in the archive is truncated"),
    ("images", r"corrupt.images = 13, but the archive holds 12 images per severity: set corrupt.images to at "
               r"most 12"),
    ("link", r"archive member 'CIFAR-10-C/evil.npy' is a link: refused"),
    ("not tar", r"CIFAR-10-C.tar is not a tar archive"),
])
def test_a_bad_archive_is_refused_with_one_line(tmp_path, kind, message):
    archive = tmp_path / "CIFAR-10-C.tar"
    if kind == "not tar":
        archive.write_bytes(b"\x00\x01 not a tar at all" * 10)
    else:
        write_tar(archive, broken(kind), link="CIFAR-10-C/evil.npy" if kind == "link" else None)
    with pytest.raises(DataError, match="^" + message) as caught:
        read_archive(archive, ["fog", "snow"], [1, 5], 13 if kind == "images" else 4)
    assert "\n" not in str(caught.value)


def test_without_imagemagick_the_stage_stops_with_one_line_naming_the_package_and_writes_nothing(tmp_path):
    repo = project(tmp_path / "repo")
    url = (tmp_path / "cifar-10-python.tar.gz").as_uri()
    md5 = tiny_archive_in(tmp_path)
    set_params(repo, {"data.url": url, "data.md5": md5, "corrupt.images": 4, "corrupt.severities": [1]})
    run([sys.executable, "-m", "stages.download"], repo)
    hidden = ("import ctypes.util, runpy; ctypes.util.find_library = lambda name: None; "  # no MagickWand
              "runpy.run_module('stages.corrupt', run_name='__main__')")
    proc = run([sys.executable, "-c", hidden], repo, check=False, env_extra={"MAGICK_HOME": ""})
    assert proc.returncode == 1 and not (repo / "data/corrupted.npz").exists()
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("error: corruption motion_blur needs ImageMagick's MagickWand library")
    assert f"apt-get install {DEBIAN_PACKAGE}" in proc.stderr
    set_params(repo, {"corrupt.corruptions": ["gaussian_noise", "fog"]})  # those that need nothing still run
    out = run([sys.executable, "-c", hidden], repo).stdout
    assert "(generate): 4 test images x 2 corruptions x 1 severities" in out
    with np.load(repo / "data/corrupted.npz") as z:
        assert z["x"].shape == (2, 1, 4, 32, 32, 3) and str(z["source"]) == "generate"
        expected = fingerprints(z["x"], z["y"], ["gaussian_noise", "fog"], [1])
        assert str(z["fingerprint"]) == str(expected["fingerprint"])
