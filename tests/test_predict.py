"""How `cifarpipe predict` reads a user's files, without a model: one decode for every file, folders expanded,
the command line's limits. tests/test_pipeline_e2e.py runs it on an exported model."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cifarpipe.export.images import Failure, Unreadable, decode, image_files
from cifarpipe.tools import predict
from conftest import odd_images
from synthetic_cifar import make_images

GOOD_TWINS = [("phone.jpg", "phone_upright.png"), ("gray16.png", "gray8.png"), ("gray32.tif", "gray8.png"),
              ("cutout.png", "cutout_on_white.png")]
BAD = {"bomb.png": "decompression bomb", "big.png": "decompression bomb", "truncated.jpg": "truncated",
       "notes.jpg": "not an image file", "missing.png": "no such file"}


IMAGES, _ = make_images(6, np.random.default_rng(0))


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    return odd_images(tmp_path_factory.mktemp("odd") / "photos", IMAGES)


def test_each_odd_file_decodes_to_its_plain_twin(odd):
    for name, twin in GOOD_TWINS:
        assert np.array_equal(decode(odd / name), decode(odd / twin)), name
    with Image.open(odd / "phone.jpg") as sideways:  # what it was without the EXIF orientation
        assert decode(odd / "phone.jpg").shape == (32, 32, 3)
        naive = np.asarray(sideways.convert("RGB").resize((32, 32), Image.Resampling.BICUBIC))
    assert not np.array_equal(decode(odd / "phone.jpg"), naive)
    with Image.open(odd / "gray16.png") as deep:  # PIL's own conversion clips a 16-bit image to white
        assert (np.asarray(deep.convert("L")) == 255).mean() > 0.9 and decode(odd / "gray16.png").max() < 255
    assert (decode(odd / "cutout.png")[:, :10] == 255).all()  # the stored green is gone under white
    for name, source, within in [("palette.gif", 3, 20), ("cmyk.jpg", 4, 12)]:  # steps of 51; a JPEG's loss
        decoded = decode(odd / name)
        assert decoded.shape == (32, 32, 3) and decoded.dtype == np.uint8
        assert np.abs(decoded.astype(int) - IMAGES[source]).mean() < within, name
    heic, upright = decode(odd / "photo.heic").astype(int), decode(odd / "photo_upright.png")
    assert np.abs(heic - upright).mean() < 2 < np.abs(np.rot90(heic) - upright).mean()  # YCbCr's rounding


@pytest.mark.parametrize("name", list(BAD))
def test_an_unreadable_file_says_why_in_one_line(odd, name):
    with pytest.raises(Unreadable) as raised:
        decode(odd / name)
    assert BAD[name] in str(raised.value) and "\n" not in str(raised.value)


def test_a_folder_stands_for_its_image_files_and_an_empty_one_fails(odd, tmp_path):
    Image.new("RGB", (8, 8)).save(odd / ".hidden.png")  # a system's thumbnail, never a photo of the user's
    (tmp_path / "empty").mkdir()
    flat = list(image_files([odd, tmp_path / "empty", tmp_path / "missing.png"]))
    names = [f.name for f in flat[:-2]]
    assert names == sorted(names) and "readme.txt" not in names and ".hidden.png" not in names
    assert {"phone.jpg", "notes.jpg", "gray32.tif", "photo.heic"} <= set(names) and "deeper.png" not in names
    assert isinstance(flat[-2], Failure) and "--recursive" in flat[-2].why
    assert flat[-1] == tmp_path / "missing.png"  # a missing file fails when it is decoded, in its turn
    deep = [f.relative_to(odd).as_posix() for f in image_files([odd], recursive=True)]
    assert deep == sorted(names + ["sub/deeper.png"])


@pytest.mark.parametrize("args", [["--top", "0"], ["--top", "-1"], ["--top", "11"], ["--top", "two"],
                                  ["--batch-size", "0"]])
def test_top_and_batch_size_take_only_what_makes_sense(args, capsys):
    with pytest.raises(SystemExit) as exited:
        predict.main(["cat.png", *args])
    assert exited.value.code == 2 and f"argument {args[0]}" in capsys.readouterr().err


def test_help_says_what_the_exit_status_means(capsys):
    with pytest.raises(SystemExit):
        predict.main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "0 every image was classified" in said and "1 some input could not be read" in said
    assert "--recursive" in said and "--batch-size" in said and "--csv" in said


@pytest.mark.parametrize("args, said", [
    (["--model", "nowhere/model.onnx"], "run `dvc repro export`"),
    (["--model", "weights.h5"], "names a model.onnx, model.pt2 or model.pt")])
def test_a_model_that_cannot_be_loaded_is_one_line_and_exit_1(args, said, tmp_path):
    """predict raises, the CLI's one catch prints the line."""
    proc = subprocess.run([sys.executable, "-m", "cifarpipe.tools.cli", "predict", "cat.png", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    err = proc.stderr
    assert proc.returncode == 1 and err.startswith("error: ") and said in err and err.count("\n") == 1, err
    assert not proc.stdout
