"""The exported model on your own image files and folders: each image's top classes and their probabilities.

Exit status 1 where some input could not be read (each its line, the rest still classified): the command's
own return code, so one bad file of many does not stop the others."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..core import paths
from ..export import classify
from ..export.images import BACKGROUND, RESIZE, Failure

CLASSES = 10  # CIFAR-10's: --top asks for at most all of them

DESCRIPTION = """\
Classify image files with the exported model, as the evaluate stage scores: each image's most probable
classes and their probabilities (the softmax of the logits, averaged with the mirror image's when
evaluate.tta_flip is on, over the temperature the evaluate stage fitted)."""
EPILOG = f"""\
Each file is decoded the same way: EXIF orientation applied; 16- and 32-bit images scaled to 8 bits;
transparent pixels composited on white {BACKGROUND}; palette, CMYK, grayscale and the rest converted to RGB;
then resized ({RESIZE}). A folder stands for the image files in it (by suffix; --recursive: in its
subfolders too).

exit status:
  0  every image was classified
  1  some input could not be read (each gets one line on stderr: its path and why; the rest are still
     classified and printed), or the model could not be loaded
  2  the command line is wrong
"""


def top_count(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or not 1 <= value <= CLASSES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {CLASSES}")
    return value


def batch_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cifarpipe predict", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER",
                    help="image files (PNG, JPEG, HEIC, WebP, TIFF, ... any size) and folders of them")
    ap.add_argument("--model", type=Path, default=Path(paths.EXPORT_ONNX),
                    help="model.onnx (onnxruntime), model.pt2 (torch.export) or model.pt (PyTorch weights); "
                    f"default {paths.EXPORT_ONNX}")
    ap.add_argument("--meta", type=Path, default=None,
                    help=f"the model.json for a model.pt (default {paths.EXPORT_META})")
    ap.add_argument("--top", type=top_count, default=3, help=f"classes per image, 1 to {CLASSES} (default 3)")
    ap.add_argument("--batch-size", type=batch_count, default=256,
                    help="images decoded and classified at a time: memory stays flat (default 256)")
    ap.add_argument("--recursive", action="store_true", help="a folder's subfolders too")
    output = ap.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help="JSON Lines: path, label, score and the top list of {label, score}")
    output.add_argument("--csv", action="store_true",
                        help="CSV with a header: path, label, score, then label_2, score_2, ...")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    model = classify.load_model(args.model, args.meta)  # a PipelineError: the CLI's one line and exit 1
    table = csv.writer(sys.stdout, lineterminator="\n") if args.csv else None
    if table:
        table.writerow(["path", "label", "score"] + [f"{key}_{k}" for k in range(2, args.top + 1)
                                                     for key in ("label", "score")])
    done = failed = 0
    for result in classify.predict(model, args.images, top=args.top, batch_size=args.batch_size,
                                    recursive=args.recursive):
        if isinstance(result, Failure):
            failed += 1
            print(f"error: {result.path}: {result.why}", file=sys.stderr, flush=True)
            continue
        done += 1
        (label, score), path = result.top[0], str(result.path)
        if args.json:
            print(json.dumps({"path": path, "label": label, "score": score,
                              "top": [{"label": c, "score": p} for c, p in result.top]}))
        elif table:
            table.writerow([path] + [v for pair in result.top for v in pair])
        else:
            print(f"{path}: " + ", ".join(f"{c} {p:.1%}" for c, p in result.top))
    if failed:
        print(f"error: {failed} input{'s' * (failed > 1)} could not be read (above); {done} image"
              f"{'s' * (done != 1)} classified", file=sys.stderr)
    return 1 if failed else 0
