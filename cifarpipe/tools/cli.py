"""The `cifarpipe` command: the tools a user runs beside `dvc` (the stages run through `dvc repro`).

Its help comes from one table, COMMANDS, through argparse; a command's module is imported only when it runs,
so `cifarpipe --help` loads no torch and `cifarpipe doctor` nothing but the doctor.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..core.errors import PipelineError

# the command words, the module whose main(argv) runs them (None: a group of commands), one line of help
COMMANDS = [
    ("doctor", "cifarpipe.tools.doctor",
     "what the pipeline will use on this machine: torch, CUDA, GPUs, dvc"),
    ("exps", "cifarpipe.tools.exps",
     "the experiments at a glance: accuracy, interval, verdict, what changed"),
    ("predict", "cifarpipe.tools.predict",
     "the exported model on image files and folders: top classes, probabilities"),
    ("report", "cifarpipe.tools.report",
     "report.md for a pull request: this change against a base revision"),
    ("reruns", "cifarpipe.tools.reruns",
     "which stages an edit of each folder reruns (from dvc.yaml)"),
    ("overrides", "cifarpipe.tools.overrides",
     "params files of dotted keys (quick-look.yaml, smoke.yaml) as -S arguments"),
    ("slurm", "cifarpipe.slurm.commands",
     "a grid and its seeds as a SLURM job array: submit, status, cancel, gather, resubmit, push"),
    ("bench", None,
     "benchmarks: training speed, where a step's time goes, inference speed, the forward pass's limit"),
    ("bench speed", "cifarpipe.tools.bench.train_speed",
     "training time and accuracy beside the reference recipe's plain script"),
    ("bench profile", "cifarpipe.tools.bench.step_profile",
     "where a training step's time goes"),
    ("bench infer", "cifarpipe.tools.bench.inference",
     "the exported model's speed (onnxruntime, PyTorch, .pt2), predict's memory"),
    ("bench forward", "cifarpipe.tools.bench.forward",
     "the forward pass's best throughput per precision, and each inference stage's share of it"),
]
EPILOG = "`{prog} COMMAND --help` tells more about each; docs/use.md tells all."


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{word: parser} of a parser's subcommands; {} for a command that runs."""
    found = [action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(found[0]) if found else {}


def parser() -> argparse.ArgumentParser:
    """The command tree, for the help and to find what runs: a command's arguments are its module's."""
    top = argparse.ArgumentParser(prog="cifarpipe", description=__doc__.splitlines()[0],
                                  epilog=EPILOG.format(prog="cifarpipe"))
    groups = {(): top.add_subparsers(title="commands", metavar="COMMAND", required=True)}
    for words, module, line in COMMANDS:
        *above, name = words.split()
        if module is None:
            group = groups[tuple(above)].add_parser(name, help=line, description=line,
                                                    epilog=EPILOG.format(prog=f"cifarpipe {words}"))
            groups[tuple(words.split())] = group.add_subparsers(title="commands", metavar="COMMAND",
                                                                required=True)
        else:  # its --help and its arguments are its module's
            groups[tuple(above)].add_parser(name, help=line, add_help=False).set_defaults(module=module)
    return top


def find(tree: argparse.ArgumentParser, argv: list[str]) -> tuple[str, list[str]] | None:
    """(the module that runs argv's command, the arguments after the command's words); None where argv names
    no command that runs."""
    for taken in range(len(argv) + 1):
        if tree.get_default("module"):
            return tree.get_default("module"), argv[taken:]
        tree = subcommands(tree).get(argv[taken]) if taken < len(argv) else None
        if tree is None:
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tree = parser()
    found = find(tree, argv)
    if found is None:
        tree.parse_args(argv)  # help, or a missing or unknown command: argparse says which and exits
        return 2
    module, arguments = found
    try:
        return importlib.import_module(module).main(arguments) or 0
    except PipelineError as err:  # the one catch: a failure the user can fix is one line
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
