"""Failures a user can fix. Each message names the problem and the fix; stages print it without a
traceback."""


class PipelineError(RuntimeError):
    """Base of the errors a stage reports as one line and exit status 1."""


class ParamsError(PipelineError, ValueError):
    """A params.yaml value that cannot be used."""


class DataError(PipelineError):
    """The archive could not be fetched or is not a valid CIFAR-10 archive."""


class DivergedError(PipelineError):
    """The training loss became NaN or infinite."""
