"""What common random numbers buy on real runs: seeds of a base and of typical changes, their correlation seed by
seed, and the seeds the verdict's designs need to decide (docs/noise.md).

    python benchmarks/crn_correlation.py --archive ~/cifar10-proxy/cifar-10-python.tar.gz [--seeds 8]
        [--code DIR] [--json out.json]

Trains, in this process, the smoke network 16 wide on the first 3,000 training images for 2 epochs (the quick
look's schedule), scored on the first 1,000 test images without the mirror, for seeds 0..N-1 of the base and of
each change: optim.lr x 1.5, augment.cutout 8 -> 0, model.width 16 -> 24. `--code DIR` takes the package from
another checkout (a revision before common random numbers, to compare), with its own params.yaml. For each change
it then replays the verdict's designs on those seeds in order (the rounds of params.yaml's noise group, paired; a
fixed five a side, Welch's): the call, and the seeds a side it took. `--replay JSON` does that alone, on the
accuracies a run wrote with `--json`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = {"model.width": 16, "data.train_subset": 3000, "data.test_subset": 1000, "schedule.epochs": 2,
        "schedule.peak_epoch": 1, "train.batch_size": 128, "optim.lr": 0.005, "evaluate.tta_flip": False}
CHANGES = {"lr x 1.5": {"optim.lr": 0.0075}, "cutout 8 -> 0": {"augment.cutout": 0},
           "width 16 -> 24": {"model.width": 24}}


def accuracies(code: Path, archive: Path, seeds: int, overrides: dict) -> tuple[list[float], float]:
    """(test accuracy per seed, training seconds in all) of the params with `overrides`."""
    import yaml

    from cifarpipe.compute.device import configure_torch, resolve_compute
    from cifarpipe.core.params import load_params
    from cifarpipe.data.dataset import channel_stats
    from cifarpipe.download.archive import parse_archive
    from cifarpipe.train.loop import train
    from cifarpipe.train.prepare import set_up_training

    raw = yaml.safe_load((code / "params.yaml").read_text())
    sets = {k: v for k, v in overrides.items() if k.split(".")[1] in raw[k.split(".")[0]]}
    params = load_params(code / "params.yaml", sets)
    data = parse_archive(archive)
    data = {"x_train": data["x_train"][:3000], "y_train": data["y_train"][:3000],
            "x_test": data["x_test"][:1000], "y_test": data["y_test"][:1000]}
    stats, result, seconds = channel_stats(data["x_train"]), [], 0.0
    for seed in range(seeds):
        compute = configure_torch(resolve_compute(getattr(params, "compute", None) or params.train), seed=seed)
        run = set_up_training(params, data, stats, compute, seed=seed, lr_max=params.optim.lr,
                              lr_min=params.optim.lr / params.schedule.lrmin_div)
        started = time.perf_counter()
        history = train(run.model, run.train_loader, run.test_loader, compute, run.config,
                        step_model=run.step_model)
        seconds += time.perf_counter() - started
        result.append(history[-1]["test_acc"])
    return result, seconds


def replay(base: list[float], change: list[float]) -> str:
    """What the rounds (paired) and a fixed five a side (Welch) call on these seeds, taken in order (this
    checkout's designs: another checkout's package may have none)."""
    from cifarpipe.aggregate.sequential import Design, look_at
    from cifarpipe.core.params import load_params

    noise = load_params(ROOT / "params.yaml", {}).noise
    rounds, margin = Design.from_noise(noise), noise.margin.test_acc / 100
    said = []
    for seeds in rounds.looks:
        look = look_at(base[:seeds], change[:seeds], rounds, margin)
        if look.decided:
            said.append(f"rounds ({rounds.describe()}): {look.call} at {seeds} seeds a side, p {look.p_value:.3g}")
            break
    fixed = Design((5,), rounds.alpha, paired=False)
    look = look_at(base[:5], change[:5], fixed, margin)
    said.append(f"fixed 5, Welch: {look.call}, p {look.p_value:.3g}")
    return "; ".join(said)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python benchmarks/crn_correlation.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archive", type=Path, help="an archive in the official layout (not with --replay)")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose cifarpipe package trains")
    ap.add_argument("--json", type=Path, default=None, help="also write every accuracy here")
    ap.add_argument("--replay", type=Path, default=None, help="only replay the designs on this run's --json")
    args = ap.parse_args(argv)
    if args.replay:
        saved = json.loads(args.replay.read_text())
        for name, change in saved["changes"].items():
            print(f"{name}: r = {change['correlation']:.2f}; {replay(saved['base'], change['accuracy'])}")
        return
    if args.archive is None:
        ap.error("--archive is required, unless --replay")
    code = args.code.resolve()
    if code != ROOT and os.environ.get("PYTHONPATH") != str(code):  # the other checkout's package, first
        env = {**os.environ, "PYTHONPATH": str(code)}
        sys.exit(subprocess.run([sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])],
                                env=env, cwd=code).returncode)
    import numpy as np

    base, base_s = accuracies(code, args.archive, args.seeds, BASE)
    out = {"code": str(args.code), "base": base, "changes": {}}
    print(f"base: {np.round(base, 4).tolist()} ({base_s:.0f} s)", flush=True)
    for name, change in CHANGES.items():
        acc, seconds = accuracies(code, args.archive, args.seeds, {**BASE, **change})
        r = float(np.corrcoef(base, acc)[0, 1])
        out["changes"][name] = {"accuracy": acc, "correlation": r}
        print(f"{name}: {np.round(acc, 4).tolist()} ({seconds:.0f} s); r = {r:.2f}; mean difference "
              f"{100 * (np.mean(acc) - np.mean(base)):+.2f} points; "
              f"{replay(base, acc) if code == ROOT else 'the designs: --replay this run --json'}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
