"""How a stage script ends: a failure the user can fix prints one clear line and exits 1, no traceback."""
from __future__ import annotations

import sys

from .errors import PipelineError


def run_stage(main) -> None:
    try:
        main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
