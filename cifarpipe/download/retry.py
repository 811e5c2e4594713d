"""Try again with exponential backoff: the one retry loop of the download and of the cluster's pushes.

It lives with the download, whose stages already list this folder, so that the cluster code can share it
without an edit here rerunning any other stage.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """At most `tries` tries, waiting `backoff_s` before the second, twice that before the third, ..."""
    tries: int
    backoff_s: float

    def wait(self, tried: int) -> float:
        """The wait after try number `tried` (1 for the first)."""
        return self.backoff_s * 2 ** (tried - 1)


class StopTrying(Exception):
    """Raised by a try whose failure no later try can mend (a 404, a name taken): give up at once."""


class GaveUp(Exception):
    """Every try failed, or the deadline passed, or a try said StopTrying: the last error and the count."""

    def __init__(self, error: BaseException, tries: int, final: bool = False):
        super().__init__(str(error))
        self.error, self.tries, self.final = error, tries, final


def retried(attempt: Callable[[], T], policy: Backoff, *,
            retry_on: tuple[type[BaseException], ...] = (Exception,),
            deadline: float | None = None, what: str = "", say: Callable[[str], None] | None = None) -> T:
    """What `attempt()` returns, tried as `policy` says while it raises one of `retry_on`; then GaveUp.

    `deadline` (time.monotonic()) ends the waits and the tries, all together; `say` hears each retry as
    "WHAT failed (try 1 of 4): ERROR; again in 15 s". An error not in `retry_on` propagates at once.
    """
    for tried in range(1, policy.tries + 1):
        try:
            return attempt()
        except StopTrying as error:
            raise GaveUp(error.__cause__ or error, tried, final=True) from error
        except retry_on as error:
            if tried == policy.tries:
                raise GaveUp(error, tried) from error
            wait = policy.wait(tried)
            if deadline is not None and time.monotonic() + wait >= deadline:  # no time for another try
                raise GaveUp(error, tried) from error
            if say is not None:
                say(f"{what} failed (try {tried} of {policy.tries}): {error}; again in {wait:g} s")
            time.sleep(wait)
    raise ValueError(f"Backoff.tries is {policy.tries}: at least 1")
