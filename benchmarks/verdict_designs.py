"""The verdict's designs on simulated pull requests: false calls, power and the seeds each spends (docs/noise.md).

    python benchmarks/verdict_designs.py [--prs 20000] [--margin 1.0] [--seed 1] [--rho 0,0.4,0.8]
        [--looks 3,4]

Each pull request's per-seed results are normal with sd 1 (sigma, the seed noise), the change's shifted by the
effect and correlated rho with the base's seed by seed, as common random numbers make them. Every design is
the report's own code (cifarpipe.aggregate.sequential.simulate); a Markdown table goes to stdout.
"""
from __future__ import annotations

import argparse

from cifarpipe.aggregate.sequential import Design
from cifarpipe.aggregate.sequential import simulate as run
from cifarpipe.core.params import load_params


def designs(noise, looks: tuple[int, ...] | None) -> dict[str, Design]:
    """Fixed five a side as two groups (the workflow before), the same seeds paired, and the params' rounds;
    with `looks`, those rounds as well."""
    rounds = Design.from_noise(noise)
    alpha = rounds.alpha
    found = {"fixed 5, Welch": Design((5,), alpha, paired=False), "fixed 5, paired": Design((5,), alpha),
             "rounds, Welch": Design(rounds.looks, alpha, rounds.spending, paired=False),
             "rounds, paired": rounds}
    if looks:
        found[f"rounds {'-'.join(map(str, looks))}, paired"] = Design(looks, alpha, rounds.spending)
    return found


def table(prs: int, margin: float, seed: int, rhos: list[float], looks: tuple[int, ...] | None) -> list[str]:
    noise = load_params("params.yaml").noise
    lines = ["| design | rho | false calls (effect 0) | false equivalent (effect = margin) | power 1σ | power 2σ "
             "| power 3σ | seeds a side, effect 0 | seeds a side, 2σ |", "| --- " * 9 + "|"]
    for name, design in designs(noise, looks).items():
        for rho in rhos:
            null = run(design, effect=0.0, rho=rho, margin=margin, prs=prs, seed=seed)
            edge = run(design, effect=margin, rho=rho, margin=margin, prs=prs, seed=seed + 1)
            power = {e: run(design, effect=e, rho=rho, margin=None, prs=prs, seed=seed + 2) for e in (1, 2, 3)}
            lines.append(f"| {name} | {rho} | {null['better'] + null['worse']:.3f} | {edge['equivalent']:.3f} "
                         f"| {power[1]['better']:.2f} | {power[2]['better']:.2f} | {power[3]['better']:.2f} "
                         f"| {null['seeds']:.2f} | {power[2]['seeds']:.2f} |")
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python benchmarks/verdict_designs.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prs", type=int, default=20000, help="simulated pull requests per cell")
    ap.add_argument("--margin", type=float, default=1.0, help="the equivalence margin, in sigmas")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rho", default="0,0.4,0.8", help="the sides' correlations, comma-separated")
    ap.add_argument("--looks", default=None, help="another design's rounds to add, e.g. 3,4 (seeds a side)")
    args = ap.parse_args(argv)
    looks = tuple(int(k) for k in args.looks.split(",")) if args.looks else None
    print("\n".join(table(args.prs, args.margin, args.seed, [float(r) for r in args.rho.split(",")], looks)))


if __name__ == "__main__":
    main()
