"""`cifarpipe predict IMAGE... [--model PATH] [--top K] [--json]`: the exported model on your own images."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core import paths
from ..core.errors import PipelineError
from ..export import predictor


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="cifarpipe predict", description=predictor.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", type=Path, help="PNG or JPEG files, any size")
    ap.add_argument("--model", type=Path, default=Path(paths.EXPORT_ONNX),
                    help="model.onnx (onnxruntime), model.pt2 or model.pt (PyTorch); default "
                    f"{paths.EXPORT_ONNX}")
    ap.add_argument("--meta", type=Path, default=None, help=f"model.json (default: beside --model, else "
                    f"{paths.EXPORT_META} for a model.pt)")
    ap.add_argument("--top", type=int, default=3, help="how many classes to print per image (default 3)")
    ap.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    args = ap.parse_args(argv)
    meta = args.meta or (Path(paths.EXPORT_META) if args.model.suffix == ".pt" else None)
    try:
        results = predictor.predict(args.model, args.images, args.top, meta)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    for r in results:
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['image']}: " + ", ".join(f"{t['class']} {t['probability']:.1%}" for t in r["top"]))
